// euler/cuda/device_math.hpp: the per-element and per-row math of every kernel of the CUDA backend.
//
// Each function is `EULER_HD inline`: __host__ __device__ under nvcc, a plain inline function under a
// C++ compiler. The CUDA kernels (cuda/) are thin loops that call these; the normal test suite calls
// the very same functions on the CPU and compares them with the CPU ops of the library (values and
// gradients), so the arithmetic of the GPU path is verified on machines without a GPU. Float only: the
// GPU path is float, the CPU ops are the reference (ops/*.hpp, model/contrastive.hpp, train/optimizer.hpp).
//
// Every formula restates the CPU op it mirrors, in the same order of operations, except the two whose
// bits must agree, which both sides take from core/host_device.hpp: the float atan2 (atan2_poly) and the
// dropout hash (dropout_kept, keyed from the same (seed, counter) by dropout_key, so a GPU step and a
// CPU step draw the same masks). Rows are contiguous; complex numbers are interleaved pairs (re, im) as
// in ops/complex.hpp. No function here allocates, throws or touches global state.
//
//     float theta;                                         // one complex number (re, im) of q
//     float phase = euler::device::euler_phase(re, im, delta, b, alpha, &theta);
//     float y_re, y_im;
//     euler::device::with_phase(re, im, phase, &y_re, &y_im);
//     euler::device::DropoutKey key = euler::device::dropout_key(seed, counter, 0.5);
//     bool kept = euler::device::dropout_keep(key, i);     // what DropoutMask(...).keep(i) says
#pragma once

#include <math.h>

#include <cmath>
#include <cstdint>

#include "euler/core/host_device.hpp"
#include "euler/core/random_bits.hpp"

namespace euler::device {

inline constexpr float kSmallestNormal = 1.17549435e-38f;  // FLT_MIN

// ---- the Euler transform and rotations (ops/complex.hpp) --------------------------------------------

// euler_phase forward for one complex number: theta = atan2(im, re), out = delta theta + bias + angle.
// Returns out; theta goes to *theta_out (the gradient of delta reads it).
EULER_HD inline float euler_phase(float re, float im, float delta, float bias, float angle, float* theta_out) {
  float theta = atan2_poly(im, re);
  *theta_out = theta;
  return delta * theta + bias + angle;
}

// euler_phase backward: dre += -dout delta im / lambda^2, dim += dout delta re / lambda^2 (0 at lambda = 0),
// written as (im / lambda) / lambda as the CPU does.
EULER_HD inline void euler_phase_backward(float re, float im, float dout, float delta, float* dre, float* dim) {
  float lambda = sqrtf(re * re + im * im);
  float scale = lambda > 0.0f ? dout * delta / lambda : 0.0f;
  float inv = lambda > 0.0f ? 1.0f / lambda : 0.0f;
  *dre -= scale * (im * inv);
  *dim += scale * (re * inv);
}

// with_phase forward: y = |z| (cos phase, sin phase).
EULER_HD inline void with_phase(float re, float im, float phase, float* y_re, float* y_im) {
  float lambda = sqrtf(re * re + im * im);
  *y_re = lambda * cosf(phase);
  *y_im = lambda * sinf(phase);
}

// with_phase backward: dphase += dy_im y_re - dy_re y_im,  dz += (dy . y) z / lambda^2 (0 at lambda = 0).
// Either output pointer may be null (that input needs no gradient).
EULER_HD inline void with_phase_backward(float re, float im, float y_re, float y_im, float dy_re, float dy_im, float* dre,
                                         float* dim, float* dphase) {
  if (dphase) *dphase += dy_im * y_re - dy_re * y_im;
  if (dre) {
    float lambda = sqrtf(re * re + im * im);
    float inv = lambda > 0.0f ? 1.0f / lambda : 0.0f;
    float scale = (dy_re * y_re + dy_im * y_im) * inv;
    *dre += scale * (re * inv);
    *dim += scale * (im * inv);
  }
}

// rotate_by_phase forward: y = z e^{i phase}, with cos and sin of the phase given.
EULER_HD inline void rotate(float re, float im, float cs, float sn, float* y_re, float* y_im) {
  *y_re = re * cs - im * sn;
  *y_im = re * sn + im * cs;
}

// rotate_by_phase backward: dz += dy e^{-i phase}; the phase's share is dy_im y_re - dy_re y_im (returned,
// the caller sums it over the blocks that share the angle).
EULER_HD inline float rotate_backward(float y_re, float y_im, float cs, float sn, float dy_re, float dy_im, float* dre,
                                      float* dim) {
  if (dre) {
    *dre += dy_re * cs + dy_im * sn;
    *dim += dy_im * cs - dy_re * sn;
  }
  return dy_im * y_re - dy_re * y_im;
}

// ---- rows: softmax, layer norm, cross-entropy (ops/nn.hpp) -------------------------------------------

// Softmax of x + mask over one row of n (mask: one additive value per key, or null). A row whose masked
// scores are all -inf gives zeros; values below the smallest normal float are flushed to 0, as the CPU.
EULER_HD inline void softmax_row(const float* x, const float* mask, float* y, int64_t n) {
  float max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    y[i] = mask ? x[i] + mask[i] : x[i];
    max = fmaxf(max, y[i]);
  }
  if (max == -INFINITY) {
    for (int64_t i = 0; i < n; ++i) y[i] = 0.0f;
    return;
  }
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    float e = expf(y[i] - max);
    e = e < kSmallestNormal ? 0.0f : e;
    y[i] = e;
    sum += e;
  }
  float inv = 1.0f / sum;
  for (int64_t i = 0; i < n; ++i) y[i] *= inv;
}

