// euler/ops/complex.hpp: complex vectors stored in real tensors, in Cartesian and polar form.
//
// EulerFormer turns every real vector into a vector of complex numbers, rotates their phases, and maps
// back to real numbers. This file holds the handful of primitives that does it: pairing and splitting
// (complex_from_parts, real_part, imag_part), polar form (complex_abs, complex_arg, to_polar,
// from_polar), rotation (rotate_by_phase, the hot op of rotary embeddings), complex_mul, conj, and
// real_inner, the attention score Re(sum_t a_t conj(b_t)).
//
// Storage. A real tensor [..., D] with D even holds D/2 complex numbers, INTERLEAVED as in the authors'
// code: (x[..., 2t], x[..., 2t+1]) = (real, imaginary) of the t-th number. Ops that take a complex
// tensor check that D is even; per-number quantities (magnitude, phase) have shape [..., D/2].
//
// Magnitude 0. At z = 0 exactly, |z| has no derivative (the tip of a cone) and arg(z) is undefined.
// Both gradients are taken as 0 there: 0 is a subgradient of |z| (0 is its minimum), and for arg no
// value is right, so we pick the one that adds nothing. Zero pairs are common (padding rows, pairs
// zeroed by dropout), and this keeps their gradients finite (zero) instead of NaN or Inf. It is safe
// for the Euler transform: the rotated output (lambda cos theta, lambda sin theta) has derivative
// lambda (-sin theta, cos theta) = 0 with respect to theta at lambda = 0, so no gradient reaches arg
// through the rotation there anyway; only terms that use a phase directly (the phase contrastive loss)
// see the convention, and they see 0. One consequence to know: from_polar(to_polar(x)) is the identity,
// but its gradient at an exact zero pair is 0, not 1 (the magnitude path contributes the subgradient 0).
// The value of arg at the origin follows std::atan2 (and torch.atan2) with signed zeros: 0 for
// (+0, +0), pi for (-0, +0); it is multiplied by lambda = 0 wherever it is mapped back.
//
// Shapes: B batch, N list length, D hidden (even), H heads; [...] any leading dims (rank <= 4 in all).
//
//     auto [lambda, theta] = euler::to_polar(q);                  // q [B, N, D] -> [B, N, D/2] each
//     auto q_rot = euler::from_polar(lambda, theta * delta + b);  // delta, b [] or [D/2]
//     auto q_rope = euler::rotate_by_phase(q, alpha);             // alpha [N, D/2], same for every b
//     auto score = euler::real_inner(q_rot, k_rot);               // [B, N, D] x [B, N, D] -> [B, N]
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <array>
#include <vector>

#include "euler/core/host_device.hpp"
#include "euler/ops/elementwise.hpp"

namespace euler {

// Complex numbers per thread worth splitting for the loops below (a few flops and often a
// transcendental function per number, so smaller than kElementwiseGrain).
inline constexpr int64_t kComplexGrain = 1 << 12;

// [..., D] -> [..., D/2]: the complex shape of a real tensor, or a ShapeError naming op and shape.
inline Shape complex_shape(const char* op, const Shape& real_shape) {
  if (real_shape.rank == 0 || real_shape.last() % 2 != 0)
    throw ShapeError(std::string(op) + ": shape " + real_shape.str() +
                     " is not a complex tensor [..., D] with D even (pairs (re, im) interleaved)");
  return real_shape.with_last(real_shape.last() / 2);
}

template <class T>
void require_same_tape(const char* op, Var<T> a, Var<T> b) {
  if (a.tape != b.tape) throw TapeError(std::string(op) + ": operands on different tapes");
}

// ---- pairing and splitting ----------------------------------------------------------------------

// z_t = real_t + i imag_t, interleaved: real [..., D/2], imag [..., D/2] -> [..., D].
template <class T>
Var<T> complex_from_parts(Var<T> real /*[..., D/2]*/, Var<T> imag /*[..., D/2]*/) {
  const char* op = "complex_from_parts";
  require_same_tape(op, real, imag);
  check_same(op, real.shape(), imag.shape());
  require(real.shape().rank >= 1, op, "parts of shape [] have no axis to pair; give them shape [..., D/2]");
  TensorView<T> z = real.tape->alloc(real.shape().with_last(2 * real.shape().last()));  // [..., D]
  const T* rv = real.value().data;
  const T* iv = imag.value().data;
  parallel_for(real.numel(), kComplexGrain, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      z[2 * c] = rv[c];
      z[2 * c + 1] = iv[c];
    }
  });
  return real.tape->record(op, z, {real, imag}, [real, imag](auto, TensorView<const T> dz) {
    // z[2t] = real[t], z[2t+1] = imag[t]  =>  dreal[t] += dz[2t], dimag[t] += dz[2t+1]
    T* dreal = real.requires_grad() ? real.grad_accumulator().data : nullptr;
    T* dimag = imag.requires_grad() ? imag.grad_accumulator().data : nullptr;
    parallel_for(real.numel(), kComplexGrain, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        if (dreal) dreal[c] += dz[2 * c];
        if (dimag) dimag[c] += dz[2 * c + 1];
      }
    });
  });
}

