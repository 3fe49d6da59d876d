// euler/ops/layout.hpp: ops that move elements without doing arithmetic on them.
//
// reshape and part_as (a new shape over the same memory, no copy), permute / transpose, the
// attention-head split and merge, slice, concat, and the two gathers a recommender needs: embedding
// (rows of a table picked by integer ids) and gather_rows (one position per sequence). Each backward
// sends every gradient element back to where its value came from, always with +=.
//
// Letters in shape comments: B batch, N sequence length, D hidden, H heads, dh = D / H channels
// per head, K items (table rows).
//
//     auto h = euler::embedding(table, ids);                 // table [K, D], ids [B, N] -> [B, N, D]
//     auto q = euler::split_heads(euler::matmul(h, wq), 4);  // [B, N, D] -> [B, 4, N, D/4]
//     auto o = euler::merge_heads(q);                        // [B, 4, N, D/4] -> [B, N, D]
//     auto last = euler::gather_rows(o, last_index);         // last_index [B] -> [B, D]
//     auto first = euler::slice(o, 1, 0, 1);                 // [B, N, D] -> [B, 1, D]
//     auto both = euler::concat({first, o}, 1);              // [B, 1 + N, D]
#pragma once

#include <algorithm>
#include <array>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "euler/ops/elementwise.hpp"

