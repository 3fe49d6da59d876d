// euler/ops/linear_cross_entropy.hpp: scores against a table and their cross-entropy in one node, a tile
// of rows at a time, never holding the [M, K] scores.
//
// A recommender's loss is cross_entropy(x table^T, targets) over every item: with the all-positions
// objective M = B N rows of K items, at B N = 12,800 and K = 3,416 a 175 MB matrix of scores, and as
// much again for its gradient, each written and read a few times. This op computes the scores of R rows
// at a time (a tile of R x K that stays in cache) and is done with each tile before the next:
//   loss   = mean over rows r with t_r != ignore of  lse_r - s[r, t_r],   s = x W^T,  lse_r = log sum_k exp s[r, k]
//   ds     = (softmax(s) - onehot(t)) dloss / count   (0 for ignored rows)
//   dx    += ds W,   dW += ds^T x
// Two things make it cheap:
// - Ignored rows (padding) are left out before the product: the tiles hold only the rows that count
//   (on ML-1M at N = 200 about half of them).
// - The loss is a scalar, so its gradient is dloss times the gradient of the unit loss. While a tile's
//   softmax is in cache, forward forms that unit gradient and its two products (dx_unit [count, D] and
//   dW_unit [K, D], in tape memory); backward only scales them by dloss. That saves computing the
//   scores a second time. When neither x nor the table needs a gradient, forward skips this.
// Same values and gradients as cross_entropy(matmul(x, W, false, true), targets) (tests compare them).
//
//     auto loss = euler::linear_cross_entropy(user, item_table, targets, 0);  // user [M, D], table [K, D], targets [M]
//     auto loss = euler::linear_cross_entropy(user, table, targets, 0, n);    // only the first n rows of the table
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "euler/ops/nn.hpp"