// One component of every pair: [..., D] -> [..., D/2], y[t] = x[2t + component] (0 real, 1 imaginary).
template <class T>
Var<T> complex_component(Var<T> x /*[..., D]*/, int component, const char* op) {
  TensorView<T> y = x.tape->alloc(complex_shape(op, x.shape()));  // [..., D/2]
  const T* xv = x.value().data;
  parallel_for(y.numel(), kComplexGrain, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) y[c] = xv[2 * c + component];
  });
  return x.tape->record(op, y, {x}, [x, component](auto, TensorView<const T> dy) {
    // y[t] = x[2t + component]  =>  dx[2t + component] += dy[t]
    T* dx = x.grad_accumulator().data;
    parallel_for(dy.numel(), kComplexGrain, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) dx[2 * c + component] += dy[c];
    });
  });
}

// Re z: [..., D] -> [..., D/2]
template <class T>
Var<T> real_part(Var<T> x /*[..., D]*/) {
  return complex_component(x, 0, "real_part");
}

// Im z: [..., D] -> [..., D/2]
template <class T>
Var<T> imag_part(Var<T> x /*[..., D]*/) {
  return complex_component(x, 1, "imag_part");
}

// ---- polar form ---------------------------------------------------------------------------------

// lambda_t = |z_t| = sqrt(re^2 + im^2): [..., D] -> [..., D/2]. Gradient 0 at z = 0 (see the top).
template <class T>
Var<T> complex_abs(Var<T> x /*[..., D]*/) {
  TensorView<T> magnitude = x.tape->alloc(complex_shape("complex_abs", x.shape()));  // [..., D/2]
  const T* xv = x.value().data;
  parallel_for(magnitude.numel(), kComplexGrain, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) magnitude[c] = std::hypot(xv[2 * c], xv[2 * c + 1]);  // no under/overflow
  });
  return x.tape->record("complex_abs", magnitude, {x}, [x](TensorView<const T> lambda, TensorView<const T> dlambda) {
    // lambda = sqrt(re^2 + im^2)  =>  dre += dlambda * re / lambda, dim += dlambda * im / lambda  (0 at lambda = 0)
    T* dx = x.grad_accumulator().data;
    const T* xv = x.value().data;
    parallel_for(lambda.numel(), kComplexGrain, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        if (lambda[c] == T(0)) continue;
        T scale = dlambda[c] / lambda[c];
        dx[2 * c] += scale * xv[2 * c];
        dx[2 * c + 1] += scale * xv[2 * c + 1];
      }
    });
  });
}

// atan2(y, x): for float the vectorisable polynomial shared with the GPU (core/host_device.hpp's
// atan2_poly, within 2 ulp of pi of std::atan2); double uses std::atan2.
template <class T>
inline T atan2_vec(T y, T x) {
  if constexpr (std::is_same_v<T, float>) return atan2_poly(y, x);
  else return std::atan2(y, x);
}

// theta_t = arg z_t = atan2(im, re) in [-pi, pi]: [..., D] -> [..., D/2]. Gradient 0 at z = 0.
template <class T>
Var<T> complex_arg(Var<T> x /*[..., D]*/) {
  TensorView<T> phase = x.tape->alloc(complex_shape("complex_arg", x.shape()));  // [..., D/2]
  const T* xv = x.value().data;
  parallel_for(phase.numel(), kComplexGrain, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) phase[c] = atan2_vec(xv[2 * c + 1], xv[2 * c]);
  });
  return x.tape->record("complex_arg", phase, {x}, [x](auto, TensorView<const T> dtheta) {
    // theta = atan2(im, re)  =>  dre += -dtheta * im / lambda^2, dim += dtheta * re / lambda^2  (0 at lambda = 0)
    // written as (im / lambda) / lambda so that a tiny lambda cannot overflow lambda^2 to 0 or 1/lambda^2 to Inf.
    T* dx = x.grad_accumulator().data;
    const T* xv = x.value().data;
    parallel_for(dtheta.numel(), kComplexGrain, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        T re = xv[2 * c], im = xv[2 * c + 1];
        T lambda = std::hypot(re, im);
        if (lambda == T(0)) continue;
        T scale = dtheta[c] / lambda;
        dx[2 * c] -= scale * (im / lambda);
        dx[2 * c + 1] += scale * (re / lambda);
      }
    });
  });
}

