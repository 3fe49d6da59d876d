// euler/ops/nn.hpp: the fused neural-network ops: softmax, log_softmax, layer_norm, dropout, cross_entropy.
//
// Each op is one tape node with a hand-written backward, fused over rows: the forward makes one pass
// over each row (in parallel over rows), the backward another, and only small per-row statistics are
// kept for it (row mean and 1/std for layer_norm, row log-sum-exp for cross_entropy). Results depend on
// nothing but the inputs (and the Rng state for dropout): every reduction has a fixed order.
//
// Letters: B batch, H heads, N list length, S softmax length (keys), D hidden, K classes (items),
// M rows of a classification (B, or B * N).
//
//     auto p = euler::softmax(scores, mask);              // scores [B, H, N, N], mask [B, 1, N, N] or [N, N]
//     auto h = euler::layer_norm(x, gamma, beta, 1e-5f);  // x [B, N, D], gamma and beta [D]
//     auto r = euler::dropout(h, 0.1f, rng);              // rng: euler::Rng, advanced by h.numel()
//     auto loss = euler::cross_entropy(logits, targets);  // logits [M, K], targets [M] int32 -> []
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "euler/core/host_device.hpp"
#include "euler/core/random.hpp"
#include "euler/ops/elementwise.hpp"

namespace euler {

// ---- row helpers --------------------------------------------------------------------------------

// Rows of `row_length` elements worth giving one thread.
inline int64_t row_grain(int64_t row_length) { return std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, row_length)); }

// Where each row of x [..., S] finds its additive mask: the mask broadcasts NumPy-style against x
// (aligned from the right, each mask dim equal to x's or 1, missing leading dims broadcast).
template <class T>
struct RowMask {
  const T* data = nullptr;                     // null: no mask
  int lead_rank = 0;                           // x's dims before the last
  std::array<int64_t, kMaxRank> lead_dims{};   // those dims
  std::array<int64_t, kMaxRank> lead_strides{};  // mask stride along each, 0 where it broadcasts
  int64_t last_stride = 0;                     // 1: a mask value per key; 0: one value for the row

  const T* row(int64_t r) const {
    int64_t offset = 0;
    for (int axis = lead_rank - 1; axis >= 0; --axis) {
      offset += (r % lead_dims[size_t(axis)]) * lead_strides[size_t(axis)];
      r /= lead_dims[size_t(axis)];
    }
    return data + offset;
  }
};

template <class T>
RowMask<T> plan_row_mask(const char* op, const Shape& x, TensorView<const T> mask) {
  RowMask<T> plan;
  plan.lead_rank = x.rank - 1;
  for (int axis = 0; axis < plan.lead_rank; ++axis) plan.lead_dims[size_t(axis)] = x[axis];
  if (mask.data == nullptr) return plan;
  const Shape& m = mask.shape;
  auto fail = [&] {
    throw ShapeError(std::string(op) + ": mask shape " + m.str() + " does not broadcast against input shape " + x.str() +
                     " (aligned from the right, each mask dim must equal the input's or be 1)");
  };
  if (m.rank > x.rank) fail();
  plan.data = mask.data;
  int64_t stride = 1;  // the mask's own row-major stride, innermost first
  for (int k = m.rank - 1; k >= 0; --k) {
    int axis = x.rank - m.rank + k;  // the x axis this mask dim lines up with
    int64_t used = 0;  // size-1 mask dims broadcast: stride 0
    if (m[k] == x[axis]) used = stride;
    else if (m[k] != 1) fail();
    if (axis == x.rank - 1) plan.last_stride = used;
    else plan.lead_strides[size_t(axis)] = used;
    stride *= m[k];
  }
  return plan;
}

// Sets values below the smallest normal number to 0. Eigen's SSE/AVX2 exp clamps its argument, so
// exp(-10000) or exp(-inf) comes back as a subnormal (about 1e-39 in float) instead of 0; masked keys
// must be exactly 0, and subnormals would slow the products that follow on many CPUs.
template <class T>
void flush_subnormals(T* values, int64_t n) {
  constexpr T kSmallestNormal = std::numeric_limits<T>::min();
  for (int64_t i = 0; i < n; ++i) values[i] = values[i] < kSmallestNormal ? T(0) : values[i];  // vectorises
}

