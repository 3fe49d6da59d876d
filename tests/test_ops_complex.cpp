// Complex ops (euler/ops/complex.hpp): values against std::complex<double>, gradients by finite
// differences, the identities between the ops, the magnitude-0 convention, and shape errors.
// Shapes: B batch, N list length, D hidden (even); a complex tensor [..., D] holds D/2 numbers.
#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include <euler/euler.hpp>
#include <euler/ops/complex.hpp>

#include <cmath>
#include <complex>
#include <numbers>
#include <random>
#include <string>

namespace test_ops_complex {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;
using check::gradcheck;
using V = Var<double>;
using Args = std::span<const V>;
using TD = Tensor<double>;
using Complex = std::complex<double>;

namespace {
std::mt19937_64 rng(2024);

TD uniform(Shape s, double lo = -1, double hi = 1) { return TD::uniform(s, rng, lo, hi); }

// A complex tensor [..., D] whose numbers have magnitude in [0.5, 2] and phase in [-2.8, 2.8]: away
// from the origin and from arg's branch cut at +-pi, where finite differences are meaningful.
TD away_from_origin(Shape s) {
  TD x(s);
  std::uniform_real_distribution<double> magnitude(0.5, 2.0), phase(-2.8, 2.8);
  for (int64_t c = 0; c < x.numel() / 2; ++c) {
    Complex z = std::polar(magnitude(rng), phase(rng));
    x[2 * c] = z.real();
    x[2 * c + 1] = z.imag();
  }
  return x;
}

// Complex number c of an interleaved tensor.
Complex number(TensorView<const double> x, int64_t c) { return {x[2 * c], x[2 * c + 1]}; }

bool all_finite(TensorView<const double> x) {
  for (int64_t i = 0; i < x.numel(); ++i)
    if (!std::isfinite(x[i])) return false;
  return true;
}

double max_abs_difference(TensorView<const double> a, TensorView<const double> b) {
  REQUIRE(a.shape == b.shape);
  double worst = 0;
  for (int64_t i = 0; i < a.numel(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

#define GRADCHECK(f, ...)                                                        \
  do {                                                                           \
    auto r = gradcheck([](Tape<double>&, Args x) { return f; }, {__VA_ARGS__}); \
    INFO(#f ": " << r.report);                                                   \
    CHECK(r.ok);                                                                 \
  } while (0)

// The message of the ShapeError that f throws (a failed check if it throws none).
template <class F>
std::string shape_error(F&& f) {
  return euler_test::error_of<ShapeError>(f);
}

// Checks that a message names the op and every shape given.
#define CHECK_NAMES(message, ...)                                 \
  do {                                                            \
    std::string m = (message);                                    \
    for (const char* part : {__VA_ARGS__}) {                      \
      INFO("message: " << m << "\nmissing: " << part);            \
      CHECK(m.find(part) != std::string::npos);                   \
    }                                                             \
  } while (0)
}  // namespace

// ---- pairing --------------------------------------------------------------------------------------

TEST_CASE("complex: pairing is interleaved (re, im) and splits back") {
  Tape<double> t;
  TD Re = TD::from({2, 3}, {1, 2, 3, 4, 5, 6}), Im = TD::from({2, 3}, {-1, -2, -3, -4, -5, -6});
  V z = complex_from_parts(t.constant(Re), t.constant(Im));
  REQUIRE(z.shape() == Shape{2, 6});
  CHECK(z.value().at({1, 4}) == 6);   // pair 2 of row 1: real
  CHECK(z.value().at({1, 5}) == -6);  // imaginary
  CHECK(z.value().at({0, 1}) == -1);
  CHECK(max_abs_difference(real_part(z).value(), Re) == 0);
  CHECK(max_abs_difference(imag_part(z).value(), Im) == 0);
  CHECK(real_part(z).shape() == Shape{2, 3});
}

TEST_CASE("complex: pairing gradients") {
  GRADCHECK(complex_from_parts(x[0], x[1]), uniform({2, 3}), uniform({2, 3}));
  GRADCHECK(complex_from_parts(x[0], x[0]), uniform({4}));  // the same node twice
  GRADCHECK(real_part(x[0]), uniform({2, 6}));
  GRADCHECK(imag_part(x[0]), uniform({3, 2, 4}));
  GRADCHECK(real_part(x[0]) * imag_part(x[0]), uniform({2, 8}));
}

// ---- polar form -----------------------------------------------------------------------------------

TEST_CASE("complex: abs, arg and from_polar against std::complex") {
  Tape<double> t;
  TD X = away_from_origin({2, 3, 8});
  // A few exact cases: the axes, including the negative real axis (arg = pi).
  TD Special = TD::from({8}, {1, 0, 0, 1, -1, 0, 3, -4});
  for (TD x_tensor : {X, Special}) {
    V x = t.constant(x_tensor);
    auto [lambda, theta] = to_polar(x);
    REQUIRE(lambda.shape() == x.shape().with_last(x.shape().last() / 2));
    REQUIRE(theta.shape() == lambda.shape());
    V back = from_polar(lambda, theta);
    for (int64_t c = 0; c < lambda.numel(); ++c) {
      Complex z = number(x.value(), c);
      CHECK(lambda.value()[c] == doctest::Approx(std::abs(z)).epsilon(1e-15));
      CHECK(theta.value()[c] == doctest::Approx(std::arg(z)).epsilon(1e-15));
      CHECK(complex_abs(x).value()[c] == lambda.value()[c]);
      CHECK(complex_arg(x).value()[c] == theta.value()[c]);
      Complex expected = std::polar(lambda.value()[c], theta.value()[c]);
      CHECK(std::abs(number(back.value(), c) - expected) <= 1e-15);
    }
  }
  V special = t.constant(Special);
  CHECK(complex_abs(special).value()[3] == 5);
  CHECK(complex_arg(special).value()[1] == doctest::Approx(std::numbers::pi / 2));
  CHECK(complex_arg(special).value()[2] == doctest::Approx(std::numbers::pi));
}

TEST_CASE("complex: polar gradients (magnitude and phase separately), away from the origin") {
  GRADCHECK(complex_abs(x[0]), away_from_origin({2, 3, 8}));
  GRADCHECK(complex_arg(x[0]), away_from_origin({2, 3, 8}));
  GRADCHECK(to_polar(x[0]).magnitude, away_from_origin({3, 6}));
  GRADCHECK(to_polar(x[0]).phase, away_from_origin({3, 6}));
  GRADCHECK(from_polar(x[0], x[1]), uniform({2, 3, 4}, 0.5, 2), uniform({2, 3, 4}, -4, 4));
  GRADCHECK(from_polar(x[0], x[1]), uniform({5}, -2, 2), uniform({5}, -4, 4));  // negative lambda is smooth too
  GRADCHECK(from_polar(x[0], x[0]), uniform({2, 3}, -2, 2));
}

TEST_CASE("complex: from_polar(to_polar(x)) == x to 1e-12") {
  Tape<double> t;
  TD X = uniform({4, 5, 16}, -3, 3);  // every quadrant
  V x = t.constant(X);
  auto [lambda, theta] = to_polar(x);
  V back = from_polar(lambda, theta);
  CHECK(max_abs_difference(back.value(), X) <= 1e-12);
}

// ---- rotation -------------------------------------------------------------------------------------

TEST_CASE("complex: rotate_by_phase against std::complex, full and broadcast phase") {
  Tape<double> t;
  TD X = uniform({2, 3, 8});
  V x = t.constant(X);
  for (Shape phase_shape : {Shape{2, 3, 4}, Shape{3, 4}, Shape{4}, Shape{}}) {
    TD Phase = uniform(phase_shape, -4, 4);
    V y = rotate_by_phase(x, t.constant(Phase));
    REQUIRE(y.shape() == X.shape());
    int64_t angles = Phase.numel();
    for (int64_t c = 0; c < X.numel() / 2; ++c) {
      Complex expected = number(X, c) * std::polar(1.0, Phase[c % angles]);
      CHECK(std::abs(number(y.value(), c) - expected) <= 1e-15);
    }
  }
}

TEST_CASE("complex: rotate_by_phase gradients, full and broadcast phase") {
  GRADCHECK(rotate_by_phase(x[0], x[1]), uniform({2, 3, 8}), uniform({2, 3, 4}, -4, 4));  // full
  GRADCHECK(rotate_by_phase(x[0], x[1]), uniform({2, 3, 8}), uniform({3, 4}, -4, 4));     // [N, D/2] over B
  GRADCHECK(rotate_by_phase(x[0], x[1]), uniform({2, 3, 8}), uniform({4}, -4, 4));
  GRADCHECK(rotate_by_phase(x[0], x[1]), uniform({2, 3, 8}), uniform({}, -4, 4));         // one angle
  GRADCHECK(rotate_by_phase(x[0], x[1]), uniform({2, 2, 3, 6}), uniform({2, 3, 3}, -4, 4));

  // Only one operand needs a gradient: the other is a constant (each takes its own backward path).
  TD X = uniform({2, 3, 8}), Phase = uniform({3, 4}, -4, 4);
  auto phase_only = gradcheck([&](Tape<double>& t, Args v) { return rotate_by_phase(t.constant(X), v[0]); }, {Phase.clone()});
  INFO(phase_only.report);
  CHECK(phase_only.ok);
  auto x_only = gradcheck([&](Tape<double>& t, Args v) { return rotate_by_phase(v[0], t.constant(Phase)); }, {X.clone()});
  INFO(x_only.report);
  CHECK(x_only.ok);
}

TEST_CASE("complex: rotate_by_phase == complex_mul by (cos, sin) == from_polar(lambda, theta + phase)") {
  Tape<double> t;
  TD X = uniform({2, 5, 8});
  V x = t.constant(X);
  V full_phase = t.constant_copy(uniform({2, 5, 4}, -4, 4));
  V unit = complex_from_parts(cos(full_phase), sin(full_phase));  // e^{i phase}, [2, 5, 8]
  CHECK(max_abs_difference(rotate_by_phase(x, full_phase).value(), complex_mul(x, unit).value()) <= 1e-12);

  V phase = t.constant_copy(uniform({5, 4}, -4, 4));  // [N, D/2], broadcast over B
  auto [lambda, theta] = to_polar(x);
  V expected = from_polar(lambda, theta + phase);
  CHECK(max_abs_difference(rotate_by_phase(x, phase).value(), expected.value()) <= 1e-12);
}

TEST_CASE("complex: rotate_by_phase is parallel, and bitwise the same for any thread count") {
  // [B, N, D] = [64, 50, 64] with phase [N, D/2]: large enough to be split over threads both ways.
  TD X = uniform({64, 50, 64}), Phase = uniform({50, 32}, -4, 4), W = uniform({64, 50, 64});
  struct Run {
    TD y, dx, dphase;
  };
  auto run = [&](int threads) {
    set_num_threads(threads);
    Tape<double> t;
    V x = t.input(X), phase = t.input(Phase);
    V y = rotate_by_phase(x, phase);
    t.backward(y, W);
    return Run{TD::copy_of(y.value()), TD::copy_of(x.grad()), TD::copy_of(phase.grad())};
  };
  int threads_before = num_threads();
  Run one = run(1), three = run(3);
  set_num_threads(threads_before);
  CHECK(max_abs_difference(one.y, three.y) == 0);
  CHECK(max_abs_difference(one.dx, three.dx) == 0);
  CHECK(max_abs_difference(one.dphase, three.dphase) == 0);

  // The phase gradient by hand: dphase[p] = sum over the batch of Im(conj(y) dy) = w_im y_re - w_re y_im.
  TD dphase = TD::zeros({50, 32});
  for (int64_t c = 0; c < X.numel() / 2; ++c)
    dphase[c % 1600] += W[2 * c + 1] * one.y[2 * c] - W[2 * c] * one.y[2 * c + 1];
  CHECK(max_abs_difference(dphase, one.dphase) <= 1e-11);
}

// ---- products -------------------------------------------------------------------------------------

TEST_CASE("complex: complex_mul and conj against std::complex") {
  Tape<double> t;
  TD A = uniform({3, 2, 6}), B = uniform({3, 2, 6});
  V a = t.constant(A), b = t.constant(B);
  V product = complex_mul(a, b), conjugate = conj(a), norm = complex_mul(a, conj(a));
  for (int64_t c = 0; c < A.numel() / 2; ++c) {
    CHECK(std::abs(number(product.value(), c) - number(A, c) * number(B, c)) <= 1e-15);
    CHECK(number(conjugate.value(), c) == std::conj(number(A, c)));
    CHECK(number(norm.value(), c).real() == doctest::Approx(std::norm(number(A, c))).epsilon(1e-14));
    CHECK(std::abs(number(norm.value(), c).imag()) <= 1e-15);  // 0 up to rounding (FMA may fuse one product)
  }
}

TEST_CASE("complex: complex_mul and conj gradients") {
  GRADCHECK(complex_mul(x[0], x[1]), uniform({2, 3, 8}), uniform({2, 3, 8}));
  GRADCHECK(complex_mul(x[0], x[0]), uniform({3, 4}));  // z^2: the same node twice
  GRADCHECK(complex_mul(x[0], conj(x[0])), uniform({3, 4}));
  GRADCHECK(conj(x[0]), uniform({2, 6}));
}

TEST_CASE("complex: real_inner == real dot product == sum lambda mu cos(theta - phi)") {
  Tape<double> t;
  TD A = uniform({2, 3, 8}), B = uniform({2, 3, 8});
  V y = real_inner(t.constant(A), t.constant(B));
  REQUIRE(y.shape() == Shape{2, 3});
  for (int64_t row = 0; row < 6; ++row) {
    double dot = 0, polar = 0;
    Complex sum = 0;
    for (int64_t i = 0; i < 8; ++i) dot += A[row * 8 + i] * B[row * 8 + i];
    for (int64_t c = row * 4; c < row * 4 + 4; ++c) {
      Complex z = number(A, c), w = number(B, c);
      sum += z * std::conj(w);
      polar += std::abs(z) * std::abs(w) * std::cos(std::arg(z) - std::arg(w));
    }
    CHECK(std::abs(y.value()[row] - dot) <= 1e-12);
    CHECK(std::abs(y.value()[row] - sum.real()) <= 1e-12);
    CHECK(std::abs(y.value()[row] - polar) <= 1e-12);
  }
  V scalar = real_inner(t.constant_copy(TD::from({4}, {1, 2, 3, 4})), t.constant_copy(TD::from({4}, {5, 6, 7, 8})));
  CHECK(scalar.shape() == Shape{});
  CHECK(scalar.value()[0] == 70);
}

TEST_CASE("complex: real_inner gradients") {
  GRADCHECK(real_inner(x[0], x[1]), uniform({2, 3, 8}), uniform({2, 3, 8}));
  GRADCHECK(real_inner(x[0], x[0]), uniform({3, 6}));
  GRADCHECK(real_inner(x[0], x[1]), uniform({6}), uniform({6}));
}

// ---- magnitude 0 ----------------------------------------------------------------------------------

namespace {
// [2, 3, 6] away from the origin, with zero pairs: pair 1 of [0, 0], all of row [1, 2] (padding), and
// signed zeros (-0, +0) and (+0, -0) at pairs 0 and 2 of [0, 2]. Returns the indices of the zero pairs.
TD with_zero_pairs(std::vector<int64_t>& zero_pairs) {
  TD X = away_from_origin({2, 3, 6});
  auto zero = [&](int64_t c, double re, double im) {
    X[2 * c] = re;
    X[2 * c + 1] = im;
    zero_pairs.push_back(c);
  };
  zero(1, 0.0, 0.0);
  zero(6, -0.0, 0.0);
  zero(8, 0.0, -0.0);
  for (int64_t c = 15; c < 18; ++c) zero(c, 0.0, 0.0);
  return X;
}
}  // namespace

TEST_CASE("complex: magnitude 0: abs and arg give finite values and exactly zero gradients there") {
  std::vector<int64_t> zero_pairs;
  TD X = with_zero_pairs(zero_pairs);
  for (bool magnitude : {true, false}) {
    Tape<double> t;
    V x = t.input(X);
    V y = magnitude ? complex_abs(x) : complex_arg(x);
    CHECK(all_finite(y.value()));
    t.backward(y, uniform(y.shape()));
    CHECK(all_finite(x.grad()));
    for (int64_t c : zero_pairs) {
      CHECK(y.value()[c] == doctest::Approx(!magnitude && c == 6 ? std::numbers::pi : 0.0));  // arg(-0 + 0i) = pi
      CHECK(x.grad()[2 * c] == 0);
      CHECK(x.grad()[2 * c + 1] == 0);
    }
  }
}

TEST_CASE("complex: magnitude 0: to_polar -> from_polar round trip, forward and backward") {
  std::vector<int64_t> zero_pairs;
  TD X = with_zero_pairs(zero_pairs);
  TD W = uniform({2, 3, 6});
  Tape<double> t;
  V x = t.input(X);
  auto [lambda, theta] = to_polar(x);
  V back = from_polar(lambda, theta);
  CHECK(max_abs_difference(back.value(), X) <= 1e-12);
  t.backward(back, W);
  CHECK(all_finite(x.grad()));
  CHECK(all_finite(theta.grad()));
  std::vector<bool> is_zero(size_t(X.numel() / 2), false);
  for (int64_t c : zero_pairs) {
    is_zero[size_t(c)] = true;
    CHECK(lambda.value()[c] == 0);
    CHECK(theta.grad()[c] == 0);  // d(lambda e^{i theta}) / dtheta = 0 at lambda = 0
    CHECK(x.grad()[2 * c] == 0);  // the documented subgradient: 0, not the identity's 1
    CHECK(x.grad()[2 * c + 1] == 0);
  }
  for (int64_t c = 0; c < X.numel() / 2; ++c) {  // elsewhere the identity's gradient, dx = dy
    if (is_zero[size_t(c)]) continue;
    CHECK(x.grad()[2 * c] == doctest::Approx(W[2 * c]).epsilon(1e-12));
    CHECK(x.grad()[2 * c + 1] == doctest::Approx(W[2 * c + 1]).epsilon(1e-12));
  }
}

TEST_CASE("complex: the Euler transform (to_polar, phase * delta + b, from_polar) through zero pairs") {
  // theta~ = delta * theta + b, then back to real; delta and b as scalars (authors' code) and as [D/2]
  // vectors (the paper).
  std::vector<int64_t> zero_pairs;
  TD X = with_zero_pairs(zero_pairs);
  TD W = uniform({2, 3, 6});
  for (Shape parameter_shape : {Shape{}, Shape{3}}) {
    TD Delta = uniform(parameter_shape, 0.5, 2), Bias = uniform(parameter_shape, -1, 1);
    Tape<double> t;
    V x = t.input(X), delta = t.input(Delta), b = t.input(Bias);
    auto [lambda, theta] = to_polar(x);
    V y = from_polar(lambda, theta * delta + b);
    CHECK(all_finite(y.value()));
    t.backward(sum(y * t.constant(W)));
    CHECK(all_finite(x.grad()));
    CHECK(all_finite(delta.grad()));
    CHECK(all_finite(b.grad()));
    for (int64_t c : zero_pairs) {
      CHECK(y.value()[2 * c] == 0);
      CHECK(y.value()[2 * c + 1] == 0);
      CHECK(x.grad()[2 * c] == 0);
      CHECK(x.grad()[2 * c + 1] == 0);
    }
  }
  // And the composite's gradients are right away from the origin.
  GRADCHECK(from_polar(to_polar(x[0]).magnitude, to_polar(x[0]).phase * x[1] + x[2]), away_from_origin({2, 3, 6}),
            uniform({}, 0.5, 2), uniform({}, -1, 1));
  GRADCHECK(from_polar(to_polar(x[0]).magnitude, to_polar(x[0]).phase * x[1] + x[2]), away_from_origin({2, 3, 6}),
            uniform({3}, 0.5, 2), uniform({3}, -1, 1));
}

// ---- the fused Euler transform (euler_phase, with_phase) -------------------------------------------

TEST_CASE("complex: atan2_vec (float) matches std::atan2 to 2 ulp of pi (5e-7), signed zeros included") {
  std::uniform_real_distribution<float> any(-10.0f, 10.0f), tiny(-1e-30f, 1e-30f);
  float worst = 0;
  for (int i = 0; i < 200000; ++i) {
    float y = i % 7 == 0 ? tiny(rng) : any(rng), x = i % 11 == 0 ? tiny(rng) : any(rng);
    worst = std::max(worst, std::abs(atan2_vec(y, x) - std::atan2(y, x)));
  }
  CHECK(worst <= 4.8e-7f);
  for (float y : {0.0f, -0.0f, 1.0f, -1.0f})
    for (float x : {0.0f, -0.0f, 1.0f, -1.0f}) {
      INFO("atan2(" << y << ", " << x << ")");
      CHECK(atan2_vec(y, x) == doctest::Approx(std::atan2(y, x)).epsilon(1e-7));
      CHECK(std::signbit(atan2_vec(y, x)) == std::signbit(std::atan2(y, x)));
    }
  CHECK(atan2_vec(1.0, -1.0) == std::atan2(1.0, -1.0));  // double is std::atan2 itself
}

TEST_CASE("complex: euler_phase and with_phase == the composition to_polar, * delta, + b, + angle, from_polar") {
  TD X = away_from_origin({2, 3, 8}), Angle = uniform({3, 4}, -3, 3);
  for (Shape parameter_shape : {Shape{}, Shape{4}}) {
    TD Delta = uniform(parameter_shape, 0.5, 2), Bias = uniform(parameter_shape, -1, 1);
    TD W = uniform({2, 3, 8}), Wp = uniform({2, 3, 4});
    // Composed.
    Tape<double> t1;
    V x1 = t1.input(X), d1 = t1.input(Delta), b1 = t1.input(Bias), a1 = t1.input(Angle);
    auto [lambda, theta] = to_polar(x1);
    V phase1 = theta * d1 + b1 + a1;
    V y1 = from_polar(lambda, phase1);
    t1.backward(sum(y1 * t1.constant(W)) + sum(phase1 * t1.constant(Wp)));
    // Fused.
    Tape<double> t2;
    V x2 = t2.input(X), d2 = t2.input(Delta), b2 = t2.input(Bias), a2 = t2.input(Angle);
    V phase2 = euler_phase(x2, d2, b2, a2);
    V y2 = with_phase(x2, phase2);
    t2.backward(sum(y2 * t2.constant(W)) + sum(phase2 * t2.constant(Wp)));
    CHECK(max_abs_difference(phase1.value(), phase2.value()) < 1e-12);
    CHECK(max_abs_difference(y1.value(), y2.value()) < 1e-12);
    CHECK(max_abs_difference(x1.grad(), x2.grad()) < 1e-12);
    CHECK(max_abs_difference(d1.grad(), d2.grad()) < 1e-12);
    CHECK(max_abs_difference(b1.grad(), b2.grad()) < 1e-12);
    CHECK(max_abs_difference(a1.grad(), a2.grad()) < 1e-12);
  }
}

TEST_CASE("complex: euler_phase and with_phase gradients (delta and bias [], [D/2] or absent; angle broadcast or full)") {
  GRADCHECK(euler_phase(x[0], x[1], x[2], x[3]), away_from_origin({2, 3, 8}), uniform({}, 0.5, 2), uniform({}, -1, 1),
            uniform({3, 4}, -3, 3));
  GRADCHECK(euler_phase(x[0], x[1], x[2], x[3]), away_from_origin({2, 3, 8}), uniform({4}, 0.5, 2), uniform({4}, -1, 1),
            uniform({2, 3, 4}, -3, 3));
  GRADCHECK(euler_phase(x[0], V{}, V{}, x[1]), away_from_origin({2, 3, 8}), uniform({4}, -3, 3));
  GRADCHECK(with_phase(x[0], x[1]), away_from_origin({2, 3, 8}), uniform({2, 3, 4}, -4, 4));
  GRADCHECK(with_phase(x[0], euler_phase(x[0], x[1], V{}, x[2])), away_from_origin({2, 5, 6}), uniform({3}, 0.5, 2),
            uniform({5, 3}, -3, 3));
}

TEST_CASE("complex: euler_phase and with_phase through zero pairs: finite, zero gradient into x there") {
  std::vector<int64_t> zero_pairs;
  TD X = with_zero_pairs(zero_pairs);  // [2, 3, 6]
  Tape<double> t;
  V x = t.input(X), delta = t.input(uniform({}, 0.5, 2)), bias = t.input(uniform({3})), angle = t.input(uniform({3, 3}));
  V phase = euler_phase(x, delta, bias, angle);
  V y = with_phase(x, phase);
  t.backward(sum(y * t.constant(uniform({2, 3, 6}))) + sum(cos(phase)));
  for (V v : {x, delta, bias, angle}) CHECK(all_finite(v.grad()));
  for (int64_t c : zero_pairs) {
    CHECK(y.value()[2 * c] == 0);
    CHECK(y.value()[2 * c + 1] == 0);
    CHECK(x.grad()[2 * c] == 0);
    CHECK(x.grad()[2 * c + 1] == 0);
  }
}

// The kernels work in blocks of kComplexBlock numbers with per-channel values copied out per block: over
// any range [c0, c1) (unaligned to rows and blocks, as parallel_for cuts them) they must give what the
// formula gives number by number.
TEST_CASE("complex: the Euler kernels over ranges cut anywhere equal the per-number formulas (float)") {
  const int64_t half = 12, inner = 5 * half, count = 3 * kComplexBlock + 17;  // angle [5, 12], 3.x blocks
  std::uniform_real_distribution<float> any(-2.0f, 2.0f);
  auto draw = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& e : v) e = any(rng);
    return v;
  };
  std::vector<float> x = draw(2 * count), delta = draw(half), bias = draw(half), angle = draw(inner), dout = draw(count),
                     dy = draw(2 * count);
  for (int64_t c : {int64_t(0), int64_t(40), kComplexBlock, count - 1}) x[size_t(2 * c)] = x[size_t(2 * c + 1)] = 0;  // |x| = 0
  const std::vector<int64_t> cuts{0, 7, kComplexBlock + 5, 2 * kComplexBlock, count};
  for (int64_t d_step : {0, 1})
    for (int64_t b_step : {-1, 0, 1}) {  // -1: no bias
      INFO("delta step " << d_step << ", bias step " << b_step);
      const float* b = b_step >= 0 ? bias.data() : nullptr;
      const size_t n = static_cast<size_t>(count);
      std::vector<float> theta(n), out(n), y(2 * n), dx(2 * n, 0.0f), dx2(2 * n, 0.0f), dphase(n, 0.0f);
      for (size_t i = 0; i + 1 < cuts.size(); ++i) {
        euler_phase_kernel(x.data(), cuts[i], cuts[i + 1], half, delta.data(), d_step, b, std::max<int64_t>(b_step, 0),
                           angle.data(), inner, theta.data(), out.data());
        with_phase_kernel(x.data(), out.data(), cuts[i], cuts[i + 1], y.data());
        euler_phase_dx_kernel(x.data(), dout.data(), cuts[i], cuts[i + 1], half, delta.data(), d_step, dx.data());
        with_phase_backward_kernel(x.data(), y.data(), dy.data(), cuts[i], cuts[i + 1], dx2.data(), dphase.data());
      }
      float worst = 0;
      auto near = [&](float got, double want) { worst = std::max(worst, float(std::abs(got - want) / (1 + std::abs(want)))); };
      for (int64_t c = 0; c < count; ++c) {
        const double re = x[size_t(2 * c)], im = x[size_t(2 * c + 1)], lambda = std::hypot(re, im);
        const double dl = delta[size_t(d_step ? c % half : 0)], th = atan2_vec(float(im), float(re));
        const double phase = dl * th + (b ? b[b_step ? c % half : 0] : 0.0) + angle[size_t(c % inner)];
        near(theta[size_t(c)], th);
        near(out[size_t(c)], phase);
        near(y[size_t(2 * c)], lambda * std::cos(out[size_t(c)]));
        near(y[size_t(2 * c + 1)], lambda * std::sin(out[size_t(c)]));
        const double g = lambda > 0 ? dout[size_t(c)] * dl / (lambda * lambda) : 0.0;  // d phase / d(re, im)
        near(dx[size_t(2 * c)], -g * im);
        near(dx[size_t(2 * c + 1)], g * re);
        const double yr = y[size_t(2 * c)], yi = y[size_t(2 * c + 1)], dyr = dy[size_t(2 * c)], dyi = dy[size_t(2 * c + 1)];
        const double s = lambda > 0 ? (dyr * yr + dyi * yi) / (lambda * lambda) : 0.0;
        near(dphase[size_t(c)], dyi * yr - dyr * yi);
        near(dx2[size_t(2 * c)], s * re);
        near(dx2[size_t(2 * c + 1)], s * im);
      }
      CHECK(worst < 2e-5f);
    }
}

TEST_CASE("complex: euler_phase shape errors name the op and the shapes") {
  Tape<double> t;
  V x = t.input(uniform({2, 3, 8}));
  CHECK_NAMES(shape_error([&] { euler_phase(x, t.input(uniform({3})), V{}, t.input(uniform({3, 4}))); }), "euler_phase", "[3]");
  CHECK_NAMES(shape_error([&] { euler_phase(x, V{}, V{}, t.input(uniform({4, 4}))); }), "euler_phase", "[4, 4]", "[2, 3, 4]");
  CHECK_NAMES(shape_error([&] { with_phase(x, t.input(uniform({2, 3, 8}))); }), "with_phase", "[2, 3, 8]");
}

// ---- bookkeeping ----------------------------------------------------------------------------------

TEST_CASE("complex: an input that needs no gradient gets no gradient buffer") {
  Tape<double> t;
  TD X = uniform({2, 3, 8}), Phase = uniform({3, 4}), Magnitude = uniform({2, 3, 4});
  V x = t.input(X), phase = t.constant(Phase), magnitude = t.constant(Magnitude), other = t.constant_copy(uniform({2, 3, 8}));
  V y = rotate_by_phase(x, phase);
  V z = from_polar(magnitude, real_part(complex_mul(y, other)));
  t.backward(real_inner(z, other), uniform({2, 3}));
  CHECK(t.node(phase.id).grad == nullptr);
  CHECK(t.node(magnitude.id).grad == nullptr);
  CHECK(t.node(other.id).grad == nullptr);
  CHECK(all_finite(x.grad()));
}

TEST_CASE("complex: float tensors give the double results") {
  TD X = uniform({2, 3, 8}), Phase = uniform({3, 4}, -4, 4);
  Tensor<float> Xf(X.shape()), Phasef(Phase.shape());
  for (int64_t i = 0; i < X.numel(); ++i) Xf[i] = float(X[i]);
  for (int64_t i = 0; i < Phase.numel(); ++i) Phasef[i] = float(Phase[i]);
  auto pipeline = [](auto& tape, auto x, auto phase) {
    auto [lambda, theta] = to_polar(x);
    auto y = rotate_by_phase(from_polar(lambda, theta), phase);
    auto z = complex_mul(y, conj(complex_from_parts(real_part(x), imag_part(x))));
    auto score = real_inner(z, y);
    tape.backward(sum(score));
    return score;
  };
  Tape<double> td;
  Tape<float> tf;
  V xd = td.input(X), phased = td.input(Phase);
  Var<float> xf = tf.input(Xf), phasef = tf.input(Phasef);
  V sd = pipeline(td, xd, phased);
  Var<float> sf = pipeline(tf, xf, phasef);
  for (int64_t i = 0; i < sd.numel(); ++i) CHECK(sf.value()[i] == doctest::Approx(sd.value()[i]).epsilon(1e-5));
  for (int64_t i = 0; i < X.numel(); ++i) CHECK(xf.grad()[i] == doctest::Approx(xd.grad()[i]).epsilon(1e-4));
  for (int64_t i = 0; i < Phase.numel(); ++i)
    CHECK(phasef.grad()[i] == doctest::Approx(phased.grad()[i]).epsilon(1e-4));
}

// ---- errors ---------------------------------------------------------------------------------------

TEST_CASE("complex: shape errors name the op and the shapes") {
  Tape<double> t;
  V odd = t.constant_copy(uniform({2, 3})), scalar = t.constant_copy(uniform({}));
  V x = t.constant_copy(uniform({2, 3, 8})), y = t.constant_copy(uniform({2, 4}));

  // Odd D (and rank 0): not a complex tensor.
  CHECK_NAMES(shape_error([&] { complex_abs(odd); }), "complex_abs", "[2, 3]", "even");
  CHECK_NAMES(shape_error([&] { complex_arg(odd); }), "complex_arg", "[2, 3]");
  CHECK_NAMES(shape_error([&] { to_polar(odd); }), "complex_abs", "[2, 3]");
  CHECK_NAMES(shape_error([&] { real_part(odd); }), "real_part", "[2, 3]");
  CHECK_NAMES(shape_error([&] { imag_part(odd); }), "imag_part", "[2, 3]");
  CHECK_NAMES(shape_error([&] { conj(odd); }), "conj", "[2, 3]");
  CHECK_NAMES(shape_error([&] { complex_mul(odd, odd); }), "complex_mul", "[2, 3]");
  CHECK_NAMES(shape_error([&] { real_inner(odd, odd); }), "real_inner", "[2, 3]");
  CHECK_NAMES(shape_error([&] { complex_abs(scalar); }), "complex_abs", "[]");
  CHECK_NAMES(shape_error([&] { rotate_by_phase(t.constant_copy(uniform({2, 3, 7})), t.constant_copy(uniform({3}))); }),
              "rotate_by_phase", "[2, 3, 7]", "[3]");

  // Mismatched shapes.
  CHECK_NAMES(shape_error([&] { complex_from_parts(odd, t.constant_copy(uniform({3, 2}))); }), "complex_from_parts",
              "[2, 3]", "[3, 2]");
  CHECK_NAMES(shape_error([&] { complex_from_parts(scalar, scalar); }), "complex_from_parts", "[]");
  CHECK_NAMES(shape_error([&] { from_polar(odd, y); }), "from_polar", "[2, 3]", "[2, 4]");
  CHECK_NAMES(shape_error([&] { from_polar(scalar, scalar); }), "from_polar", "[]");
  CHECK_NAMES(shape_error([&] { complex_mul(x, y); }), "complex_mul", "[2, 3, 8]", "[2, 4]");
  CHECK_NAMES(shape_error([&] { real_inner(y, x); }), "real_inner", "[2, 4]", "[2, 3, 8]");

  // A phase shape that is not a suffix of x's complex shape [2, 3, 4].
  CHECK_NAMES(shape_error([&] { rotate_by_phase(x, y); }), "rotate_by_phase", "[2, 3, 8]", "[2, 4]", "suffix");
  CHECK_NAMES(shape_error([&] { rotate_by_phase(x, t.constant_copy(uniform({3, 8}))); }), "rotate_by_phase", "[2, 3, 8]",
              "[3, 8]");
  CHECK_NAMES(shape_error([&] { rotate_by_phase(x, t.constant_copy(uniform({1, 3, 4}))); }), "rotate_by_phase",
              "[2, 3, 8]", "[1, 3, 4]");
  CHECK_NAMES(shape_error([&] { rotate_by_phase(x, t.constant_copy(uniform({2, 2, 3, 4}))); }), "rotate_by_phase",
              "[2, 3, 8]", "[2, 2, 3, 4]");

  // Operands from two tapes.
  Tape<double> other;
  CHECK_THROWS_AS(complex_mul(x, other.constant_copy(uniform({2, 3, 8}))), TapeError);
  CHECK_THROWS_AS(rotate_by_phase(x, other.constant_copy(uniform({4}))), TapeError);
}

// This file's macros end here (several test files are compiled as one unit).
#undef GRADCHECK
#undef CHECK_NAMES

}  // namespace test_ops_complex
