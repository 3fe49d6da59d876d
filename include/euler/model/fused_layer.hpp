// euler/model/fused_layer.hpp: one transformer layer of EulerFormer as a single tape node, computed in
// tiles of a few lists that stay in cache; backward reads each tile's kept intermediates or recomputes them.
//
// The composed layer (model/forward.hpp: attend and feed_forward) records ~40 nodes whose values are each a
// [B, N, D] or [B, H, N, N] tensor: at B = 256 every one is megabytes, and each op is a pass over main
// memory (docs/performance.md). This node does the same arithmetic on tiles of L lists (L N ~ 256 rows),
// whose intermediates fit in the core's L2 cache. When what backward reads fits the spec's keep_bytes,
// each tile writes it straight into tape memory and backward reads it there; otherwise (large batches)
// the node keeps nothing but its output and backward recomputes a tile's forward before
// backpropagating through it.
// Values, gradients and random draws are those of the composed layer (tests compare them in double
// precision), which stays the readable definition and serves the study tools (Trace) and the
// configurations this node leaves out (learnable frequencies).
//
// One tile, as the composed layer computes it (rows are positions of the tile's lists; Q the rows that
// query: all of them, or one per list when `rows` is given, see EulerFormer::encode):
//   q, k, v = x Wq^T + bq, x Wk^T + bk, x Wv^T + bv                                   [R, D]
//     (q only at the Q query rows when no contrastive term needs every row's phase: sparse_queries)
//   rotation: rope  q~ = q e^{i alpha}, k~ = k e^{i alpha}
//             euler theta_q = delta arg q + b + alpha, q~ = |q| e^{i theta_q}; the same for k without b
//   contrastive (euler): the sum over lists of cl(theta_q) + cl(theta_k) (model/contrastive.hpp), a second output
//   per head:  P = softmax(q~ k~^T / sqrt(dh) + mask) [Q, N];  context = dropout(P) v      [Q, D]
//   h1 = LN1(dropout(context Wd^T + bd) + x)                                              [Q, D]
//   out = LN2(dropout(act(h1 W1^T + b1) W2^T + b2) + h1)                                  [Q, D]
// Each line is a block of model/fused_tile.hpp, its forward and backward side by side; backward runs
// them in reverse. Parameter gradients accumulate per thread and are added in thread order, so a given
// thread count always gives the same bits.
//
//     FusedLayerInputs<float> in{...};                     // the layer's parameters as tape Vars
//     auto [out, contrastive] = fused_layer(ctx, spec, in, x, ids, rows);
#pragma once

#include <algorithm>
#include <new>
#include <vector>

#include "euler/model/fused_tile.hpp"