template <class T>
struct Polar {
  Var<T> magnitude;  // lambda [..., D/2], >= 0
  Var<T> phase;      // theta  [..., D/2], in [-pi, pi]
};

// z = lambda e^{i theta}: [..., D] -> {lambda, theta}, each [..., D/2] (two nodes on the tape).
template <class T>
Polar<T> to_polar(Var<T> x /*[..., D]*/) {
  return {complex_abs(x), complex_arg(x)};
}

// (lambda cos theta, lambda sin theta), interleaved: magnitude [..., D/2], phase [..., D/2] -> [..., D].
template <class T>
Var<T> from_polar(Var<T> magnitude /*[..., D/2]*/, Var<T> phase /*[..., D/2]*/) {
  const char* op = "from_polar";
  require_same_tape(op, magnitude, phase);
  check_same(op, magnitude.shape(), phase.shape());
  require(magnitude.shape().rank >= 1, op, "magnitude and phase of shape [] have no axis to pair; give them [..., D/2]");
  TensorView<T> z = magnitude.tape->alloc(magnitude.shape().with_last(2 * magnitude.shape().last()));  // [..., D]
  const T* lambda = magnitude.value().data;
  const T* theta = phase.value().data;
  parallel_for(magnitude.numel(), kComplexGrain, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      z[2 * c] = lambda[c] * std::cos(theta[c]);
      z[2 * c + 1] = lambda[c] * std::sin(theta[c]);
    }
  });
  return magnitude.tape->record(op, z, {magnitude, phase}, [magnitude, phase](TensorView<const T> z,
                                                                               TensorView<const T> dz) {
    // z_re = lambda cos theta, z_im = lambda sin theta
    //   =>  dlambda += dz_re cos theta + dz_im sin theta
    //       dtheta  += -dz_re lambda sin theta + dz_im lambda cos theta = dz_im z_re - dz_re z_im
    // (dtheta is exactly 0 at lambda = 0: why the zero-gradient convention of complex_arg is safe.)
    T* dlambda = magnitude.requires_grad() ? magnitude.grad_accumulator().data : nullptr;
    T* dtheta = phase.requires_grad() ? phase.grad_accumulator().data : nullptr;
    const T* theta = phase.value().data;
    parallel_for(magnitude.numel(), kComplexGrain, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        T dz_re = dz[2 * c], dz_im = dz[2 * c + 1];
        if (dlambda) dlambda[c] += dz_re * std::cos(theta[c]) + dz_im * std::sin(theta[c]);
        if (dtheta) dtheta[c] += dz_im * z[2 * c] - dz_re * z[2 * c + 1];
      }
    });
  });
}

// ---- rotation -----------------------------------------------------------------------------------

