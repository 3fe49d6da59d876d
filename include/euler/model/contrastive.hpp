// euler/model/contrastive.hpp: the phase contrastive loss of EulerFormer (docs/model.md section 5).
//
// For the phases P [B, N, D/2] of the rotated queries (or keys) of one layer, and a second view V of
// them (dropout p = 0.5 on P while training, V = P otherwise), the similarity of positions t and s is
//     S[t, s] = sum_i w_i cos(P[t, i] - V[s, i])
//             = ((w * cos P) cos V^T + (w * sin P) sin V^T)[t, s]      (two batched matmuls)
// and the loss is InfoNCE with the same position as the positive, in the authors' form:
//     cl(P) = lamb * mean over (b, t) of [ log(sum_s exp(S[t, s] / tep) + 1e-5) - S[t, t] / tep ].
// ContrastiveMode::authors keeps padding positions among the negatives and in the mean (as their code
// does, and our default); ContrastiveMode::masked drops padding keys from the sum and padding queries
// from the mean.
//
// Two implementations with the same values and gradients (tests compare them):
//   phase_contrastive_loss_composed  the formula above written with tape ops (cos, sin, dropout, two
//                                    batched matmuls, log_sum_exp_plus): the readable definition;
//   phase_contrastive_loss           one fused node: per list, [w cos P, w sin P] [cos V, sin V]^T as
//                                    one product, and a backward written out below. It keeps only the
//                                    softmax rows [B, N, N]; cos and sin are recomputed (vectorised, and
//                                    the view's from P's by the double-angle formulas).
//
//     Var<float> l = euler::phase_contrastive_loss(ctx, phases, w, ids, 1.0, 1e-5, ContrastiveMode::authors);
#pragma once

#include "euler/model/config.hpp"
#include "euler/model/forward.hpp"
#include "euler/nn/layers.hpp"
#include "euler/ops/nn.hpp"

namespace euler {

// y[...] = log(sum_s exp(x[..., s]) + c) over the last axis, computed stably (shifted by the row max).
// Backward: dx[..., s] = dy[...] * exp(x[..., s]) / (sum_s' exp(x[..., s']) + c).
template <class T>
Var<T> log_sum_exp_plus(Var<T> x /*[..., S]*/, T c) {
  const Shape& shape = x.shape();
  require(shape.rank >= 1, "log_sum_exp_plus", "needs rank >= 1, got " + shape.str());
  int64_t S = shape.last(), rows = shape.numel() / std::max<int64_t>(1, S);
  TensorView<T> y = x.tape->alloc(shape.without(shape.rank - 1));
  TensorView<const T> xv = x.value();
  parallel_for(rows, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, S)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      auto row = arr(xv, r * S, (r + 1) * S);
      T m = S > 0 ? row.maxCoeff() : T(0);
      y[r] = m + std::log((row - m).exp().sum() + c * std::exp(-m));
    }
  });
  return x.tape->record("log_sum_exp_plus", y, {x}, [x, S, rows](TensorView<const T> yv, TensorView<const T> dy) {
    // y = log(sum exp(x) + c)  =>  dx = dy * exp(x - y)
    TensorView<T> dx = x.grad_accumulator();
    TensorView<const T> xv = x.value();
    parallel_for(rows, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, S)), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) arr(dx, r * S, (r + 1) * S) += dy[r] * (arr(xv, r * S, (r + 1) * S) - yv[r]).exp();
    });
  });
}