namespace euler {

// ---- copy kernels -------------------------------------------------------------------------------

// to[0, n) = from[0, n), or += when kAccumulate.
template <bool kAccumulate, class T>
void copy_run(const T* from, T* to, int64_t n) {
  using A = Eigen::Array<T, Eigen::Dynamic, 1>;
  if constexpr (kAccumulate) Eigen::Map<A>(to, n) += Eigen::Map<const A>(from, n);
  else std::memcpy(to, from, sizeof(T) * size_t(n));
}

// `rows` runs of `run` contiguous elements: dst row r (+)= src row r, rows `src_stride` and
// `dst_stride` elements apart. Split over threads by elements, so one long run is split too.
template <bool kAccumulate, class T>
void copy_rows(const T* src, int64_t src_stride, T* dst, int64_t dst_stride, int64_t rows, int64_t run) {
  if (rows * run == 0) return;
  for_chunks(rows * run, [&](int64_t e0, int64_t e1) {
    int64_t r = e0 / run, c = e0 % run;
    for (int64_t e = e0; e < e1; ++r, c = 0) {
      int64_t n = std::min(run - c, e1 - e);
      copy_run<kAccumulate>(src + r * src_stride + c, dst + r * dst_stride + c, n);
      e += n;
    }
  });
}

// A permutation as a copy plan: four dst axes (leading ones padded with extent 1), each with the
// stride of the src axis it reads. Extent-1 axes are dropped and dst axes that are also adjacent,
// in the same order, in src are merged, so [B, N, H, dh] -> [B, H, N, dh] copies runs of dh and
// [A, B, C, D] -> [B, A, C, D] copies runs of C * D.
struct PermutePlan {
  std::array<int64_t, kMaxRank> extent{1, 1, 1, 1};      // dst extents
  std::array<int64_t, kMaxRank> src_stride{0, 0, 0, 1};  // src elements between dst neighbours
};

// Plan for dst = permute(src, order), where dst axis a is src axis order[a].
inline PermutePlan plan_permute(const Shape& src, const std::array<int, kMaxRank>& order) {
  std::array<int64_t, kMaxRank> stride{};
  for (int i = 0; i < src.rank; ++i) stride[i] = src.inner(i);
  std::array<int64_t, kMaxRank> extent{}, src_stride{};
  int merged = 0;
  for (int a = 0; a < src.rank; ++a) {
    int64_t e = src[order[a]], s = stride[order[a]];
    if (e == 1) continue;
    if (merged > 0 && src_stride[merged - 1] == e * s) {  // continues the previous run in src
      extent[merged - 1] *= e;
      src_stride[merged - 1] = s;
    } else {
      extent[merged] = e;
      src_stride[merged++] = s;
    }
  }
  PermutePlan plan;
  for (int i = 0; i < merged; ++i) {
    plan.extent[kMaxRank - merged + i] = extent[i];
    plan.src_stride[kMaxRank - merged + i] = src_stride[i];
  }
  return plan;
}

// dst (+)= src laid out by `plan` (dst row-major over plan.extent). Writes are disjoint, so the
// result does not depend on the thread count.
template <bool kAccumulate, class T>
void permute_copy(const T* src, const PermutePlan& plan, T* dst) {
  const auto& e = plan.extent;
  const auto& s = plan.src_stride;
  if (e[0] * e[1] * e[2] * e[3] == 0) return;
  std::array<int64_t, kMaxRank> dst_stride{e[1] * e[2] * e[3], e[2] * e[3], e[3], 1};
  if (s[3] == 1) {
    // The last axis stays last: copy contiguous runs of e[3]. A plain copy visits the runs in src
    // order, so that reads stream through src and the writes form a few sequential streams (one
    // per value of the axes that moved); in dst order, [B, N, 16, 32] -> [B, 16, N, 32] ran 2.5x
    // slower. An accumulation reads its destination too, and runs faster with that side sequential.
    std::array<int, 3> visit{0, 1, 2};  // row axes, outermost first
    if (!kAccumulate) std::sort(visit.begin(), visit.end(), [&](int a, int b) { return s[a] > s[b]; });
    std::array<int64_t, 3> extent{}, from_stride{}, to_stride{};
    for (int k = 0; k < 3; ++k) {
      extent[k] = e[visit[k]];
      from_stride[k] = s[visit[k]];
      to_stride[k] = dst_stride[visit[k]];
    }
    int64_t rows = extent[0] * extent[1] * extent[2], run = e[3];
    parallel_for(rows, std::max<int64_t>(1, kElementwiseGrain / run), [&](int64_t r0, int64_t r1) {
      int64_t k2 = r0 % extent[2], k1 = r0 / extent[2] % extent[1], k0 = r0 / (extent[2] * extent[1]);
      for (int64_t r = r0; r < r1; ++r) {
        copy_run<kAccumulate>(src + k0 * from_stride[0] + k1 * from_stride[1] + k2 * from_stride[2],
                              dst + k0 * to_stride[0] + k1 * to_stride[1] + k2 * to_stride[2], run);
        if (++k2 == extent[2]) {
          k2 = 0;
          if (++k1 == extent[1]) {
            k1 = 0;
            ++k0;
          }
        }
      }
    });
    return;
  }
  // The last axis moves: src's contiguous axis is dst axis p < 3. Copy square tiles of (p, 3) so
  // that the strided reads of one tile share cache lines; q and r are the two other axes.
  constexpr int64_t kTile = 32;
  int p = s[0] == 1 ? 0 : s[1] == 1 ? 1 : 2;
  int q = p == 0 ? 1 : 0, r = p == 2 ? 1 : 2;
  int64_t p_tiles = (e[p] + kTile - 1) / kTile, jobs = e[q] * e[r] * p_tiles;
  parallel_for(jobs, std::max<int64_t>(1, kElementwiseGrain / (kTile * e[3])), [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) {
      int64_t tile = j % p_tiles, ir = j / p_tiles % e[r], iq = j / (p_tiles * e[r]);
      const T* src_base = src + iq * s[q] + ir * s[r];
      T* dst_base = dst + iq * dst_stride[q] + ir * dst_stride[r];
      int64_t p0 = tile * kTile, p1 = std::min(p0 + kTile, e[p]);
      for (int64_t c0 = 0; c0 < e[3]; c0 += kTile) {
        int64_t c1 = std::min(c0 + kTile, e[3]);
        for (int64_t ip = p0; ip < p1; ++ip) {
          const T* from = src_base + ip;  // s[p] == 1
          T* to = dst_base + ip * dst_stride[p];
          for (int64_t c = c0; c < c1; ++c) {
            if constexpr (kAccumulate) to[c] += from[c * s[3]];
            else to[c] = from[c * s[3]];
          }
        }
      }
    }
  });
}