// y = z e^{i phase}: every complex number of x turned by its angle.
//   x [..., D], phase [S...] where [S...] is a suffix of x's complex shape [..., D/2] -> [..., D].
// Typical: x [B, N, D] with phase [N, D/2] (the same angles for every list in the batch), or phase of
// the full shape [B, N, D/2]. The phase gradient is summed over the leading (broadcast) dims in a fixed
// order, so it is bitwise the same for any number of threads.
//
// Layout: x holds `outer` copies of a block of `inner` = phase.numel() complex numbers; number c of x
// uses angle p = c mod inner. cos and sin of the phase are computed once per angle (not once per copy)
// into two tables on the tape, which backward reuses.
template <class T>
Var<T> rotate_by_phase(Var<T> x /*[..., D]*/, Var<T> phase /*[S...], suffix of [..., D/2]*/) {
  const char* op = "rotate_by_phase";
  require_same_tape(op, x, phase);
  const Shape& xs = x.shape();
  const Shape& ps = phase.shape();
  if (xs.rank == 0 || xs.last() % 2 != 0 || !xs.with_last(xs.last() / 2).ends_with(ps))
    throw ShapeError(std::string(op) + ": x " + xs.str() + " and phase " + ps.str() +
                     " do not fit: x must be a complex tensor [..., D] with D even, and the phase shape a "
                     "suffix of its complex shape [..., D/2]");
  Tape<T>& tape = *x.tape;
  int64_t inner = ps.numel();                                // angles, = complex numbers per block
  int64_t outer = inner ? xs.numel() / 2 / inner : 0;        // blocks of x sharing the angles
  int64_t count = outer * inner;                             // complex numbers in x

  TensorView<T> cos_phase = tape.alloc(ps), sin_phase = tape.alloc(ps);  // [S...]
  TensorView<const T> pv = phase.value();
  for_chunks(inner, [&](int64_t i0, int64_t i1) {
    arr(cos_phase, i0, i1) = arr(pv, i0, i1).cos();
    arr(sin_phase, i0, i1) = arr(pv, i0, i1).sin();
  });

  TensorView<T> y = tape.alloc(xs);  // [..., D]
  const T* xv = x.value().data;
  parallel_for(count, kComplexGrain, [&](int64_t c0, int64_t c1) {
    int64_t p = c0 % inner;
    for (int64_t c = c0; c < c1; ++c) {
      T re = xv[2 * c], im = xv[2 * c + 1], cs = cos_phase[p], sn = sin_phase[p];
      y[2 * c] = re * cs - im * sn;
      y[2 * c + 1] = re * sn + im * cs;
      if (++p == inner) p = 0;
    }
  });

  const T* cos_table = cos_phase.data;
  const T* sin_table = sin_phase.data;
  return tape.record(op, y, {x, phase}, [x, phase, cos_table, sin_table, outer, inner](TensorView<const T> y,
                                                                                       TensorView<const T> dy) {
    // y_re = re cos - im sin, y_im = re sin + im cos   (y = z e^{i phase})
    //   =>  dz = dy e^{-i phase}:  dre += dy_re cos + dy_im sin,  dim += -dy_re sin + dy_im cos
    //   =>  dy/dphase = i y:       dphase += -dy_re y_im + dy_im y_re   (summed over the outer blocks)
    T* dx = x.requires_grad() ? x.grad_accumulator().data : nullptr;
    T* dphase = phase.requires_grad() ? phase.grad_accumulator().data : nullptr;
    auto rotate_back = [&](int64_t c, int64_t p) {  // complex number c of x, angle p
      T dy_re = dy[2 * c], dy_im = dy[2 * c + 1];
      if (dx) {
        T cs = cos_table[p], sn = sin_table[p];
        dx[2 * c] += dy_re * cs + dy_im * sn;
        dx[2 * c + 1] += dy_im * cs - dy_re * sn;
      }
      if (dphase) dphase[p] += dy_im * y[2 * c] - dy_re * y[2 * c + 1];
    };
    if (!dphase) {  // elementwise: any split of the numbers will do
      parallel_for(outer * inner, kComplexGrain, [&](int64_t c0, int64_t c1) {
        int64_t p = c0 % inner;
        for (int64_t c = c0; c < c1; ++c) {
          rotate_back(c, p);
          if (++p == inner) p = 0;
        }
      });
    } else {  // split the angles: each thread owns dphase[p0, p1) and sweeps the blocks in order
      parallel_for(inner, std::max<int64_t>(1, kComplexGrain / std::max<int64_t>(1, outer)), [&](int64_t p0, int64_t p1) {
        for (int64_t block = 0; block < outer; ++block)
          for (int64_t p = p0; p < p1; ++p) rotate_back(block * inner + p, p);
      });
    }
  });
}

// ---- the Euler transform, fused -------------------------------------------------------------------
//
// EulerFormer's rotation of q or k, theta~ = delta arg(z) + b + alpha and z~ = |z| e^{i theta~}, is
// to_polar, a multiply, two adds and from_polar: five nodes and five passes over [B, N, D]. The two ops
// below do it in two: euler_phase makes theta~ (which the phase contrastive loss also reads), and
// with_phase maps z to |z| e^{i theta~}. Same values and gradients as the composition (tests compare
// them), including the zero-gradient convention at z = 0.

// Adds the [cols] column sums of a block to a parameter of shape [cols] or [] (then their sum).
template <class T>
void add_reduced(const T* a, const T* b, int64_t rows, int64_t cols, Var<T> target) {
  TensorView<T> g = target.grad_accumulator();
  if (g.numel() == cols) return add_column_sums(a, b, rows, cols, g.data);
  std::vector<T> columns(size_t(cols), T(0));
  add_column_sums(a, b, rows, cols, columns.data());
  for (T c : columns) g[0] += c;  // a fixed order
}

