// euler/model/fused_tile.hpp: one tile of the fused transformer layer (model/fused_layer.hpp), block by block.
//
// A tile is a few lists of the batch (about 256 rows) whose intermediates stay in the core's L2 cache.
// This file holds what a tile computes: the layer's settings and parameters (FusedLayerSpec,
// FusedLayerInputs), the plan both passes read (FusedLayerPlan), the tile's intermediates (Tile), and the
// layer's five blocks, each a forward and a backward side by side: q, k, v; the rotation of q and k with
// the phase contrastive terms; attention; the output projection with LN1; the feed-forward block with
// LN2. forward_tile runs them in order, backward_tile in reverse. fused_layer.hpp makes the tape node
// around them (tiles over threads, kept or recomputed intermediates).
#pragma once

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <new>
#include <type_traits>
#include <vector>

#include "euler/model/config.hpp"
#include "euler/model/contrastive.hpp"
#include "euler/model/forward.hpp"
#include "euler/nn/layers.hpp"
#include "euler/ops/complex.hpp"
#include "euler/ops/nn.hpp"

namespace euler {

enum class LayerRotation { none, rope, euler };

// What the layer computes, fixed per model (from EulerFormerConfig).
struct FusedLayerSpec {
  int64_t D = 64, H = 2, I = 256;  // hidden, heads, feed-forward width
  bool causal = true;              // SASRec (key s visible to query t when s <= t); BERT4Rec: false
  bool gelu = true;                // else relu
  double eps = 1e-12;              // both LayerNorms
  double attn_dropout = 0, hidden_dropout = 0;
  LayerRotation rotation = LayerRotation::none;
  bool contrastive = false;        // the phase contrastive terms (euler, lamb > 0)
  double tep = 1, lamb = 0;
  ContrastiveMode contrastive_mode = ContrastiveMode::authors;
  // Keep the tiles' intermediates for backward when they take at most this many bytes per layer (one
  // sequential write and read instead of a second forward); 0: always recompute.
  int64_t keep_bytes = kDefaultKeepBytes;
};

// The layer's parameters on the tape (empty Vars where a scheme has none).
template <class T>
struct FusedLayerInputs {
  Var<T> wq, bq, wk, bk, wv, bv;  // [D, D], [D]
  Var<T> wd, bd, g1, be1;         // attention output projection, its LayerNorm
  Var<T> w1, b1, w2, b2, g2, be2; // feed-forward [I, D], [I], [D, I], [D], LayerNorm
  Var<T> delta, bias, w;          // euler: [] or [D/2], [] or [D/2] (or empty), [D/2] (contrastive weights)

  static constexpr size_t kCount = 19;
  std::array<Var<T>, kCount> all() const {
    return {wq, bq, wk, bk, wv, bv, wd, bd, g1, be1, w1, b1, w2, b2, g2, be2, delta, bias, w};
  }
};

// Everything both passes read, in tape memory (the backward closure keeps a pointer to it).
template <class T>
struct FusedLayerPlan {
  Var<T> x;                         // [B, N, D]
  FusedLayerInputs<T> in;
  FusedLayerSpec spec;
  int64_t B = 0, N = 0, L = 1;      // lists, list length, lists per tile
  const int32_t* ids = nullptr;     // [B, N]
  const int32_t* rows = nullptr;    // [B] the query row of each list, or null (every row queries)
  const T* cos_alpha = nullptr;     // [N, D/2] (rope)
  const T* sin_alpha = nullptr;
  const T* alpha = nullptr;         // [N, D/2] (euler)
  bool dropout_on = false;
  DropoutMask view_q{RandomStream(), 0, 0.0}, view_k{RandomStream(), 0, 0.0};  // contrastive views
  DropoutMask attn_mask{RandomStream(), 0, 0.0}, dense_mask{RandomStream(), 0, 0.0}, ffn_mask{RandomStream(), 0, 0.0};
  T contrastive_scale = 0;          // lamb / count
  T* kept = nullptr;                // each tile's intermediates for backward (kept_per_tile values apart), or null: recompute
  int64_t kept_per_tile = 0;