// The phase contrastive loss of one set of phases (see the top of this file); returns [] (lamb * cl).
// Composed from tape ops: the reference for the fused phase_contrastive_loss below.
template <class T>
Var<T> phase_contrastive_loss_composed(const Context<T>& ctx, Var<T> phases /*[B, N, D/2]*/, Var<T> w /*[D/2]*/,
                              TensorView<const int32_t> ids /*[B, N]*/, double tep, double lamb, ContrastiveMode mode) {
  Tape<T>& tape = ctx.tape;
  int64_t B = phases.size(0), N = phases.size(1);
  Var<T> view = ctx.dropout(phases, 0.5);  // V: half the angles zeroed, the rest doubled
  Var<T> cos_p = cos(phases), sin_p = sin(phases);
  Var<T> cos_v = view.id == phases.id ? cos_p : cos(view);
  Var<T> sin_v = view.id == phases.id ? sin_p : sin(view);
  Var<T> similarity = matmul(cos_p * w, cos_v, false, true) + matmul(sin_p * w, sin_v, false, true);  // [B, N, N]
  Var<T> scaled = similarity * T(1 / tep);
  Var<T> positive = sum(cos(phases - view) * w, -1) * T(1 / tep);  // S[t, t] / tep, [B, N]
  if (mode == ContrastiveMode::authors) {
    return mean(log_sum_exp_plus(scaled, T(1e-5)) - positive) * T(lamb);
  }
  // Masked: padding keys leave the sum, padding queries leave the mean.
  TensorView<T> key_mask = tape.alloc(Shape{B, N, N});
  TensorView<T> valid = tape.alloc(Shape{B, N});
  int64_t count = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < N; ++t) {
      bool real = ids[b * N + t] != 0;
      valid[b * N + t] = real ? T(1) : T(0);
      count += real;
      for (int64_t s = 0; s < N; ++s)
        key_mask[(b * N + t) * N + s] = key_visible(ids.data + b * N, s, t, /*causal=*/false) ? T(0) : T(kHiddenKeyLogit);
    }
  Var<T> per_position = log_sum_exp_plus(scaled + tape.constant(key_mask, "key_mask"), T(1e-5)) - positive;
  return sum(per_position * tape.constant(valid, "valid")) * T(lamb / double(std::max<int64_t>(1, count)));
}

// The operands of one list's similarity product, S = a c^T (see phase_contrastive_loss): filled per
// list into buffers a thread keeps for all its lists.
//   a = [w cos P, w sin P]  [N, 2h]       c = [cos V, sin V]  [N, 2h]
// The view V is 2 P where the dropout keeps an angle and 0 where it drops it, so its cosine and sine come
// from those of P by the double-angle formulas (cos 2P = cos^2 P - sin^2 P, sin 2P = 2 sin P cos P): one
// cos and one sin per angle for both views.
template <class T>
struct ContrastiveOperands {
  using Array = Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Array cos_p, sin_p;  // [N, h]
  Array kept;          // [N, h]: 1 where the view keeps the angle, 0 where it drops it (two views only)
  Matrix a, c;         // [N, 2h]

  // One list's phases [N, h]; view_mask is read at first + t h + i when two_views (first = b N h for
  // list b of a batch).
  void fill(const T* phases, const T* w, int64_t first, int64_t N, int64_t h, bool two_views, const DropoutMask& view_mask) {
    Eigen::Map<const Array> p(phases, N, h);
    Eigen::Map<const Eigen::Array<T, 1, Eigen::Dynamic>> wr(w, h);
    cos_p = p.cos();
    sin_p = p.sin();
    a.resize(N, 2 * h);
    c.resize(N, 2 * h);
    a.leftCols(h) = (cos_p.rowwise() * wr).matrix();
    a.rightCols(h) = (sin_p.rowwise() * wr).matrix();
    if (!two_views) {
      c.leftCols(h) = cos_p.matrix();
      c.rightCols(h) = sin_p.matrix();
      return;
    }
    kept.resize(N, h);
    T* k = kept.data();
    for (int64_t j = 0; j < N * h; ++j) k[j] = view_mask.keep(first + j) ? T(1) : T(0);  // vectorises
    c.leftCols(h) = (kept * (cos_p.square() - sin_p.square()) + (T(1) - kept)).matrix();  // cos 2P, or cos 0
    c.rightCols(h) = (kept * T(2) * sin_p * cos_p).matrix();                               // sin 2P, or sin 0
  }
};