// z[0, S) = exp(z - max) / sum(exp(z - max)), given max = max z (finite); subnormals flushed to 0.
// The exponentials run in aligned blocks of 64 (the last one padded), so that every value goes through
// Eigen's vectorised exp: on a row as it lies in memory Eigen computes the unaligned head and the tail
// with the C library's scalar expf, whose underflow path (every masked key, 10000 below the max) sets
// errno; that took 4% of scoring on CPU type B (docs/performance.md). The result no longer depends on
// where the row starts.
template <class T>
void softmax_in_place(T* z, int64_t S, T max) {
  constexpr int64_t kBlock = 64;  // a multiple of every packet size
  alignas(64) T block[kBlock];
  Eigen::Map<Eigen::Array<T, kBlock, 1>, Eigen::Aligned64> b(block);
  for (int64_t i = 0; i < S; i += kBlock) {
    const int64_t n = std::min(kBlock, S - i);
    std::copy(z + i, z + i + n, block);
    std::fill(block + n, block + kBlock, max);  // padding: exp(0), never read
    b = (b - max).exp();
    std::copy(block, block + n, z + i);
  }
  flush_subnormals(z, S);
  Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> zr(z, S);
  zr *= T(1) / zr.sum();
}

// Forward of softmax (or of log_softmax when `log`) over the last axis, row by row.
// y[r] = exp(z - max z) / sum(exp(z - max z)), z = x[r] + mask row; a row of -inf gives 0 (log: -inf).
template <class T>
void softmax_rows(const char* op, Var<T> x, TensorView<const T> mask, TensorView<T> y, bool log) {
  using A = Eigen::Array<T, Eigen::Dynamic, 1>;
  const Shape& s = x.shape();
  require(s.rank >= 1, op, "input must have rank >= 1, got shape " + s.str());
  RowMask<T> row_mask = plan_row_mask(op, s, mask);
  const int64_t S = s.last();
  if (y.numel() == 0) return;
  const int64_t rows = y.numel() / S;
  const T* xv = x.value().data;
  constexpr T kMinusInf = -std::numeric_limits<T>::infinity();
  parallel_for(rows, row_grain(S), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      Eigen::Map<const A> xr(xv + r * S, S);
      Eigen::Map<A> yr(y.data + r * S, S);
      if (row_mask.data == nullptr) yr = xr;
      else if (row_mask.last_stride == 1) yr = xr + Eigen::Map<const A>(row_mask.row(r), S);
      else yr = xr + *row_mask.row(r);
      const T max = yr.maxCoeff();
      if (max == kMinusInf) {  // every key masked out: no probability mass anywhere
        yr.setConstant(log ? kMinusInf : T(0));
        continue;
      }
      if (log) {
        const T log_sum = std::log((yr - max).exp().sum());
        yr = yr - max - log_sum;  // in this order: (z - max) is exact near the max
      } else {
        softmax_in_place(y.data + r * S, S, max);
      }
    }
  });
}

// ---- softmax ------------------------------------------------------------------------------------

