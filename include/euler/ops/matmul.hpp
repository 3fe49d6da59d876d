// euler/ops/matmul.hpp: matrix products, 2-D and batched, with optional transposes.
//
// Shapes (op(X) is X or X^T as asked):
//   a [M, K]            b [K, N]      -> [M, N]
//   a [..., M, K]       b [K, N]      -> [..., M, N]   (leading dims of a folded into M: a linear layer)
//   a [B.., M, K]       b [B.., K, N] -> [B.., M, N]   (same leading dims: attention, per head)
// The products run through Eigen's GEMM. A batch of small products is split over threads by batch
// (Eigen then runs each one single-threaded); a few large ones use Eigen's own threading.
//
//     auto scores = euler::matmul(q, k, false, true);   // [B, H, N, dh] x [B, H, N, dh]^T -> [B, H, N, N]
//     auto h = euler::linear(x, weight, bias);          // [..., in] x [out, in]^T + [out] -> [..., out]
#pragma once

#include <algorithm>

#include "euler/ops/elementwise.hpp"

namespace euler {

// C (+)= op(A) op(B) on raw row-major storage. A is stored [ar, ac], B [br, bc], C [m, n].
template <class T>
void gemm(const T* a, int64_t ar, int64_t ac, bool trans_a, const T* b, int64_t br, int64_t bc, bool trans_b, T* c,
          bool accumulate) {
  using CMap = Eigen::Map<const RowMatrix<T>>;
  CMap A(a, ar, ac), B(b, br, bc);
  int64_t m = trans_a ? ac : ar, n = trans_b ? br : bc;
  MatrixMap<T> C(c, m, n);
  if (!accumulate) C.setZero();
  if (!trans_a && !trans_b) C.noalias() += A * B;
  else if (!trans_a && trans_b) C.noalias() += A * B.transpose();
  else if (trans_a && !trans_b) C.noalias() += A.transpose() * B;
  else C.noalias() += A.transpose() * B.transpose();
}

// Run f(i) for i in [0, batch); in parallel over the batch when each product is small.
template <class F>
void for_batch(int64_t batch, int64_t flops_each, F&& f) {
  constexpr int64_t kSmallProduct = int64_t(1) << 22;
  if (batch > 1 && flops_each < kSmallProduct) {
    parallel_for(batch, std::max<int64_t>(1, kSmallProduct / std::max<int64_t>(1, flops_each)),
                 [&](int64_t i0, int64_t i1) {
                   for (int64_t i = i0; i < i1; ++i) f(i);
                 });
  } else {
    for (int64_t i = 0; i < batch; ++i) f(i);
  }
}

template <class T>
Var<T> matmul(Var<T> a, Var<T> b, bool trans_a = false, bool trans_b = false) {
  const Shape &sa = a.shape(), &sb = b.shape();
  auto fail = [&](const std::string& why) {
    throw ShapeError("matmul: shapes " + sa.str() + (trans_a ? "^T" : "") + " and " + sb.str() + (trans_b ? "^T" : "") +
                     ": " + why);
  };
  if (a.tape != b.tape) throw TapeError("matmul: operands on different tapes");
  if (sa.rank < 2 || sb.rank < 2) fail("both operands need rank >= 2");
  // Stored matrix extents of one batch element.
  int64_t ar = sa[sa.rank - 2], ac = sa[sa.rank - 1], br = sb[sb.rank - 2], bc = sb[sb.rank - 1];
  int64_t batch = 1;
  bool shared_b = sb.rank == 2;  // b is one matrix for every batch element
  if (shared_b && sa.rank > 2) {
    if (trans_a) fail("a transposed a needs a matching batch of b");
    ar = sa.numel() / ac;  // fold leading dims into rows
  } else if (sa.rank != sb.rank) {
    fail("batched operands need equal rank (or b of rank 2)");
  } else {
    for (int i = 0; i < sa.rank - 2; ++i)
      if (sa[i] != sb[i]) fail("batch dims differ");
    batch = sa.outer(sa.rank - 2);
  }
  int64_t m = trans_a ? ac : ar, k = trans_a ? ar : ac;
  int64_t kb = trans_b ? bc : br, n = trans_b ? br : bc;
  if (k != kb) fail("inner dims " + std::to_string(k) + " and " + std::to_string(kb) + " differ");

  Shape out = sa;
  if (shared_b && sa.rank > 2) {
    out = sa.with_last(n);
  } else {
    out[out.rank - 2] = m;
    out[out.rank - 1] = n;
  }
  TensorView<T> y = a.tape->alloc(out);
  const T *av = a.value().data, *bv = b.value().data;
  int64_t a_stride = ar * ac, b_stride = shared_b ? 0 : br * bc, c_stride = m * n;
  for_batch(batch, 2 * m * n * k, [&](int64_t i) {
    gemm(av + i * a_stride, ar, ac, trans_a, bv + i * b_stride, br, bc, trans_b, y.data + i * c_stride, false);
  });

  return a.tape->record("matmul", y, {a, b}, [=](auto, TensorView<const T> dy) {
    // forward: C = op(A) op(B), C [m, n]
    const T *av = a.value().data, *bv = b.value().data;
    if (a.requires_grad()) {
      T* da = a.grad_accumulator().data;
      // dA = dC op(B)^T (stored [m, k]) or, when A was transposed, op(B) dC^T (stored [k, m])
      for_batch(batch, 2 * m * n * k, [&](int64_t i) {
        const T* bi = bv + i * b_stride;
        const T* dci = dy.data + i * c_stride;
        if (!trans_a) gemm(dci, m, n, false, bi, br, bc, !trans_b, da + i * a_stride, true);
        else gemm(bi, br, bc, trans_b, dci, m, n, true, da + i * a_stride, true);
      });
    }
    if (b.requires_grad()) {
      T* db = b.grad_accumulator().data;
      // dB = op(A)^T dC (stored [k, n]) or, when B was transposed, dC^T op(A) (stored [n, k])
      auto one = [&](int64_t i, T* dbi) {
        const T* ai = av + i * a_stride;
        const T* dci = dy.data + i * c_stride;
        if (!trans_b) gemm(ai, ar, ac, !trans_a, dci, m, n, false, dbi, true);
        else gemm(dci, m, n, true, ai, ar, ac, trans_a, dbi, true);
      };
      if (shared_b) one(0, db);  // batch == 1 here: leading dims were folded into rows
      else for_batch(batch, 2 * m * n * k, [&](int64_t i) { one(i, db + i * b_stride); });
    }
  });
}

// A dense layer in one node, PyTorch's F.linear: y = x W^T + b, x [..., in], weight [out, in], bias [out]
// -> [..., out]. Same values as matmul(x, W, false, true) + b, without the intermediate product (one
// [..., out] buffer instead of two, one pass less each way).
template <class T>
Var<T> linear(Var<T> x /*[..., in]*/, Var<T> weight /*[out, in]*/, Var<T> bias /*[out]*/) {
  const Shape &sx = x.shape(), &sw = weight.shape();
  if (x.tape != weight.tape || x.tape != bias.tape) throw TapeError("linear: operands on different tapes");
  if (sx.rank < 1 || sw.rank != 2 || sx.last() != sw[1] || !(bias.shape() == Shape{sw[0]}))
    throw ShapeError("linear: x " + sx.str() + ", weight " + sw.str() + " and bias " + bias.shape().str() +
                     " do not fit x [..., in], weight [out, in], bias [out]");
  const int64_t in = sw[1], out = sw[0], rows = sx.numel() / std::max<int64_t>(1, in);
  TensorView<T> y = x.tape->alloc(sx.with_last(out));
  const T* bv = bias.value().data;
  parallel_for(rows, std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(1, out)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) std::copy_n(bv, out, y.data + r * out);
  });
  gemm(x.value().data, rows, in, false, weight.value().data, out, in, true, y.data, true);

  return x.tape->record("linear", y, {x, weight, bias}, [x, weight, bias, rows, in, out](auto, TensorView<const T> dy) {
    // y = x W^T + b  =>  dx += dy W,  dW += dy^T x,  db += sum over rows of dy
    if (x.requires_grad()) gemm(dy.data, rows, out, false, weight.value().data, out, in, false, x.grad_accumulator().data, true);
    if (weight.requires_grad()) gemm(dy.data, rows, out, true, x.value().data, rows, in, false, weight.grad_accumulator().data, true);
    if (bias.requires_grad()) add_column_sums(dy.data, static_cast<const T*>(nullptr), rows, out, bias.grad_accumulator().data);
  });
}

}  // namespace euler