// Softmax backward over one row: dx += y (dy - sum(dy y)).
EULER_HD inline void softmax_row_backward(const float* y, const float* dy, float* dx, int64_t n) {
  float dot = 0.0f;
  for (int64_t i = 0; i < n; ++i) dot += dy[i] * y[i];
  for (int64_t i = 0; i < n; ++i) dx[i] += y[i] * (dy[i] - dot);
}

// Layer norm of one row of n: y = (x - mean) rstd gamma + beta, biased variance (two passes),
// rstd = 1 / sqrt(var + eps). Mean and rstd go out for the backward.
EULER_HD inline void layer_norm_row(const float* x, const float* gamma, const float* beta, float eps, int64_t n, float* y,
                                    float* mean_out, float* rstd_out) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  float mean = sum / float(n);
  float squares = 0.0f;
  for (int64_t i = 0; i < n; ++i) squares += (x[i] - mean) * (x[i] - mean);
  float rstd = 1.0f / sqrtf(squares / float(n) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * rstd * gamma[i] + beta[i];
  *mean_out = mean;
  *rstd_out = rstd;
}

// Layer norm backward of one row, the input's share:
//   dx += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)),  dxhat = dy gamma, xhat = (x - mean) rstd.
// (gamma's and beta's shares, dy xhat and dy, are summed over rows by the caller.)
EULER_HD inline void layer_norm_row_backward(const float* x, const float* dy, const float* gamma, float mean, float rstd,
                                             int64_t n, float* dx) {
  float sum_dxhat = 0.0f, sum_dxhat_xhat = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    float dxhat = dy[i] * gamma[i];
    sum_dxhat += dxhat;
    sum_dxhat_xhat += dxhat * ((x[i] - mean) * rstd);
  }
  float mean_dxhat = sum_dxhat / float(n), mean_dxhat_xhat = sum_dxhat_xhat / float(n);
  for (int64_t i = 0; i < n; ++i) {
    float xhat = (x[i] - mean) * rstd;
    dx[i] += rstd * (dy[i] * gamma[i] - mean_dxhat - xhat * mean_dxhat_xhat);
  }
}

// Cross-entropy of one row of n logits against `target`: returns log_sum_exp - x[target], computed as
// log(sum exp(x - max)) - (x[target] - max); the row's log-sum-exp goes to *lse_out for the backward.
EULER_HD inline float cross_entropy_row(const float* x, int64_t n, int32_t target, float* lse_out) {
  float max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) max = fmaxf(max, x[i]);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += expf(x[i] - max);
  float log_sum = logf(sum);
  *lse_out = max + log_sum;
  return log_sum - (x[target] - max);
}

