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
//     Var<float> l = euler::phase_contrastive_loss(ctx, phases, w, ids, 1.0, 1e-5, ContrastiveMode::authors);
#pragma once

#include "euler/model/config.hpp"
#include "euler/nn/layers.hpp"

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
template <class T>
Var<T> phase_contrastive_loss(const Context<T>& ctx, Var<T> phases /*[B, N, D/2]*/, Var<T> w /*[D/2]*/,
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

}  // namespace euler
