// euler/model/contrastive.hpp: the phase contrastive loss of EulerFormer (spec section 5 and 10).
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
//                                    softmax rows [B, N, N]; cos and sin are recomputed (vectorised).
//
//     Var<float> l = euler::phase_contrastive_loss(ctx, phases, w, ids, 1.0, 1e-5, ContrastiveMode::authors);
#pragma once

#include "euler/model/config.hpp"
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
      for (int64_t s = 0; s < N; ++s) key_mask[(b * N + t) * N + s] = ids[b * N + s] != 0 ? T(0) : T(-10000);
    }
  Var<T> per_position = log_sum_exp_plus(scaled + tape.constant(key_mask, "key_mask"), T(1e-5)) - positive;
  return sum(per_position * tape.constant(valid, "valid")) * T(lamb / double(std::max<int64_t>(1, count)));
}

// What both passes of the fused loss read, by value (the backward closure keeps a copy).
template <class T>
struct PhaseContrastivePlan {
  using Array = Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Row = Eigen::Array<T, 1, Eigen::Dynamic>;
  const T* phases;        // P [B, N, h]
  const T* w;             // [h]
  const int32_t* ids;     // [B, N]
  int64_t N, h;
  bool masked;            // ContrastiveMode::masked
  bool two_views;         // V = dropout(P, 0.5) (training), else V = P
  DropoutMask view_mask;

  // Per list b: cos and sin of P and of V [N, h], and the product operands a = [w cos P, w sin P],
  // c = [cos V, sin V] [N, 2h]. (The backward recomputes them: cheaper than keeping them.)
  struct Features {
    Array cos_p, sin_p, cos_v, sin_v;
    Matrix a, c;
  };
  void features(int64_t b, Features& f) const {
    Eigen::Map<const Array> p(phases + b * N * h, N, h);
    Eigen::Map<const Row> wr(w, h);
    Array v = p;
    if (two_views)
      for (int64_t t = 0; t < N; ++t)
        for (int64_t i = 0; i < h; ++i) v(t, i) = view_mask.keep((b * N + t) * h + i) ? T(2) * p(t, i) : T(0);
    f.cos_p = p.cos();
    f.sin_p = p.sin();
    f.cos_v = v.cos();
    f.sin_v = v.sin();
    f.a.resize(N, 2 * h);
    f.c.resize(N, 2 * h);
    f.a.leftCols(h) = (f.cos_p.rowwise() * wr).matrix();
    f.a.rightCols(h) = (f.sin_p.rowwise() * wr).matrix();
    f.c.leftCols(h) = f.cos_v.matrix();
    f.c.rightCols(h) = f.sin_v.matrix();
  }
  // Does query t of list b count in the mean (every query does in the authors' mode)?
  bool counts(int64_t b, int64_t t) const { return !masked || ids[b * N + t] != 0; }
};