  int64_t queries_per_list() const { return rows ? 1 : N; }
  int64_t first_query(int64_t b) const { return rows ? rows[b] : 0; }  // list b's queries: rows first.. first + Qn
  // q (and its rotation) only at the query rows, [Q, D] instead of [R, D]: when one row per list queries
  // and no contrastive term needs every row's phase (scoring, the last layer of the per-prefix objective).
  bool sparse_queries() const { return rows != nullptr && !spec.contrastive; }
};

namespace fused_detail {

template <class T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using MatrixMapC = Eigen::Map<const Matrix<T>>;
template <class T>
using MatrixMapM = Eigen::Map<Matrix<T>>;
template <class T>
using ArrayRow = Eigen::Array<T, 1, Eigen::Dynamic>;
// Scratch vectors are aligned like Eigen's own matrices (64 bytes with AVX-512): Eigen's vectorised
// sums start their packets at the first aligned element, so a sum over memory whose alignment changes
// from run to run would change in the last bit.
template <class T>
using AlignedVector = std::vector<T, Eigen::aligned_allocator<T>>;

// A parameter's value as a matrix (or vector), read-only.
template <class T>
MatrixMapC<T> mat(Var<T> v, int64_t rows, int64_t cols) {
  return MatrixMapC<T>(v.value().data, rows, cols);
}
template <class T>
Eigen::Map<const ArrayRow<T>> row(Var<T> v, int64_t n) {
  return Eigen::Map<const ArrayRow<T>>(v.value().data, n);
}

// y = x W^T + b over the rows of a tile: x [R, in], W [out, in], b [out].
template <class T, class X, class Y>
void linear_rows(const X& x, Var<T> W, Var<T> b, Y& y) {
  const int64_t out = W.size(0), in = W.size(1);
  y.resize(x.rows(), out);
  y.noalias() = x * mat(W, out, in).transpose();
  y.array().rowwise() += row(b, out);
}

// One tile's intermediates (per thread, reused across tiles).
template <class T>
struct Tile {
  int64_t b0 = 0, lists = 0, R = 0, Q = 0;   // first list, lists, rows, query rows
  int64_t Qn = 0, Rq = 0;                    // query rows per list; rows of q: R, or Q with sparse queries
  bool sparse = false;                       // FusedLayerPlan::sparse_queries
  // The tile is lists [b0, b1) of the plan's lists of N positions, Qn of them querying.
  template <class P>
  void start(const P& p, int64_t first, int64_t end) {
    b0 = first;
    lists = end - first;
    Qn = p.queries_per_list();
    R = lists * p.N;
    Q = lists * Qn;
    sparse = p.sparse_queries();
    Rq = sparse ? Q : R;
  }
  // The row of q holding list l's first query (at position `first` of the list).
  int64_t q_row(int64_t l, int64_t first) const { return sparse ? l * Qn : l * (R / lists) + first; }
  // What backward reads (for_each_kept) lives in one block of memory, the layer's kept memory for this
  // tile or the tile's own (bind_kept): forward writes it where backward will read it, with no copy.
  using Kept = MatrixMapM<T>;
  Kept q{nullptr, 0, 0}, k{nullptr, 0, 0}, v{nullptr, 0, 0};  // [Rq, D], [R, D], [R, D] projections
  Kept q_rot{nullptr, 0, 0}, k_rot{nullptr, 0, 0};            // the same after the rotation (euler, rope)
  Kept arg_q{nullptr, 0, 0}, arg_k{nullptr, 0, 0};            // [Rq, D/2], [R, D/2] arg q, arg k (euler)
  Kept phase_q{nullptr, 0, 0}, phase_k{nullptr, 0, 0};        // theta_q, theta_k (euler), as arg_q, arg_k
  Kept probs{nullptr, 0, 0};                                  // [lists H Qn, N] softmax rows, Qn queries per list
  Kept context{nullptr, 0, 0};                                // [Q, D]
  Kept z1{nullptr, 0, 0}, h1{nullptr, 0, 0};                  // [Q, D] dropout(dense) + x, LN1 of it
  Kept z2{nullptr, 0, 0};                                     // [Q, D] dropout(f2) + h1
  Kept stats1{nullptr, 0, 0}, stats2{nullptr, 0, 0};          // [Q, 2] the two LayerNorms' mean and 1/sd
  Kept a1{nullptr, 0, 0}, f{nullptr, 0, 0};                   // [Q, I] h1 W1^T + b1 and act(a1)
  Kept contrastive_probs{nullptr, 0, 0};                      // [lists 2 N, N]
  AlignedVector<T> own;                                       // the kept values when the layer keeps none
  // Not kept:
  Matrix<T> x_q;                             // [Q, D] x at the query rows
  Matrix<T> angle_q;                         // [Q, D/2] alpha at each query row (euler, sparse queries)
  Matrix<T> probs_kept;                      // probs after attention dropout (the mask is drawn again)
  Matrix<T> dense;                           // [Q, D] context Wd^T + bd
  Matrix<T> f2;                              // [Q, D] f W2^T + b2
  ContrastiveOperands<T> operands;
  ContrastiveGradScratch<T> grad_scratch;
  // backward
  Matrix<T> dz2, df2, df, da1, dh1, dz1, ddense, dcontext, dq_rot, dk_rot, dv, dq, dk, dphase_q, dphase_k;
  Matrix<T> dprobs;
};

// This thread's tile, kept from call to call. A Tile made afresh in each call allocated its matrices
// again in every layer of every step, the allocator gave their pages back to the system when they were
// freed, and the next step touched new pages: on CPU type B (docs/performance.md) a first touch costs
// about 8 us per 4 KB page, and these faults took 12% of the B = 256 training step. Separate tiles for
// layers that query every position and for a last layer that queries one row per list, each full (L
// lists) or the batch's last, shorter one, so that no tile resizes another's matrices (a resize
// allocates anew). Everything a tile holds is written before it is read.
template <class T>
Tile<T>& thread_tile(const FusedLayerPlan<T>& p, int64_t b0, int64_t b1) {
  thread_local Tile<T> tiles[2][2];
  return tiles[p.rows == nullptr ? 0 : 1][b1 - b0 == p.L ? 0 : 1];
}

// x at the tile's query rows, [Q, D] (list l's queries are rows l Qn .. of it).
template <class T, class X>
void gather_query_rows(const FusedLayerPlan<T>& p, Tile<T>& t, const X& x) {
  t.x_q.resize(t.Q, p.spec.D);
  for (int64_t l = 0; l < t.lists; ++l) t.x_q.middleRows(l * t.Qn, t.Qn) = x.middleRows(l * p.N + p.first_query(t.b0 + l), t.Qn);
}

// The list position of row r of the tile's q (its angle's row in alpha).
template <class T>
int64_t query_position(const FusedLayerPlan<T>& p, const Tile<T>& t, int64_t r) {
  return t.sparse ? p.first_query(t.b0 + r / t.Qn) + r % t.Qn : r % p.N;
}

// RoPE on `rows` rows of D numbers, row r at list position position(r): dst = src e^{i alpha}, or with
// Conjugate dst = src e^{-i alpha} (its backward).
template <bool Conjugate, class T, class Position>
void rope_rows(const FusedLayerPlan<T>& p, const T* src, T* dst, int64_t rows, Position position) {
  const int64_t half = p.spec.D / 2;
  for (int64_t r = 0; r < rows; ++r) {
    const T* cs = p.cos_alpha + position(r) * half;
    const T* sn = p.sin_alpha + position(r) * half;
    const T* in = src + r * 2 * half;
    T* out = dst + r * 2 * half;
    for (int64_t j = 0; j < half; ++j) {
      const T re = in[2 * j], im = in[2 * j + 1];
      if constexpr (Conjugate) {
        out[2 * j] = re * cs[j] + im * sn[j];
        out[2 * j + 1] = im * cs[j] - re * sn[j];
      } else {
        out[2 * j] = re * cs[j] - im * sn[j];
        out[2 * j + 1] = re * sn[j] + im * cs[j];
      }
    }
  }
}

// The attention weights after dropout: probs itself while no dropout is on (scoring, or dropout 0), else
// probs_kept = dropout(probs), list by list and head by head (mask elements indexed in [B, H, Qn, N]).
template <class T>
MatrixMapC<T> keep_probs(const FusedLayerPlan<T>& p, Tile<T>& t) {
  const T attn_p = p.dropout_on ? T(p.spec.attn_dropout) : T(0);
  const int64_t rows = t.probs.rows(), N = p.N, Qn = p.queries_per_list();
  if (attn_p == 0) return MatrixMapC<T>(t.probs.data(), rows, N);
  t.probs_kept.resize(rows, N);
  // The tile's rows are lists b0.. times heads times queries, contiguous in [B, H, Qn, N].
  apply_dropout<false>(p.attn_mask, t.b0 * p.spec.H * Qn * N, t.probs.data(), t.probs_kept.data(), rows * N,
                       T(1) / (T(1) - attn_p));
  return MatrixMapC<T>(t.probs_kept.data(), rows, N);
}

// The intermediates backward_tile reads, with their shapes in a tile of `lists` lists, in a fixed order
// (f(matrix, rows, cols)): what a tile keeps for backward, or recomputes. probs_kept is left out, since
// it is probs with the dropout mask applied again (keep_probs).
template <class T, class F>
void for_each_kept(const FusedLayerPlan<T>& p, Tile<T>& t, int64_t lists, F&& f) {
  using Kept = typename Tile<T>::Kept;
  const FusedLayerSpec& s = p.spec;
  const int64_t R = lists * p.N, Q = lists * p.queries_per_list(), Rq = p.sparse_queries() ? Q : R, D = s.D, half = D / 2;
  f(t.q, Rq, D);
  f(t.k, R, D);
  f(t.v, R, D);
  if (s.rotation != LayerRotation::none) {
    f(t.q_rot, Rq, D);
    f(t.k_rot, R, D);
  }
  if (s.rotation == LayerRotation::euler) {
    for (auto* m : {&t.arg_q, &t.phase_q}) f(*m, Rq, half);
    for (auto* m : {&t.arg_k, &t.phase_k}) f(*m, R, half);
  }
  f(t.probs, lists * s.H * p.queries_per_list(), p.N);
  for (Kept* m : {&t.context, &t.z1, &t.h1, &t.z2}) f(*m, Q, D);
  f(t.stats1, Q, 2);
  f(t.stats2, Q, 2);
  f(t.a1, Q, s.I);
  f(t.f, Q, s.I);
  if (s.contrastive) f(t.contrastive_probs, lists * 2 * p.N, p.N);
}

// Each kept matrix starts on a 64-byte boundary (16 floats, 8 doubles), as Eigen's own matrices do, so
// that vectorised sums over it split into the same packets wherever the block lies (the same bits).
template <class T>
constexpr int64_t padded(int64_t values) {
  constexpr int64_t step = 64 / int64_t(sizeof(T));
  return (values + step - 1) / step * step;
}

// Values one tile of `lists` lists keeps (the contrastive softmax rows included), padded as above.
template <class T>
int64_t kept_values(const FusedLayerPlan<T>& p, int64_t lists) {
  Tile<T> t;
  int64_t total = 0;
  for_each_kept(p, t, lists, [&](auto&, int64_t rows, int64_t cols) { total += padded<T>(rows * cols); });
  return total;
}

// Point the tile's kept matrices at `block` (kept_values(p, t.lists) values, 64-byte aligned): the
// layer's kept memory for this tile, or the tile's own when the layer keeps nothing (block null).
template <class T>
void bind_kept(const FusedLayerPlan<T>& p, Tile<T>& t, T* block) {
  if (!block) {  // the tile's own memory, aligned here: Eigen's allocator gives 16 or 32 bytes without AVX-512
    constexpr int64_t step = padded<T>(1);
    t.own.resize(size_t(kept_values(p, t.lists) + step));
    const int64_t misaligned = int64_t(reinterpret_cast<uintptr_t>(t.own.data()) % 64) / int64_t(sizeof(T));
    block = t.own.data() + (step - misaligned) % step;
  }
  assert(reinterpret_cast<uintptr_t>(block) % 64 == 0);
  for_each_kept(p, t, t.lists, [&](auto& m, int64_t rows, int64_t cols) {
    using Kept = std::remove_reference_t<decltype(m)>;
    new (&m) Kept(block, rows, cols);  // Eigen's way to point a Map elsewhere
    block += padded<T>(rows * cols);
  });
}

// Backward from a kept tile: lists [b0, b1) whose forward_tile wrote into src.
template <class T>
void load_tile(const FusedLayerPlan<T>& p, Tile<T>& t, int64_t b0, int64_t b1, T* src) {
  t.start(p, b0, b1);
  bind_kept(p, t, src);
  keep_probs(p, t);
}

}  // namespace fused_detail

// ---- the tile, block by block ---------------------------------------------------------------------
//
// Each block of the file comment is a forward and a backward function side by side, as the ops are:
// forward reads the tile's earlier intermediates and writes its own; backward reads them and the
// gradient of its output, and leaves the gradient of its input in the tile. forward_tile and
// backward_tile (below) run the blocks in order and in reverse.

// Parameter gradients of one thread, in the order of FusedLayerInputs::all() (flat; null entries skipped).
template <class T>
struct LayerGrads {
  fused_detail::AlignedVector<T> flat;
  std::array<int64_t, FusedLayerInputs<T>::kCount> offset{};

