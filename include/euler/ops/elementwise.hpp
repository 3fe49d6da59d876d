// euler/ops/elementwise.hpp: arithmetic with broadcasting, and the unary math functions.
//
// Shapes: a binary op takes two shapes of which one is a suffix of the other ([B, N, D] with [D] or
// [N, D]; a rank-0 scalar is a suffix of everything), or plain numbers. The output has the larger
// shape; in backward the smaller operand's gradient is summed over the broadcast (leading) dims.
// Every function below computes its value, then records its backward right next to it.
//
//     auto y = euler::gelu(x * w + b);    // x [B, N, D], w and b [D]
//     auto z = euler::exp(-y) / 2.0;
#pragma once

#include "euler/core/eigen.hpp"

#include <algorithm>
#include <cmath>
#include <vector>
#include <numbers>

#include "euler/core/tape.hpp"

namespace euler {

// Eigen array maps over [begin, end) of a view, for chunked elementwise loops.
template <class T>
auto arr(TensorView<T> v, int64_t begin, int64_t end) {
  using A = Eigen::Array<std::remove_const_t<T>, Eigen::Dynamic, 1>;
  using M = std::conditional_t<std::is_const_v<T>, Eigen::Map<const A>, Eigen::Map<A>>;
  return M(v.data + begin, end - begin);
}
template <class T>
auto arr(TensorView<T> v) {
  return arr(v, 0, v.numel());
}

inline constexpr int64_t kElementwiseGrain = 1 << 15;  // elements per thread worth splitting

// Apply f(begin, end) over [0, n) in parallel chunks.
template <class F>
void for_chunks(int64_t n, F&& f) {
  parallel_for(n, kElementwiseGrain, f);
}

// Reduction chunks for `rows` rows of `length` elements: a count fixed by the sizes alone (never by the
// thread count), so that per-chunk partial sums added in chunk order give the same bits for any thread count.
inline int64_t reduction_chunks(int64_t rows, int64_t length) {
  constexpr int64_t kMaxChunks = 64;
  return std::clamp<int64_t>(rows * length / kElementwiseGrain, 1, std::max<int64_t>(1, std::min(rows, kMaxChunks)));
}

// out[c] += sum_r a[r, c] (* b[r, c] when b is given) over a row-major [rows, cols] block: the gradient of
// anything broadcast over rows (a bias, a per-channel parameter). Rows are read in order (vectorised, one
// pass over memory), split into reduction_chunks whose partial sums are added in chunk order, so the
// result is the same for any thread count.
template <class T>
void add_column_sums(const T* a, const T* b, int64_t rows, int64_t cols, T* out) {
  using A = Eigen::Array<T, Eigen::Dynamic, 1>;
  if (rows <= 0 || cols <= 0) return;
  const int64_t chunks = reduction_chunks(rows, cols);
  std::vector<T> partial(size_t(chunks * cols), T(0));
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      Eigen::Map<A> sums(partial.data() + c * cols, cols);
      for (int64_t r = rows * c / chunks; r < rows * (c + 1) / chunks; ++r) {
        if (b) sums += Eigen::Map<const A>(a + r * cols, cols) * Eigen::Map<const A>(b + r * cols, cols);
        else sums += Eigen::Map<const A>(a + r * cols, cols);
      }
    }
  });
  Eigen::Map<A> total(out, cols);
  for (int64_t c = 0; c < chunks; ++c) total += Eigen::Map<const A>(partial.data() + c * cols, cols);
}

// ---- broadcasting -----------------------------------------------------------------------------

// How two operand shapes combine: `outer` copies of the small operand's `inner` elements.
struct Broadcast {
  enum Kind { kSame, kBigSmall, kSmallBig } kind = kSame;  // which operand has the output shape
  Shape out;
  int64_t outer = 1, inner = 1;
};