// Softmax over the last axis of x [..., S]. `mask` is additive (added to x first, e.g. -10000 or -inf at
// keys not to attend to), broadcasts against x ([B, H, N, N] with [B, 1, N, N], [N, N], [B, 1, 1, N], ...),
// gets no gradient and is only read during this call. A row whose masked scores are all -inf gives
// zeros (and passes no gradient) instead of NaN; a finite mask such as -10000 on every key of a row
// leaves that row's softmax(x) unchanged, as in PyTorch.
template <class T>
Var<T> softmax(Var<T> x /*[..., S]*/, std::type_identity_t<TensorView<const T>> mask /*broadcasts to x*/) {
  TensorView<T> y = x.tape->alloc(x.shape());
  softmax_rows("softmax", x, mask, y, false);
  return x.tape->record("softmax", y, {x}, [x](TensorView<const T> yv, TensorView<const T> dy) {
    // y = exp(z - max z) / sum(exp(z - max z)), z = x + mask  =>  dx += y * (dy - sum(dy * y)) per row
    using A = Eigen::Array<T, Eigen::Dynamic, 1>;
    T* dx = x.grad_accumulator().data;
    const int64_t S = yv.shape.last(), rows = S ? yv.numel() / S : 0;
    parallel_for(rows, row_grain(S), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        Eigen::Map<const A> yr(yv.data + r * S, S), dyr(dy.data + r * S, S);
        const T dy_dot_y = (dyr * yr).sum();
        Eigen::Map<A>(dx + r * S, S) += yr * (dyr - dy_dot_y);
      }
    });
  });
}

template <class T>
Var<T> softmax(Var<T> x /*[..., S]*/) {
  return softmax(x, TensorView<const T>{});
}

// ---- log_softmax --------------------------------------------------------------------------------

// log(softmax(x + mask)) over the last axis, computed as z - max z - log(sum(exp(z - max z))) so it never
// takes the log of an underflowed probability. Mask as for softmax. A row whose masked scores are all
// -inf gives -inf everywhere and passes no gradient.
template <class T>
Var<T> log_softmax(Var<T> x /*[..., S]*/, std::type_identity_t<TensorView<const T>> mask /*broadcasts to x*/) {
  TensorView<T> y = x.tape->alloc(x.shape());
  softmax_rows("log_softmax", x, mask, y, true);
  return x.tape->record("log_softmax", y, {x}, [x](TensorView<const T> yv, TensorView<const T> dy) {
    // y = z - log(sum(exp(z))), z = x + mask  =>  dx += dy - exp(y) * sum(dy) per row
    using A = Eigen::Array<T, Eigen::Dynamic, 1>;
    constexpr T kMinusInf = -std::numeric_limits<T>::infinity();
    T* dx = x.grad_accumulator().data;
    const int64_t S = yv.shape.last(), rows = S ? yv.numel() / S : 0;
    parallel_for(rows, row_grain(S), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        Eigen::Map<const A> yr(yv.data + r * S, S), dyr(dy.data + r * S, S);
        if (yr[0] == kMinusInf && (yr == kMinusInf).all()) continue;  // fully masked row
        const T dy_sum = dyr.sum();
        Eigen::Map<A>(dx + r * S, S) += dyr - yr.exp() * dy_sum;
      }
    });
  });
}

template <class T>
Var<T> log_softmax(Var<T> x /*[..., S]*/) {
  return log_softmax(x, TensorView<const T>{});
}

// ---- layer_norm ---------------------------------------------------------------------------------

// One row of layer_norm: y = (x - mean) rstd gamma + beta over D elements; stats = {mean, rstd}.
template <class T>
void layer_norm_row(const T* x, const T* gamma, const T* beta, T* y, int64_t D, T eps, T* stats) {
  using A = Eigen::Array<T, Eigen::Dynamic, 1>;
  Eigen::Map<const A> xr(x, D), g(gamma, D), b(beta, D);
  const T mean = xr.sum() / T(D);
  const T var = (xr - mean).square().sum() / T(D);  // two passes: no cancellation
  const T rstd = T(1) / std::sqrt(var + eps);
  Eigen::Map<A>(y, D) = (xr - mean) * rstd * g + b;
  stats[0] = mean;
  stats[1] = rstd;
}