// Resolve a possibly negative axis of `shape`, or throw naming the op, the axis and the shape.
inline int axis_of(const char* op, int axis, const Shape& shape) {
  int a = axis < 0 ? axis + shape.rank : axis;
  if (a < 0 || a >= shape.rank)
    throw ShapeError(std::string(op) + ": axis " + std::to_string(axis) + " out of range for shape " + shape.str());
  return a;
}

// ---- reshape ------------------------------------------------------------------------------------

// Elements offset .. offset + shape.numel() - 1 of x, seen with `shape`: x's memory, nothing copied.
// reshape is the whole of x; a node with two outputs (the fused layer's rows and its contrastive sum,
// model/fused_layer.hpp) stores them one after the other and hands out each as a part.
template <class T>
Var<T> part_as(Var<T> x /*[...]*/, int64_t offset, const Shape& shape, const char* op) {
  if (offset < 0 || offset + shape.numel() > x.numel())
    throw ShapeError(std::string(op) + ": elements [" + std::to_string(offset) + ", " + std::to_string(offset + shape.numel()) +
                     ") out of bounds for " + x.shape().str());
  TensorView<T> y{shape, x.value().data + offset};
  return x.tape->record(op, y, {x}, [x, offset](auto, TensorView<const T> dy) {
    // y[i] = x[offset + i]  =>  dx[offset + i] += dy[i]
    TensorView<T> dx{dy.shape, x.grad_accumulator().data + offset};
    for_chunks(dx.numel(), [&](int64_t i0, int64_t i1) { arr(dx, i0, i1) += arr(dy, i0, i1); });
  });
}

// x [...] -> [shape], same elements in the same (row-major) order. The value is x's memory seen
// with the new shape: nothing is copied.
template <class T>
Var<T> reshape_as(Var<T> x /*[...]*/, const Shape& shape, const char* op) {
  if (shape.numel() != x.numel())
    throw ShapeError(std::string(op) + ": cannot reshape " + x.shape().str() + " to " + shape.str() + " (" +
                     std::to_string(x.numel()) + " vs " + std::to_string(shape.numel()) + " elements)");
  return part_as(x, 0, shape, op);
}

template <class T>
Var<T> reshape(Var<T> x /*[...]*/, Shape shape) {
  return reshape_as(x, shape, "reshape");
}

// ---- permute and transpose ----------------------------------------------------------------------

inline std::string axes_str(std::span<const int> order) {
  std::string s = "[";
  for (size_t i = 0; i < order.size(); ++i) s += (i ? ", " : "") + std::to_string(order[i]);
  return s + "]";
}

// y axis a = x axis order[a] (negative entries count from the end), for any rank.
template <class T>
Var<T> permute_as(Var<T> x /*[...]*/, std::span<const int> order, const char* op) {
  Shape xs = x.shape();
  auto fail = [&] {
    throw ShapeError(std::string(op) + ": order " + axes_str(order) + " is not a permutation of the axes of " +
                     xs.str());
  };
  if (int(order.size()) != xs.rank) fail();
  std::array<int, kMaxRank> forward{0, 1, 2, 3}, inverse{0, 1, 2, 3};
  std::array<bool, kMaxRank> seen{};
  for (int a = 0; a < xs.rank; ++a) {
    int axis = order[a] < 0 ? order[a] + xs.rank : order[a];
    if (axis < 0 || axis >= xs.rank || seen[axis]) fail();
    seen[axis] = true;
    forward[a] = axis;
    inverse[axis] = a;
  }
  Shape out = xs;
  for (int a = 0; a < xs.rank; ++a) out[a] = xs[forward[a]];
  TensorView<T> y = x.tape->alloc(out);
  permute_copy<false>(x.value().data, plan_permute(xs, forward), y.data);
  PermutePlan back = plan_permute(out, inverse);
  return x.tape->record(op, y, {x}, [x, back](auto, TensorView<const T> dy) {
    // y = permute(x, order)  =>  dx += permute(dy, inverse of order)
    permute_copy<true>(dy.data, back, x.grad_accumulator().data);
  });
}