inline Broadcast broadcast(const char* op, const Shape& a, const Shape& b) {
  Broadcast bc;
  if (a == b) {
    bc.out = a;
    bc.inner = a.numel();
  } else if (a.ends_with(b)) {
    bc = {Broadcast::kBigSmall, a, a.numel() / std::max<int64_t>(1, b.numel()), b.numel()};
  } else if (b.ends_with(a)) {
    bc = {Broadcast::kSmallBig, b, b.numel() / std::max<int64_t>(1, a.numel()), a.numel()};
  } else {
    throw ShapeError(std::string(op) + ": shapes " + a.str() + " and " + b.str() +
                     " do not broadcast (one must equal the trailing dims of the other)");
  }
  return bc;
}

// y = f(a, b) elementwise under broadcast bc; f takes Eigen arrays (or an array and a scalar).
template <class T, class F>
void broadcast_apply(const Broadcast& bc, const T* a, const T* b, T* y, F f) {
  using A = Eigen::Array<T, Eigen::Dynamic, 1>;
  int64_t n = bc.out.numel();
  if (bc.kind == Broadcast::kSame) {
    for_chunks(n, [&](int64_t i0, int64_t i1) {
      Eigen::Map<A>(y + i0, i1 - i0) = f(Eigen::Map<const A>(a + i0, i1 - i0), Eigen::Map<const A>(b + i0, i1 - i0));
    });
  } else if (bc.inner == 1) {  // broadcast of a single number
    for_chunks(n, [&](int64_t i0, int64_t i1) {
      if (bc.kind == Broadcast::kBigSmall)
        Eigen::Map<A>(y + i0, i1 - i0) = f(Eigen::Map<const A>(a + i0, i1 - i0), b[0]);
      else
        Eigen::Map<A>(y + i0, i1 - i0) = f(a[0], Eigen::Map<const A>(b + i0, i1 - i0));
    });
  } else {
    int64_t inner = bc.inner;
    parallel_for(bc.outer, std::max<int64_t>(1, kElementwiseGrain / inner), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        Eigen::Map<A> yr(y + r * inner, inner);
        if (bc.kind == Broadcast::kBigSmall)
          yr = f(Eigen::Map<const A>(a + r * inner, inner), Eigen::Map<const A>(b, inner));
        else
          yr = f(Eigen::Map<const A>(a, inner), Eigen::Map<const A>(b + r * inner, inner));
      }
    });
  }
}

// Gradient of one operand of a broadcast binary op: d += g(dy, other) elementwise, where `other` is
// the other operand's values aligned with dy (an array, or a single number when it was broadcast as
// a scalar). For the smaller operand the contributions are summed over the broadcast rows.
template <class T, class G>
void accumulate_grad(const Broadcast& bc, bool small, T* d, const T* dy, const T* other, G g) {
  using A = Eigen::Array<T, Eigen::Dynamic, 1>;
  using CA = Eigen::Map<const A>;
  int64_t n = bc.out.numel(), inner = bc.inner;
  if (bc.kind == Broadcast::kSame) {
    for_chunks(n, [&](int64_t i0, int64_t i1) { Eigen::Map<A>(d + i0, i1 - i0) += g(CA(dy + i0, i1 - i0), CA(other + i0, i1 - i0)); });
  } else if (inner == 1 && !small) {  // this operand is full, the other a single number
    for_chunks(n, [&](int64_t i0, int64_t i1) { Eigen::Map<A>(d + i0, i1 - i0) += g(CA(dy + i0, i1 - i0), other[0]); });
  } else if (inner == 1) {  // this operand is the single number: a sum over everything
    int threads = std::max(1, num_threads());
    std::vector<T> partial(size_t(threads), T(0));  // per-thread sums, added in a fixed order
    parallel_for(int64_t(threads), 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        int64_t i0 = n * t / threads, i1 = n * (t + 1) / threads;
        if (i0 < i1) partial[size_t(t)] = g(CA(dy + i0, i1 - i0), CA(other + i0, i1 - i0)).sum();
      }
    });
    for (T p : partial) d[0] += p;
  } else if (!small) {  // this operand is full, the other one row repeated
    parallel_for(bc.outer, std::max<int64_t>(1, kElementwiseGrain / inner), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) Eigen::Map<A>(d + r * inner, inner) += g(CA(dy + r * inner, inner), CA(other, inner));
    });
  } else {  // this operand is the repeated row: sum the rows, in fixed chunks (the same for any thread count)
    const int64_t chunks = reduction_chunks(bc.outer, inner);
    std::vector<T> partial(size_t(chunks * inner), T(0));
    parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        Eigen::Map<A> sums(partial.data() + c * inner, inner);
        for (int64_t r = bc.outer * c / chunks; r < bc.outer * (c + 1) / chunks; ++r)
          sums += g(CA(dy + r * inner, inner), CA(other + r * inner, inner));
      }
    });
    Eigen::Map<A> drow(d, inner);
    for (int64_t c = 0; c < chunks; ++c) drow += CA(partial.data() + c * inner, inner);
  }
}