// Backward of one row: y = xhat gamma + beta, xhat = (x - mean) rstd  =>
//   dbeta += dy,  dgamma += dy xhat,  dx += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), dxhat = dy gamma.
// dx, dgamma and dbeta may each be null (not wanted).
template <class T>
void layer_norm_row_backward(const T* x, const T* dy, const T* gamma, const T* stats, int64_t D, T* dx, T* dgamma, T* dbeta) {
  using A = Eigen::Array<T, Eigen::Dynamic, 1>;
  const T mean = stats[0], rstd = stats[1];
  Eigen::Map<const A> xr(x, D), dyr(dy, D), g(gamma, D);
  auto xhat = (xr - mean) * rstd;
  if (dgamma) Eigen::Map<A>(dgamma, D) += dyr * xhat;
  if (dbeta) Eigen::Map<A>(dbeta, D) += dyr;
  if (dx) {
    auto dxhat = dyr * g;
    const T mean_dxhat = dxhat.sum() / T(D);
    const T mean_dxhat_xhat = (dxhat * xhat).sum() / T(D);
    Eigen::Map<A>(dx, D) += rstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat);
  }
}

// y = (x - mean) / sqrt(var + eps) * gamma + beta over the last axis, with the biased variance (as
// PyTorch). Row mean and 1/sqrt(var + eps) are kept on the tape for the backward.
template <class T>
Var<T> layer_norm(Var<T> x /*[..., D]*/, Var<T> gamma /*[D]*/, Var<T> beta /*[D]*/,
                  std::type_identity_t<T> eps = T(1e-5)) {
  using A = Eigen::Array<T, Eigen::Dynamic, 1>;
  if (x.tape != gamma.tape || x.tape != beta.tape) throw TapeError("layer_norm: operands on different tapes");
  const Shape& s = x.shape();
  if (s.rank < 1 || s.last() == 0 || !(gamma.shape() == Shape{s.last()}) || !(beta.shape() == Shape{s.last()}))
    throw ShapeError("layer_norm: input " + s.str() + " needs rank >= 1, a nonzero last dim D and gamma, beta of shape [D]; got gamma " +
                     gamma.shape().str() + " and beta " + beta.shape().str());
  std::ostringstream eps_text;
  eps_text << eps;
  require(eps >= T(0), "layer_norm", "eps must be >= 0, got " + eps_text.str() + " (input " + s.str() + ")");
  const int64_t D = s.last(), rows = s.numel() / D;
  TensorView<T> y = x.tape->alloc(s);
  T* stats = x.tape->alloc(Shape{rows, 2}).data;  // per row: mean, rstd = 1 / sqrt(var + eps)
  const T* xv = x.value().data;
  const T *g = gamma.value().data, *b = beta.value().data;
  parallel_for(rows, row_grain(D), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) layer_norm_row(xv + r * D, g, b, y.data + r * D, D, eps, stats + 2 * r);
  });
  return x.tape->record("layer_norm", y, {x, gamma, beta}, [x, gamma, beta, stats, rows, D](auto, TensorView<const T> dy) {
    const bool need_dx = x.requires_grad(), need_params = gamma.requires_grad() || beta.requires_grad();
    T* dx = need_dx ? x.grad_accumulator().data : nullptr;
    const int64_t chunks = reduction_chunks(rows, D);
    T* partial = need_params ? x.tape->alloc(Shape{chunks, 2, D}).data : nullptr;  // per chunk: dgamma, dbeta sums
    const T* xv = x.value().data;
    const T* g = gamma.value().data;
    parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        T* dgamma = need_params ? partial + c * 2 * D : nullptr;
        if (dgamma) Eigen::Map<A>(dgamma, 2 * D).setZero();
        for (int64_t r = rows * c / chunks; r < rows * (c + 1) / chunks; ++r)
          layer_norm_row_backward(xv + r * D, dy.data + r * D, g, stats + 2 * r, D, need_dx ? dx + r * D : nullptr, dgamma,
                                  dgamma ? dgamma + D : nullptr);
      }
    });
    if (!need_params) return;
    for (int64_t c = 0; c < chunks; ++c) {  // chunk order: deterministic
      if (gamma.requires_grad()) arr(gamma.grad_accumulator()) += Eigen::Map<const A>(partial + c * 2 * D, D);
      if (beta.requires_grad()) arr(beta.grad_accumulator()) += Eigen::Map<const A>(partial + c * 2 * D + D, D);
    }
  });
}

// ---- dropout ------------------------------------------------------------------------------------