// Cross-entropy backward, one logit: dx += (softmax(x)_j - [j == target]) g, g = dloss / count.
EULER_HD inline float cross_entropy_grad(float x, float lse, bool is_target, float g) {
  return expf(x - lse) * g - (is_target ? g : 0.0f);
}

// ---- activations (ops/elementwise.hpp) ----------------------------------------------------------------

// Exact GELU: x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2.
EULER_HD inline float gelu(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }
// d gelu / dx = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
EULER_HD inline float gelu_grad(float x) {
  return 0.5f * (1.0f + erff(x * 0.70710678118654752f)) + x * 0.39894228040143268f * expf(-0.5f * x * x);
}
EULER_HD inline float relu(float x) { return fmaxf(x, 0.0f); }
EULER_HD inline float relu_grad(float x) { return x > 0.0f ? 1.0f : 0.0f; }

// ---- dropout (ops/nn.hpp, DropoutMask) ------------------------------------------------------------------

// A dropout block's key: DropoutMask(RandomStream(seed, 0), first, p) as plain integers.
struct DropoutKey {
  uint32_t key0 = 0, key1 = 0;
  uint32_t threshold = 0;  // ceil(p * 2^24)
};

// The key of a block of draws that starts at counter `first` of an Rng with `seed` (stream 0), as
// DropoutMask(rng.stream(), first, p). Host only (64-bit mixing once per block).
inline DropoutKey dropout_key(uint64_t seed, uint64_t first, double p) {
  uint64_t key = RandomStream(seed, 0).bits(first);
  return {uint32_t(key), uint32_t(key >> 32), uint32_t(std::ceil(p * 0x1.0p24))};
}

// Element i of the block is kept when its 24-bit number is >= threshold (DropoutMask::keep).
EULER_HD inline bool dropout_keep(DropoutKey k, int64_t i) { return dropout_kept(k.key0, k.key1, k.threshold, uint32_t(i)); }

// ---- the phase contrastive loss (model/contrastive.hpp) -------------------------------------------------

// The second view of one phase: dropout(P, 0.5) while training (kept angles doubled), P otherwise.
EULER_HD inline float contrastive_view(float p, bool two_views, bool kept) { return two_views ? (kept ? 2.0f * p : 0.0f) : p; }

// Product operands of one (position, channel): a = [w cos P, w sin P], c = [cos V, sin V], so that
// S = a c^T is the similarity sum_i w_i cos(P[t, i] - V[s, i]).
EULER_HD inline void contrastive_features(float p, float v, float w, float* a_cos, float* a_sin, float* c_cos, float* c_sin) {
  *a_cos = w * cosf(p);
  *a_sin = w * sinf(p);
  *c_cos = cosf(v);
  *c_sin = sinf(v);
}

// The positive of one query: S[t, t] / tep = sum_i w_i (cos P cos V + sin P sin V) / tep over a row of h.
EULER_HD inline float contrastive_positive(const float* p, const float* v, const float* w, int64_t h, float inv_tep) {
  float total = 0.0f;
  for (int64_t i = 0; i < h; ++i) total += (cosf(p[i]) * cosf(v[i]) + sinf(p[i]) * sinf(v[i])) * w[i];
  return total * inv_tep;
}

// One row of Z = S / tep (masked keys already added) to its softmax, in place, returning
// lse = log(sum_s exp(Z[s]) + 1e-5) computed as m + log(sum exp(Z - m) + 1e-5 exp(-m)).
EULER_HD inline float contrastive_softmax_row(float* z, int64_t n) {
  float m = -INFINITY;
  for (int64_t s = 0; s < n; ++s) m = fmaxf(m, z[s]);
  float sum = 0.0f;
  for (int64_t s = 0; s < n; ++s) sum += expf(z[s] - m);
  float lse = m + logf(sum + 1e-5f * expf(-m));
  for (int64_t s = 0; s < n; ++s) z[s] = expf(z[s] - lse);
  return lse;
}