  explicit LayerGrads(const FusedLayerInputs<T>& in) {
    int64_t total = 0;
    auto all = in.all();
    for (size_t i = 0; i < all.size(); ++i) {
      offset[i] = total;
      if (all[i].tape && all[i].requires_grad()) total += all[i].numel();
    }
    flat.assign(size_t(total), T(0));
  }
  // The gradient of input i (null when it needs none).
  T* at(const FusedLayerInputs<T>& in, size_t i) {
    Var<T> v = in.all()[i];
    return v.tape && v.requires_grad() ? flat.data() + offset[i] : nullptr;
  }
};

namespace fused_detail {

// The inputs' places in FusedLayerInputs::all() (and LayerGrads).
enum Param : size_t { WQ, BQ, WK, BK, WV, BV, WD, BD, G1, BE1, W1, B1, W2, B2, G2, BE2, DELTA, BIAS, WC };

// dW += dy^T x and db += column sums of dy, for a linear y = x W^T + b (when they need gradients).
template <class T, class X>
void linear_params(const FusedLayerInputs<T>& in, LayerGrads<T>& g, Param w, Param b, const Matrix<T>& dy, const X& xin) {
  if (T* dw = g.at(in, w)) MatrixMapM<T>(dw, dy.cols(), xin.cols()).noalias() += dy.transpose() * xin;
  if (T* db = g.at(in, b)) Eigen::Map<ArrayRow<T>>(db, dy.cols()) += dy.colwise().sum().array();
}

// The hidden dropout's keep factor 1 / (1 - p), and p (0 when dropout is off).
template <class T>
std::pair<T, T> hidden_dropout(const FusedLayerPlan<T>& p) {
  const T hidden_p = p.dropout_on ? T(p.spec.hidden_dropout) : T(0);
  return {hidden_p, T(1) / (T(1) - hidden_p)};
}
// into += dropout(y) over the tile's [Q, D] rows: elements b0 Qn D .. of the masked [B, Qn, D].
template <class T>
void add_hidden_dropout(const FusedLayerPlan<T>& p, const Tile<T>& t, const Matrix<T>& y, const DropoutMask& mask, MatrixMapM<T> into) {
  const auto [hidden_p, keep] = hidden_dropout(p);
  if (hidden_p == 0) {
    into += y;
    return;
  }
  apply_dropout<true>(mask, t.b0 * t.Qn * p.spec.D, y.data(), into.data(), t.Q * p.spec.D, keep);
}
// into = dy where the dropout kept an element (times 1 / (1 - p)), 0 where it dropped it.
template <class T>
void hidden_dropout_backward(const FusedLayerPlan<T>& p, const Tile<T>& t, const Matrix<T>& dy, const DropoutMask& mask, Matrix<T>& into) {
  const auto [hidden_p, keep] = hidden_dropout(p);
  into.resize(t.Q, p.spec.D);
  if (hidden_p == 0) {
    into = dy;
    return;
  }
  apply_dropout<false>(mask, t.b0 * t.Qn * p.spec.D, dy.data(), into.data(), t.Q * p.spec.D, keep);
}

// ---- block 1: q, k, v = x W^T + b (q at the query rows only, with sparse queries) ------------------

template <class T>
void qkv_forward(const FusedLayerPlan<T>& p, Tile<T>& t, MatrixMapC<T> x) {
  if (t.sparse) linear_rows(t.x_q, p.in.wq, p.in.bq, t.q);
  else linear_rows(x, p.in.wq, p.in.bq, t.q);
  linear_rows(x, p.in.wk, p.in.bk, t.k);
  linear_rows(x, p.in.wv, p.in.bv, t.v);
}

// dW += d^T x, db += sum d, dx += d W, from t.dq, t.dk, t.dv.
template <class T>
void qkv_backward(const FusedLayerPlan<T>& p, Tile<T>& t, MatrixMapC<T> x, MatrixMapM<T> dx, bool want_dx, LayerGrads<T>& g) {
  const FusedLayerInputs<T>& in = p.in;
  const int64_t N = p.N, D = p.spec.D, Qn = t.Qn;
  if (t.sparse) {
    gather_query_rows(p, t, x);  // a kept tile does not keep x_q
    linear_params(in, g, WQ, BQ, t.dq, t.x_q);
  } else {
    linear_params(in, g, WQ, BQ, t.dq, x);
  }
  linear_params(in, g, WK, BK, t.dk, x);
  linear_params(in, g, WV, BV, t.dv, x);
  if (!want_dx) return;
  if (t.sparse)
    for (int64_t l = 0; l < t.lists; ++l)
      dx.middleRows(l * N + p.first_query(t.b0 + l), Qn).noalias() += t.dq.middleRows(l * Qn, Qn) * mat(in.wq, D, D);
  else
    dx.noalias() += t.dq * mat(in.wq, D, D);
  dx.noalias() += t.dk * mat(in.wk, D, D);
  dx.noalias() += t.dv * mat(in.wv, D, D);
}

// ---- block 2: the rotation of q and k, and the phase contrastive terms ----------------------------
// (the same kernels as the composed ops; c indexes the tile's complex numbers)

// The rotated q and k the attention reads: q~, k~ (or q, k themselves without a rotation).
template <class T>
const T* rotated_q(const FusedLayerPlan<T>& p, const Tile<T>& t) { return p.spec.rotation == LayerRotation::none ? t.q.data() : t.q_rot.data(); }
template <class T>
const T* rotated_k(const FusedLayerPlan<T>& p, const Tile<T>& t) { return p.spec.rotation == LayerRotation::none ? t.k.data() : t.k_rot.data(); }

// rope: q~ = q e^{i alpha}; euler: theta_q = delta arg q + b + alpha, q~ = |q| e^{i theta_q} (k the same
// without b), then per list cl(theta_q) + cl(theta_k) into contrastive_per_list[b] (null: not wanted),
// their softmax rows kept for the backward.
template <class T>
void rotation_forward(const FusedLayerPlan<T>& p, Tile<T>& t, T* contrastive_per_list) {
  const FusedLayerSpec& s = p.spec;
  const int64_t N = p.N, D = s.D, half = D / 2, R = t.R, Q = t.Q, Rq = t.Rq;
  if (s.rotation == LayerRotation::none) return;
  t.q_rot.resize(Rq, D);
  t.k_rot.resize(R, D);
  if (s.rotation == LayerRotation::rope) {
    rope_rows<false>(p, t.q.data(), t.q_rot.data(), Rq, [&](int64_t r) { return query_position(p, t, r); });
    rope_rows<false>(p, t.k.data(), t.k_rot.data(), R, [&](int64_t r) { return r % N; });
    return;
  }
  const T* dv = p.in.delta.tape ? p.in.delta.value().data : nullptr;
  const T* bv = p.in.bias.tape ? p.in.bias.value().data : nullptr;
  const int64_t d_step = dv && p.in.delta.numel() > 1 ? 1 : 0, b_step = bv && p.in.bias.numel() > 1 ? 1 : 0;
  for (auto* m : {&t.arg_q, &t.phase_q}) m->resize(Rq, half);
  for (auto* m : {&t.arg_k, &t.phase_k}) m->resize(R, half);
  const T* q_angle = p.alpha;  // alpha per complex number of q, repeating every q_period
  int64_t q_period = N * half;
  if (t.sparse) {
    t.angle_q.resize(Q, half);
    for (int64_t r = 0; r < Q; ++r) std::copy_n(p.alpha + query_position(p, t, r) * half, half, t.angle_q.row(r).data());
    q_angle = t.angle_q.data();
    q_period = Q * half;
  }
  euler_phase_kernel(t.q.data(), 0, Rq * half, half, dv, d_step, bv, b_step, q_angle, q_period, t.arg_q.data(), t.phase_q.data());
  euler_phase_kernel(t.k.data(), 0, R * half, half, dv, d_step, static_cast<const T*>(nullptr), 0, p.alpha, N * half, t.arg_k.data(),
                     t.phase_k.data());
  with_phase_kernel(t.q.data(), t.phase_q.data(), 0, Rq * half, t.q_rot.data());
  with_phase_kernel(t.k.data(), t.phase_k.data(), 0, R * half, t.k_rot.data());
  if (!s.contrastive) return;
  const T inv_tep = T(1 / s.tep);
  const bool masked = s.contrastive_mode == ContrastiveMode::masked;
  for (int64_t l = 0; l < t.lists; ++l) {
    const int64_t b = t.b0 + l;
    T total = 0;
    for (int which = 0; which < 2; ++which)
      total += contrastive_list_forward(t.operands, (which == 0 ? t.phase_q : t.phase_k).data() + l * N * half, p.in.w.value().data,
                                        b * N * half, N, half, p.dropout_on, which == 0 ? p.view_q : p.view_k, p.ids + b * N, masked,
                                        inv_tep, t.contrastive_probs.data() + (l * 2 + which) * N * N);
    if (contrastive_per_list) contrastive_per_list[b] = total;
  }
}

// t.dq, t.dk from t.dq_rot, t.dk_rot (and, with d_contrastive the gradient of the contrastive output,
// the contrastive terms through the phases); delta's and b's gradients.
template <class T>
void rotation_backward(const FusedLayerPlan<T>& p, Tile<T>& t, T d_contrastive, LayerGrads<T>& g) {
  const FusedLayerSpec& s = p.spec;
  const FusedLayerInputs<T>& in = p.in;
  const int64_t N = p.N, D = s.D, half = D / 2, R = t.R, Rq = t.Rq;
  if (s.rotation == LayerRotation::none) {
    t.dq = t.dq_rot;
    t.dk = t.dk_rot;
    return;
  }
  if (s.rotation == LayerRotation::rope) {  // dz = dy e^{-i alpha}
    t.dq.resize(Rq, D);
    t.dk.resize(R, D);
    rope_rows<true>(p, t.dq_rot.data(), t.dq.data(), Rq, [&](int64_t r) { return query_position(p, t, r); });
    rope_rows<true>(p, t.dk_rot.data(), t.dk.data(), R, [&](int64_t r) { return r % N; });
    return;
  }
  t.dq.setZero(Rq, D);
  t.dk.setZero(R, D);
  t.dphase_q.setZero(Rq, half);
  t.dphase_k.setZero(R, half);
  with_phase_backward_kernel(t.q.data(), t.q_rot.data(), t.dq_rot.data(), 0, Rq * half, t.dq.data(), t.dphase_q.data());
  with_phase_backward_kernel(t.k.data(), t.k_rot.data(), t.dk_rot.data(), 0, R * half, t.dk.data(), t.dphase_k.data());
  if (s.contrastive && d_contrastive != T(0)) {
    const T inv_tep = T(1 / s.tep), u = d_contrastive * p.contrastive_scale;
    const bool masked = s.contrastive_mode == ContrastiveMode::masked;
    T* dw = g.at(in, WC);
    for (int64_t l = 0; l < t.lists; ++l) {
      const int64_t b = t.b0 + l;
      for (int which = 0; which < 2; ++which) {
        const T* phase = (which == 0 ? t.phase_q : t.phase_k).data() + l * N * half;
        T* dphase = (which == 0 ? t.dphase_q : t.dphase_k).data() + l * N * half;
        t.operands.fill(phase, in.w.value().data, b * N * half, N, half, p.dropout_on, which == 0 ? p.view_q : p.view_k);
        contrastive_list_backward(t.operands, t.grad_scratch, t.contrastive_probs.data() + (l * 2 + which) * N * N, in.w.value().data, N,
                                  half, p.dropout_on, p.ids + b * N, masked, u, inv_tep, dphase, dw);
      }
    }
  }
  // theta = delta arg(x) + b + alpha:  dx (euler_phase_dx_kernel), ddelta += sum dtheta arg, db += sum dtheta
  const T* dv = in.delta.tape ? in.delta.value().data : nullptr;
  const int64_t d_step = dv && in.delta.numel() > 1 ? 1 : 0;
  euler_phase_dx_kernel(t.q.data(), t.dphase_q.data(), 0, Rq * half, half, dv, d_step, t.dq.data());
  euler_phase_dx_kernel(t.k.data(), t.dphase_k.data(), 0, R * half, half, dv, d_step, t.dk.data());
  if (T* ddelta = g.at(in, DELTA)) {
    ArrayRow<T> sums = t.sparse ? ArrayRow<T>((t.dphase_q.array() * t.arg_q.array()).colwise().sum() +
                                              (t.dphase_k.array() * t.arg_k.array()).colwise().sum())
                                : ArrayRow<T>((t.dphase_q.array() * t.arg_q.array() + t.dphase_k.array() * t.arg_k.array()).colwise().sum());
    if (in.delta.numel() > 1) Eigen::Map<ArrayRow<T>>(ddelta, half) += sums;
    else ddelta[0] += sums.sum();
  }
  if (T* dbias = g.at(in, BIAS)) {
    ArrayRow<T> sums = t.dphase_q.array().colwise().sum();
    if (in.bias.numel() > 1) Eigen::Map<ArrayRow<T>>(dbias, half) += sums;
    else dbias[0] += sums.sum();
  }
}

// ---- block 3: attention, per list and head: P = softmax(q~ k~^T / sqrt(dh) + mask), context = dropout(P) v

template <class T>
void attention_forward(const FusedLayerPlan<T>& p, Tile<T>& t) {
  const FusedLayerSpec& s = p.spec;
  const int64_t N = p.N, D = s.D, H = s.H, dh = D / H, Qn = t.Qn;
  const T scale = T(1 / std::sqrt(double(dh)));
  MatrixMapC<T> q_all(rotated_q(p, t), t.Rq, D), k_all(rotated_k(p, t), t.R, D);
  t.probs.resize(t.lists * H * Qn, N);
  t.context.resize(t.Q, D);
  for (int64_t l = 0; l < t.lists; ++l) {
    const int64_t first = p.first_query(t.b0 + l);  // the list's query rows: first .. first + Qn
    const int32_t* ids = p.ids + (t.b0 + l) * N;
    for (int64_t hh = 0; hh < H; ++hh) {
      auto K = k_all.block(l * N, hh * dh, N, dh);
      auto P = t.probs.middleRows((l * H + hh) * Qn, Qn);
      P.noalias() = q_all.block(t.q_row(l, first), hh * dh, Qn, dh) * K.transpose();
      P *= scale;
      for (int64_t j = 0; j < Qn; ++j) {
        const int64_t tq = first + j;
        T* z = P.row(j).data();
        for (int64_t key = 0; key < N; ++key) z[key] += key_visible(ids, key, tq, s.causal) ? T(0) : T(kHiddenKeyLogit);
        softmax_in_place(z, N, P.row(j).maxCoeff());
      }
    }
  }
  MatrixMapC<T> probs_kept = keep_probs(p, t);
  for (int64_t l = 0; l < t.lists; ++l)
    for (int64_t hh = 0; hh < H; ++hh)
      t.context.block(l * Qn, hh * dh, Qn, dh).noalias() = probs_kept.middleRows((l * H + hh) * Qn, Qn) * t.v.block(l * N, hh * dh, N, dh);
}

// t.dq_rot, t.dk_rot, t.dv from t.dcontext: context = Pk V, Pk = dropout(P), P = softmax(S + mask), S = q~ k~^T scale.
template <class T>
void attention_backward(const FusedLayerPlan<T>& p, Tile<T>& t) {
  const FusedLayerSpec& s = p.spec;
  const int64_t N = p.N, D = s.D, H = s.H, dh = D / H, Qn = t.Qn;
  const T scale = T(1 / std::sqrt(double(dh)));
  const T attn_p = p.dropout_on ? T(s.attn_dropout) : T(0), attn_keep = T(1) / (T(1) - attn_p);
  MatrixMapC<T> q_all(rotated_q(p, t), t.Rq, D), k_all(rotated_k(p, t), t.R, D);
  t.dq_rot.setZero(t.Rq, D);
  t.dk_rot.setZero(t.R, D);
  t.dv.setZero(t.R, D);
  t.dprobs.resize(Qn, N);
  MatrixMapC<T> probs_kept(attn_p > 0 ? t.probs_kept.data() : t.probs.data(), t.probs.rows(), N);  // as attention_forward or load_tile left them
  for (int64_t l = 0; l < t.lists; ++l) {
    const int64_t b = t.b0 + l, first = t.q_row(l, p.first_query(b));  // the list's first row of q
    for (int64_t hh = 0; hh < H; ++hh) {
      auto P = t.probs.middleRows((l * H + hh) * Qn, Qn);
      auto Pk = probs_kept.middleRows((l * H + hh) * Qn, Qn);
      auto dC = t.dcontext.block(l * Qn, hh * dh, Qn, dh);
      auto V = t.v.block(l * N, hh * dh, N, dh);
      auto K = k_all.block(l * N, hh * dh, N, dh);
      t.dv.block(l * N, hh * dh, N, dh).noalias() += Pk.transpose() * dC;  // dV = Pk^T dC
      t.dprobs.noalias() = dC * V.transpose();                              // dPk = dC V^T
      if (attn_p > 0) apply_dropout<false>(p.attn_mask, (b * H + hh) * Qn * N, t.dprobs.data(), t.dprobs.data(), Qn * N, attn_keep);
      // dS = P (dP - sum(dP P)) per row, times scale for q~ k~^T
      for (int64_t j = 0; j < Qn; ++j) {
        const T dot = (t.dprobs.row(j).array() * P.row(j).array()).sum();
        t.dprobs.row(j).array() = P.row(j).array() * (t.dprobs.row(j).array() - dot) * scale;
      }
      t.dq_rot.block(first, hh * dh, Qn, dh).noalias() += t.dprobs * K;                                  // dq~ = dS k~
      t.dk_rot.block(l * N, hh * dh, N, dh).noalias() += t.dprobs.transpose() * q_all.block(first, hh * dh, Qn, dh);  // dk~ = dS^T q~
    }
  }
}

// ---- block 4: h1 = LN1(dropout(context Wd^T + bd) + x), at the query rows --------------------------

template <class T>
void output_forward(const FusedLayerPlan<T>& p, Tile<T>& t) {
  const int64_t D = p.spec.D;
  linear_rows(t.context, p.in.wd, p.in.bd, t.dense);
  t.z1 = t.x_q;
  add_hidden_dropout(p, t, t.dense, p.dense_mask, t.z1);
  t.h1.resize(t.Q, D);
  t.stats1.resize(t.Q, 2);
  for (int64_t r = 0; r < t.Q; ++r)
    layer_norm_row(t.z1.row(r).data(), p.in.g1.value().data, p.in.be1.value().data, t.h1.row(r).data(), D, T(p.spec.eps),
                   t.stats1.row(r).data());
}

// t.dcontext from t.dh1; the residual's share of dx (when want_dx).
template <class T>
void output_backward(const FusedLayerPlan<T>& p, Tile<T>& t, MatrixMapM<T> dx, bool want_dx, LayerGrads<T>& g) {
  const FusedLayerInputs<T>& in = p.in;
  const int64_t N = p.N, D = p.spec.D, Qn = t.Qn;
  t.dz1.setZero(t.Q, D);
  for (int64_t r = 0; r < t.Q; ++r)
    layer_norm_row_backward(t.z1.row(r).data(), t.dh1.row(r).data(), in.g1.value().data, t.stats1.row(r).data(), D, t.dz1.row(r).data(),
                            g.at(in, G1), g.at(in, BE1));
  hidden_dropout_backward(p, t, t.dz1, p.dense_mask, t.ddense);
  linear_params(in, g, WD, BD, t.ddense, t.context);
  t.dcontext.noalias() = t.ddense * mat(in.wd, D, D);
  if (want_dx)
    for (int64_t l = 0; l < t.lists; ++l) dx.middleRows(l * N + p.first_query(t.b0 + l), Qn) += t.dz1.middleRows(l * Qn, Qn);  // the residual
}

// ---- block 5: out = LN2(dropout(act(h1 W1^T + b1) W2^T + b2) + h1) --------------------------------

template <class T>
void feed_forward_forward(const FusedLayerPlan<T>& p, Tile<T>& t, T* out_tile) {
  const int64_t D = p.spec.D;
  linear_rows(t.h1, p.in.w1, p.in.b1, t.a1);
  if (p.spec.gelu) t.f = gelu_value(t.a1.array()).matrix();
  else t.f = t.a1.array().max(T(0)).matrix();
  linear_rows(t.f, p.in.w2, p.in.b2, t.f2);
  t.z2 = t.h1;
  add_hidden_dropout(p, t, t.f2, p.ffn_mask, t.z2);
  t.stats2.resize(t.Q, 2);
  for (int64_t r = 0; r < t.Q; ++r)
    layer_norm_row(t.z2.row(r).data(), p.in.g2.value().data, p.in.be2.value().data, out_tile + r * D, D, T(p.spec.eps),
                   t.stats2.row(r).data());
}

// t.dh1 from dout_tile [Q, D].
template <class T>
void feed_forward_backward(const FusedLayerPlan<T>& p, Tile<T>& t, const T* dout_tile, LayerGrads<T>& g) {
  const FusedLayerInputs<T>& in = p.in;
  const int64_t D = p.spec.D, I = p.spec.I;
  t.dz2.setZero(t.Q, D);
  for (int64_t r = 0; r < t.Q; ++r)
    layer_norm_row_backward(t.z2.row(r).data(), dout_tile + r * D, in.g2.value().data, t.stats2.row(r).data(), D, t.dz2.row(r).data(),
                            g.at(in, G2), g.at(in, BE2));
  hidden_dropout_backward(p, t, t.dz2, p.ffn_mask, t.df2);
  linear_params(in, g, W2, B2, t.df2, t.f);
  t.df.noalias() = t.df2 * mat(in.w2, D, I);
  if (p.spec.gelu) t.da1 = (t.df.array() * gelu_slope(t.a1.array())).matrix();
  else t.da1 = (t.df.array() * (t.a1.array() > T(0)).template cast<T>()).matrix();
  linear_params(in, g, W1, B1, t.da1, t.h1);
  t.dh1 = t.dz2;
  t.dh1.noalias() += t.da1 * mat(in.w1, I, D);
}

}  // namespace fused_detail

// ---- one tile: the blocks in order, and in reverse ------------------------------------------------

// Lists [b0, b1): the tile's output rows [Q, D] go to out_tile; per-list contrastive sums (when on) to
// contrastive_per_list[b] (null: not wanted); what backward reads to kept (kept_values(p, b1 - b0)
// values, or null: the tile's own memory).
template <class T>
void forward_tile(const FusedLayerPlan<T>& p, fused_detail::Tile<T>& t, int64_t b0, int64_t b1, T* out_tile,
                  T* contrastive_per_list, T* kept) {
  using namespace fused_detail;
  t.start(p, b0, b1);
  bind_kept(p, t, kept);
  MatrixMapC<T> x(p.x.value().data + b0 * p.N * p.spec.D, t.R, p.spec.D);  // [R, D]
  gather_query_rows(p, t, x);
  qkv_forward(p, t, x);
  rotation_forward(p, t, contrastive_per_list);
  attention_forward(p, t);
  output_forward(p, t);
  feed_forward_forward(p, t, out_tile);
}

// Back through the tile forward_tile left in t: dout_tile [Q, D] the gradient of its output rows,
// d_contrastive that of the contrastive output; adds to dx_all [B, N, D] (null: not wanted) and to the
// thread's parameter gradients g.
template <class T>
void backward_tile(const FusedLayerPlan<T>& p, fused_detail::Tile<T>& t, const T* dout_tile, T d_contrastive, T* dx_all,
                   LayerGrads<T>& g) {
  using namespace fused_detail;
  const int64_t N = p.N, D = p.spec.D, R = t.R, b0 = t.b0;
  MatrixMapC<T> x(p.x.value().data + b0 * N * D, R, D);
  MatrixMapM<T> dx(dx_all ? dx_all + b0 * N * D : nullptr, dx_all ? R : 0, D);
  feed_forward_backward(p, t, dout_tile, g);
  output_backward(p, t, dx, dx_all != nullptr, g);
  attention_backward(p, t);
  rotation_backward(p, t, d_contrastive, g);
  qkv_backward(p, t, x, dx, dx_all != nullptr, g);
}

}  // namespace euler
