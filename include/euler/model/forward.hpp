// euler/model/forward.hpp: EulerFormer's transformer, written once for the CPU tape and the GPU's.
//
// The forward of docs/model.md, op by op: the input block, then per layer the attention block (q, k, v;
// the positional rotation of q and k; the phase contrastive terms; masked softmax attention; dense,
// residual, LayerNorm) and the feed-forward block. Every function is a template over a backend `Bk`
// whose variables carry their own ops: `add`, `matmul`, `softmax`, `rotate_by_phase`, `euler_phase`, ...
// are found by argument-dependent lookup, in namespace euler for the CPU tape (ops/*.hpp) and in
// euler::gpu for the device tape (cuda/device_ops.hpp). So the CPU model (model.hpp) and the CUDA
// backend (cuda/device_model.hpp) run the same statements in the same order: the dropout calls take the
// same blocks of the Rng and draw the same masks, which the tests check step for step.
//
// What a backend supplies (model.hpp's EulerFormer::Composed and device_model.hpp's GpuModel::Step are
// the two; each is a thin struct over its model's parameters and tape):
//
//     using Var, Ids, Rows, Mask, Layer;           // a tape variable; views of ids [B, N], rows [B] and
//                                                  // the additive mask [B, 1, N, N]; one layer's parameters
//     const ForwardSettings& settings();           // what the forward reads of the configuration
//     const Layer& layer(int l);                   // named as cuda::ModelSpec::Layer: query, key, value,
//                                                  // dense, attention_norm, delta, bias, freq, w, dense_1,
//                                                  // dense_2, feed_forward_norm (-1: absent)
//     Var item_embedding(Ids), position_rows(N), sinusoid_rows(N), rotary_rows(N);
//     Var linear(const L&, Var x, int64_t out), norm(const Nm&, Var x), input_norm(Var x);
//     Var activation(Var), dropout(Var, double p), phase_param(index, name), param_w(index);
//     Var angles(const Layer&, int64_t N);         // the positional angle [N, D/2]: alpha or j g_t
//     Var scaled_scores(Var qh, Var kh, double s); // s qh kh^T
//     Var phase_contrastive(Var phase, Var w, Ids);
//     Mask attention_mask(Ids), mask_rows(Mask, Rows);
//     bool fused_layer(int l, Var& x, Ids, Var* contrastive, Rows);  // true: the layer ran as one node
//     void trace_phases(Var q, Var k), trace_attention(Var logits, Var attention);  // may do nothing
#pragma once

#include <cmath>
#include <cstdint>

#include "euler/core/host_device.hpp"
#include "euler/core/shape.hpp"