namespace euler {

// ---- the node -------------------------------------------------------------------------------------

template <class T>
struct FusedLayerOutputs {
  Var<T> out;          // [B, N, D], or [B, D] with rows
  Var<T> contrastive;  // [] lamb * (cl(theta_q) + cl(theta_k)), or an empty Var when off
};

// Lists per tile: about 256 rows, at least one list.
inline int64_t fused_tile_lists(int64_t N) { return std::max<int64_t>(1, 256 / std::max<int64_t>(1, N)); }

namespace fused_detail {

// The plan of one call, in tape memory: inputs, the angle tables, and the random draws, taken from ctx.rng
// in the composed layer's order.
template <class T>
FusedLayerPlan<T>* make_plan(const Context<T>& ctx, const FusedLayerSpec& spec, const FusedLayerInputs<T>& in, Var<T> x,
                             TensorView<const int32_t> ids, TensorView<const T> alpha, TensorView<const int32_t> rows) {
  Tape<T>& tape = ctx.tape;
  const int64_t B = x.size(0), N = x.size(1), D = spec.D, half = D / 2;
  void* memory = tape.template alloc_as<unsigned char>(Shape{int64_t(sizeof(FusedLayerPlan<T>))}).data;
  FusedLayerPlan<T>* plan = new (memory) FusedLayerPlan<T>();
  static_assert(std::is_trivially_destructible_v<FusedLayerPlan<T>>, "the plan lives in tape memory, never destroyed");
  FusedLayerPlan<T>& p = *plan;
  p.x = x;
  p.in = in;
  p.spec = spec;
  p.B = B;
  p.N = N;
  p.L = fused_tile_lists(N);
  p.ids = tape.keep(ids).data;
  p.rows = rows.data ? tape.keep(rows).data : nullptr;
  p.dropout_on = ctx.dropout_on;
  const int64_t Qn = p.queries_per_list();
  if (spec.rotation == LayerRotation::rope) {
    TensorView<T> c = tape.alloc(Shape{N, half}), sn = tape.alloc(Shape{N, half});
    arr(c) = arr(TensorView<const T>{Shape{N * half}, alpha.data}).cos();
    arr(sn) = arr(TensorView<const T>{Shape{N * half}, alpha.data}).sin();
    p.cos_alpha = c.data;
    p.sin_alpha = sn.data;
  }
  if (spec.rotation == LayerRotation::euler) p.alpha = tape.keep(TensorView<const T>{Shape{N, half}, alpha.data}).data;
  if (spec.contrastive && ctx.dropout_on) {
    p.view_q = draw_dropout_mask(ctx.rng, uint64_t(B * N * half), 0.5);
    p.view_k = draw_dropout_mask(ctx.rng, uint64_t(B * N * half), 0.5);
  }
  if (ctx.dropout_on && spec.attn_dropout > 0)
    p.attn_mask = draw_dropout_mask(ctx.rng, uint64_t(B * spec.H * Qn * N), spec.attn_dropout);
  if (ctx.dropout_on && spec.hidden_dropout > 0) {
    p.dense_mask = draw_dropout_mask(ctx.rng, uint64_t(B * Qn * D), spec.hidden_dropout);
    p.ffn_mask = draw_dropout_mask(ctx.rng, uint64_t(B * Qn * D), spec.hidden_dropout);
  }
  if (spec.contrastive)
    p.contrastive_scale = T(spec.lamb / double(std::max<int64_t>(1, contrastive_count(p.ids, B, N, spec.contrastive_mode))));
  return plan;
}

// The node's backward: each tile's intermediates, kept or computed again, then back through it
// (backward_tile), the parameters' gradients gathered per thread and added in thread order.
template <class T>
void fused_layer_backward(const FusedLayerPlan<T>& p, const T* dout, T d_contrastive) {
  T* dx = p.x.requires_grad() ? p.x.grad_accumulator().data : nullptr;
  const int64_t tiles = (p.B + p.L - 1) / p.L, Qn = p.queries_per_list(), D = p.spec.D;
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(tiles, num_threads()));
  std::vector<LayerGrads<T>> grads(size_t(chunks), LayerGrads<T>(p.in));
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    AlignedVector<T> tile_out(size_t(p.kept ? 0 : p.L * Qn * D));  // a recomputed output, not needed again
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t i = tiles * c / chunks; i < tiles * (c + 1) / chunks; ++i) {
        const int64_t b0 = i * p.L, b1 = std::min(p.B, (i + 1) * p.L);
        Tile<T>& tile = thread_tile(p, b0, b1);
        if (p.kept) load_tile(p, tile, b0, b1, p.kept + i * p.kept_per_tile);
        else forward_tile(p, tile, b0, b1, tile_out.data(), static_cast<T*>(nullptr), static_cast<T*>(nullptr));
        backward_tile(p, tile, dout + b0 * Qn * D, d_contrastive, dx, grads[size_t(c)]);
      }
  });
  auto all = p.in.all();
  for (size_t i = 0; i < all.size(); ++i) {
    if (!all[i].tape || !all[i].requires_grad()) continue;
    TensorView<T> target = all[i].grad_accumulator();
    for (const LayerGrads<T>& g : grads)
      arr(target) += Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(g.flat.data() + g.offset[i], target.numel());
  }
}

}  // namespace fused_detail