// One list of the fused loss, forward: Z = a c^T / tep ([N, 2h] x [2h, N]), -10000 on padding keys in
// the masked mode; the positive S[t, t] / tep is Z's diagonal; per query t, loss_t = lse_t(Z) - Z[t, t]
// with lse_t = log(sum_s exp Z[t, s] + 1e-5). Fills f for the list (phases [N, h], ids [N], view mask
// from index first), leaves the softmax rows exp(Z - lse) in probs [N, N] (for the backward) and returns
// the sum of loss_t over the queries that count (all in the authors' mode, the non-padding ones in the
// masked mode).
template <class T>
T contrastive_list_forward(ContrastiveOperands<T>& f, const T* phases /*[N, h]*/, const T* w /*[h]*/, int64_t first,
                           int64_t N, int64_t h, bool two_views, const DropoutMask& view_mask, const int32_t* ids /*[N]*/,
                           bool masked, T inv_tep, T* probs /*[N, N]*/) {
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  f.fill(phases, w, first, N, h, two_views, view_mask);
  Eigen::Map<Matrix> z(probs, N, N);
  z.noalias() = (f.a * f.c.transpose()) * inv_tep;  // Z = S / tep
  if (masked)
    for (int64_t s = 0; s < N; ++s)
      if (!key_visible(ids, s, 0, /*causal=*/false)) z.col(s).array() += T(kHiddenKeyLogit);
  T total = 0;
  for (int64_t t = 0; t < N; ++t) {
    const T positive = z(t, t);  // a key of a counted query is never masked
    const T m = z.row(t).maxCoeff();
    const T lse = m + std::log((z.row(t).array() - m).exp().sum() + T(1e-5) * std::exp(-m));
    z.row(t) = (z.row(t).array() - lse).exp().matrix();
    if (!masked || ids[t] != 0) total += lse - positive;
  }
  return total;
}

// Scratch of contrastive_list_backward, kept by a thread across its lists.
template <class T>
struct ContrastiveGradScratch {
  Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> ds, da, dc;
};

// One list of the fused loss, backward, with f filled for the list (by the forward or again) and its
// softmax rows probs [N, N]. u is d(loss)/d(loss_t) for a query that counts (0 for one that does not).
// Adds to dp [N, h] (the list's rows of dP) and dw [h]:
//   dZ = u (probs - I),   dS = dZ / tep,   da = dS c,   dc = dS^T a
//   a = [w cos P, w sin P]:  dP += w (cos P da_sin - sin P da_cos),   dw += sum_t (cos P da_cos + sin P da_sin)
//   c = [cos V, sin V]:      dV = cos V dc_sin - sin V dc_cos, and V = 2 P where kept (0 where dropped;
//                            V = P without the view):  dP += 2 dV where kept (dV without the view)
template <class T>
void contrastive_list_backward(const ContrastiveOperands<T>& f, ContrastiveGradScratch<T>& g, const T* probs /*[N, N]*/,
                               const T* w /*[h]*/, int64_t N, int64_t h, bool two_views, const int32_t* ids /*[N]*/,
                               bool masked, T u, T inv_tep, T* dp /*[N, h] or null*/, T* dw /*[h] or null*/) {
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Array = Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Row = Eigen::Array<T, 1, Eigen::Dynamic>;
  g.ds = Eigen::Map<const Matrix>(probs, N, N);
  for (int64_t t = 0; t < N; ++t) {
    const T scale = !masked || ids[t] != 0 ? u * inv_tep : T(0);
    g.ds(t, t) -= T(1);
    g.ds.row(t) *= scale;
  }
  g.da.noalias() = g.ds * f.c;
  g.dc.noalias() = g.ds.transpose() * f.a;
  auto da_cos = g.da.leftCols(h).array(), da_sin = g.da.rightCols(h).array();
  if (dw) Eigen::Map<Row>(dw, h) += (f.cos_p * da_cos + f.sin_p * da_sin).colwise().sum();
  if (!dp) return;
  Eigen::Map<Array> dpl(dp, N, h);
  dpl += (f.cos_p * da_sin - f.sin_p * da_cos).rowwise() * Eigen::Map<const Row>(w, h);
  auto dv = f.c.leftCols(h).array() * g.dc.rightCols(h).array() - f.c.rightCols(h).array() * g.dc.leftCols(h).array();
  if (two_views) dpl += T(2) * f.kept * dv;
  else dpl += dv;
}