// Which elements a dropout keeps. Element i of the block is kept when a 24-bit random number drawn
// from (stream, base, i) is >= p * 2^24. The number comes from a 32-bit counter hash (two rounds of
// Wellons' lowbias32, keyed by 64 bits derived from the stream and the block's first counter), all in
// 32-bit integer arithmetic, so the loop vectorises 16 lanes wide: a 64-bit mix per element cost as much
// as the rest of a training step's elementwise work. p is resolved to 2^-24, as PyTorch's float draw.
// `offset` shifts the element numbers: a process computing some rows of a batch (Rng::reserve_rows)
// masks its element i as element offset + i of the whole batch.
struct DropoutMask {
  uint32_t key0 = 0, key1 = 0;
  uint32_t threshold = 0;  // ceil(p * 2^24)
  uint32_t offset = 0;

  DropoutMask(RandomStream s, uint64_t first, double p, uint64_t element_offset = 0) {
    uint64_t key = s.bits(first);
    key0 = uint32_t(key);
    key1 = uint32_t(key >> 32);
    threshold = uint32_t(std::ceil(p * 0x1.0p24));
    offset = uint32_t(element_offset);
  }
  [[gnu::always_inline]] bool keep(int64_t i) const { return dropout_kept(key0, key1, threshold, uint32_t(i) + offset); }
};

// The mask of a dropout over `count` elements whose leading dimension is the batch, drawn from rng: the
// numbers [base, base + count) of its stream, or this process's rows of the whole batch's block when
// the Rng holds a row share (Rng::reserve_rows).
inline DropoutMask draw_dropout_mask(Rng& rng, uint64_t count, double p) {
  const Rng::Reserved block = rng.reserve_rows(count);
  return DropoutMask(rng.stream(), block.base, p, block.offset);
}

// out[i] = (or += when kAccumulate) keep(first + i) ? x[i] * scale : 0, for i in [0, n): the dropout of a
// run of elements whose first one is element `first` of the masked tensor. A loop the compiler vectorises.
template <bool kAccumulate, class T>
void apply_dropout(const DropoutMask& mask, int64_t first, const T* x, T* out, int64_t n, T scale) {
  const DropoutMask m = mask;  // a local copy the vectoriser can trust
  for (int64_t i = 0; i < n; ++i) {
    const T kept = m.keep(first + i) ? x[i] * scale : T(0);
    if constexpr (kAccumulate) out[i] += kept;
    else out[i] = kept;
  }
}

// Inverted dropout, as PyTorch in training mode: each element is kept with probability 1 - p and scaled
// by 1 / (1 - p), or zeroed. p == 0 returns x itself (no node; use it for evaluation). The mask is
// draw_dropout_mask(rng, x.numel(), p), DropoutMask(rng.stream(), rng.reserve(x.numel()), p) unless the
// Rng holds a row share: it depends only on the Rng state
// (never on the thread count), the Rng always advances by x.numel(), and the backward regenerates the
// same mask instead of storing it.
template <class T>
Var<T> dropout(Var<T> x /*[...]*/, std::type_identity_t<T> p, Rng& rng) {
  if (!(p >= T(0) && p < T(1))) {
    std::ostringstream p_text;
    p_text << p;
    throw ShapeError("dropout: p = " + p_text.str() + " must be in [0, 1) (input " + x.shape().str() + ")");
  }
  if (p == T(0)) return x;
  const T scale = T(1) / (T(1) - p);
  const DropoutMask mask = draw_dropout_mask(rng, uint64_t(x.numel()), double(p));
  TensorView<T> y = x.tape->alloc(x.shape());
  const T* xv = x.value().data;
  T* yv = y.data;
  for_chunks(y.numel(), [=](int64_t i0, int64_t i1) { apply_dropout<false>(mask, i0, xv + i0, yv + i0, i1 - i0, scale); });
  return x.tape->record("dropout", y, {x}, [x, mask, scale](auto, TensorView<const T> dy) {
    // y = keep ? x * scale : 0  =>  dx += keep ? dy * scale : 0 (the mask regenerated from stream and base)
    T* dx = x.grad_accumulator().data;
    const T* dyv = dy.data;
    for_chunks(dy.numel(), [=](int64_t i0, int64_t i1) { apply_dropout<true>(mask, i0, dyv + i0, dx + i0, i1 - i0, scale); });
  });
}

