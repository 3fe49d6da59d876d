// euler/ops/reduce.hpp: sums and means, over everything or over one axis.
//
//     auto total = euler::sum(x);           // [] (one element)
//     auto per_row = euler::mean(x, -1);    // [B, N, D] -> [B, N]
//     auto kept = euler::sum(x, 1, true);   // [B, N, D] -> [B, 1, D]
#pragma once

#include "euler/ops/elementwise.hpp"

namespace euler {

// Sum of every element: [...] -> [] (scaled by `scale`, so mean is the same op).
template <class T>
Var<T> sum_all(Var<T> x, T scale, const char* op) {
  TensorView<const T> xv = x.value();
  int64_t n = xv.numel();
  int threads = std::max(1, num_threads());
  std::vector<double> partial(size_t(threads), 0.0);  // fixed split, fixed order: deterministic
  parallel_for(int64_t(threads), 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int64_t i0 = n * t / threads, i1 = n * (t + 1) / threads;
      if (i0 < i1) partial[size_t(t)] = double(arr(xv, i0, i1).sum());
    }
  });
  double total = 0;
  for (double p : partial) total += p;
  TensorView<T> y = x.tape->alloc(Shape{});
  y[0] = T(total) * scale;
  return x.tape->record(op, y, {x}, [x, scale](auto, TensorView<const T> dy) {
    // y = scale * sum(x)  =>  dx += scale * dy (the same number everywhere)
    TensorView<T> dx = x.grad_accumulator();
    T g = dy[0] * scale;
    for_chunks(dx.numel(), [&](int64_t i0, int64_t i1) { arr(dx, i0, i1) += g; });
  });
}

// Sum over one axis, viewed as [outer, n, inner] -> [outer, inner] (or [outer, 1, inner] with keepdim).
template <class T>
Var<T> sum_axis(Var<T> x, int axis, bool keepdim, T scale, const char* op) {
  const Shape& s = x.shape();
  axis = normalize_axis(op, axis, s.rank);
  int64_t outer = s.outer(axis), n = s[axis], inner = s.inner(axis);
  Shape out = keepdim ? s.with(axis, 1) : s.without(axis);
  TensorView<T> y = x.tape->alloc(out);
  const T* xv = x.value().data;
  parallel_for(outer, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, n * inner)), [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      MatrixMap<T> yo(y.data + o * inner, 1, inner);
      Eigen::Map<const RowMatrix<T>> xo(xv + o * n * inner, n, inner);
      yo = xo.colwise().sum() * scale;
    }
  });
  return x.tape->record(op, y, {x}, [x, outer, n, inner, scale](auto, TensorView<const T> dy) {
    // y[o, j] = scale * sum_i x[o, i, j]  =>  dx[o, i, j] += scale * dy[o, j]
    T* dx = x.grad_accumulator().data;
    parallel_for(outer, 1, [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        Eigen::Map<const RowMatrix<T>> dyo(dy.data + o * inner, 1, inner);
        MatrixMap<T> dxo(dx + o * n * inner, n, inner);
        dxo.rowwise() += dyo.row(0) * scale;
      }
    });
  });
}

template <class T>
Var<T> sum(Var<T> x) {
  return sum_all(x, T(1), "sum");
}
template <class T>
Var<T> mean(Var<T> x) {
  return sum_all(x, T(1) / T(std::max<int64_t>(1, x.numel())), "mean");
}
template <class T>
Var<T> sum(Var<T> x, int axis, bool keepdim = false) {
  return sum_axis(x, axis, keepdim, T(1), "sum");
}
template <class T>
Var<T> mean(Var<T> x, int axis, bool keepdim = false) {
  int64_t n = x.shape()[normalize_axis("mean", axis, x.shape().rank)];
  return sum_axis(x, axis, keepdim, T(1) / T(std::max<int64_t>(1, n)), "mean");
}

}  // namespace euler
