// Elementwise arithmetic with broadcasting, unary math, matmul and reductions: values and gradients.
#include <doctest/doctest.h>

#include <euler/euler.hpp>

#include <random>

namespace test_ops_basic {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;
using check::gradcheck;
using V = Var<double>;
using Args = std::span<const V>;
using TD = Tensor<double>;

namespace {
std::mt19937_64 rng(7);
TD rand(Shape s, double lo = -1, double hi = 1) { return TD::uniform(s, rng, lo, hi); }
#define GRADCHECK(f, ...)                                   \
  do {                                                      \
    auto r = gradcheck([](Tape<double>&, Args x) { return f; }, {__VA_ARGS__}); \
    INFO(r.report);                                         \
    CHECK(r.ok);                                            \
  } while (0)
}  // namespace

TEST_CASE("binary ops: values with broadcasting") {
  Tape<double> t;
  auto A = TD::from({2, 3}, {1, 2, 3, 4, 5, 6});
  auto B = TD::from({3}, {10, 20, 30});
  V a = t.constant(A), b = t.constant(B);
  auto y = (a + b).value();
  CHECK(y.at({1, 2}) == 36);
  CHECK((b - a).value().at({1, 0}) == 6);
  CHECK((a * b).value().at({0, 1}) == 40);
  CHECK((a / b).value().at({1, 1}) == doctest::Approx(0.25));
  CHECK((a * 2.0).value().at({1, 2}) == 12);
  CHECK((2.0 - a).value().at({0, 0}) == 1);
  CHECK((6.0 / a).value().at({0, 2}) == 2);
  CHECK((-a).value().at({1, 1}) == -5);
  CHECK((a + t.scalar(0.5)).value().at({0, 0}) == 1.5);
}

TEST_CASE("binary ops: gradients, same shape and broadcast both ways") {
  GRADCHECK(x[0] + x[1], rand({2, 3}), rand({2, 3}));
  GRADCHECK(x[0] - x[1], rand({2, 3, 4}), rand({3, 4}));
  GRADCHECK(x[0] - x[1], rand({4}), rand({2, 3, 4}));
  GRADCHECK(x[0] * x[1], rand({2, 3, 4}), rand({4}));
  GRADCHECK(x[0] * x[1], rand({3, 4}), rand({2, 3, 4}));
  GRADCHECK(x[0] / x[1], rand({2, 3}), rand({2, 3}, 0.5, 2.0));
  GRADCHECK(x[0] / x[1], rand({2, 3}), rand({3}, 0.5, 2.0));
  GRADCHECK(x[0] / x[1], rand({3}), rand({2, 3}, 0.5, 2.0));
  GRADCHECK(x[0] * x[1], rand({2, 3}), rand({}));  // by a scalar tensor
  GRADCHECK(x[0] * x[1], rand({}), rand({2, 3}));
  GRADCHECK(x[0] / x[1], rand({2, 3}), rand({}, 0.5, 2.0));
  GRADCHECK(3.0 * x[0] - 1.5, rand({5}));
  GRADCHECK(2.0 / x[0] + x[0] / 4.0, rand({5}, 0.5, 2.0));
  GRADCHECK(-x[0], rand({2, 2}));
}

TEST_CASE("binary ops on a large broadcast are parallel-safe and exact") {
  // Big enough to be split over threads in every branch.
  Tape<double> t;
  auto A = rand({300, 257}), B = rand({257}), S = rand({});
  V a = t.input(A), b = t.input(B), s = t.input(S);
  V y = sum(a * b * s);
  t.backward(y);
  double expect_b0 = 0, expect_s = 0;
  for (int r = 0; r < 300; ++r) expect_b0 += A.at({r, 0}) * S[0];
  for (int r = 0; r < 300; ++r)
    for (int c = 0; c < 257; ++c) expect_s += A.at({r, c}) * B[c];
  CHECK(t.grad(b)[0] == doctest::Approx(expect_b0).epsilon(1e-12));
  CHECK(t.grad(s)[0] == doctest::Approx(expect_s).epsilon(1e-12));
  CHECK(t.grad(a).at({7, 3}) == doctest::Approx(B[3] * S[0]).epsilon(1e-12));
}

TEST_CASE("unary math: values") {
  Tape<double> t;
  auto X = TD::from({4}, {-1.5, -0.2, 0.3, 2.0});
  V x = t.constant(X);
  for (int i = 0; i < 4; ++i) {
    double v = X[i];
    CHECK(exp(x).value()[i] == doctest::Approx(std::exp(v)));
    CHECK(sin(x).value()[i] == doctest::Approx(std::sin(v)));
    CHECK(cos(x).value()[i] == doctest::Approx(std::cos(v)));
    CHECK(tanh(x).value()[i] == doctest::Approx(std::tanh(v)));
    CHECK(erf(x).value()[i] == doctest::Approx(std::erf(v)));
    CHECK(relu(x).value()[i] == doctest::Approx(v > 0 ? v : 0));
    CHECK(sigmoid(x).value()[i] == doctest::Approx(1 / (1 + std::exp(-v))));
    CHECK(gelu(x).value()[i] == doctest::Approx(0.5 * v * (1 + std::erf(v / std::sqrt(2.0)))));
    CHECK(square(x).value()[i] == doctest::Approx(v * v));
  }
  auto P = TD::from({2}, {0.25, 4.0});
  V p = t.constant(P);
  CHECK(log(p).value()[1] == doctest::Approx(std::log(4.0)));
  CHECK(sqrt(p).value()[0] == doctest::Approx(0.5));
  // gelu(1) known value (PyTorch: 0.8413447460685429)
  auto One = TD::from({1}, {1.0});
  CHECK(gelu(t.constant(One)).value()[0] == doctest::Approx(0.8413447460685429).epsilon(1e-12));
}

TEST_CASE("unary math: gradients") {
  GRADCHECK(exp(x[0]), rand({2, 3}));
  GRADCHECK(log(x[0]), rand({2, 3}, 0.2, 3.0));
  GRADCHECK(sqrt(x[0]), rand({2, 3}, 0.2, 3.0));
  GRADCHECK(sin(x[0]), rand({2, 3}, -3, 3));
  GRADCHECK(cos(x[0]), rand({2, 3}, -3, 3));
  GRADCHECK(tanh(x[0]), rand({2, 3}, -2, 2));
  GRADCHECK(erf(x[0]), rand({2, 3}, -2, 2));
  GRADCHECK(sigmoid(x[0]), rand({2, 3}, -3, 3));
  GRADCHECK(gelu(x[0]), rand({2, 3}, -3, 3));
  GRADCHECK(square(x[0]), rand({2, 3}));
  // relu away from its kink
  GRADCHECK(relu(x[0]), TD::from({4}, {-0.7, -0.1, 0.2, 1.1}));
  GRADCHECK(atan2(x[0], x[1]), rand({2, 3}), rand({2, 3}, 0.3, 1.0));
  GRADCHECK(atan2(x[0], x[1]), rand({3}), rand({3}, -1.0, -0.3));  // across the branch side
}

TEST_CASE("atan2: values in all quadrants, zero gradient at the origin") {
  Tape<double> t;
  auto Y = TD::from({5}, {1, 1, -1, -1, 0});
  auto X = TD::from({5}, {1, -1, -1, 1, 0});
  V y = t.input(Y), x = t.input(X);
  V a = atan2(y, x);
  for (int i = 0; i < 5; ++i) CHECK(a.value()[i] == doctest::Approx(std::atan2(Y[i], X[i])));
  t.backward(sum(a));
  CHECK(t.grad(y)[4] == 0.0);
  CHECK(t.grad(x)[4] == 0.0);
  CHECK(std::isfinite(t.grad(y)[4]));
}

TEST_CASE("matmul: 2-D with all transposes, values and gradients") {
  Tape<double> t;
  auto A = TD::from({2, 3}, {1, 2, 3, 4, 5, 6});
  auto B = TD::from({3, 2}, {1, 0, 0, 1, 1, 1});
  auto C = matmul(t.constant(A), t.constant(B)).value();
  CHECK(C.shape == Shape{2, 2});
  CHECK(C.at({0, 0}) == 4);
  CHECK(C.at({1, 1}) == 11);
  auto Ct = matmul(t.constant(A), t.constant(A), false, true).value();  // A A^T
  CHECK(Ct.at({0, 1}) == 32);
  GRADCHECK(matmul(x[0], x[1]), rand({3, 4}), rand({4, 5}));
  GRADCHECK(matmul(x[0], x[1], true, false), rand({4, 3}), rand({4, 5}));
  GRADCHECK(matmul(x[0], x[1], false, true), rand({3, 4}), rand({5, 4}));
  GRADCHECK(matmul(x[0], x[1], true, true), rand({4, 3}), rand({5, 4}));
}

TEST_CASE("matmul: batched and folded (linear layer) forms") {
  GRADCHECK(matmul(x[0], x[1]), rand({2, 3, 4}), rand({4, 5}));                 // [B,N,D] x [D,K]
  GRADCHECK(matmul(x[0], x[1], false, true), rand({2, 2, 3, 4}), rand({5, 4}));  // rank 4 x W^T
  GRADCHECK(matmul(x[0], x[1], false, true), rand({2, 3, 4}), rand({2, 5, 4}));  // batched Q K^T
  GRADCHECK(matmul(x[0], x[1]), rand({2, 2, 3, 4}), rand({2, 2, 4, 3}));         // [B,H,N,N] x [B,H,N,dh]
  GRADCHECK(matmul(x[0], x[1], true, false), rand({3, 4, 2}), rand({3, 4, 5}));
  // A batched product equals the per-element products.
  Tape<double> t;
  auto A = rand({3, 2, 4}), B = rand({3, 4, 5});
  auto C = matmul(t.constant(A), t.constant(B)).value();
  for (int b = 0; b < 3; ++b) {
    RowMatrix<double> ref = A.mat(6, 4).middleRows(2 * b, 2) * B.mat(12, 5).middleRows(4 * b, 4);
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 5; ++j) CHECK(C.at({b, i, j}) == doctest::Approx(ref(i, j)));
  }
}