// ---- cross_entropy ------------------------------------------------------------------------------

// Mean over rows whose target is not ignore_index of -log_softmax(logits)[target], as PyTorch's
// cross_entropy with reduction "mean". Logits [M, K] with targets [M], or [B, N, K] with [B, N]. A target
// outside [0, K) that is not ignore_index throws. When every row is ignored the loss is 0 and so is
// the gradient (PyTorch gives NaN). The forward keeps the row log-sum-exp; the backward recomputes the
// softmax row by row.
template <class T>
Var<T> cross_entropy(Var<T> logits /*[M, K]*/, TensorView<const int32_t> targets /*[M]*/, int32_t ignore_index = -100) {
  using A = Eigen::Array<T, Eigen::Dynamic, 1>;
  const Shape& s = logits.shape();
  if (s.rank < 1 || !(targets.shape == s.without(s.rank - 1)))
    throw ShapeError("cross_entropy: logits " + s.str() + " need targets of shape " +
                     (s.rank < 1 ? std::string("[M] (logits need rank >= 1)") : s.without(s.rank - 1).str()) + ", got " +
                     targets.shape.str());
  const int64_t K = s.last(), rows = targets.numel();
  int64_t count = 0;  // rows that count
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t t = targets[r];
    if (t == ignore_index) continue;
    if (t < 0 || t >= K)
      throw ShapeError("cross_entropy: target " + std::to_string(t) + " at row " + std::to_string(r) + " is outside [0, " +
                       std::to_string(K) + ") (logits " + s.str() + ", ignore_index " + std::to_string(ignore_index) + ")");
    ++count;
  }
  TensorView<const int32_t> kept_targets = logits.tape->keep(targets);
  T* log_sum_exp = logits.tape->alloc(Shape{rows}).data;  // per row: log(sum_j exp(logits[r, j]))
  T* row_loss = logits.tape->alloc(Shape{rows}).data;     // per row: log_sum_exp - logits[r, t_r]
  const T* xv = logits.value().data;
  parallel_for(rows, row_grain(K), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      if (targets[r] == ignore_index) continue;
      Eigen::Map<const A> xr(xv + r * K, K);
      const T max = xr.maxCoeff();
      const T log_sum = std::log((xr - max).exp().sum());
      log_sum_exp[r] = max + log_sum;
      row_loss[r] = log_sum - (xr[targets[r]] - max);  // (x_t - max) is exact near the max
    }
  });
  double total = 0;  // in row order: deterministic
  for (int64_t r = 0; r < rows; ++r)
    if (targets[r] != ignore_index) total += double(row_loss[r]);
  TensorView<T> loss = logits.tape->alloc(Shape{});
  loss[0] = count ? T(total / double(count)) : T(0);
  return logits.tape->record("cross_entropy", loss, {logits},
                             [logits, kept_targets, log_sum_exp, rows, K, count, ignore_index](auto, TensorView<const T> dloss) {
    // loss = sum_rows (log_sum_exp[r] - logits[r, t_r]) / count
    //   =>  dlogits[r, j] += (softmax(logits[r])[j] - [j == t_r]) * dloss / count
    if (count == 0) return;
    T* dlogits = logits.grad_accumulator().data;
    const T* xv = logits.value().data;
    const T g = dloss[0] / T(count);
    parallel_for(rows, row_grain(K), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int32_t t = kept_targets[r];
        if (t == ignore_index) continue;
        Eigen::Map<A> dxr(dlogits + r * K, K);
        dxr += (Eigen::Map<const A>(xv + r * K, K) - log_sum_exp[r]).exp() * g;
        dxr[t] -= g;
      }
    });
  });
}

}  // namespace euler