namespace euler {

template <class T>
Var<T> linear_cross_entropy(Var<T> x /*[M, D]*/, Var<T> table /*[K', D]*/, TensorView<const int32_t> targets /*[M]*/,
                            int32_t ignore_index = -100, int64_t classes = -1 /*K <= K' rows used; -1: all*/) {
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using A = Eigen::Array<T, Eigen::Dynamic, 1>;
  const char* op = "linear_cross_entropy";
  if (x.tape != table.tape) throw TapeError(std::string(op) + ": operands on different tapes");
  const Shape &sx = x.shape(), &sw = table.shape();
  if (sx.rank != 2 || sw.rank != 2 || sx[1] != sw[1] || !(targets.shape == Shape{sx[0]}))
    throw ShapeError(std::string(op) + ": x " + sx.str() + ", table " + sw.str() + " and targets " + targets.shape.str() +
                     " do not fit x [M, D], table [K, D], targets [M]");
  const int64_t M = sx[0], D = sx[1], K = classes < 0 ? sw[0] : classes;
  if (K < 1 || K > sw[0])
    throw ShapeError(std::string(op) + ": " + std::to_string(K) + " classes of a table with " + std::to_string(sw[0]) + " rows");
  int64_t count = 0;
  for (int64_t r = 0; r < M; ++r) {
    const int32_t t = targets[r];
    if (t == ignore_index) continue;
    if (t < 0 || t >= K)
      throw ShapeError(std::string(op) + ": target " + std::to_string(t) + " at row " + std::to_string(r) + " is outside [0, " +
                       std::to_string(K) + ") (ignore_index " + std::to_string(ignore_index) + ")");
    ++count;
  }
  Tape<T>& tape = *x.tape;
  // The rows that count, in order: tile i holds active[i R .. (i + 1) R).
  int64_t* active = tape.template alloc_as<int64_t>(Shape{std::max<int64_t>(1, count)}).data;
  for (int64_t r = 0, n = 0; r < M; ++r)
    if (targets[r] != ignore_index) active[n++] = r;
  const bool need_dx = x.requires_grad(), need_dw = table.requires_grad();
  T* dx_unit = need_dx ? tape.alloc(Shape{std::max<int64_t>(1, count), D}).data : nullptr;  // [count, D]
  T* dw_unit = need_dw ? tape.alloc(Shape{K, D}).data : nullptr;                           // [K, D]
  T* row_loss = tape.alloc(Shape{std::max<int64_t>(1, count)}).data;  // per active row: lse - score of the target

  constexpr int64_t kTileRows = 64;  // 64 x K scores: ~1 MB at K = 3,416
  const int64_t tiles = (count + kTileRows - 1) / kTileRows;
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(tiles, num_threads()));
  const T* xv = x.value().data;
  const T* wv = table.value().data;
  const T inv_count = count ? T(1) / T(count) : T(0);
  // Each chunk's scratch, from the tape's pool (the same memory step after step: fresh pages cost a
  // page fault each, slow on some machines): its rows of x and their scores, and its part of dW, which
  // the chunks add in chunk order. Every part starts 64-byte aligned (a multiple of 16 values).
  const auto aligned = [](int64_t n) { return (n + 15) / 16 * 16; };
  const int64_t xt_stride = aligned(kTileRows * D), scores_stride = aligned(kTileRows * K), dw_stride = aligned(K * D);
  T* xt_all = tape.alloc(Shape{chunks * xt_stride}).data;
  T* scores_all = tape.alloc(Shape{chunks * scores_stride}).data;
  T* dw_parts = need_dw ? tape.alloc(Shape{chunks * dw_stride}).data : nullptr;
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    Eigen::Map<const Matrix> w(wv, K, D);
    for (int64_t c = c0; c < c1; ++c) {
      Eigen::Map<Matrix> dw_part(need_dw ? dw_parts + c * dw_stride : nullptr, K, D);
      if (need_dw) dw_part.setZero();
      for (int64_t i = tiles * c / chunks; i < tiles * (c + 1) / chunks; ++i) {
        const int64_t a0 = i * kTileRows, rows = std::min(kTileRows, count - a0);
        Eigen::Map<Matrix> xt(xt_all + c * xt_stride, rows, D), scores(scores_all + c * scores_stride, rows, K);
        for (int64_t j = 0; j < rows; ++j) xt.row(j) = Eigen::Map<const Matrix>(xv + active[a0 + j] * D, 1, D);
        scores.noalias() = xt * w.transpose();
        for (int64_t j = 0; j < rows; ++j) {
          const int32_t t = targets[active[a0 + j]];
          Eigen::Map<A> s(scores.row(j).data(), K);
          const T max = s.maxCoeff();
          const T log_sum = std::log((s - max).exp().sum());
          row_loss[a0 + j] = log_sum - (s[t] - max);  // (s_t - max) is exact near the max
          if (!need_dx && !need_dw) continue;
          // The unit loss's ds row: (softmax - onehot) / count.
          s = (s - (max + log_sum)).exp() * inv_count;
          s[t] -= inv_count;
        }
        if (need_dx) Eigen::Map<Matrix>(dx_unit + a0 * D, rows, D).noalias() = scores * w;
        if (need_dw) dw_part.noalias() += scores.transpose() * xt;
      }
    }
  });
  double total = 0;  // in row order: deterministic
  for (int64_t i = 0; i < count; ++i) total += double(row_loss[i]);
  TensorView<T> loss = tape.alloc(Shape{});
  loss[0] = count ? T(total / double(count)) : T(0);
  if (need_dw) {
    Eigen::Map<Matrix> dw(dw_unit, K, D);
    dw.setZero();
    for (int64_t c = 0; c < chunks; ++c) dw += Eigen::Map<const Matrix>(dw_parts + c * dw_stride, K, D);
  }

  return tape.record(op, loss, {x, table}, [=](auto, TensorView<const T> dloss) {
    // dx += dloss dx_unit (scattered back to the active rows),  dW += dloss dW_unit
    if (count == 0) return;
    const T g = dloss[0];
    if (need_dx) {
      T* dx = x.grad_accumulator().data;
      parallel_for(count, 256, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i)
          Eigen::Map<Eigen::Array<T, 1, Eigen::Dynamic>>(dx + active[i] * D, D) +=
              g * Eigen::Map<const Eigen::Array<T, 1, Eigen::Dynamic>>(dx_unit + i * D, D);
      });
    }
    if (need_dw) {
      // The first K rows of the table's gradient.
      Eigen::Map<A>(table.grad_accumulator().data, K * D) += g * Eigen::Map<const A>(dw_unit, K * D);
    }
  });
}

}  // namespace euler