// The kernels of the two ops below, over the complex numbers [c0, c1) of x (absolute indices, so that
// c % half is the channel and c % inner the angle). The fused transformer layer (model/fused_layer.hpp)
// runs them on its tiles. They work a block of kComplexBlock numbers at a time: the block's magnitudes
// through Eigen's vectorised sqrt (std::sqrt may set errno, which keeps a compiler from vectorising a
// loop that calls it) and its per-channel values copied out first, so that the loops doing the
// arithmetic have no branch and no index arithmetic, and the compiler vectorises them.
inline constexpr int64_t kComplexBlock = 256;

// lambda[i] = |x_i| = sqrt(re^2 + im^2) for the n <= kComplexBlock complex numbers at x.
template <class T>
void magnitudes(const T* x, int64_t n, T* lambda) {
  using A = Eigen::Array<T, Eigen::Dynamic, 1>;
  for (int64_t i = 0; i < n; ++i) lambda[i] = x[2 * i] * x[2 * i] + x[2 * i + 1] * x[2 * i + 1];
  Eigen::Map<A>(lambda, n) = Eigen::Map<A>(lambda, n).sqrt();
}

// dst[i] = the value of number c0 + i: values[(c0 + i) % period] (step 1), values[0] (step 0, one value
// for all), or `none` (values null).
template <class T>
void per_number(const T* values, int64_t step, int64_t period, T none, int64_t c0, int64_t n, T* dst) {
  if (!values || !step) {
    std::fill_n(dst, n, values ? values[0] : none);
    return;
  }
  for (int64_t i = 0; i < n;) {
    const int64_t offset = (c0 + i) % period, m = std::min(period - offset, n - i);
    std::copy_n(values + offset, m, dst + i);
    i += m;
  }
}

// Per number c (channel t = c % half):  theta[c] = atan2(im, re),  out[c] = delta_t theta + bias_t + angle[c % inner].
// delta and bias may be null (1 and 0); their steps are 1 for [D/2] and 0 for [].
template <class T>
void euler_phase_kernel(const T* x, int64_t c0, int64_t c1, int64_t half, const T* delta, int64_t d_step, const T* bias,
                        int64_t b_step, const T* angle, int64_t inner, T* theta, T* out) {
  alignas(64) T dl[kComplexBlock], bl[kComplexBlock], al[kComplexBlock];
  for (int64_t b0 = c0; b0 < c1; b0 += kComplexBlock) {
    const int64_t n = std::min(kComplexBlock, c1 - b0);
    per_number(delta, d_step, half, T(1), b0, n, dl);
    per_number(bias, b_step, half, T(0), b0, n, bl);
    per_number(angle, int64_t(1), inner, T(0), b0, n, al);
    const T* xb = x + 2 * b0;
    T* th = theta + b0;
    T* o = out + b0;
    for (int64_t i = 0; i < n; ++i) th[i] = atan2_vec(xb[2 * i + 1], xb[2 * i]);
    for (int64_t i = 0; i < n; ++i) o[i] = dl[i] * th[i] + bl[i] + al[i];
  }
}

// dx += d out / dx dout:  dre += -dout delta im / lambda^2,  dim += dout delta re / lambda^2  (0 at lambda = 0),
// written as (im / lambda) / lambda so that a tiny lambda cannot overflow.
template <class T>
void euler_phase_dx_kernel(const T* x, const T* dout, int64_t c0, int64_t c1, int64_t half, const T* delta, int64_t d_step, T* dx) {
  alignas(64) T dl[kComplexBlock], lam[kComplexBlock];
  for (int64_t b0 = c0; b0 < c1; b0 += kComplexBlock) {
    const int64_t n = std::min(kComplexBlock, c1 - b0);
    per_number(delta, d_step, half, T(1), b0, n, dl);
    magnitudes(x + 2 * b0, n, lam);
    const T* xb = x + 2 * b0;
    const T* db = dout + b0;
    T* dxb = dx + 2 * b0;
    for (int64_t i = 0; i < n; ++i) {
      const T re = xb[2 * i], im = xb[2 * i + 1], lambda = lam[i];
      const T safe = lambda > T(0) ? lambda : T(1);  // divided by unconditionally: no branch
      const T scale = lambda > T(0) ? db[i] * dl[i] / safe : T(0);
      const T inv = lambda > T(0) ? T(1) / safe : T(0);
      dxb[2 * i] -= scale * (im * inv);
      dxb[2 * i + 1] += scale * (re * inv);
    }
  }
}

