// Tests of the tape itself: accumulation, no-grad, leaves that need no gradient, buffer reuse,
// reading intermediate gradients, error messages, and that the gradient checker can fail.
#include <doctest/doctest.h>

#include <euler/euler.hpp>

namespace test_tape {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;
using check::gradcheck;
using V = Var<double>;
using Args = std::span<const V>;

TEST_CASE("backward of a scalar function gives the analytic gradient") {
  Tape<double> tape;
  auto X = Tensor<double>::from({3}, {0.5, -1.0, 2.0});
  V x = tape.input(X);
  V y = sum(exp(x) * x);  // d/dx = (1 + x) exp(x)
  tape.backward(y);
  for (int i = 0; i < 3; ++i) CHECK(tape.grad(x)[i] == doctest::Approx((1 + X[i]) * std::exp(X[i])).epsilon(1e-12));
}

TEST_CASE("gradients accumulate across backward calls and into parameter buffers") {
  Tape<double> tape;
  auto W = Tensor<double>::from({2}, {1.0, 2.0});
  auto dW = Tensor<double>::zeros({2});
  V w = tape.param(W, dW);
  V loss = sum(w * w);
  tape.backward(loss);
  CHECK(dW[0] == 2.0);
  CHECK(dW[1] == 4.0);
  tape.backward(loss);  // again: adds
  CHECK(dW[0] == 4.0);
  CHECK(dW[1] == 8.0);
  CHECK(tape.grad(loss)[0] == 1.0);  // intermediate gradients start afresh in each pass
}

TEST_CASE("a temporary Tensor given to input() or constant() lives as long as the tape needs it") {
  Tape<double> tape;
  V x = tape.input(Tensor<double>::from({3}, {0.5, -1.0, 2.0}));
  V c = tape.constant(Tensor<double>::from({3}, {2.0, 3.0, 4.0}));
  // Fresh allocations of the same size would take over the temporaries' memory if the tape did not keep it.
  std::vector<Tensor<double>> others;
  for (int i = 0; i < 8; ++i) others.push_back(Tensor<double>::full({3}, 99.0));
  CHECK(x.value()[0] == 0.5);
  CHECK(c.value()[2] == 4.0);
  tape.backward(sum(x * c));
  CHECK(tape.grad(x)[1] == 3.0);
  tape.reset();  // releases them
  CHECK(tape.size() == 0);
}

TEST_CASE("a value used twice receives both contributions") {
  Tape<double> tape;
  auto X = Tensor<double>::from({1}, {3.0});
  V x = tape.input(X);
  V y = sum(x * x + x);  // 2x + 1
  tape.backward(y);
  CHECK(tape.grad(x)[0] == 7.0);
}

TEST_CASE("inputs that need no gradient record no closure and get no buffer") {
  Tape<float> tape;
  auto A = Tensor<float>::full({4}, 2.0f);
  auto B = Tensor<float>::full({4}, 3.0f);
  Var<float> a = tape.constant(A);
  Var<float> b = tape.input(B);
  Var<float> c = exp(a);  // depends only on a constant
  CHECK_FALSE(c.requires_grad());
  CHECK_FALSE(bool(tape.node(c.id).backward));
  Var<float> y = sum(c * b);
  CHECK(y.requires_grad());
  tape.backward(y);
  CHECK(tape.node(a.id).grad == nullptr);
  CHECK(tape.node(c.id).grad == nullptr);
  CHECK(tape.grad(b)[0] == doctest::Approx(std::exp(2.0f)));
  CHECK_THROWS_AS(tape.grad(a), TapeError);
}

TEST_CASE("no-grad scope records nothing to differentiate and restores the previous state") {
  Tape<float> tape;
  auto X = Tensor<float>::full({3}, 1.0f);
  {
    NoGrad<float> guard(tape);
    Var<float> x = tape.input(X);
    Var<float> y = sum(exp(x));
    CHECK_FALSE(x.requires_grad());
    CHECK_FALSE(y.requires_grad());
    CHECK(y.value()[0] == doctest::Approx(3 * std::exp(1.0f)));
  }
  CHECK(tape.grad_enabled());
  Var<float> x = tape.input(X);
  CHECK(x.requires_grad());
}

TEST_CASE("every node keeps its op name, and intermediate gradients can be read after backward") {
  Tape<double> tape;
  auto X = Tensor<double>::from({2}, {0.3, 0.7});
  V x = tape.input(X);
  V s = sin(x);
  V y = sum(s * s);
  CHECK(std::string(s.op()) == "sin");
  CHECK(std::string(y.op()) == "sum");
  tape.backward(y);
  // dy/ds = 2 s
  CHECK(tape.grad(s)[0] == doctest::Approx(2 * std::sin(0.3)).epsilon(1e-12));
  CHECK(tape.grad(s)[1] == doctest::Approx(2 * std::sin(0.7)).epsilon(1e-12));
}

TEST_CASE("backward can drop intermediate gradients to save memory, keeping leaves and parameters") {
  Tape<double> tape;
  auto X = Tensor<double>::from({2}, {0.3, 0.7});
  auto W = Tensor<double>::from({2}, {2.0, 3.0});
  auto dW = Tensor<double>::zeros({2});
  V x = tape.input(X);
  V w = tape.param(W, dW);
  V s = sin(x * w);
  V y = sum(s);
  tape.backward(y, BackwardOptions{.keep_intermediate_grads = false});
  CHECK(tape.node(s.id).grad == nullptr);
  CHECK(tape.grad(x)[0] == doctest::Approx(2.0 * std::cos(0.6)).epsilon(1e-12));
  CHECK(dW[1] == doctest::Approx(0.7 * std::cos(2.1)).epsilon(1e-12));
}

TEST_CASE("reset keeps buffers: a repeated step makes no new heap allocation") {
  Tape<float> tape;
  auto X = Tensor<float>::full({64, 32}, 0.5f);
  auto W = Tensor<float>::full({32, 16}, 0.1f);
  auto dW = Tensor<float>::zeros({32, 16});
  auto step = [&] {
    tape.reset();
    Var<float> x = tape.constant(X);
    Var<float> w = tape.param(W, dW);
    Var<float> loss = mean(tanh(matmul(x, w)) + 1.0f);
    tape.backward(loss, BackwardOptions{.keep_intermediate_grads = false});
  };
  step();
  step();
  size_t allocations = tape.pool().heap_allocations();
  size_t reserved = tape.pool().reserved_bytes();
  for (int i = 0; i < 5; ++i) step();
  CHECK(tape.pool().heap_allocations() == allocations);
  CHECK(tape.pool().reserved_bytes() == reserved);
}

TEST_CASE("backward needs a one-element loss or an explicit seed") {
  Tape<double> tape;
  auto X = Tensor<double>::from({2}, {1.0, 2.0});
  V x = tape.input(X);
  V y = exp(x);
  CHECK_THROWS_AS(tape.backward(y), TapeError);
  auto seed = Tensor<double>::from({2}, {1.0, 0.5});
  tape.backward(y, seed);
  CHECK(tape.grad(x)[1] == doctest::Approx(0.5 * std::exp(2.0)));
}

TEST_CASE("mixing Vars from two tapes is an error") {
  Tape<double> t1, t2;
  auto X = Tensor<double>::from({2}, {1.0, 2.0});
  V a = t1.input(X), b = t2.input(X);
  CHECK_THROWS_AS(add(a, b), TapeError);
}

TEST_CASE("a shape mismatch names the op and both shapes") {
  Tape<float> tape;
  auto A = Tensor<float>::zeros({2, 3});
  auto B = Tensor<float>::zeros({4});
  Var<float> a = tape.input(A), b = tape.input(B);
  CHECK_THROWS_WITH_AS(add(a, b), doctest::Contains("add: shapes [2, 3] and [4]"), ShapeError);
  CHECK_THROWS_WITH_AS(mul(a, b), doctest::Contains("mul: shapes [2, 3] and [4]"), ShapeError);
  auto C = Tensor<float>::zeros({4, 5});
  Var<float> c = tape.input(C);
  CHECK_THROWS_WITH_AS(matmul(a, c), doctest::Contains("matmul: shapes [2, 3] and [4, 5]"), ShapeError);
  CHECK_THROWS_WITH_AS(sum(a, 2), doctest::Contains("sum: axis 2 out of range"), ShapeError);
}

// An op with a deliberately wrong backward: y = x^3 with dy/dx claimed to be 2 x^2.
template <class T>
Var<T> wrong_cube(Var<T> x) {
  TensorView<T> y = x.tape->alloc(x.shape());
  TensorView<const T> xv = x.value();
  for (int64_t i = 0; i < y.numel(); ++i) y[i] = xv[i] * xv[i] * xv[i];
  return x.tape->record("wrong_cube", y, {x}, [x](auto, TensorView<const T> dy) {
    TensorView<T> dx = x.grad_accumulator();
    TensorView<const T> xv = x.value();
    for (int64_t i = 0; i < dx.numel(); ++i) dx[i] += dy[i] * 2 * xv[i] * xv[i];  // wrong: should be 3 x^2
  });
}
// The same op, right.
template <class T>
Var<T> right_cube(Var<T> x) {
  TensorView<T> y = x.tape->alloc(x.shape());
  TensorView<const T> xv = x.value();
  for (int64_t i = 0; i < y.numel(); ++i) y[i] = xv[i] * xv[i] * xv[i];
  return x.tape->record("right_cube", y, {x}, [x](auto, TensorView<const T> dy) {
    TensorView<T> dx = x.grad_accumulator();
    TensorView<const T> xv = x.value();
    for (int64_t i = 0; i < dx.numel(); ++i) dx[i] += dy[i] * 3 * xv[i] * xv[i];
  });
}

TEST_CASE("the gradient checker catches a wrong backward and passes the right one") {
  auto X = Tensor<double>::from({4}, {0.2, -0.4, 0.9, 1.3});
  auto wrong = gradcheck([](Tape<double>&, Args x) { return wrong_cube(x[0]); }, {X});
  CHECK_FALSE(wrong.ok);
  CHECK(wrong.max_error > 0.1);
  CHECK(wrong.report.find("FAILED") != std::string::npos);
  auto right = gradcheck([](Tape<double>&, Args x) { return right_cube(x[0]); }, {X});
  CHECK(right.ok);
  CHECK(right.max_error < 1e-8);
}

TEST_CASE("the gradient checker catches a gradient that is missing for one input") {
  // y = a * b, but the op forgets b's gradient.
  auto A = Tensor<double>::from({2}, {0.5, 1.5});
  auto B = Tensor<double>::from({2}, {2.0, -1.0});
  auto result = gradcheck(
      [](Tape<double>&, Args x) {
        Var<double> a = x[0], b = x[1];
        TensorView<double> y = a.tape->alloc(a.shape());
        for (int i = 0; i < 2; ++i) y[i] = a.value()[i] * b.value()[i];
        return a.tape->record("forgetful_mul", y, {a, b}, [a, b](auto, TensorView<const double> dy) {
          TensorView<double> da = a.grad_accumulator();
          for (int i = 0; i < 2; ++i) da[i] += dy[i] * b.value()[i];
        });
      },
      {A, B});
  CHECK_FALSE(result.ok);
  CHECK(result.worst.find("x[1]") != std::string::npos);
}

TEST_CASE("float is the default scalar and double works the same") {
  static_assert(std::is_same_v<Tape<>::Scalar, float>);
  static_assert(std::is_same_v<Tensor<>, Tensor<float>>);
  Tape<> tape;
  auto X = Tensor<>::from({2}, {1.0f, 2.0f});
  Var<> x = tape.input(X);
  tape.backward(sum(x * x));
  CHECK(tape.grad(x)[1] == 4.0f);
}

}  // namespace test_tape