// The phase contrastive loss of one set of phases as one fused node; returns [] (lamb * cl).
// Same values and gradients as phase_contrastive_loss_composed, and the same draws from ctx.rng.
template <class T>
Var<T> phase_contrastive_loss(const Context<T>& ctx, Var<T> phases /*[B, N, h]*/, Var<T> w /*[h]*/,
                              TensorView<const int32_t> ids /*[B, N]*/, double tep, double lamb, ContrastiveMode mode) {
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Array = Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Row = Eigen::Array<T, 1, Eigen::Dynamic>;
  Tape<T>& tape = ctx.tape;
  const char* op = "phase_contrastive_loss";
  require(phases.shape().rank == 3, op, "phases must be [B, N, h], got " + phases.shape().str());
  const int64_t B = phases.size(0), N = phases.size(1), h = phases.size(2);
  require(w.shape() == Shape{h}, op, "w must be [" + std::to_string(h) + "], got " + w.shape().str());
  require(ids.shape == (Shape{B, N}), op, "ids must be [B, N] = " + Shape{B, N}.str() + ", got " + ids.shape.str());
  const bool masked = mode == ContrastiveMode::masked;
  // The view V: dropout(P, 0.5) while training (kept angles doubled), P itself otherwise.
  const bool two_views = ctx.dropout_on;
  const DropoutMask view_mask = two_views ? DropoutMask(ctx.rng.stream(), ctx.rng.reserve(uint64_t(B * N * h)), 0.5)
                                          : DropoutMask(RandomStream(), 0, 0.0);
  const int32_t* kept_ids = tape.keep(ids).data;
  int64_t count = B * N;
  if (masked) {
    count = 0;
    for (int64_t i = 0; i < B * N; ++i) count += ids[i] != 0;
  }
  const T inv_tep = T(1 / tep), scale = T(lamb / double(std::max<int64_t>(1, count)));
  const T* pv = phases.value().data;
  const T* wv = w.value().data;

  const PhaseContrastivePlan<T> plan{pv, wv, kept_ids, N, h, masked, two_views, view_mask};
  TensorView<T> probs = tape.alloc(Shape{B, N, N});  // softmax rows exp(Z - lse) = d lse / dZ, for the backward
  TensorView<T> per_list = tape.alloc(Shape{B});
  parallel_for(B, 1, [&](int64_t b0, int64_t b1) {
    typename PhaseContrastivePlan<T>::Features f;
    for (int64_t b = b0; b < b1; ++b) {
      plan.features(b, f);
      Eigen::Map<Matrix> z(probs.data + b * N * N, N, N);
      z.noalias() = f.a * f.c.transpose();
      z *= inv_tep;  // Z = S / tep
      if (masked)
        for (int64_t s = 0; s < N; ++s)
          if (kept_ids[b * N + s] == 0) z.col(s).array() += T(-10000);
      // S[t, t] = sum_i w_i cos(P - V) = sum_i w_i (cos P cos V + sin P sin V)
      Eigen::Map<const Row> wr(wv, h);
      Array positive = ((f.cos_p * f.cos_v + f.sin_p * f.sin_v).rowwise() * wr).rowwise().sum() * inv_tep;
      T total = 0;
      for (int64_t t = 0; t < N; ++t) {
        T m = z.row(t).maxCoeff();
        T lse = m + std::log((z.row(t).array() - m).exp().sum() + T(1e-5) * std::exp(-m));
        z.row(t) = (z.row(t).array() - lse).exp().matrix();
        if (plan.counts(b, t)) total += lse - positive(t);
      }
      per_list[b] = total;
    }
  });
  TensorView<T> loss = tape.alloc(Shape{});
  T total = 0;
  for (int64_t b = 0; b < B; ++b) total += per_list[b];  // a fixed order
  loss[0] = total * scale;

  const T* probs_kept = probs.data;
  return tape.record(op, loss, {phases, w}, [phases, w, plan, B, N, h, inv_tep, scale, probs_kept](auto, TensorView<const T> dy) {
    // With u_t = dy lamb / count (0 for a query the mean leaves out), D = P - V and a, c as above:
    //   from lse_t:        dZ[t, :] = u_t probs[t, :],  dS = dZ / tep,  da = dS c,  dc = dS^T a
    //   from -S[t, t]/tep: dD = u_t w sin D / tep,  dw -= u_t cos D / tep
    //   through a:         dP += w (-sin P da_cos + cos P da_sin),  dw += cos P da_cos + sin P da_sin
    //   through c:         dV += -sin V dc_cos + cos V dc_sin
    //   D = P - V:         dP += dD,  dV -= dD;   and V = 2 P where kept (P itself without dropout)
    T* dp = phases.requires_grad() ? phases.grad_accumulator().data : nullptr;
    T* dw = w.requires_grad() ? w.grad_accumulator().data : nullptr;
    TensorView<T> dw_lists = phases.tape->alloc(Shape{B, h});  // per list, summed in a fixed order after
    const T u_all = dy[0] * scale;
    const T* wv = plan.w;
    parallel_for(B, 1, [&](int64_t b0, int64_t b1) {
      typename PhaseContrastivePlan<T>::Features f;
      Matrix ds, da, dc;
      Array u(N, 1);
      for (int64_t b = b0; b < b1; ++b) {
        plan.features(b, f);
        for (int64_t t = 0; t < N; ++t) u(t, 0) = plan.counts(b, t) ? u_all : T(0);
        ds = Eigen::Map<const Matrix>(probs_kept + b * N * N, N, N);
        ds.array().colwise() *= u.col(0) * inv_tep;
        da.noalias() = ds * f.c;
        dc.noalias() = ds.transpose() * f.a;
        Eigen::Map<const Row> wr(wv, h);
        Array sin_d = f.sin_p * f.cos_v - f.cos_p * f.sin_v, cos_d = f.cos_p * f.cos_v + f.sin_p * f.sin_v;
        Array dd = (sin_d.rowwise() * wr).colwise() * (u.col(0) * inv_tep);
        Array da_cos = da.leftCols(h).array(), da_sin = da.rightCols(h).array();
        Array dpb = (f.cos_p * da_sin - f.sin_p * da_cos).rowwise() * wr + dd;
        Array dv = f.cos_v * dc.rightCols(h).array() - f.sin_v * dc.leftCols(h).array() - dd;
        if (dp) {
          T* dpl = dp + b * N * h;
          for (int64_t t = 0; t < N; ++t)
            for (int64_t i = 0; i < h; ++i) {
              T through_view = plan.two_views ? (plan.view_mask.keep((b * N + t) * h + i) ? T(2) * dv(t, i) : T(0)) : dv(t, i);
              dpl[t * h + i] += dpb(t, i) + through_view;
            }
        }
        if (dw)
          Eigen::Map<Row>(dw_lists.data + b * h, h) =
              (f.cos_p * da_cos + f.sin_p * da_sin).colwise().sum() - (cos_d.colwise() * (u.col(0) * inv_tep)).colwise().sum();
      }
    });
    if (dw)
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < h; ++i) dw[i] += dw_lists[b * h + i];
  });
}

}  // namespace euler