// The number of queries the mean of the loss runs over: every position (authors), or the non-padding ones.
inline int64_t contrastive_count(const int32_t* ids, int64_t B, int64_t N, ContrastiveMode mode) {
  if (mode == ContrastiveMode::authors) return B * N;
  int64_t count = 0;
  for (int64_t i = 0; i < B * N; ++i) count += ids[i] != 0;
  return count;
}

// The phase contrastive loss of one set of phases as one fused node; returns [] (lamb * cl).
// Same values and gradients as phase_contrastive_loss_composed, and the same draws from ctx.rng. The
// node keeps the softmax rows [B, N, N] for the backward, which recomputes a and c.
template <class T>
Var<T> phase_contrastive_loss(const Context<T>& ctx, Var<T> phases /*[B, N, h]*/, Var<T> w /*[h]*/,
                              TensorView<const int32_t> ids /*[B, N]*/, double tep, double lamb, ContrastiveMode mode) {
  Tape<T>& tape = ctx.tape;
  const char* op = "phase_contrastive_loss";
  require(phases.shape().rank == 3, op, "phases must be [B, N, h], got " + phases.shape().str());
  const int64_t B = phases.size(0), N = phases.size(1), h = phases.size(2);
  require(w.shape() == Shape{h}, op, "w must be [" + std::to_string(h) + "], got " + w.shape().str());
  require(ids.shape == (Shape{B, N}), op, "ids must be [B, N] = " + Shape{B, N}.str() + ", got " + ids.shape.str());
  const bool masked = mode == ContrastiveMode::masked;
  // The view V: dropout(P, 0.5) while training (kept angles doubled), P itself otherwise.
  const bool two_views = ctx.dropout_on;
  const DropoutMask view_mask = two_views ? draw_dropout_mask(ctx.rng, uint64_t(B * N * h), 0.5)
                                          : DropoutMask(RandomStream(), 0, 0.0);
  const int32_t* kept_ids = tape.keep(ids).data;
  const int64_t count = contrastive_count(kept_ids, B, N, mode);
  const T inv_tep = T(1 / tep), scale = T(lamb / double(std::max<int64_t>(1, count)));
  const T* pv = phases.value().data;
  const T* wv = w.value().data;

  TensorView<T> probs = tape.alloc(Shape{B, N, N});  // softmax rows exp(Z - lse) = d lse / dZ, for the backward
  TensorView<T> per_list = tape.alloc(Shape{B});
  parallel_for(B, 1, [&](int64_t b0, int64_t b1) {
    ContrastiveOperands<T> f;
    for (int64_t b = b0; b < b1; ++b)
      per_list[b] = contrastive_list_forward(f, pv + b * N * h, wv, b * N * h, N, h, two_views, view_mask, kept_ids + b * N,
                                             masked, inv_tep, probs.data + b * N * N);
  });
  TensorView<T> loss = tape.alloc(Shape{});
  T total = 0;
  for (int64_t b = 0; b < B; ++b) total += per_list[b];  // a fixed order
  loss[0] = total * scale;

  const T* probs_kept = probs.data;
  return tape.record(op, loss, {phases, w}, [=](auto, TensorView<const T> dy) {
    // loss = scale sum_(b, t counted) loss_t  (contrastive_list_backward per list)
    T* dp = phases.requires_grad() ? phases.grad_accumulator().data : nullptr;
    T* dw = w.requires_grad() ? w.grad_accumulator().data : nullptr;
    TensorView<T> dw_lists = phases.tape->zeros(Shape{B, h});  // per list, summed in a fixed order after
    const T u = dy[0] * scale;
    parallel_for(B, 1, [&](int64_t b0, int64_t b1) {
      ContrastiveOperands<T> f;
      ContrastiveGradScratch<T> g;
      for (int64_t b = b0; b < b1; ++b) {
        f.fill(pv + b * N * h, wv, b * N * h, N, h, two_views, view_mask);
        contrastive_list_backward(f, g, probs_kept + b * N * N, wv, N, h, two_views, kept_ids + b * N, masked, u, inv_tep,
                                  dp ? dp + b * N * h : nullptr, dw ? dw_lists.data + b * h : nullptr);
      }
    });
    if (dw)
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < h; ++i) dw[i] += dw_lists[b * h + i];
  });
}

}  // namespace euler
