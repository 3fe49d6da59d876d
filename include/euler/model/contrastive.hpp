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
//                                    softmax rows [B, N, N]; cos and sin are recomputed (vectorised, and
//                                    the view's from P's by the double-angle formulas).
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
  Matrix a, c;         // [N, 2h]

  // List b of phases [B, N, h]; view_mask is read at (b N + t) h + i when two_views.
  void fill(const T* phases, const T* w, int64_t b, int64_t N, int64_t h, bool two_views, const DropoutMask& view_mask) {
    Eigen::Map<const Array> p(phases + b * N * h, N, h);
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
    const int64_t first = b * N * h;
    for (int64_t t = 0; t < N; ++t) {
      const T* cp = cos_p.data() + t * h;
      const T* sp = sin_p.data() + t * h;
      T* cv = c.data() + t * 2 * h;
      T* sv = cv + h;
      for (int64_t i = 0; i < h; ++i) {
        const bool keep = view_mask.keep(first + t * h + i);
        cv[i] = keep ? cp[i] * cp[i] - sp[i] * sp[i] : T(1);  // cos 2P, or cos 0
        sv[i] = keep ? T(2) * sp[i] * cp[i] : T(0);          // sin 2P, or sin 0
      }
    }
  }
};

// The phase contrastive loss of one set of phases as one fused node; returns [] (lamb * cl).
// Same values and gradients as phase_contrastive_loss_composed, and the same draws from ctx.rng.
//
// Per list: Z = S / tep = a c^T / tep (one [N, 2h] x [2h, N] product), with -10000 on padding keys in the
// masked mode; the positive S[t, t] / tep is Z's diagonal; loss_t = lse_t(Z) - Z[t, t] with
// lse_t = log(sum_s exp Z[t, s] + 1e-5). The node keeps the softmax rows exp(Z - lse) [B, N, N] for
// the backward, which recomputes a and c.
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
  // Does query t of list b count in the mean (every query does in the authors' mode)?
  auto counts = [kept_ids, masked, N](int64_t b, int64_t t) { return !masked || kept_ids[b * N + t] != 0; };

  TensorView<T> probs = tape.alloc(Shape{B, N, N});  // softmax rows exp(Z - lse) = d lse / dZ, for the backward
  TensorView<T> per_list = tape.alloc(Shape{B});
  parallel_for(B, 1, [&](int64_t b0, int64_t b1) {
    ContrastiveOperands<T> f;
    for (int64_t b = b0; b < b1; ++b) {
      f.fill(pv, wv, b, N, h, two_views, view_mask);
      Eigen::Map<Matrix> z(probs.data + b * N * N, N, N);
      z.noalias() = (f.a * f.c.transpose()) * inv_tep;  // Z = S / tep
      if (masked)
        for (int64_t s = 0; s < N; ++s)
          if (kept_ids[b * N + s] == 0) z.col(s).array() += T(-10000);
      T total = 0;
      for (int64_t t = 0; t < N; ++t) {
        const T positive = z(t, t);  // a key of a counted query is never masked
        const T m = z.row(t).maxCoeff();
        const T lse = m + std::log((z.row(t).array() - m).exp().sum() + T(1e-5) * std::exp(-m));
        z.row(t) = (z.row(t).array() - lse).exp().matrix();
        if (counts(b, t)) total += lse - positive;
      }
      per_list[b] = total;
    }
  });
  TensorView<T> loss = tape.alloc(Shape{});
  T total = 0;
  for (int64_t b = 0; b < B; ++b) total += per_list[b];  // a fixed order
  loss[0] = total * scale;

  const T* probs_kept = probs.data;
  return tape.record(op, loss, {phases, w}, [=](auto, TensorView<const T> dy) {
    // loss = scale sum_(b,t counted) [lse_t(Z) - Z[t, t]],  Z = a c^T / tep.  With u_t = dy scale (0 when
    // query t does not count):
    //   dZ = u (probs - I)  (row t scaled by u_t),   dS = dZ / tep,   da = dS c,   dc = dS^T a
    //   a = [w cos P, w sin P]:  dP += w (cos P da_sin - sin P da_cos),   dw += sum_t (cos P da_cos + sin P da_sin)
    //   c = [cos V, sin V]:      dV = cos V dc_sin - sin V dc_cos,   and V = 2 P where kept (0 where dropped;
    //                            V = P without the view):  dP += 2 dV where kept (dV without the view)
    T* dp = phases.requires_grad() ? phases.grad_accumulator().data : nullptr;
    T* dw = w.requires_grad() ? w.grad_accumulator().data : nullptr;
    TensorView<T> dw_lists = phases.tape->alloc(Shape{B, h});  // per list, summed in a fixed order after
    const T u_all = dy[0] * scale;
    parallel_for(B, 1, [&](int64_t b0, int64_t b1) {
      ContrastiveOperands<T> f;
      Matrix ds, da, dc;
      for (int64_t b = b0; b < b1; ++b) {
        f.fill(pv, wv, b, N, h, two_views, view_mask);
        ds = Eigen::Map<const Matrix>(probs_kept + b * N * N, N, N);
        for (int64_t t = 0; t < N; ++t) {
          const T u = counts(b, t) ? u_all * inv_tep : T(0);
          ds(t, t) -= T(1);
          ds.row(t) *= u;
        }
        da.noalias() = ds * f.c;
        dc.noalias() = ds.transpose() * f.a;
        Eigen::Map<const Row> wr(wv, h);
        auto da_cos = da.leftCols(h).array(), da_sin = da.rightCols(h).array();
        if (dw) Eigen::Map<Row>(dw_lists.data + b * h, h) = (f.cos_p * da_cos + f.sin_p * da_sin).colwise().sum();
        if (!dp) continue;
        Eigen::Map<Array> dpl(dp + b * N * h, N, h);
        dpl += (f.cos_p * da_sin - f.sin_p * da_cos).rowwise() * wr;
        const T* cv = f.c.data();
        const T* dcv = dc.data();
        T* dpr = dp + b * N * h;
        for (int64_t t = 0; t < N; ++t)
          for (int64_t i = 0; i < h; ++i) {
            const T cos_v = cv[t * 2 * h + i], sin_v = cv[t * 2 * h + h + i];
            const T dv = cos_v * dcv[t * 2 * h + h + i] - sin_v * dcv[t * 2 * h + i];
            if (!two_views) dpr[t * h + i] += dv;
            else if (view_mask.keep((b * N + t) * h + i)) dpr[t * h + i] += T(2) * dv;
          }
      }
    });
    if (dw)
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < h; ++i) dw[i] += dw_lists[b * h + i];
  });
}

}  // namespace euler