// y[c] = |x_c| (cos phase[c], sin phase[c]), cos and sin a block at a time (vectorised by Eigen).
template <class T>
void with_phase_kernel(const T* x, const T* phase, int64_t c0, int64_t c1, T* y) {
  using A = Eigen::Array<T, Eigen::Dynamic, 1>;
  alignas(64) T cs[kComplexBlock], sn[kComplexBlock], lam[kComplexBlock];
  for (int64_t b0 = c0; b0 < c1; b0 += kComplexBlock) {
    const int64_t n = std::min(kComplexBlock, c1 - b0);
    Eigen::Map<A>(cs, n) = Eigen::Map<const A>(phase + b0, n).cos();
    Eigen::Map<A>(sn, n) = Eigen::Map<const A>(phase + b0, n).sin();
    magnitudes(x + 2 * b0, n, lam);
    T* yb = y + 2 * b0;
    for (int64_t i = 0; i < n; ++i) {
      yb[2 * i] = lam[i] * cs[i];
      yb[2 * i + 1] = lam[i] * sn[i];
    }
  }
}

// Backward of with_phase_kernel, y = lambda (cos p, sin p), lambda = |x|:
//   dphase += dy_im y_re - dy_re y_im
//   dlambda = dy_re cos p + dy_im sin p = (dy . y) / lambda,  dx += dlambda x / lambda = (dy . y) x / lambda^2
// dx or dphase may be null.
template <class T>
void with_phase_backward_kernel(const T* x, const T* y, const T* dy, int64_t c0, int64_t c1, T* dx, T* dphase) {
  if (dphase)
    for (int64_t c = c0; c < c1; ++c) dphase[c] += dy[2 * c + 1] * y[2 * c] - dy[2 * c] * y[2 * c + 1];
  if (!dx) return;
  alignas(64) T lam[kComplexBlock];
  for (int64_t b0 = c0; b0 < c1; b0 += kComplexBlock) {
    const int64_t n = std::min(kComplexBlock, c1 - b0);
    magnitudes(x + 2 * b0, n, lam);
    const T* xb = x + 2 * b0;
    const T* yb = y + 2 * b0;
    const T* dyb = dy + 2 * b0;
    T* dxb = dx + 2 * b0;
    for (int64_t i = 0; i < n; ++i) {
      const T re = xb[2 * i], im = xb[2 * i + 1], lambda = lam[i];
      const T safe = lambda > T(0) ? lambda : T(1);
      const T inv = lambda > T(0) ? T(1) / safe : T(0);
      const T scale = (dyb[2 * i] * yb[2 * i] + dyb[2 * i + 1] * yb[2 * i + 1]) * inv;
      dxb[2 * i] += scale * (re * inv);
      dxb[2 * i + 1] += scale * (im * inv);
    }
  }
}