template <class T>
Var<T> permute(Var<T> x /*[...]*/, std::span<const int> order) {
  return permute_as(x, order, "permute");
}
template <class T>
Var<T> permute(Var<T> x /*[...]*/, std::initializer_list<int> order) {
  return permute_as(x, std::span<const int>(order.begin(), order.size()), "permute");
}

// Swap two axes (negative axes count from the end).
template <class T>
Var<T> transpose(Var<T> x /*[...]*/, int axis0, int axis1) {
  Shape s = x.shape();
  int a0 = axis_of("transpose", axis0, s), a1 = axis_of("transpose", axis1, s);
  std::array<int, kMaxRank> order{0, 1, 2, 3};
  std::swap(order[a0], order[a1]);
  return permute_as(x, std::span<const int>(order.data(), size_t(s.rank)), "transpose");
}

// Attention heads: channel block h (of D/H channels) becomes head h, as PyTorch's
// x.view(B, N, H, D/H).permute(0, 2, 1, 3).
template <class T>
Var<T> split_heads(Var<T> x /*[B, N, D]*/, int heads) {
  Shape s = x.shape();
  require(s.rank == 3, "split_heads", "expected x [B, N, D], got " + s.str());
  require(heads > 0 && s[2] % heads == 0, "split_heads",
          "heads " + std::to_string(heads) + " does not divide D = " + std::to_string(s[2]) + " of " + s.str());
  Var<T> grouped = reshape_as(x, Shape{s[0], s[1], heads, s[2] / heads}, "split_heads");  // [B, N, H, D/H]
  return permute_as(grouped, std::array<int, 4>{0, 2, 1, 3}, "split_heads");             // [B, H, N, D/H]
}

// The inverse of split_heads: [B, H, N, dh] -> [B, N, H * dh].
template <class T>
Var<T> merge_heads(Var<T> x /*[B, H, N, dh]*/) {
  Shape s = x.shape();
  require(s.rank == 4, "merge_heads", "expected x [B, H, N, dh], got " + s.str());
  Var<T> grouped = permute_as(x, std::array<int, 4>{0, 2, 1, 3}, "merge_heads");  // [B, N, H, dh]
  return reshape_as(grouped, Shape{s[0], s[2], s[1] * s[3]}, "merge_heads");     // [B, N, H * dh]
}

// ---- slice and concat ---------------------------------------------------------------------------

// x [..., n, ...] -> [..., length, ...]: elements start .. start + length - 1 along `axis`.
template <class T>
Var<T> slice(Var<T> x /*[...]*/, int axis, int64_t start, int64_t length) {
  Shape s = x.shape();
  int a = axis_of("slice", axis, s);
  if (start < 0 || length < 0 || start + length > s[a])
    throw ShapeError("slice: range [" + std::to_string(start) + ", " + std::to_string(start + length) +
                     ") out of bounds for axis " + std::to_string(axis) + " of shape " + s.str());
  // Viewed as [outer, n, inner]: each outer index contributes one run of length * inner elements.
  int64_t outer = s.outer(a), n = s[a], inner = s.inner(a);
  TensorView<T> y = x.tape->alloc(s.with(a, length));
  copy_rows<false>(x.value().data + start * inner, n * inner, y.data, length * inner, outer, length * inner);
  return x.tape->record("slice", y, {x}, [x, outer, n, inner, start, length](auto, TensorView<const T> dy) {
    // y[o, i, j] = x[o, start + i, j]  =>  dx[o, start + i, j] += dy[o, i, j]
    T* dx = x.grad_accumulator().data;
    copy_rows<true>(dy.data, length * inner, dx + start * inner, n * inner, outer, length * inner);
  });
}

