// cuda/device_ops.hpp: the ops of the GPU path (all but the complex ones, see device_phase_ops.hpp).
//
// One function per op, as on the CPU: shape checks, the forward as kernels (functor structs whose
// operator() calls include/euler/cuda/device_math.hpp), then tape.record with the backward closure right
// below, restating the forward. Every op mirrors the CPU op of the same name (ops/*.hpp); products go
// through gemm_stored, which takes the CPU's gemm arguments (row-major stored matrices) and maps them onto
// cuBLAS's column-major call. Sums over rows (bias, LayerNorm and phase-parameter gradients) are products
// with a ones vector, column_sums.
//
// Letters: B batch, N list length (Nq queries), S keys, D hidden, H heads, dh head size, K items, M rows.
//
//     auto h = euler::gpu::linear(x, w, b);                 // x [B, N, in] -> [B, N, out]
//     auto p = euler::gpu::softmax(logits, mask);           // [B, H, Nq, S] with mask [B, 1, Nq, S]
//     auto l = euler::gpu::cross_entropy(logits, targets, count);
#pragma once

#include <cmath>
#include <string>

#include "device_tape.hpp"
#include "euler/model/forward.hpp"

namespace euler::gpu {

// ---- products ------------------------------------------------------------------------------------

// C (+)= alpha op(A) op(B) on row-major stored matrices, as the CPU's gemm (ops/matmul.hpp): A stored
// [ar, ac], B [br, bc], C [m, n]; `batch` of them, `stride_*` elements apart. Row-major C is column-major
// C^T = op(B)^T op(A)^T, and a stored row-major matrix is its own transpose in column-major, so the
// cuBLAS call takes B first with trans_b, then A with trans_a.
template <class Device>
void gemm_stored(Device& device, const float* a, int64_t ar, int64_t ac, bool trans_a, const float* b, int64_t br, int64_t bc,
                 bool trans_b, float* c, bool accumulate, float alpha = 1, int64_t batch = 1, int64_t stride_a = 0,
                 int64_t stride_b = 0, int64_t stride_c = 0) {
  int64_t m = trans_a ? ac : ar, k = trans_a ? ar : ac, n = trans_b ? br : bc;
  if (m == 0 || n == 0 || batch == 0) return;
  GemmCall call;
  call.trans_a = trans_b;
  call.trans_b = trans_a;
  call.m = int(n);
  call.n = int(m);
  call.k = int(k);
  call.alpha = alpha;
  call.a = b;
  call.lda = int(bc);
  call.stride_a = stride_b;
  call.b = a;
  call.ldb = int(ac);
  call.stride_b = stride_a;
  call.beta = accumulate ? 1.0f : 0.0f;
  call.c = c;
  call.ldc = int(n);
  call.stride_c = stride_c;
  call.batch = int(batch);
  if (k == 0) {  // an empty sum: C = beta C
    if (!accumulate) device.zero(c, sizeof(float) * size_t(batch * m * n));
    return;
  }
  device.gemm(call);
}

// out[c] (+)= sum_r a[r, c] for a [rows, cols]: ones [1, rows] times a.
template <class Device>
void column_sums(DeviceTape<Device>& tape, const float* a, int64_t rows, int64_t cols, float* out, bool accumulate = true) {
  if (rows == 0) {
    if (!accumulate) tape.device().zero(out, sizeof(float) * size_t(cols));
    return;
  }
  gemm_stored(tape.device(), tape.ones(rows), 1, rows, false, a, rows, cols, false, out, accumulate);
}

// ---- elementwise ---------------------------------------------------------------------------------

struct AddBroadcastKernel {  // y[i] = a[i] + b[i % inner]
  float* y;
  const float *a, *b;
  int64_t inner;
  EULER_HD void operator()(int64_t i) const { y[i] = a[i] + b[i % inner]; }
};

// y = a + b, b of a's shape or a suffix of it (broadcast over the leading dims; a scalar is a suffix).
template <class Device>
DVar<Device> add(DVar<Device> a /*[...]*/, DVar<Device> b /*[suffix of a]*/) {
  DeviceTape<Device>& tape = *a.tape;
  if (!a.shape().ends_with(b.shape()))
    throw ShapeError("device add: shapes " + a.shape().str() + " and " + b.shape().str() + " do not broadcast (b must be a suffix of a)");
  const int64_t n = a.numel(), inner = b.numel();
  DeviceView<float> y = tape.alloc(a.shape());
  tape.device().each(n, AddBroadcastKernel{y.data, a.value().data, b.value().data, inner});
  return tape.record("add", y, {a, b}, [a, b, n, inner](auto, DeviceView<const float> dy) {
    // y = a + b  =>  da += dy,  db += dy summed over the broadcast rows
    if (a.requires_grad()) a.tape->device().each(n, AddIntoKernel{a.grad_accumulator(), dy.data, 1.0f});
    if (b.requires_grad()) column_sums(*b.tape, dy.data, n / inner, inner, b.grad_accumulator());
  });
}

struct AddScalarKernel {  // x[i] += s[0]
  float* x;
  const float* s;
  EULER_HD void operator()(int64_t i) const { x[i] += s[0]; }
};

// The sum of every element, [].
template <class Device>
DVar<Device> sum_all(DVar<Device> x /*[...]*/) {
  DeviceTape<Device>& tape = *x.tape;
  const int64_t n = x.numel();
  DeviceView<float> y = tape.alloc(Shape{});
  column_sums(tape, x.value().data, n, 1, y.data, false);
  return tape.record("sum_all", y, {x}, [x, n](auto, DeviceView<const float> dy) {
    // y = sum x  =>  dx += dy[0]
    x.tape->device().each(n, AddScalarKernel{x.grad_accumulator(), dy.data});
  });
}

struct UnaryKernel {  // y = act(x) (GELU or ReLU)
  float* y;
  const float* x;
  bool gelu;
  EULER_HD void operator()(int64_t i) const { y[i] = gelu ? device::gelu(x[i]) : device::relu(x[i]); }
};
struct UnaryBackwardKernel {  // dx += dy act'(x)
  float* dx;
  const float *dy, *x;
  bool gelu;
  EULER_HD void operator()(int64_t i) const { dx[i] += dy[i] * (gelu ? device::gelu_grad(x[i]) : device::relu_grad(x[i])); }
};

// Exact (erf) GELU, or ReLU.
template <class Device>
DVar<Device> activation(DVar<Device> x /*[...]*/, bool use_gelu) {
  DeviceTape<Device>& tape = *x.tape;
  const int64_t n = x.numel();
  DeviceView<float> y = tape.alloc(x.shape());
  tape.device().each(n, UnaryKernel{y.data, x.value().data, use_gelu});
  return tape.record(use_gelu ? "gelu" : "relu", y, {x}, [x, n, use_gelu](auto, DeviceView<const float> dy) {
    // y = act(x)  =>  dx += dy act'(x)
    x.tape->device().each(n, UnaryBackwardKernel{x.grad_accumulator(), dy.data, x.value().data, use_gelu});
  });
}

struct DropoutKernel {  // y = keep ? x scale : 0 (and the same for the backward on dy)
  float* y;
  const float* x;
  device::DropoutKey key;
  float scale;
  bool accumulate;
  EULER_HD void operator()(int64_t i) const {
    float v = device::dropout_keep(key, i) ? x[i] * scale : 0.0f;
    y[i] = accumulate ? y[i] + v : v;
  }
};

// Inverted dropout as euler::dropout: the mask of the block [counter, counter + numel) of the Rng
// (seed, counter), which moves on by numel. p == 0 returns x itself.
template <class Device>
DVar<Device> dropout(DVar<Device> x /*[...]*/, float p, RngState& rng) {
  if (!(p >= 0.0f && p < 1.0f)) throw ShapeError("device dropout: p = " + std::to_string(p) + " must be in [0, 1)");
  if (p == 0.0f) return x;
  DeviceTape<Device>& tape = *x.tape;
  const int64_t n = x.numel();
  const float scale = 1.0f / (1.0f - p);
  const device::DropoutKey key = device::dropout_key(rng.seed, rng.counter, double(p));
  rng.counter += uint64_t(n);
  DeviceView<float> y = tape.alloc(x.shape());
  tape.device().each(n, DropoutKernel{y.data, x.value().data, key, scale, false});
  return tape.record("dropout", y, {x}, [x, n, key, scale](auto, DeviceView<const float> dy) {
    // y = keep ? x scale : 0  =>  dx += keep ? dy scale : 0 (the mask regenerated from the key)
    x.tape->device().each(n, DropoutKernel{x.grad_accumulator(), dy.data, key, scale, true});
  });
}

// ---- layout --------------------------------------------------------------------------------------

// The same elements under another shape (no copy).
template <class Device>
DVar<Device> reshape(DVar<Device> x, const Shape& shape) {
  if (shape.numel() != x.numel()) throw ShapeError("device reshape: cannot reshape " + x.shape().str() + " to " + shape.str());
  const int64_t n = x.numel();
  return x.tape->record("reshape", DeviceView<float>{shape, x.value().data}, {x}, [x, n](auto, DeviceView<const float> dy) {
    // y = x seen with another shape  =>  dx += dy
    x.tape->device().each(n, AddIntoKernel{x.grad_accumulator(), dy.data, 1.0f});
  });
}

// The first n rows of a table [R, C] -> [n, C], as a view of its memory.
template <class Device>
DVar<Device> first_rows(DVar<Device> table /*[R, C]*/, int64_t n) {
  if (n == table.size(0)) return table;
  if (n > table.size(0)) throw ShapeError("device first_rows: " + std::to_string(n) + " rows of " + table.shape().str());
  const int64_t count = n * table.size(1);
  return table.tape->record("slice", DeviceView<float>{table.shape().with(0, n), table.value().data}, {table},
                            [table, count](auto, DeviceView<const float> dy) {
                              // y = table[0:n]  =>  dtable[0:n] += dy
                              table.tape->device().each(count, AddIntoKernel{table.grad_accumulator(), dy.data, 1.0f});
                            });
}

struct GatherRowsKernel {  // y[r, :] = table[index[r], :] (embedding) or x[b, index[b], :] (gather_rows)
  float* y;
  const float* table;
  const int32_t* index;
  int64_t dim, stride;  // stride: rows of the table per output row (0: a shared table, N: one list each)
  EULER_HD void operator()(int64_t i) const {
    int64_t r = i / dim, d = i % dim;
    y[i] = table[(r * stride + index[r]) * dim + d];
  }
};
struct ScatterRowsKernel {  // dtable[index[r], :] += dy[r, :] (atomic: ids repeat)
  float* dtable;
  const float* dy;
  const int32_t* index;
  int64_t dim, stride;
  EULER_HD void operator()(int64_t i) const {
    int64_t r = i / dim, d = i % dim;
    atomic_add(&dtable[(r * stride + index[r]) * dim + d], dy[i]);
  }
};

// Rows of `table` picked by `ids`: y[i..., :] = table[ids[i...], :] (ids checked on the host).
template <class Device>
DVar<Device> embedding(DVar<Device> table /*[K, D]*/, DeviceView<const int32_t> ids /*[...]*/) {
  DeviceTape<Device>& tape = *table.tape;
  const int64_t dim = table.size(1), n = ids.numel() * dim;
  Shape out = ids.shape;
  out.rank += 1;
  out[out.rank - 1] = dim;
  DeviceView<float> y = tape.alloc(out);
  tape.device().each(n, GatherRowsKernel{y.data, table.value().data, ids.data, dim, 0});
  const int32_t* index = ids.data;
  return tape.record("embedding", y, {table}, [table, index, dim, n](auto, DeviceView<const float> dy) {
    // y[i, :] = table[ids[i], :]  =>  dtable[ids[i], :] += dy[i, :]
    table.tape->device().each(n, ScatterRowsKernel{table.grad_accumulator(), dy.data, index, dim, 0});
  });
}

// One position per list: y[b, :] = x[b, rows[b], :] (rows checked on the host).
template <class Device>
DVar<Device> gather_rows(DVar<Device> x /*[B, N, D]*/, DeviceView<const int32_t> rows /*[B]*/) {
  DeviceTape<Device>& tape = *x.tape;
  if (x.shape().rank != 3 || !(rows.shape == Shape{x.size(0)}))
    throw ShapeError("device gather_rows: x " + x.shape().str() + " and rows " + rows.shape.str());
  const int64_t B = x.size(0), N = x.size(1), D = x.size(2);
  DeviceView<float> y = tape.alloc(Shape{B, D});
  tape.device().each(B * D, GatherRowsKernel{y.data, x.value().data, rows.data, D, N});
  const int32_t* index = rows.data;
  return tape.record("gather_rows", y, {x}, [x, index, B, N, D](auto, DeviceView<const float> dy) {
    // y[b, :] = x[b, rows[b], :]  =>  dx[b, rows[b], :] += dy[b, :] (no two b share a row)
    x.tape->device().each(B * D, ScatterRowsKernel{x.grad_accumulator(), dy.data, index, D, N});
  });
}

struct HeadsKernel {  // [B, N, H, dh] <-> [B, H, N, dh], (+)= when accumulating
  float* to;
  const float* from;
  int64_t N, H, dh;
  bool split, accumulate;  // split: from is [B, N, D], to is [B, H, N, dh]; otherwise the reverse
  EULER_HD void operator()(int64_t i) const {  // i indexes [B, H, N, dh]
    int64_t e = i % dh, rest = i / dh, j = rest % N, h = (rest / N) % H, b = rest / (N * H);
    int64_t merged = ((b * N + j) * H + h) * dh + e;
    if (split) to[i] = accumulate ? to[i] + from[merged] : from[merged];
    else to[merged] = accumulate ? to[merged] + from[i] : from[i];
  }
};

// Attention heads: channel block h of D becomes head h, [B, N, D] -> [B, H, N, D/H].
template <class Device>
DVar<Device> split_heads(DVar<Device> x /*[B, N, D]*/, int heads) {
  DeviceTape<Device>& tape = *x.tape;
  const int64_t B = x.size(0), N = x.size(1), D = x.size(2), dh = D / heads, n = x.numel();
  DeviceView<float> y = tape.alloc(Shape{B, heads, N, dh});
  tape.device().each(n, HeadsKernel{y.data, x.value().data, N, heads, dh, true, false});
  return tape.record("split_heads", y, {x}, [x, N, heads, dh, n](auto, DeviceView<const float> dy) {
    // y[b, h, j, e] = x[b, j, h dh + e]  =>  dx[b, j, h dh + e] += dy[b, h, j, e]
    x.tape->device().each(n, HeadsKernel{x.grad_accumulator(), dy.data, N, heads, dh, false, true});
  });
}

// The inverse: [B, H, N, dh] -> [B, N, H dh].
template <class Device>
DVar<Device> merge_heads(DVar<Device> x /*[B, H, N, dh]*/) {
  DeviceTape<Device>& tape = *x.tape;
  const int64_t B = x.size(0), H = x.size(1), N = x.size(2), dh = x.size(3), n = x.numel();
  DeviceView<float> y = tape.alloc(Shape{B, N, H * dh});
  tape.device().each(n, HeadsKernel{y.data, x.value().data, N, H, dh, false, false});
  return tape.record("merge_heads", y, {x}, [x, N, H, dh, n](auto, DeviceView<const float> dy) {
    // y[b, j, h dh + e] = x[b, h, j, e]  =>  dx[b, h, j, e] += dy[b, j, h dh + e]
    x.tape->device().each(n, HeadsKernel{x.grad_accumulator(), dy.data, N, H, dh, true, true});
  });
}

// ---- dense layers and products -------------------------------------------------------------------

struct RepeatRowKernel {  // y[r, :] = b
  float* y;
  const float* b;
  int64_t cols;
  EULER_HD void operator()(int64_t i) const { y[i] = b[i % cols]; }
};

// y = x W^T + b, x [..., in], weight [out, in], bias [out] -> [..., out] (PyTorch's F.linear).
template <class Device>
DVar<Device> linear(DVar<Device> x /*[..., in]*/, DVar<Device> weight /*[out, in]*/, DVar<Device> bias /*[out]*/) {
  DeviceTape<Device>& tape = *x.tape;
  const Shape sx = x.shape(), sw = weight.shape();
  if (sx.rank < 1 || sw.rank != 2 || sx.last() != sw[1] || !(bias.shape() == Shape{sw[0]}))
    throw ShapeError("device linear: x " + sx.str() + ", weight " + sw.str() + " and bias " + bias.shape().str() + " do not fit");
  const int64_t in = sw[1], out = sw[0], rows = sx.numel() / in;
  DeviceView<float> y = tape.alloc(sx.with_last(out));
  tape.device().each(rows * out, RepeatRowKernel{y.data, bias.value().data, out});
  gemm_stored(tape.device(), x.value().data, rows, in, false, weight.value().data, out, in, true, y.data, true);
  return tape.record("linear", y, {x, weight, bias}, [x, weight, bias, rows, in, out](auto, DeviceView<const float> dy) {
    // y = x W^T + b  =>  dx += dy W,  dW += dy^T x,  db += sum over rows of dy
    Device& device = x.tape->device();
    if (x.requires_grad()) gemm_stored(device, dy.data, rows, out, false, weight.value().data, out, in, false, x.grad_accumulator(), true);
    if (weight.requires_grad())
      gemm_stored(device, dy.data, rows, out, true, x.value().data, rows, in, false, weight.grad_accumulator(), true);
    if (bias.requires_grad()) column_sums(*x.tape, dy.data, rows, out, bias.grad_accumulator());
  });
}

// alpha op(a) op(b): both [M, K]-like of rank 2, or of equal rank with equal leading (batch) dims.
template <class Device>
DVar<Device> matmul(DVar<Device> a, DVar<Device> b, bool trans_a = false, bool trans_b = false, float alpha = 1) {
  DeviceTape<Device>& tape = *a.tape;
  const Shape sa = a.shape(), sb = b.shape();
  bool batch_ok = sa.rank == sb.rank && sa.rank >= 2;
  for (int i = 0; batch_ok && i < sa.rank - 2; ++i) batch_ok = sa[i] == sb[i];
  const int64_t ar = sa[sa.rank - 2], ac = sa[sa.rank - 1], br = sb[sb.rank - 2], bc = sb[sb.rank - 1];
  const int64_t m = trans_a ? ac : ar, k = trans_a ? ar : ac, kb = trans_b ? bc : br, n = trans_b ? br : bc;
  if (!batch_ok || k != kb)
    throw ShapeError("device matmul: shapes " + sa.str() + (trans_a ? "^T" : "") + " and " + sb.str() + (trans_b ? "^T" : "") +
                     " do not fit (equal rank >= 2, equal batch dims, matching inner dims)");
  const int64_t batch = sa.outer(sa.rank - 2);
  Shape out = sa;
  out[out.rank - 2] = m;
  out[out.rank - 1] = n;
  DeviceView<float> y = tape.alloc(out);
  const int64_t sa_stride = ar * ac, sb_stride = br * bc, sc_stride = m * n;
  gemm_stored(tape.device(), a.value().data, ar, ac, trans_a, b.value().data, br, bc, trans_b, y.data, false, alpha, batch,
              sa_stride, sb_stride, sc_stride);
  return tape.record("matmul", y, {a, b}, [=](auto, DeviceView<const float> dy) {
    // C = alpha op(A) op(B), C [m, n]
    Device& device = a.tape->device();
    const float *av = a.value().data, *bv = b.value().data;
    if (a.requires_grad()) {
      // dA = alpha dC op(B)^T (stored [m, k]) or, when A was transposed, alpha op(B) dC^T (stored [k, m])
      if (!trans_a) gemm_stored(device, dy.data, m, n, false, bv, br, bc, !trans_b, a.grad_accumulator(), true, alpha, batch, sc_stride, sb_stride, sa_stride);
      else gemm_stored(device, bv, br, bc, trans_b, dy.data, m, n, true, a.grad_accumulator(), true, alpha, batch, sb_stride, sc_stride, sa_stride);
    }
    if (b.requires_grad()) {
      // dB = alpha op(A)^T dC (stored [k, n]) or, when B was transposed, alpha dC^T op(A) (stored [n, k])
      if (!trans_b) gemm_stored(device, av, ar, ac, !trans_a, dy.data, m, n, false, b.grad_accumulator(), true, alpha, batch, sa_stride, sc_stride, sb_stride);
      else gemm_stored(device, dy.data, m, n, true, av, ar, ac, trans_a, b.grad_accumulator(), true, alpha, batch, sc_stride, sa_stride, sb_stride);
    }
  });
}

// ---- rows: layer norm, softmax, cross-entropy ------------------------------------------------------

struct LayerNormKernel {  // one row: y, and (mean, rstd) kept
  float *y, *stats;
  const float *x, *gamma, *beta;
  float eps;
  int64_t D;
  EULER_HD void operator()(int64_t r) const {
    device::layer_norm_row(x + r * D, gamma, beta, eps, D, y + r * D, &stats[2 * r], &stats[2 * r + 1]);
  }
};
struct LayerNormBackwardKernel {  // one row: dx
  float* dx;
  const float *x, *dy, *gamma, *stats;
  int64_t D;
  EULER_HD void operator()(int64_t r) const {
    device::layer_norm_row_backward(x + r * D, dy + r * D, gamma, stats[2 * r], stats[2 * r + 1], D, dx + r * D);
  }
};
struct NormalizedTimesKernel {  // out[r, i] = dy[r, i] xhat[r, i] (gamma's share before the row sum)
  float* out;
  const float *x, *dy, *stats;
  int64_t D;
  EULER_HD void operator()(int64_t i) const {
    int64_t r = i / D;
    out[i] = dy[i] * ((x[i] - stats[2 * r]) * stats[2 * r + 1]);
  }
};

// (x - mean) / sqrt(var + eps) gamma + beta over the last axis (biased variance), as layer_norm.
template <class Device>
DVar<Device> layer_norm(DVar<Device> x /*[..., D]*/, DVar<Device> gamma /*[D]*/, DVar<Device> beta /*[D]*/, float eps) {
  DeviceTape<Device>& tape = *x.tape;
  const int64_t D = x.shape().last(), rows = x.numel() / D;
  if (!(gamma.shape() == Shape{D}) || !(beta.shape() == Shape{D}))
    throw ShapeError("device layer_norm: input " + x.shape().str() + " needs gamma and beta of shape [" + std::to_string(D) + "]");
  DeviceView<float> y = tape.alloc(x.shape());
  float* stats = tape.alloc(Shape{rows, 2}).data;
  tape.device().each(rows, LayerNormKernel{y.data, stats, x.value().data, gamma.value().data, beta.value().data, eps, D});
  return tape.record("layer_norm", y, {x, gamma, beta}, [x, gamma, beta, stats, rows, D](auto, DeviceView<const float> dy) {
    // y = xhat gamma + beta  =>  dbeta += sum_rows dy,  dgamma += sum_rows dy xhat,
    //   dx += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)),  dxhat = dy gamma
    DeviceTape<Device>& tape = *x.tape;
    const float* xv = x.value().data;
    if (x.requires_grad())
      tape.device().each(rows, LayerNormBackwardKernel{x.grad_accumulator(), xv, dy.data, gamma.value().data, stats, D});
    if (gamma.requires_grad()) {
      float* scratch = tape.alloc(Shape{rows, D}).data;
      tape.device().each(rows * D, NormalizedTimesKernel{scratch, xv, dy.data, stats, D});
      column_sums(tape, scratch, rows, D, gamma.grad_accumulator());
    }
    if (beta.requires_grad()) column_sums(tape, dy.data, rows, D, beta.grad_accumulator());
  });
}

struct SoftmaxKernel {  // one row r of [B, H, Nq, S]; its mask row is mask[b, 0, t, :]
  float* y;
  const float *x, *mask;
  int64_t S, H, Nq;
  EULER_HD void operator()(int64_t r) const {
    const float* mask_row = mask ? mask + ((r / (H * Nq)) * Nq + r % Nq) * S : nullptr;
    device::softmax_row(x + r * S, mask_row, y + r * S, S);
  }
};
struct SoftmaxBackwardKernel {
  float* dx;
  const float *y, *dy;
  int64_t S;
  EULER_HD void operator()(int64_t r) const { device::softmax_row_backward(y + r * S, dy + r * S, dx + r * S, S); }
};

// Softmax over the last axis of x + mask; the mask [B, 1, Nq, S] broadcasts over the heads (or none).
template <class Device>
DVar<Device> softmax(DVar<Device> x /*[B, H, Nq, S]*/, DeviceView<const float> mask /*[B, 1, Nq, S]*/) {
  DeviceTape<Device>& tape = *x.tape;
  const Shape s = x.shape();
  if (s.rank != 4 || (mask.data && !(mask.shape == Shape{s[0], 1, s[2], s[3]})))
    throw ShapeError("device softmax: input " + s.str() + " and mask " + mask.shape.str() + " (expected [B, H, Nq, S], [B, 1, Nq, S])");
  const int64_t S = s[3], rows = x.numel() / S;
  DeviceView<float> y = tape.alloc(s);
  tape.device().each(rows, SoftmaxKernel{y.data, x.value().data, mask.data, S, s[1], s[2]});
  return tape.record("softmax", y, {x}, [x, rows, S](DeviceView<const float> yv, DeviceView<const float> dy) {
    // y = softmax(x + mask)  =>  dx += y (dy - sum(dy y)) per row
    x.tape->device().each(rows, SoftmaxBackwardKernel{x.grad_accumulator(), yv.data, dy.data, S});
  });
}

struct CrossEntropyKernel {  // one row: its loss (0 when ignored) and its log-sum-exp
  float *row_loss, *lse;
  const float* logits;
  const int32_t* targets;
  int64_t K;
  EULER_HD void operator()(int64_t r) const {
    row_loss[r] = targets[r] == 0 ? 0.0f : device::cross_entropy_row(logits + r * K, K, targets[r], &lse[r]);
  }
};
struct CrossEntropyBackwardKernel {  // one logit
  float* dlogits;
  const float *logits, *lse, *dloss;
  const int32_t* targets;
  int64_t K, count;
  EULER_HD void operator()(int64_t i) const {
    int64_t r = i / K;
    if (targets[r] == 0) return;
    dlogits[i] += device::cross_entropy_grad(logits[i], lse[r], i % K == targets[r], dloss[0] / float(count));
  }
};
struct ScaleKernel {  // x[i] *= s
  float* x;
  float s;
  EULER_HD void operator()(int64_t i) const { x[i] *= s; }
};

// Mean over the rows whose target is not 0 (padding) of -log_softmax(logits)[target], as
// cross_entropy(logits, targets, 0). `count`: rows whose target is not 0 (the host knows the targets).
template <class Device>
DVar<Device> cross_entropy(DVar<Device> logits /*[M, K]*/, DeviceView<const int32_t> targets /*[M]*/, int64_t count) {
  DeviceTape<Device>& tape = *logits.tape;
  if (logits.shape().rank != 2 || !(targets.shape == Shape{logits.size(0)}))
    throw ShapeError("device cross_entropy: logits " + logits.shape().str() + " and targets " + targets.shape.str());
  const int64_t M = logits.size(0), K = logits.size(1);
  float* row_loss = tape.alloc(Shape{M}).data;
  float* lse = tape.alloc(Shape{M}).data;
  tape.device().each(M, CrossEntropyKernel{row_loss, lse, logits.value().data, targets.data, K});
  DeviceView<float> loss = tape.alloc(Shape{});
  column_sums(tape, row_loss, M, 1, loss.data, false);
  tape.device().each(1, ScaleKernel{loss.data, count ? 1.0f / float(count) : 0.0f});
  const int32_t* kept_targets = targets.data;
  return tape.record("cross_entropy", loss, {logits}, [logits, kept_targets, lse, M, K, count](auto, DeviceView<const float> dloss) {
    // loss = sum_rows (lse[r] - logits[r, t_r]) / count  =>  dlogits[r, j] += (softmax_j - [j == t_r]) dloss / count
    if (count == 0) return;
    logits.tape->device().each(M * K, CrossEntropyBackwardKernel{logits.grad_accumulator(), logits.value().data, lse, dloss.data,
                                                                 kept_targets, K, count});
  });
}

// ---- attention masks -------------------------------------------------------------------------------

struct AttentionMaskKernel {  // mask[b, 0, t, s] = 0 if key s is visible to query t (key_visible), else -10000
  float* mask;
  const int32_t* ids;
  int64_t N;
  bool causal;
  EULER_HD void operator()(int64_t i) const {
    int64_t s = i % N, t = (i / N) % N, b = i / (N * N);
    mask[i] = key_visible(ids + b * N, s, t, causal) ? 0.0f : kHiddenKeyLogit;
  }
};
struct MaskRowsKernel {  // picked[b, 0, 0, s] = mask[b, 0, rows[b], s]
  float* picked;
  const float* mask;
  const int32_t* rows;
  int64_t N;
  EULER_HD void operator()(int64_t i) const {
    int64_t b = i / N, s = i % N;
    picked[i] = mask[(b * N + rows[b]) * N + s];
  }
};

// The additive attention mask of the model ([B, 1, N, N], -10000 at hidden keys), from ids on the device.
template <class Device>
DeviceView<const float> attention_mask(DeviceTape<Device>& tape, DeviceView<const int32_t> ids /*[B, N]*/, bool causal) {
  const int64_t B = ids.shape[0], N = ids.shape[1];
  DeviceView<float> mask = tape.alloc(Shape{B, 1, N, N});
  tape.device().each(B * N * N, AttentionMaskKernel{mask.data, ids.data, N, causal});
  return mask;
}

// Row rows[b] of each list's mask: [B, 1, N, N] -> [B, 1, 1, N].
template <class Device>
DeviceView<const float> mask_rows(DeviceTape<Device>& tape, DeviceView<const float> mask, DeviceView<const int32_t> rows) {
  const int64_t B = mask.shape[0], N = mask.shape[3];
  DeviceView<float> picked = tape.alloc(Shape{B, 1, 1, N});
  tape.device().each(B * N, MaskRowsKernel{picked.data, mask.data, rows.data, N});
  return picked;
}

}  // namespace euler::gpu