// theta~ = delta * arg(x) + bias + angle: x [..., D] -> [..., D/2]. delta and bias are [] or [D/2]
// (pass an empty Var{} to leave one out: delta 1, bias 0); angle [S...] is a suffix of [..., D/2]
// (typically [N, D/2], the same for every list). arg is atan2 (atan2_vec), with gradient 0 at x = 0.
template <class T>
Var<T> euler_phase(Var<T> x /*[..., D]*/, Var<T> delta, Var<T> bias, Var<T> angle /*[S...]*/) {
  const char* op = "euler_phase";
  Tape<T>& tape = *x.tape;
  const Shape phase_shape = complex_shape(op, x.shape());  // [..., D/2]
  const int64_t half = phase_shape.last(), count = phase_shape.numel();
  for (Var<T> v : {delta, bias})
    if (v.tape && !(v.numel() == 1 || v.shape() == Shape{half}))
      throw ShapeError(std::string(op) + ": delta and bias must be [] or [" + std::to_string(half) + "], got " + v.shape().str());
  require_same_tape(op, x, angle);
  for (Var<T> v : {delta, bias})
    if (v.tape) require_same_tape(op, x, v);
  if (!phase_shape.ends_with(angle.shape()) || angle.numel() == 0)
    throw ShapeError(std::string(op) + ": angle " + angle.shape().str() + " is not a suffix of the phase shape " + phase_shape.str());
  const int64_t inner = angle.numel();  // angles per block; the blocks share them

  TensorView<T> theta = tape.alloc(phase_shape);  // arg(x), kept for the gradient of delta
  TensorView<T> out = tape.alloc(phase_shape);
  const T* xv = x.value().data;
  const T* dv = delta.tape ? delta.value().data : nullptr;
  const T* bv = bias.tape ? bias.value().data : nullptr;
  const int64_t d_step = delta.tape && delta.numel() > 1 ? 1 : 0, b_step = bias.tape && bias.numel() > 1 ? 1 : 0;
  const T* av = angle.value().data;
  parallel_for(count, kComplexGrain, [&](int64_t c0, int64_t c1) {
    euler_phase_kernel(xv, c0, c1, half, dv, d_step, bv, b_step, av, inner, theta.data, out.data);
  });

  const T* theta_kept = theta.data;
  std::array<Var<T>, 4> inputs{x, angle};
  size_t n_inputs = 2;
  for (Var<T> v : {delta, bias})
    if (v.tape) inputs[n_inputs++] = v;
  return tape.record_n(op, out, inputs.data(), n_inputs,
                       [x, delta, bias, angle, theta_kept, count, half, inner, d_step](auto, TensorView<const T> dout) {
    // out = delta theta + b + angle, theta = atan2(im, re)
    //   =>  dx (euler_phase_dx_kernel),  ddelta += sum dout theta,  db += sum dout  (over rows; and over
    //       channels when []),  dangle += dout summed over the blocks that share the angle
    if (x.requires_grad()) {
      T* dx = x.grad_accumulator().data;
      const T* xv = x.value().data;
      const T* dv = delta.tape ? delta.value().data : nullptr;
      parallel_for(count, kComplexGrain, [&](int64_t c0, int64_t c1) {
        euler_phase_dx_kernel(xv, dout.data, c0, c1, half, dv, d_step, dx);
      });
    }
    int64_t rows = count / half;
    if (delta.tape && delta.requires_grad()) add_reduced(dout.data, theta_kept, rows, half, delta);
    if (bias.tape && bias.requires_grad()) add_reduced(dout.data, static_cast<const T*>(nullptr), rows, half, bias);
    if (angle.requires_grad()) add_column_sums(dout.data, static_cast<const T*>(nullptr), count / inner, inner,
                                               angle.grad_accumulator().data);
  });
}

// z~ = |x| e^{i phase}: each complex number of x keeps its magnitude and takes the given phase.
// x [..., D], phase [..., D/2] -> [..., D]. The magnitude is sqrt(re^2 + im^2) (no hypot: activations
// never come near float's overflow); its gradient is 0 at x = 0, as complex_abs.
template <class T>
Var<T> with_phase(Var<T> x /*[..., D]*/, Var<T> phase /*[..., D/2]*/) {
  const char* op = "with_phase";
  require_same_tape(op, x, phase);
  const Shape phase_shape = complex_shape(op, x.shape());
  check_same(op, phase_shape, phase.shape());
  const int64_t count = phase_shape.numel();
  TensorView<T> y = x.tape->alloc(x.shape());
  const T* xv = x.value().data;
  const T* pv = phase.value().data;
  parallel_for(count, kComplexGrain, [&](int64_t c0, int64_t c1) { with_phase_kernel(xv, pv, c0, c1, y.data); });
  return x.tape->record(op, y, {x, phase}, [x, phase, count](TensorView<const T> y, TensorView<const T> dy) {
    // y = lambda (cos p, sin p), lambda = |x|  (with_phase_backward_kernel)
    T* dx = x.requires_grad() ? x.grad_accumulator().data : nullptr;
    T* dphase = phase.requires_grad() ? phase.grad_accumulator().data : nullptr;
    const T* xv = x.value().data;
    parallel_for(count, kComplexGrain, [&](int64_t c0, int64_t c1) {
      with_phase_backward_kernel(xv, y.data, dy.data, c0, c1, dx, dphase);
    });
  });
}

// ---- products -----------------------------------------------------------------------------------