// Backward of one (position t, channel i). With ut = u_t / tep (u_t the loss weight of query t, 0 when
// the mean leaves it out), da = dS c and dc = dS^T a from the two products:
//   dD = ut w sin(P - V);  dP_direct = w (-sin P da_cos + cos P da_sin) + dD;  dV = -sin V dc_cos + cos V dc_sin - dD
//   dw share = cos P da_cos + sin P da_sin - ut cos(P - V)
// The caller adds dV to dP through the view (2 dV where kept, 0 where dropped, dV without dropout).
EULER_HD inline void contrastive_backward(float p, float v, float w, float da_cos, float da_sin, float dc_cos, float dc_sin,
                                          float ut, float* dp_direct, float* dv, float* dw_share) {
  float cos_p = cosf(p), sin_p = sinf(p), cos_v = cosf(v), sin_v = sinf(v);
  float sin_d = sin_p * cos_v - cos_p * sin_v, cos_d = cos_p * cos_v + sin_p * sin_v;
  float dd = sin_d * w * ut;
  *dp_direct = (cos_p * da_sin - sin_p * da_cos) * w + dd;
  *dv = cos_v * dc_sin - sin_v * dc_cos - dd;
  *dw_share = (cos_p * da_cos + sin_p * da_sin) - cos_d * ut;
}

// ---- Adam (train/optimizer.hpp) -------------------------------------------------------------------------

// The per-step scalars of Adam/AdamW, computed in double as the CPU does and used as float.
struct AdamCoefficients {
  float step_size = 0, bias_correction2_sqrt = 1, one_minus_beta1 = 0, beta2 = 0, one_minus_beta2 = 0, eps = 0;
  float coef = 1;           // clip coefficient folded into the gradient
  float l2_weight = 0;      // Adam: g += weight_decay p
  float decay_factor = 1;   // AdamW: p *= 1 - lr weight_decay
  bool l2 = false, decay = false;
};

// Adam's scalars for step number `step` (1 for the first) with clip coefficient `clip_coef`.
inline AdamCoefficients adam_coefficients(double lr, double beta1, double beta2, double eps, double weight_decay,
                                          bool decoupled, int64_t step, double clip_coef) {
  AdamCoefficients c;
  double bias_correction1 = 1 - std::pow(beta1, double(step));
  double bias_correction2 = 1 - std::pow(beta2, double(step));
  c.step_size = float(lr / bias_correction1);
  c.bias_correction2_sqrt = float(std::sqrt(bias_correction2));
  c.one_minus_beta1 = float(1 - beta1);
  c.beta2 = float(beta2);
  c.one_minus_beta2 = float(1 - beta2);
  c.eps = float(eps);
  c.coef = float(clip_coef);
  c.l2 = !decoupled && weight_decay != 0;
  c.decay = decoupled && weight_decay != 0;
  c.l2_weight = float(weight_decay);
  c.decay_factor = float(1 - lr * weight_decay);
  return c;
}

// One value's update: (AdamW) p *= decay; grad = coef g (+ l2 p); m += (1 - beta1)(grad - m);
// v = beta2 v + (1 - beta2) grad^2; p -= step_size m / (sqrt(v) / sqrt(bias_correction2) + eps).
EULER_HD inline void adam_update(float* p, float g, float* m, float* v, const AdamCoefficients& c) {
  if (c.decay) *p *= c.decay_factor;
  float grad = c.l2 ? c.coef * g + c.l2_weight * *p : c.coef * g;
  *m += c.one_minus_beta1 * (grad - *m);
  *v = c.beta2 * *v + c.one_minus_beta2 * grad * grad;
  *p += -c.step_size * (*m / (sqrtf(*v) / c.bias_correction2_sqrt + c.eps));
}

// Sum of squares of x[begin, end) in double with the CPU's order (Adam::global_norm: eight interleaved
// sums, then a fixed tree), so block sums and hence the gradient norm match the CPU bit for bit.
EULER_HD inline double squared_sum_block(const float* x, int64_t begin, int64_t end) {
  double sums[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = begin;
  for (; i + 8 <= end; i += 8)
    for (int lane = 0; lane < 8; ++lane) sums[lane] += double(x[i + lane]) * double(x[i + lane]);
  for (; i < end; ++i) sums[0] += double(x[i]) * double(x[i]);
  return ((sums[0] + sums[1]) + (sums[2] + sums[3])) + ((sums[4] + sums[5]) + (sums[6] + sums[7]));
}

}  // namespace euler::device