// Join tensors along `axis`; all other extents must agree. [..., n_i, ...] -> [..., sum n_i, ...]
template <class T>
Var<T> concat(std::span<const Var<T>> xs /*each [..., n_i, ...]*/, int axis) {
  require(!xs.empty(), "concat", "no inputs");
  Shape first = xs[0].shape();
  int a = axis_of("concat", axis, first);
  int64_t total = 0;
  bool needs_grad = false;
  for (const Var<T>& x : xs) {
    if (x.tape != xs[0].tape) throw TapeError("concat: inputs on different tapes");
    const Shape& s = x.shape();
    if (s.rank != first.rank || !(s.with(a, 0) == first.with(a, 0)))
      throw ShapeError("concat: shapes " + first.str() + " and " + s.str() + " differ outside axis " +
                       std::to_string(axis));
    total += s[a];
    needs_grad = needs_grad || x.requires_grad();
  }
  Tape<T>& tape = *xs[0].tape;
  needs_grad = needs_grad && tape.grad_enabled();
  // Viewed as [outer, n_i, inner]: input i fills columns offset_i * inner ... of each output row.
  int64_t outer = first.outer(a), inner = first.inner(a), row = total * inner;
  TensorView<T> y = tape.alloc(first.with(a, total));
  int64_t column = 0;  // offset_i * inner
  for (const Var<T>& x : xs) {
    int64_t run = x.shape()[a] * inner;
    copy_rows<false>(x.value().data, run, y.data + column, row, outer, run);
    column += run;
  }
  // The backward needs the list of inputs: kept in the tape's memory (the closure holds a pointer).
  Var<T>* inputs = nullptr;
  if (needs_grad) {
    inputs = tape.template alloc_as<Var<T>>(Shape{int64_t(xs.size())}).data;
    std::uninitialized_copy(xs.begin(), xs.end(), inputs);
  }
  size_t count = xs.size();
  return tape.record_n("concat", y, xs.data(), count, [inputs, count, a, outer, inner, row](auto, TensorView<const T> dy) {
    // y[o, offset_i + k, j] = x_i[o, k, j]  =>  dx_i[o, k, j] += dy[o, offset_i + k, j]
    int64_t column = 0;  // offset_i * inner
    for (size_t i = 0; i < count; ++i) {
      Var<T> x = inputs[i];
      int64_t run = x.shape()[a] * inner;
      if (x.requires_grad()) copy_rows<true>(dy.data + column, row, x.grad_accumulator().data, run, outer, run);
      column += run;
    }
  });
}

template <class T>
Var<T> concat(std::initializer_list<Var<T>> xs /*each [..., n_i, ...]*/, int axis) {
  return concat(std::span<const Var<T>>(xs.begin(), xs.size()), axis);
}
template <class T>
Var<T> concat(const std::vector<Var<T>>& xs /*each [..., n_i, ...]*/, int axis) {
  return concat(std::span<const Var<T>>(xs), axis);
}

// ---- gathers ------------------------------------------------------------------------------------