// y_t = a_t b_t (complex product): a [..., D], b [..., D] (same shape) -> [..., D].
template <class T>
Var<T> complex_mul(Var<T> a /*[..., D]*/, Var<T> b /*[..., D]*/) {
  const char* op = "complex_mul";
  require_same_tape(op, a, b);
  check_same(op, a.shape(), b.shape());
  int64_t count = complex_shape(op, a.shape()).numel();
  TensorView<T> y = a.tape->alloc(a.shape());  // [..., D]
  const T* av = a.value().data;
  const T* bv = b.value().data;
  parallel_for(count, kComplexGrain, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      T a_re = av[2 * c], a_im = av[2 * c + 1], b_re = bv[2 * c], b_im = bv[2 * c + 1];
      y[2 * c] = a_re * b_re - a_im * b_im;
      y[2 * c + 1] = a_re * b_im + a_im * b_re;
    }
  });
  return a.tape->record(op, y, {a, b}, [a, b, count](auto, TensorView<const T> dy) {
    // y_re = a_re b_re - a_im b_im, y_im = a_re b_im + a_im b_re
    //   =>  da = dy conj(b):  da_re += dy_re b_re + dy_im b_im,  da_im += dy_im b_re - dy_re b_im
    //   =>  db = dy conj(a):  db_re += dy_re a_re + dy_im a_im,  db_im += dy_im a_re - dy_re a_im
    T* da = a.requires_grad() ? a.grad_accumulator().data : nullptr;
    T* db = b.requires_grad() ? b.grad_accumulator().data : nullptr;
    const T* av = a.value().data;
    const T* bv = b.value().data;
    parallel_for(count, kComplexGrain, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        T a_re = av[2 * c], a_im = av[2 * c + 1], b_re = bv[2 * c], b_im = bv[2 * c + 1];
        T dy_re = dy[2 * c], dy_im = dy[2 * c + 1];
        if (da) {
          da[2 * c] += dy_re * b_re + dy_im * b_im;
          da[2 * c + 1] += dy_im * b_re - dy_re * b_im;
        }
        if (db) {  // after da: correct also when a and b are the same node (then da == db)
          db[2 * c] += dy_re * a_re + dy_im * a_im;
          db[2 * c + 1] += dy_im * a_re - dy_re * a_im;
        }
      }
    });
  });
}

// y = conj(z) = (re, -im): [..., D] -> [..., D].
template <class T>
Var<T> conj(Var<T> x /*[..., D]*/) {
  int64_t count = complex_shape("conj", x.shape()).numel();
  TensorView<T> y = x.tape->alloc(x.shape());  // [..., D]
  const T* xv = x.value().data;
  parallel_for(count, kComplexGrain, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      y[2 * c] = xv[2 * c];
      y[2 * c + 1] = -xv[2 * c + 1];
    }
  });
  return x.tape->record("conj", y, {x}, [x, count](auto, TensorView<const T> dy) {
    // y_re = re, y_im = -im  =>  dre += dy_re, dim -= dy_im
    T* dx = x.grad_accumulator().data;
    parallel_for(count, kComplexGrain, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        dx[2 * c] += dy[2 * c];
        dx[2 * c + 1] -= dy[2 * c + 1];
      }
    });
  });
}

// y = Re(sum_t a_t conj(b_t)) = sum_t lambda_t mu_t cos(theta_t - phi_t) over the last axis:
// a [..., D], b [..., D] (same shape) -> [...]. This is the real dot product of the rows.
template <class T>
Var<T> real_inner(Var<T> a /*[..., D]*/, Var<T> b /*[..., D]*/) {
  const char* op = "real_inner";
  require_same_tape(op, a, b);
  check_same(op, a.shape(), b.shape());
  complex_shape(op, a.shape());
  int64_t width = a.shape().last();                       // D
  TensorView<T> y = a.tape->alloc(a.shape().without(a.shape().rank - 1));  // [...]
  int64_t rows = y.numel();
  using Row = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
  const T* av = a.value().data;
  const T* bv = b.value().data;
  parallel_for(rows, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, width)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) y[r] = (Row(av + r * width, width) * Row(bv + r * width, width)).sum();
  });
  return a.tape->record(op, y, {a, b}, [a, b, rows, width](auto, TensorView<const T> dy) {
    // y[r] = sum_i a[r, i] b[r, i]   (a_re b_re + a_im b_im summed over the pairs)
    //   =>  da[r, :] += dy[r] b[r, :],  db[r, :] += dy[r] a[r, :]
    using RowOut = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
    T* da = a.requires_grad() ? a.grad_accumulator().data : nullptr;
    T* db = b.requires_grad() ? b.grad_accumulator().data : nullptr;
    const T* av = a.value().data;
    const T* bv = b.value().data;
    parallel_for(rows, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, width)), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        if (da) RowOut(da + r * width, width) += dy[r] * Row(bv + r * width, width);
        if (db) RowOut(db + r * width, width) += dy[r] * Row(av + r * width, width);
      }
    });
  });
}

}  // namespace euler