template <class T>
struct BinaryPlan {
  Broadcast bc;
  bool a_small, b_small;
};

template <class T>
BinaryPlan<T> plan_binary(const char* op, Var<T> a, Var<T> b) {
  if (a.tape != b.tape) throw TapeError(std::string(op) + ": operands on different tapes");
  Broadcast bc = broadcast(op, a.shape(), b.shape());
  return {bc, bc.kind == Broadcast::kSmallBig, bc.kind == Broadcast::kBigSmall};
}

// ---- binary arithmetic ------------------------------------------------------------------------

template <class T>
Var<T> add(Var<T> a, Var<T> b) {
  const BinaryPlan<T> plan = plan_binary("add", a, b);  // (plain names: clang < 16 cannot capture bindings)
  const Broadcast bc = plan.bc;
  const bool a_small = plan.a_small, b_small = plan.b_small;
  TensorView<T> y = a.tape->alloc(bc.out);
  broadcast_apply(bc, a.value().data, b.value().data, y.data, [](const auto& x, const auto& z) { return x + z; });
  return a.tape->record("add", y, {a, b}, [a, b, bc, a_small, b_small](auto, TensorView<const T> dy) {
    // y = a + b  =>  da += dy, db += dy (summed over broadcast dims)
    auto pass = [](const auto& g, const auto&) { return g; };
    if (a.requires_grad()) accumulate_grad(bc, a_small, a.grad_accumulator().data, dy.data, dy.data, pass);
    if (b.requires_grad()) accumulate_grad(bc, b_small, b.grad_accumulator().data, dy.data, dy.data, pass);
  });
}

template <class T>
Var<T> sub(Var<T> a, Var<T> b) {
  const BinaryPlan<T> plan = plan_binary("sub", a, b);  // (plain names: clang < 16 cannot capture bindings)
  const Broadcast bc = plan.bc;
  const bool a_small = plan.a_small, b_small = plan.b_small;
  TensorView<T> y = a.tape->alloc(bc.out);
  broadcast_apply(bc, a.value().data, b.value().data, y.data, [](const auto& x, const auto& z) { return x - z; });
  return a.tape->record("sub", y, {a, b}, [a, b, bc, a_small, b_small](auto, TensorView<const T> dy) {
    // y = a - b  =>  da += dy, db -= dy
    auto pass = [](const auto& g, const auto&) { return g; };
    auto negate = [](const auto& g, const auto&) { return -g; };
    if (a.requires_grad()) accumulate_grad(bc, a_small, a.grad_accumulator().data, dy.data, dy.data, pass);
    if (b.requires_grad()) accumulate_grad(bc, b_small, b.grad_accumulator().data, dy.data, dy.data, negate);
  });
}

template <class T>
Var<T> mul(Var<T> a, Var<T> b) {
  const BinaryPlan<T> plan = plan_binary("mul", a, b);  // (plain names: clang < 16 cannot capture bindings)
  const Broadcast bc = plan.bc;
  const bool a_small = plan.a_small, b_small = plan.b_small;
  TensorView<T> y = a.tape->alloc(bc.out);
  broadcast_apply(bc, a.value().data, b.value().data, y.data, [](const auto& x, const auto& z) { return x * z; });
  return a.tape->record("mul", y, {a, b}, [a, b, bc, a_small, b_small](auto, TensorView<const T> dy) {
    // y = a * b  =>  da += dy * b, db += dy * a
    const T* av = a.value().data;
    const T* bv = b.value().data;
    auto times = [](const auto& g, const auto& other) { return g * other; };
    if (a.requires_grad()) accumulate_grad(bc, a_small, a.grad_accumulator().data, dy.data, bv, times);
    if (b.requires_grad()) accumulate_grad(bc, b_small, b.grad_accumulator().data, dy.data, av, times);
  });
}

