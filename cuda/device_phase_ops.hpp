// cuda/device_phase_ops.hpp: the complex ops of the GPU path and the phase contrastive loss.
//
// rotate_by_phase (input rotary table, RoPE), euler_phase and with_phase (the fused Euler transform),
// position_angles (learnable frequencies) and phase_contrastive_loss, each mirroring the CPU op of the same
// name (ops/complex.hpp, model/contrastive.hpp) through the per-element math of device_math.hpp. Complex
// numbers are interleaved pairs (re, im); per-number tensors have shape [..., D/2] (h = D/2 below).
// Gradients of angles shared by many numbers are per-number shares summed with column_sums.
//
//     auto phase = euler::gpu::euler_phase(q, delta, bias, alpha);  // q [B, N, D], alpha [N, h] -> [B, N, h]
//     auto q_rot = euler::gpu::with_phase(q, phase);                 // [B, N, D]
//     auto l = euler::gpu::phase_contrastive_loss(phase, w, ids, count, tep, lamb, masked, true, rng);
#pragma once

#include "device_ops.hpp"

namespace euler::gpu {

inline Shape complex_shape_of(const char* op, const Shape& s) {
  if (s.rank == 0 || s.last() % 2 != 0)
    throw ShapeError(std::string(op) + ": shape " + s.str() + " is not a complex tensor [..., D] with D even");
  return s.with_last(s.last() / 2);
}

// ---- rotate_by_phase -----------------------------------------------------------------------------

struct CosSinKernel {  // cs[p] = cos phase[p], sn[p] = sin phase[p]
  float *cs, *sn;
  const float* phase;
  EULER_HD void operator()(int64_t p) const {
    cs[p] = cosf(phase[p]);
    sn[p] = sinf(phase[p]);
  }
};
struct RotateKernel {  // complex number c turned by angle c mod inner
  float* y;
  const float *x, *cs, *sn;
  int64_t inner;
  EULER_HD void operator()(int64_t c) const {
    int64_t p = c % inner;
    device::rotate(x[2 * c], x[2 * c + 1], cs[p], sn[p], &y[2 * c], &y[2 * c + 1]);
  }
};
struct RotateBackwardKernel {  // dx of number c, and its share of d(angle) (either may be null)
  float *dx, *share;
  const float *y, *dy, *cs, *sn;
  int64_t inner;
  EULER_HD void operator()(int64_t c) const {
    int64_t p = c % inner;
    float s = device::rotate_backward(y[2 * c], y[2 * c + 1], cs[p], sn[p], dy[2 * c], dy[2 * c + 1], dx ? &dx[2 * c] : nullptr,
                                      dx ? &dx[2 * c + 1] : nullptr);
    if (share) share[c] = s;
  }
};

// y = z e^{i phase}: x [..., D], phase [S...] a suffix of [..., D/2] (shared by the leading blocks).
template <class Device>
DVar<Device> rotate_by_phase(DVar<Device> x /*[..., D]*/, DVar<Device> phase /*[S...]*/) {
  DeviceTape<Device>& tape = *x.tape;
  const Shape cs_shape = complex_shape_of("device rotate_by_phase", x.shape());
  if (!cs_shape.ends_with(phase.shape()) || phase.numel() == 0)
    throw ShapeError("device rotate_by_phase: phase " + phase.shape().str() + " is not a suffix of " + cs_shape.str());
  const int64_t inner = phase.numel(), count = cs_shape.numel();
  float* cs = tape.alloc(phase.shape()).data;
  float* sn = tape.alloc(phase.shape()).data;
  tape.device().each(inner, CosSinKernel{cs, sn, phase.value().data});
  DeviceView<float> y = tape.alloc(x.shape());
  tape.device().each(count, RotateKernel{y.data, x.value().data, cs, sn, inner});
  return tape.record("rotate_by_phase", y, {x, phase}, [x, phase, cs, sn, inner, count](DeviceView<const float> yv,
                                                                                       DeviceView<const float> dy) {
    // y = z e^{i phase}  =>  dz += dy e^{-i phase},  dphase += sum over blocks of (dy_im y_re - dy_re y_im)
    DeviceTape<Device>& tape = *x.tape;
    float* dx = x.requires_grad() ? x.grad_accumulator() : nullptr;
    float* share = phase.requires_grad() ? tape.alloc(Shape{count}).data : nullptr;
    tape.device().each(count, RotateBackwardKernel{dx, share, yv.data, dy.data, cs, sn, inner});
    if (share) column_sums(tape, share, count / inner, inner, phase.grad_accumulator());
  });
}

// ---- the Euler transform -------------------------------------------------------------------------

struct EulerPhaseKernel {  // out = delta atan2(im, re) + bias + angle, theta kept
  float *out, *theta;
  const float *x, *delta, *bias, *angle;
  int64_t half, inner, d_step, b_step;
  EULER_HD void operator()(int64_t c) const {
    int64_t t = c % half;
    out[c] = device::euler_phase(x[2 * c], x[2 * c + 1], delta ? delta[t * d_step] : 1.0f, bias ? bias[t * b_step] : 0.0f,
                                 angle[c % inner], &theta[c]);
  }
};
struct EulerPhaseBackwardKernel {  // dx of number c
  float* dx;
  const float *x, *dout, *delta;
  int64_t half, d_step;
  EULER_HD void operator()(int64_t c) const {
    device::euler_phase_backward(x[2 * c], x[2 * c + 1], dout[c], delta ? delta[(c % half) * d_step] : 1.0f, &dx[2 * c],
                                 &dx[2 * c + 1]);
  }
};
struct ProductKernel {  // out[i] = a[i] b[i]
  float* out;
  const float *a, *b;
  EULER_HD void operator()(int64_t i) const { out[i] = a[i] * b[i]; }
};

// theta~ = delta arg(x) + bias + angle: x [..., D] -> [..., D/2]. delta and bias are [] or [D/2], or
// undefined (delta 1, bias 0); angle [S...] a suffix of [..., D/2]. Gradient 0 at x = 0.
template <class Device>
DVar<Device> euler_phase(DVar<Device> x /*[..., D]*/, DVar<Device> delta, DVar<Device> bias, DVar<Device> angle /*[S...]*/) {
  DeviceTape<Device>& tape = *x.tape;
  const Shape phase_shape = complex_shape_of("device euler_phase", x.shape());
  const int64_t half = phase_shape.last(), count = phase_shape.numel();
  for (DVar<Device> v : {delta, bias})
    if (v.defined() && !(v.numel() == 1 || v.shape() == Shape{half}))
      throw ShapeError("device euler_phase: delta and bias must be [] or [" + std::to_string(half) + "], got " + v.shape().str());
  if (!phase_shape.ends_with(angle.shape()) || angle.numel() == 0)
    throw ShapeError("device euler_phase: angle " + angle.shape().str() + " is not a suffix of " + phase_shape.str());
  const int64_t inner = angle.numel();
  const int64_t d_step = delta.defined() && delta.numel() > 1 ? 1 : 0, b_step = bias.defined() && bias.numel() > 1 ? 1 : 0;
  float* theta = tape.alloc(phase_shape).data;
  DeviceView<float> out = tape.alloc(phase_shape);
  tape.device().each(count, EulerPhaseKernel{out.data, theta, x.value().data, delta.defined() ? delta.value().data : nullptr,
                                             bias.defined() ? bias.value().data : nullptr, angle.value().data, half, inner,
                                             d_step, b_step});
  return tape.record("euler_phase", out, {x, angle, delta, bias},
                     [x, delta, bias, angle, theta, count, half, inner, d_step](auto, DeviceView<const float> dout) {
    // out = delta theta + b + angle, theta = atan2(im, re)
    //   =>  dx:  dre += -dout delta im / lambda^2,  dim += dout delta re / lambda^2  (0 at lambda = 0)
    //       ddelta += sum dout theta,  db += sum dout  (over rows; over channels too when [])
    //       dangle += dout summed over the blocks that share the angle
    DeviceTape<Device>& tape = *x.tape;
    if (x.requires_grad())
      tape.device().each(count, EulerPhaseBackwardKernel{x.grad_accumulator(), x.value().data, dout.data,
                                                         delta.defined() ? delta.value().data : nullptr, half, d_step});
    auto add_reduced = [&](const float* values, DVar<Device> target) {  // to [h] per channel, or to [] in total
      if (target.numel() == half && half > 1) column_sums(tape, values, count / half, half, target.grad_accumulator());
      else column_sums(tape, values, count, 1, target.grad_accumulator());
    };
    if (delta.defined() && delta.requires_grad()) {
      float* scratch = tape.alloc(Shape{count}).data;
      tape.device().each(count, ProductKernel{scratch, dout.data, theta});
      add_reduced(scratch, delta);
    }
    if (bias.defined() && bias.requires_grad()) add_reduced(dout.data, bias);
    if (angle.requires_grad()) column_sums(tape, dout.data, count / inner, inner, angle.grad_accumulator());
  });
}

struct WithPhaseKernel {
  float* y;
  const float *x, *phase;
  EULER_HD void operator()(int64_t c) const { device::with_phase(x[2 * c], x[2 * c + 1], phase[c], &y[2 * c], &y[2 * c + 1]); }
};
struct WithPhaseBackwardKernel {  // dx and dphase of number c (either may be null)
  float *dx, *dphase;
  const float *x, *y, *dy;
  EULER_HD void operator()(int64_t c) const {
    device::with_phase_backward(x[2 * c], x[2 * c + 1], y[2 * c], y[2 * c + 1], dy[2 * c], dy[2 * c + 1], dx ? &dx[2 * c] : nullptr,
                                dx ? &dx[2 * c + 1] : nullptr, dphase ? &dphase[c] : nullptr);
  }
};

// z~ = |x| e^{i phase}: x [..., D], phase [..., D/2] -> [..., D]. Gradient 0 at x = 0.
template <class Device>
DVar<Device> with_phase(DVar<Device> x /*[..., D]*/, DVar<Device> phase /*[..., D/2]*/) {
  DeviceTape<Device>& tape = *x.tape;
  check_same("device with_phase", complex_shape_of("device with_phase", x.shape()), phase.shape());
  const int64_t count = phase.numel();
  DeviceView<float> y = tape.alloc(x.shape());
  tape.device().each(count, WithPhaseKernel{y.data, x.value().data, phase.value().data});
  return tape.record("with_phase", y, {x, phase}, [x, phase, count](DeviceView<const float> yv, DeviceView<const float> dy) {
    // y = lambda (cos p, sin p)  =>  dphase += dy_im y_re - dy_re y_im,  dx += (dy . y) x / lambda^2
    float* dx = x.requires_grad() ? x.grad_accumulator() : nullptr;
    float* dphase = phase.requires_grad() ? phase.grad_accumulator() : nullptr;
    x.tape->device().each(count, WithPhaseBackwardKernel{dx, dphase, x.value().data, yv.data, dy.data});
  });
}

struct PositionAnglesKernel {  // angle[j, t] = j freq[t]
  float* angle;
  const float* freq;
  int64_t h;
  EULER_HD void operator()(int64_t i) const { angle[i] = float(i / h) * freq[i % h]; }
};
struct PositionAnglesBackwardKernel {  // dfreq[t] += sum_j j dangle[j, t]
  float* dfreq;
  const float* dangle;
  int64_t N, h;
  EULER_HD void operator()(int64_t t) const {
    float total = 0.0f;
    for (int64_t j = 0; j < N; ++j) total += float(j) * dangle[j * h + t];
    dfreq[t] += total;
  }
};

// The positional angles j g_t of learnable frequencies g [h] for positions 0..N-1: [N, h] (the CPU's
// matmul(positions [N, 1], g [1, h])).
template <class Device>
DVar<Device> position_angles(DVar<Device> freq /*[h]*/, int64_t N) {
  DeviceTape<Device>& tape = *freq.tape;
  const int64_t h = freq.numel();
  DeviceView<float> angle = tape.alloc(Shape{N, h});
  tape.device().each(N * h, PositionAnglesKernel{angle.data, freq.value().data, h});
  return tape.record("position_angles", angle, {freq}, [freq, N, h](auto, DeviceView<const float> dangle) {
    // angle[j, t] = j g_t  =>  dg_t += sum_j j dangle[j, t]
    freq.tape->device().each(h, PositionAnglesBackwardKernel{freq.grad_accumulator(), dangle.data, N, h});
  });
}

// ---- the phase contrastive loss --------------------------------------------------------------------

struct ContrastiveFeaturesKernel {  // per (position r, channel i): V, and a = [w cos P, w sin P], c = [cos V, sin V]
  float *view, *a, *c;
  const float *p, *w;
  int64_t h;
  device::DropoutKey key;
  bool two_views;
  EULER_HD void operator()(int64_t e) const {
    int64_t r = e / h, i = e % h, o = r * 2 * h + i;
    view[e] = device::contrastive_view(p[e], two_views, device::dropout_keep(key, e));
    device::contrastive_features(p[e], view[e], w[i], &a[o], &a[o + h], &c[o], &c[o + h]);
  }
};
struct MaskPaddingKeysKernel {  // Z[b, t, s] += -10000 where ids[b, s] == 0
  float* z;
  const int32_t* ids;
  int64_t N;
  EULER_HD void operator()(int64_t i) const {
    int64_t s = i % N, b = i / (N * N);
    if (!key_visible(ids + b * N, s, 0, /*causal=*/false)) z[i] += kHiddenKeyLogit;
  }
};
struct ContrastiveRowKernel {  // row r = (b, t): Z row -> softmax in place; term = lse - S[t, t] / tep (0 if left out)
  float *probs, *term;
  const float *p, *view, *w;
  const int32_t* ids;
  int64_t N, h;
  float inv_tep;
  bool masked;
  EULER_HD void operator()(int64_t r) const {
    float lse = device::contrastive_softmax_row(probs + r * N, N);
    float positive = device::contrastive_positive(p + r * h, view + r * h, w, h, inv_tep);
    term[r] = (!masked || ids[r] != 0) ? lse - positive : 0.0f;
  }
};
struct ContrastiveWeightsKernel {  // ut[r] = dloss lamb / count / tep for the queries in the mean, else 0
  float* ut;
  const float* dloss;
  const int32_t* ids;
  float scale, inv_tep;
  bool masked;
  EULER_HD void operator()(int64_t r) const { ut[r] = (!masked || ids[r] != 0) ? dloss[0] * scale * inv_tep : 0.0f; }
};
struct RowScaleKernel {  // ds[r, s] = probs[r, s] ut[r]
  float* ds;
  const float *probs, *ut;
  int64_t N;
  EULER_HD void operator()(int64_t i) const { ds[i] = probs[i] * ut[i / N]; }
};
struct ContrastiveBackwardKernel {  // per (r, i): dP (through both views), and w's share
  float *dp, *dw_share;
  const float *p, *view, *w, *da, *dc, *ut;
  int64_t h;
  device::DropoutKey key;
  bool two_views;
  EULER_HD void operator()(int64_t e) const {
    int64_t r = e / h, i = e % h, o = r * 2 * h + i;
    float direct, dv, share;
    device::contrastive_backward(p[e], view[e], w[i], da[o], da[o + h], dc[o], dc[o + h], ut[r], &direct, &dv, &share);
    if (dp) dp[e] += direct + (two_views ? (device::dropout_keep(key, e) ? 2.0f * dv : 0.0f) : dv);
    if (dw_share) dw_share[e] = share;
  }
};

// The phase contrastive loss of one set of phases, as phase_contrastive_loss (model/contrastive.hpp):
//   lamb * mean over the counted (b, t) of [ log(sum_s exp(S[t, s] / tep) + 1e-5) - S[t, t] / tep ],
//   S[t, s] = sum_i w_i cos(P[t, i] - V[s, i]),  V = dropout(P, 0.5) when two_views, else P.
// masked: padding keys leave the sums and padding queries the mean; `count` = counted queries (B N in the
// authors' mode). The view's mask takes B N h draws from rng when two_views, as the CPU.
template <class Device>
DVar<Device> phase_contrastive_loss(DVar<Device> phases /*[B, N, h]*/, DVar<Device> w /*[h]*/, DeviceView<const int32_t> ids /*[B, N]*/,
                                    int64_t count, double tep, double lamb, bool masked, bool two_views, RngState& rng) {
  DeviceTape<Device>& tape = *phases.tape;
  if (phases.shape().rank != 3 || !(w.shape() == Shape{phases.size(2)}) || !(ids.shape == Shape{phases.size(0), phases.size(1)}))
    throw ShapeError("device phase_contrastive_loss: phases " + phases.shape().str() + ", w " + w.shape().str() + ", ids " + ids.shape.str());
  const int64_t B = phases.size(0), N = phases.size(1), h = phases.size(2), rows = B * N;
  device::DropoutKey key;
  if (two_views) {
    key = device::dropout_key(rng.seed, rng.counter, 0.5);
    rng.counter += uint64_t(rows * h);
  }
  const float inv_tep = float(1 / tep), scale = float(lamb / double(count > 0 ? count : 1));
  const float *pv = phases.value().data, *wv = w.value().data;
  float* view = tape.alloc(phases.shape()).data;
  float* a = tape.alloc(Shape{B, N, 2 * h}).data;
  float* c = tape.alloc(Shape{B, N, 2 * h}).data;
  tape.device().each(rows * h, ContrastiveFeaturesKernel{view, a, c, pv, wv, h, key, two_views});
  float* probs = tape.alloc(Shape{B, N, N}).data;  // Z = S / tep, then its softmax rows (kept for the backward)
  gemm_stored(tape.device(), a, N, 2 * h, false, c, N, 2 * h, true, probs, false, inv_tep, B, N * 2 * h, N * 2 * h, N * N);
  if (masked) tape.device().each(B * N * N, MaskPaddingKeysKernel{probs, ids.data, N});
  float* term = tape.alloc(Shape{rows}).data;
  tape.device().each(rows, ContrastiveRowKernel{probs, term, pv, view, wv, ids.data, N, h, inv_tep, masked});
  DeviceView<float> loss = tape.alloc(Shape{});
  column_sums(tape, term, rows, 1, loss.data, false);
  tape.device().each(1, ScaleKernel{loss.data, scale});

  const int32_t* kept_ids = ids.data;
  return tape.record("phase_contrastive_loss", loss, {phases, w},
                     [phases, w, kept_ids, view, a, c, probs, B, N, h, rows, inv_tep, scale, masked, two_views, key](
                         auto, DeviceView<const float> dloss) {
    // With ut = dloss lamb / count / tep (0 for a query the mean leaves out):
    //   from lse_t:  dZ[t, :] = probs[t, :] ut tep, dS = dZ / tep,  da = dS c,  dc = dS^T a
    //   then per element (device::contrastive_backward), and V = 2 P where kept (P without dropout)
    DeviceTape<Device>& tape = *phases.tape;
    Device& device = tape.device();
    float* ut = tape.alloc(Shape{rows}).data;
    device.each(rows, ContrastiveWeightsKernel{ut, dloss.data, kept_ids, scale, inv_tep, masked});
    float* ds = tape.alloc(Shape{B, N, N}).data;
    device.each(B * N * N, RowScaleKernel{ds, probs, ut, N});
    float* da = tape.alloc(Shape{B, N, 2 * h}).data;
    float* dc = tape.alloc(Shape{B, N, 2 * h}).data;
    gemm_stored(device, ds, N, N, false, c, N, 2 * h, false, da, false, 1.0f, B, N * N, N * 2 * h, N * 2 * h);
    gemm_stored(device, ds, N, N, true, a, N, 2 * h, false, dc, false, 1.0f, B, N * N, N * 2 * h, N * 2 * h);
    float* dp = phases.requires_grad() ? phases.grad_accumulator() : nullptr;
    float* dw_share = w.requires_grad() ? tape.alloc(Shape{rows, h}).data : nullptr;
    device.each(rows * h, ContrastiveBackwardKernel{dp, dw_share, phases.value().data, view, w.value().data, da, dc, ut, h, key, two_views});
    if (dw_share) column_sums(tape, dw_share, rows, h, w.grad_accumulator());
  });
}

}  // namespace euler::gpu