// Rows of `table` picked by `ids`: y[i..., :] = table[ids[i...], :]. Ids equal to padding_idx read
// their row as usual but send it no gradient (PyTorch nn.Embedding); -1 means no padding id.
template <class T>
Var<T> embedding(Var<T> table /*[K, D]*/, TensorView<const int32_t> ids /*[...] rank <= 3*/,
                 int32_t padding_idx = -1) {
  Shape ts = table.shape();
  require(ts.rank == 2, "embedding", "expected table [K, D], got " + ts.str());
  require(ids.rank() <= 3, "embedding", "ids " + ids.shape.str() + " have rank above 3");
  int64_t rows = ts[0], dim = ts[1], n = ids.numel();
  require(padding_idx >= -1 && padding_idx < rows, "embedding",
          "padding_idx " + std::to_string(padding_idx) + " out of range for table " + ts.str());
  for (int64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= rows)
      throw ShapeError("embedding: id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                       " out of range for table " + ts.str());
  Shape out = ids.shape;  // [ids..., D]
  out.rank += 1;
  out[out.rank - 1] = dim;
  TensorView<T> y = table.tape->alloc(out);
  const T* tv = table.value().data;
  parallel_for(n, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, dim)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) copy_run<false>(tv + ids[i] * dim, y.data + i * dim, dim);
  });
  // The ids outlive the caller's buffer only when a backward will read them.
  bool needs_grad = table.requires_grad() && table.tape->grad_enabled();
  const int32_t* kept = needs_grad ? table.tape->keep(ids).data : nullptr;
  return table.tape->record("embedding", y, {table}, [table, kept, n, dim, padding_idx](auto, TensorView<const T> dy) {
    // y[i, :] = table[ids[i], :]  =>  dtable[ids[i], :] += dy[i, :]  (except ids[i] == padding_idx)
    // Repeated ids add into the same row, so threads split the columns (in blocks of one cache
    // line), never the ids: each element sums its contributions in id order whatever the threads.
    T* dtable = table.grad_accumulator().data;
    constexpr int64_t kLine = std::max<int64_t>(1, 64 / int64_t(sizeof(T)));
    int64_t blocks = (dim + kLine - 1) / kLine;
    int64_t grain = std::max<int64_t>(1, kElementwiseGrain / (kLine * std::max<int64_t>(1, n)));
    parallel_for(blocks, grain, [&](int64_t b0, int64_t b1) {
      int64_t c0 = b0 * kLine, c1 = std::min(dim, b1 * kLine);
      for (int64_t i = 0; i < n; ++i)
        if (kept[i] != padding_idx) copy_run<true>(dy.data + i * dim + c0, dtable + kept[i] * dim + c0, c1 - c0);
    });
  });
}

// One position per sequence: y[b, :] = x[b, index[b], :] (e.g. each user's last valid item).
template <class T>
Var<T> gather_rows(Var<T> x /*[B, N, D]*/, TensorView<const int32_t> index /*[B]*/) {
  Shape s = x.shape();
  require(s.rank == 3, "gather_rows", "expected x [B, N, D], got " + s.str());
  if (index.rank() != 1 || index.shape[0] != s[0])
    throw ShapeError("gather_rows: index " + index.shape.str() + " does not match x " + s.str() + " (expected [" +
                     std::to_string(s[0]) + "])");
  int64_t batch = s[0], length = s[1], dim = s[2];
  for (int64_t b = 0; b < batch; ++b)
    if (index[b] < 0 || index[b] >= length)
      throw ShapeError("gather_rows: index " + std::to_string(index[b]) + " at batch " + std::to_string(b) +
                       " out of range for x " + s.str());
  TensorView<T> y = x.tape->alloc(Shape{batch, dim});
  const T* xv = x.value().data;
  parallel_for(batch, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, dim)), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) copy_run<false>(xv + (b * length + index[b]) * dim, y.data + b * dim, dim);
  });
  bool needs_grad = x.requires_grad() && x.tape->grad_enabled();
  const int32_t* kept = needs_grad ? x.tape->keep(index).data : nullptr;
  return x.tape->record("gather_rows", y, {x}, [x, kept, batch, length, dim](auto, TensorView<const T> dy) {
    // y[b, :] = x[b, index[b], :]  =>  dx[b, index[b], :] += dy[b, :]  (one row per b: no overlap)
    T* dx = x.grad_accumulator().data;
    parallel_for(batch, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, dim)), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) copy_run<true>(dy.data + b * dim, dx + (b * length + kept[b]) * dim, dim);
    });
  });
}

}  // namespace euler