// ---- with plain numbers -------------------------------------------------------------------------

// y = a * x + c for scalars a, c: the one affine primitive behind x + c, x - c, c - x, x * c, -x.
template <class T>
Var<T> affine(Var<T> x, T scale, T shift) {
  TensorView<T> y = x.tape->alloc(x.shape());
  TensorView<const T> xv = x.value();
  for_chunks(y.numel(), [&](int64_t i0, int64_t i1) { arr(y, i0, i1) = arr(xv, i0, i1) * scale + shift; });
  return x.tape->record("affine", y, {x}, [x, scale](auto, TensorView<const T> dy) {
    // y = scale * x + shift  =>  dx += scale * dy
    TensorView<T> dx = x.grad_accumulator();
    for_chunks(dx.numel(), [&](int64_t i0, int64_t i1) { arr(dx, i0, i1) += scale * arr(dy, i0, i1); });
  });
}

// y = c / x
template <class T>
Var<T> reciprocal(Var<T> x, T c = T(1)) {
  TensorView<T> y = x.tape->alloc(x.shape());
  TensorView<const T> xv = x.value();
  for_chunks(y.numel(), [&](int64_t i0, int64_t i1) { arr(y, i0, i1) = c * arr(xv, i0, i1).inverse(); });
  return x.tape->record("reciprocal", y, {x}, [x](TensorView<const T> yv, TensorView<const T> dy) {
    // y = c / x  =>  dx -= dy * y / x
    TensorView<T> dx = x.grad_accumulator();
    TensorView<const T> xv = x.value();
    for_chunks(dx.numel(), [&](int64_t i0, int64_t i1) {
      arr(dx, i0, i1) -= arr(dy, i0, i1) * arr(yv, i0, i1) / arr(xv, i0, i1);
    });
  });
}

// y = a / b, composed as a * (1 / b) so that broadcasting in either direction needs no extra case.
template <class T>
Var<T> div(Var<T> a, Var<T> b) {
  plan_binary("div", a, b);  // shape check with the right op name
  return mul(a, reciprocal(b));
}

// ---- unary math -------------------------------------------------------------------------------
// Each: y = f(x) forward, dx += dy * f'(x) backward, written with Eigen arrays (vectorised).

#define EULER_UNARY_OP(NAME, FORWARD, BACKWARD)                                                        \
  template <class T>                                                                                   \
  Var<T> NAME(Var<T> x) {                                                                              \
    TensorView<T> y = x.tape->alloc(x.shape());                                                        \
    TensorView<const T> xv = x.value();                                                                \
    for_chunks(y.numel(), [&](int64_t i0, int64_t i1) {                                                \
      auto X = arr(xv, i0, i1);                                                                        \
      arr(y, i0, i1) = FORWARD;                                                                        \
    });                                                                                                \
    return x.tape->record(#NAME, y, {x}, [x](TensorView<const T> yv, TensorView<const T> dy) {        \
      TensorView<T> dx = x.grad_accumulator();                                                         \
      TensorView<const T> xv = x.value();                                                              \
      for_chunks(dx.numel(), [&](int64_t i0, int64_t i1) {                                             \
        auto X = arr(xv, i0, i1);                                                                      \
        auto Y = arr(yv, i0, i1);                                                                      \
        auto DY = arr(dy, i0, i1);                                                                     \
        (void)X, (void)Y;                                                                              \
        arr(dx, i0, i1) += BACKWARD;                                                                   \
      });                                                                                              \
    });                                                                                                \
  }