TEST_CASE("matmul: shape errors name both shapes") {
  Tape<float> t;
  auto A = Tensor<float>::zeros({2, 3, 4}), B = Tensor<float>::zeros({3, 4, 5});
  CHECK_THROWS_WITH_AS(matmul(t.input(A), t.input(B)), doctest::Contains("[2, 3, 4] and [3, 4, 5]"), ShapeError);
  auto C = Tensor<float>::zeros({5, 4});
  CHECK_THROWS_WITH_AS(matmul(t.input(A), t.input(C)), doctest::Contains("inner dims 4 and 5"), ShapeError);
  auto D = Tensor<float>::zeros({4});
  CHECK_THROWS_WITH_AS(matmul(t.input(D), t.input(C)), doctest::Contains("matmul: shapes [4] and [5, 4]"), ShapeError);
}

TEST_CASE("linear: equals matmul(x, W^T) + b, values and gradients; shape errors") {
  GRADCHECK(linear(x[0], x[1], x[2]), rand({2, 3, 4}), rand({5, 4}), rand({5}));
  GRADCHECK(linear(x[0], x[1], x[2]), rand({4}), rand({3, 4}), rand({3}));  // one row
  TD X = rand({3, 2, 4}), W = rand({6, 4}), Bias = rand({6}), G = rand({3, 2, 6});
  Tape<double> t1, t2;
  V x1 = t1.input(X), w1 = t1.input(W), b1 = t1.input(Bias);
  V x2 = t2.input(X), w2 = t2.input(W), b2 = t2.input(Bias);
  V y1 = linear(x1, w1, b1), y2 = matmul(x2, w2, false, true) + b2;
  t1.backward(y1, G);
  t2.backward(y2, G);
  REQUIRE(y1.shape() == y2.shape());
  for (int64_t i = 0; i < y1.numel(); ++i) CHECK(y1.value()[i] == doctest::Approx(y2.value()[i]).epsilon(1e-14));
  for (auto [a, b] : {std::pair{x1, x2}, std::pair{w1, w2}, std::pair{b1, b2}})
    for (int64_t i = 0; i < a.numel(); ++i) CHECK(a.grad()[i] == doctest::Approx(b.grad()[i]).epsilon(1e-14));
  CHECK_THROWS_WITH_AS(linear(x1, t1.input(rand({6, 3})), b1), doctest::Contains("[3, 2, 4], weight [6, 3]"), ShapeError);
  CHECK_THROWS_WITH_AS(linear(x1, w1, t1.input(rand({5}))), doctest::Contains("bias [5]"), ShapeError);
}

TEST_CASE("sum and mean: values and gradients over all and over an axis") {
  Tape<double> t;
  auto X = TD::from({2, 3}, {1, 2, 3, 4, 5, 6});
  V x = t.constant(X);
  CHECK(sum(x).value()[0] == 21);
  CHECK(mean(x).value()[0] == 3.5);
  auto s0 = sum(x, 0).value();
  CHECK(s0.shape == Shape{3});
  CHECK(s0[2] == 9);
  auto m1 = mean(x, -1).value();
  CHECK(m1.shape == Shape{2});
  CHECK(m1[1] == 5);
  CHECK(sum(x, 1, true).value().shape == Shape{2, 1});
  GRADCHECK(sum(x[0]), rand({2, 3, 4}));
  GRADCHECK(mean(x[0]), rand({2, 3, 4}));
  GRADCHECK(sum(x[0], 0), rand({2, 3, 4}));
  GRADCHECK(sum(x[0], 1), rand({2, 3, 4}));
  GRADCHECK(mean(x[0], -1), rand({2, 3, 4}));
  GRADCHECK(mean(x[0], 2, true), rand({2, 3, 4, 2}));
}

// This file's macros end here (several test files are compiled as one unit).
#undef GRADCHECK

}  // namespace test_ops_basic