// The layer of the file comment on x [B, N, D]. alpha [N, D/2] is the positional angle (rope, euler);
// ids [B, N] decide the mask; rows [B] (or empty) the one query row per list. Random draws are taken
// from ctx.rng in the composed layer's order: contrastive views of theta_q and theta_k, attention
// dropout [B, H, Qn, N], dense dropout [B, Qn, D], feed-forward dropout [B, Qn, D].
template <class T>
FusedLayerOutputs<T> fused_layer(const Context<T>& ctx, const FusedLayerSpec& spec, const FusedLayerInputs<T>& in, Var<T> x,
                                 TensorView<const int32_t> ids, TensorView<const T> alpha, TensorView<const int32_t> rows) {
  Tape<T>& tape = ctx.tape;
  const int64_t B = x.size(0), N = x.size(1), D = spec.D;
  require(x.shape() == (Shape{B, N, D}), "fused_layer", "x must be [B, N, " + std::to_string(D) + "], got " + x.shape().str());
  FusedLayerPlan<T>* plan = fused_detail::make_plan(ctx, spec, in, x, ids, alpha, rows);
  FusedLayerPlan<T>& p = *plan;
  const int64_t Qn = p.queries_per_list(), tiles = (B + p.L - 1) / p.L;
  std::vector<Var<T>> inputs{x};
  for (Var<T> v : in.all())
    if (v.tape) inputs.push_back(v);
  // Keep the tiles' intermediates for backward when they fit spec.keep_bytes (else backward recomputes them).
  const bool backward_wanted =
      tape.grad_enabled() && std::any_of(inputs.begin(), inputs.end(), [](Var<T> v) { return v.requires_grad(); });
  if (backward_wanted && spec.keep_bytes > 0) {
    const int64_t per_tile = fused_detail::kept_values(p, p.L);
    if (double(tiles) * double(per_tile) * sizeof(T) <= double(spec.keep_bytes)) {
      p.kept = tape.alloc(Shape{tiles * per_tile}).data;
      p.kept_per_tile = per_tile;
    }
  }

  // Forward, tile by tile. With the contrastive loss the node holds two outputs, the rows and then the
  // contrastive sum, and hands out each as a part (part_as): the sum's gradient reaches the layer's
  // backward through the tape, as the rows' does.
  const Shape out_shape = rows.data ? Shape{B, D} : Shape{B, N, D};
  const int64_t n_out = out_shape.numel();
  TensorView<T> out = tape.alloc(Shape{n_out + (spec.contrastive ? 1 : 0)});
  TensorView<T> per_list = tape.alloc(Shape{B});  // contrastive sums per list
  parallel_for(tiles, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      fused_detail::Tile<T>& tile = fused_detail::thread_tile(p, i * p.L, std::min(B, (i + 1) * p.L));
      forward_tile(p, tile, i * p.L, std::min(B, (i + 1) * p.L), out.data + i * p.L * Qn * D, spec.contrastive ? per_list.data : nullptr,
                   p.kept ? p.kept + i * p.kept_per_tile : nullptr);
    }
  });
  if (!spec.contrastive) {
    Var<T> result = tape.record_n("transformer_layer", TensorView<T>{out_shape, out.data}, inputs.data(), inputs.size(),
                                  [plan](auto, TensorView<const T> dout) { fused_detail::fused_layer_backward(*plan, dout.data, T(0)); });
    return {result, Var<T>{}};
  }
  T total = 0;
  for (int64_t b = 0; b < B; ++b) total += per_list[b];  // a fixed order
  out[n_out] = total * p.contrastive_scale;
  Var<T> both = tape.record_n("transformer_layer", out, inputs.data(), inputs.size(), [plan, n_out](auto, TensorView<const T> d) {
    fused_detail::fused_layer_backward(*plan, d.data, d[n_out]);
  });
  return {part_as(both, 0, out_shape, "transformer_layer.out"), part_as(both, n_out, Shape{}, "transformer_layer.contrastive")};
}

}  // namespace euler
