// euler/ops/linear_cross_entropy.hpp: scores against a table and their cross-entropy in one node, a tile
// of rows at a time, never holding the [M, K] scores.
//
// A recommender's loss is cross_entropy(x table^T, targets) over every item: with the all-positions
// objective M = B N rows of K items, at B N = 12,800 and K = 3,416 a 175 MB matrix of scores, and as
// much again for its gradient, each written and read a few times. This op computes the scores of R rows
// at a time (a tile of R x K that stays in cache), keeps only each row's log-sum-exp, and in backward
// computes the tile's scores again to form the softmax:
//   loss   = mean over rows r with t_r != ignore of  lse_r - s[r, t_r],   s = x W^T,  lse_r = log sum_k exp s[r, k]
//   ds     = (softmax(s) - onehot(t)) dloss / count   (0 for ignored rows)
//   dx    += ds W,   dW += ds^T x
// Same values and gradients as cross_entropy(matmul(x, W, false, true), targets) (tests compare them);
// one more product for the scores (recomputed) and no [M, K] buffer.
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
  const int32_t* kept_targets = tape.keep(targets).data;
  T* lse = tape.alloc(Shape{M}).data;       // per row: log sum exp of its scores
  T* row_loss = tape.alloc(Shape{M}).data;  // per row: lse - score of the target (0 when ignored)
  constexpr int64_t kTileRows = 64;         // 64 x K scores: ~1 MB at K = 3,416
  const int64_t tiles = (M + kTileRows - 1) / kTileRows;
  const T* xv = x.value().data;
  const T* wv = table.value().data;
  parallel_for(tiles, 1, [&](int64_t i0, int64_t i1) {
    Matrix scores;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t r0 = i * kTileRows, rows = std::min(kTileRows, M - r0);
      scores.noalias() = Eigen::Map<const Matrix>(xv + r0 * D, rows, D) * Eigen::Map<const Matrix>(wv, K, D).transpose();
      for (int64_t j = 0; j < rows; ++j) {
        const int64_t r = r0 + j;
        row_loss[r] = T(0);
        if (kept_targets[r] == ignore_index) continue;
        Eigen::Map<const A> s(scores.row(j).data(), K);
        const T max = s.maxCoeff();
        const T log_sum = std::log((s - max).exp().sum());
        lse[r] = max + log_sum;
        row_loss[r] = log_sum - (s[kept_targets[r]] - max);  // (s_t - max) is exact near the max
      }
    }
  });
  double total = 0;  // in row order: deterministic
  for (int64_t r = 0; r < M; ++r) total += double(row_loss[r]);
  TensorView<T> loss = tape.alloc(Shape{});
  loss[0] = count ? T(total / double(count)) : T(0);

  return tape.record(op, loss, {x, table}, [=](auto, TensorView<const T> dloss) {
    // ds = (softmax(s) - onehot(t)) g, g = dloss / count;  dx += ds W;  dW += ds^T x  (scores recomputed per tile)
    if (count == 0) return;
    const T g = dloss[0] / T(count);
    T* dx = x.requires_grad() ? x.grad_accumulator().data : nullptr;
    const bool need_dw = table.requires_grad();
    const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(tiles, num_threads()));
    std::vector<Matrix> dw_parts(size_t(need_dw ? chunks : 0));  // per chunk, added in chunk order
    parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
      Matrix ds;
      for (int64_t c = c0; c < c1; ++c) {
        if (need_dw) dw_parts[size_t(c)].setZero(K, D);
        for (int64_t i = tiles * c / chunks; i < tiles * (c + 1) / chunks; ++i) {
          const int64_t r0 = i * kTileRows, rows = std::min(kTileRows, M - r0);
          Eigen::Map<const Matrix> xt(xv + r0 * D, rows, D), w(wv, K, D);
          ds.noalias() = xt * w.transpose();
          for (int64_t j = 0; j < rows; ++j) {
            const int64_t r = r0 + j;
            Eigen::Map<A> s(ds.row(j).data(), K);
            if (kept_targets[r] == ignore_index) {
              s.setZero();
              continue;
            }
            s = (s - lse[r]).exp() * g;
            s[kept_targets[r]] -= g;
          }
          if (dx) Eigen::Map<Matrix>(dx + r0 * D, rows, D).noalias() += ds * w;
          if (need_dw) dw_parts[size_t(c)].noalias() += ds.transpose() * xt;
        }
      }
    });
    if (!need_dw) return;
    Eigen::Map<Matrix> dw(table.grad_accumulator().data, K, D);  // the first K rows of the table's gradient
    for (const Matrix& part : dw_parts) dw += part;
  });
}

}  // namespace euler