// NAME     forward y = f(X)                         backward dx += DY * f'(X) (Y = f(X))
EULER_UNARY_OP(exp,     X.exp(),                         DY * Y)
EULER_UNARY_OP(log,     X.log(),                         DY / X)
EULER_UNARY_OP(sqrt,    X.sqrt(),                        DY * T(0.5) / Y)
EULER_UNARY_OP(sin,     X.sin(),                         DY * X.cos())
EULER_UNARY_OP(cos,     X.cos(),                         -DY * X.sin())
EULER_UNARY_OP(tanh,    X.tanh(),                        DY * (T(1) - Y * Y))
EULER_UNARY_OP(erf,     X.erf(),                         DY * T(2 / std::sqrt(std::numbers::pi)) * (-X * X).exp())
EULER_UNARY_OP(relu,    X.max(T(0)),                     DY * (X > T(0)).template cast<T>())
EULER_UNARY_OP(sigmoid, (T(1) + (-X).exp()).inverse(),   DY * Y * (T(1) - Y))
EULER_UNARY_OP(square,  X.square(),                      DY * T(2) * X)
// gelu (exact, erf form): y = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2,  dy/dx = Phi(x) + x phi(x)
EULER_UNARY_OP(gelu,    T(0.5) * X * (T(1) + (X * T(std::numbers::sqrt2 / 2)).erf()),
               DY * (T(0.5) * (T(1) + (X * T(std::numbers::sqrt2 / 2)).erf()) +
                     X * T(1 / std::sqrt(2 * std::numbers::pi)) * (T(-0.5) * X * X).exp()))
#undef EULER_UNARY_OP

// atan2(y, x), elementwise over equal shapes: the angle of the point (x, y).
// d/dy = x / (x^2 + y^2), d/dx = -y / (x^2 + y^2); at the origin both are taken as 0 (see complex.hpp).
template <class T>
Var<T> atan2(Var<T> y, Var<T> x) {
  check_same("atan2", y.shape(), x.shape());
  TensorView<T> out = y.tape->alloc(y.shape());
  TensorView<const T> yv = y.value(), xv = x.value();
  for_chunks(out.numel(), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) out[i] = std::atan2(yv[i], xv[i]);
  });
  return y.tape->record("atan2", out, {y, x}, [y, x](auto, TensorView<const T> dout) {
    TensorView<const T> yv = y.value(), xv = x.value();
    T* dy = y.requires_grad() ? y.grad_accumulator().data : nullptr;
    T* dx = x.requires_grad() ? x.grad_accumulator().data : nullptr;
    for_chunks(dout.numel(), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        T r2 = xv[i] * xv[i] + yv[i] * yv[i];
        T inv = r2 > T(0) ? T(1) / r2 : T(0);
        if (dy) dy[i] += dout[i] * xv[i] * inv;
        if (dx) dx[i] -= dout[i] * yv[i] * inv;
      }
    });
  });
}

// ---- operators ----------------------------------------------------------------------------------

template <class T> Var<T> operator+(Var<T> a, Var<T> b) { return add(a, b); }
template <class T> Var<T> operator-(Var<T> a, Var<T> b) { return sub(a, b); }
template <class T> Var<T> operator*(Var<T> a, Var<T> b) { return mul(a, b); }
template <class T> Var<T> operator/(Var<T> a, Var<T> b) { return div(a, b); }
template <class T> Var<T> operator-(Var<T> x) { return affine(x, T(-1), T(0)); }
template <class T> Var<T> operator+(Var<T> x, std::type_identity_t<T> c) { return affine(x, T(1), c); }
template <class T> Var<T> operator+(std::type_identity_t<T> c, Var<T> x) { return affine(x, T(1), c); }
template <class T> Var<T> operator-(Var<T> x, std::type_identity_t<T> c) { return affine(x, T(1), -c); }
template <class T> Var<T> operator-(std::type_identity_t<T> c, Var<T> x) { return affine(x, T(-1), c); }
template <class T> Var<T> operator*(Var<T> x, std::type_identity_t<T> c) { return affine(x, c, T(0)); }
template <class T> Var<T> operator*(std::type_identity_t<T> c, Var<T> x) { return affine(x, c, T(0)); }
template <class T> Var<T> operator/(Var<T> x, std::type_identity_t<T> c) { return affine(x, T(1) / c, T(0)); }
template <class T> Var<T> operator/(std::type_identity_t<T> c, Var<T> x) { return reciprocal(x, c); }

}  // namespace euler