namespace euler {

// ---- which keys a query sees: the one rule of every path (composed, fused, GPU, contrastive) ----------

// Added to the logit of a key a query may not see, as in the authors' code (not -inf: an all-padding
// list still has a finite softmax).
inline constexpr float kHiddenKeyLogit = -10000.0f;

// Key `key` of a list is visible to its query `query` when it is an item (not padding) and, under a
// causal mask (SASRec), not later than the query.
EULER_HD inline bool key_visible(const int32_t* ids /*one list*/, int64_t key, int64_t query, bool causal) {
  return ids[key] != 0 && (!causal || key <= query);
}

// ---- the forward ----------------------------------------------------------------------------------

// What the forward reads of a model's configuration (EulerFormerConfig or cuda::ModelSpec).
struct ForwardSettings {
  int layers = 2, heads = 2;
  int64_t hidden = 64, inner = 256;
  double hidden_dropout = 0.5, attn_dropout = 0.5;
  bool position_table = false;  // SASRec's learned absolute positions added to the input
  bool sinusoid = false;        // fixed sinusoidal positions added to the input
  bool rotary_table = false;    // EulerFormer's input rotary table psi
  bool rope = false;            // q and k rotated by the fixed angles alpha (RoPE)
  bool euler_rotation = false;  // q and k through the Euler transform (EulerFormer)
};

namespace forward {

// The positional rotation of q or k [B, N, D]. EulerFormer hands back the rotated phases theta~
// [B, N, D/2] through *phase (for the phase contrastive loss).
template <class Bk>
typename Bk::Var rotate(Bk& b, const typename Bk::Layer& a, typename Bk::Var x, bool is_query, int64_t N,
                        typename Bk::Var* phase) {
  using Var = typename Bk::Var;
  Var angle = b.angles(a, N);  // [N, D/2]
  if (b.settings().rope) return rotate_by_phase(x, angle);
  // Euler transform: polar form, adapt the semantic phase, add the positional angle, map back
  // (theta~ = delta arg(x) + b + alpha, then |x| e^{i theta~}; see ops/complex.hpp).
  Var delta = a.delta >= 0 ? b.phase_param(a.delta, "euler.delta") : Var{};
  Var bias = is_query && a.bias >= 0 ? b.phase_param(a.bias, "euler.b") : Var{};
  Var rotated_phase = euler_phase(x, delta, bias, angle);
  *phase = rotated_phase;
  return with_phase(x, rotated_phase);
}

// One post-LN attention block: LN(x + dropout(dense(softmax(rot(q) rot(k)^T / sqrt(d_h) + mask) v))).
// With `rows` ([B]) only the query at rows[b] of each list attends, and the block returns [B, 1, D].
// Adds the layer's phase contrastive terms to *contrastive when given (EulerFormer).
template <class Bk>
typename Bk::Var attend(Bk& b, const typename Bk::Layer& a, typename Bk::Var x /*[B, N, D]*/, typename Bk::Ids ids,
                        typename Bk::Mask mask, typename Bk::Var* contrastive, typename Bk::Rows rows) {
  using Var = typename Bk::Var;
  const ForwardSettings& s = b.settings();
  const int64_t B = x.size(0), N = x.size(1), D = s.hidden;
  Var q = b.linear(a.query, x, D), k = b.linear(a.key, x, D), v = b.linear(a.value, x, D);  // [B, N, D]
  Var query_phase, key_phase;  // EulerFormer: theta~ of q and k, [B, N, D/2]
  if (s.rope || s.euler_rotation) {
    q = rotate(b, a, q, true, N, &query_phase);
    k = rotate(b, a, k, false, N, &key_phase);
  }
  if (s.euler_rotation) {
    b.trace_phases(q, k);
    if (contrastive && a.w >= 0) {
      Var w = b.param_w(a.w);
      // Two statements: the query term draws its view from the Rng before the key term.
      Var query_term = b.phase_contrastive(query_phase, w, ids);
      Var key_term = b.phase_contrastive(key_phase, w, ids);
      *contrastive = add(add(*contrastive, query_term), key_term);
    }
  }
  if (rows.data) {  // one query per list: its row of q, of x and of the mask
    q = reshape(gather_rows(q, rows), Shape{B, 1, D});
    x = reshape(gather_rows(x, rows), Shape{B, 1, D});
    mask = b.mask_rows(mask, rows);
  }
  Var qh = split_heads(q, s.heads), kh = split_heads(k, s.heads), vh = split_heads(v, s.heads);
  Var logits = b.scaled_scores(qh, kh, 1 / std::sqrt(double(D / s.heads)));  // [B, H, Nq, N]
  Var attention = softmax(logits, mask);
  b.trace_attention(logits, attention);
  attention = b.dropout(attention, s.attn_dropout);
  Var context = merge_heads(matmul(attention, vh));  // [B, Nq, D]
  Var out = b.dropout(b.linear(a.dense, context, D), s.hidden_dropout);
  return b.norm(a.attention_norm, add(out, x));
}

// The post-LN feed-forward block: LN(x + dropout(dense_2(act(dense_1(x))))).
template <class Bk>
typename Bk::Var feed_forward(Bk& b, const typename Bk::Layer& a, typename Bk::Var x) {
  using Var = typename Bk::Var;
  const ForwardSettings& s = b.settings();
  Var hidden = b.activation(b.linear(a.dense_1, x, s.inner));  // [..., I]
  hidden = b.dropout(b.linear(a.dense_2, hidden, s.hidden), s.hidden_dropout);
  return b.norm(a.feed_forward_norm, add(hidden, x));
}

// The transformer: ids [B, N] -> hidden states [B, N, D]. With `rows` ([B]) the last layer works on
// that one row per list and returns [B, 1, D]. Adds the layers' contrastive terms to *contrastive when
// given.
template <class Bk>
typename Bk::Var encode(Bk& b, typename Bk::Ids ids, typename Bk::Var* contrastive, typename Bk::Rows rows) {
  using Var = typename Bk::Var;
  const ForwardSettings& s = b.settings();
  const int64_t N = ids.shape[1];
  // Input: item embedding (+ positions), the input rotary table, LayerNorm, dropout.
  Var x = b.item_embedding(ids);  // [B, N, D]
  if (s.position_table) x = add(x, b.position_rows(N));
  if (s.sinusoid) x = add(x, b.sinusoid_rows(N));
  if (s.rotary_table) x = rotate_by_phase(x, b.rotary_rows(N));
  x = b.dropout(b.input_norm(x), s.hidden_dropout);

  typename Bk::Mask mask{};  // [B, 1, N, N], made when a composed layer first needs it
  for (int l = 0; l < s.layers; ++l) {
    typename Bk::Rows layer_rows = l + 1 == s.layers ? rows : typename Bk::Rows{};
    if (b.fused_layer(l, x, ids, contrastive, layer_rows)) continue;  // the CPU's one-node layer (fused_layer.hpp)
    if (!mask.data) mask = b.attention_mask(ids);
    x = attend(b, b.layer(l), x, ids, mask, contrastive, layer_rows);
    x = feed_forward(b, b.layer(l), x);
  }
  return x;
}

}  // namespace forward
}  // namespace euler
