// linear_cross_entropy (euler/ops/linear_cross_entropy.hpp): the same loss and gradients as
// cross_entropy(matmul(x, W^T)), with ignored rows, a table of which only the first rows are classes,
// several tiles and threads; finite differences; errors.
#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include <euler/euler.hpp>
#include <euler/ops/linear_cross_entropy.hpp>

#include <random>

namespace test_linear_cross_entropy {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;

namespace {

Tensor<double> uniform(const Shape& shape, std::mt19937_64& gen, double lo = -1, double hi = 1) {
  return Tensor<double>::uniform(shape, gen, lo, hi);
}

}  // namespace

TEST_CASE("linear_cross_entropy == cross_entropy(x W^T): values and gradients, ignored rows, part of the table") {
  std::mt19937_64 gen(3);
  for (int64_t M : {int64_t(1), int64_t(7), int64_t(150)})  // 150 rows: three tiles of 64
    for (int64_t classes : {int64_t(-1), int64_t(9)}) {
      const int64_t D = 6, rows = 13, K = classes < 0 ? rows : classes;
      Tensor<double> X = uniform({M, D}, gen, -2, 2), W = uniform({rows, D}, gen, -2, 2);
      std::vector<int32_t> targets(static_cast<size_t>(M));
      for (int64_t r = 0; r < M; ++r) targets[size_t(r)] = r % 5 == 3 ? -7 : int32_t(gen() % uint64_t(K));  // -7: ignored
      TensorView<const int32_t> t{Shape{M}, targets.data()};

      Tape<double> fused_tape, ref_tape;
      Var<double> x1 = fused_tape.input(X), w1 = fused_tape.input(W);
      Var<double> l1 = linear_cross_entropy(x1, w1, t, -7, classes);
      fused_tape.backward(l1);
      Var<double> x2 = ref_tape.input(X), w2 = ref_tape.input(W);
      Var<double> table = classes < 0 ? w2 : slice(w2, 0, 0, K);
      Var<double> l2 = cross_entropy(matmul(x2, table, false, true), t, -7);
      ref_tape.backward(l2);

      CAPTURE(M);
      CAPTURE(classes);
      CHECK(l1.value()[0] == doctest::Approx(l2.value()[0]).epsilon(1e-13));
      double dx = 0, dw = 0, largest = 0;
      for (int64_t i = 0; i < X.numel(); ++i) dx = std::max(dx, std::abs(x1.grad()[i] - x2.grad()[i]));
      for (int64_t i = 0; i < W.numel(); ++i) {
        dw = std::max(dw, std::abs(w1.grad()[i] - w2.grad()[i]));
        largest = std::max(largest, std::abs(w2.grad()[i]));
      }
      CHECK(dx < 1e-14);
      CHECK(dw < 1e-14);
      CHECK(largest > 1e-3);
      if (classes > 0)  // rows past the classes get nothing
        for (int64_t i = classes * D; i < W.numel(); ++i) REQUIRE(w1.grad()[i] == 0);
    }
}

TEST_CASE("linear_cross_entropy: gradcheck, the same bits for a given thread count, every row ignored") {
  std::mt19937_64 gen(4);
  std::vector<int32_t> targets = {2, 0, 4, -100, 1, 3, 3, 2, 0};
  TensorView<const int32_t> t{Shape{9}, targets.data()};
  auto f = [&](Tape<double>&, std::span<const Var<double>> v) { return linear_cross_entropy(v[0], v[1], t); };
  auto r = check::gradcheck(f, {uniform({9, 4}, gen), uniform({5, 4}, gen)});
  INFO(r.report);
  CHECK(r.ok);

  Tensor<double> X = uniform({300, 8}, gen), W = uniform({40, 8}, gen);
  std::vector<int32_t> many(300);
  for (size_t i = 0; i < many.size(); ++i) many[i] = int32_t(gen() % 40);
  std::vector<std::vector<double>> grads;
  int previous = num_threads();
  for (int threads : {2, 2}) {
    set_num_threads(threads);
    Tape<double> tape;
    Var<double> x = tape.input(X), w = tape.input(W);
    tape.backward(linear_cross_entropy(x, w, TensorView<const int32_t>{Shape{300}, many.data()}));
    grads.emplace_back(w.grad().begin(), w.grad().end());
  }
  set_num_threads(previous);
  CHECK(grads[0] == grads[1]);

  std::vector<int32_t> none(9, -100);
  Tape<double> tape;
  Var<double> x = tape.input(uniform({9, 4}, gen)), w = tape.input(uniform({5, 4}, gen));
  Var<double> l = linear_cross_entropy(x, w, TensorView<const int32_t>{Shape{9}, none.data()});
  tape.backward(l);
  CHECK(l.value()[0] == 0);
  for (double g : x.grad()) CHECK(g == 0);
}

TEST_CASE("linear_cross_entropy: an upstream gradient other than 1, and only one operand needing a gradient") {
  // Forward forms the unit loss's gradient and backward scales it by dloss: check that scaling, and
  // that an operand without a gradient is left alone while the other still gets its own.
  std::mt19937_64 gen(5);
  Tensor<double> X = uniform({70, 5}, gen), W = uniform({11, 5}, gen);
  std::vector<int32_t> targets(70);
  for (size_t i = 0; i < targets.size(); ++i) targets[i] = i % 4 == 1 ? -100 : int32_t(gen() % 11);
  TensorView<const int32_t> t{Shape{70}, targets.data()};
  Tape<double> ref_tape;
  Var<double> xr = ref_tape.input(X), wr = ref_tape.input(W);
  ref_tape.backward(affine(cross_entropy(matmul(xr, wr, false, true), t), -2.5, 1.0));
  for (int which = 0; which < 3; ++which) {  // 0: both need gradients, 1: only x, 2: only the table
    CAPTURE(which);
    Tape<double> tape;
    Var<double> x = which == 2 ? tape.constant(X) : tape.input(X);
    Var<double> w = which == 1 ? tape.constant(W) : tape.input(W);
    Var<double> loss = affine(linear_cross_entropy(x, w, t), -2.5, 1.0);  // dloss = -2.5
    tape.backward(loss);
    if (which != 2)
      for (int64_t i = 0; i < X.numel(); ++i) REQUIRE(x.grad()[i] == doctest::Approx(xr.grad()[i]).epsilon(1e-12));
    if (which != 1)
      for (int64_t i = 0; i < W.numel(); ++i) REQUIRE(w.grad()[i] == doctest::Approx(wr.grad()[i]).epsilon(1e-12));
    if (which == 2) CHECK_FALSE(x.requires_grad());
    if (which == 1) CHECK_FALSE(w.requires_grad());
  }
}

TEST_CASE("linear_cross_entropy: shape and target errors name the op") {
  std::mt19937_64 gen(5);
  Tape<double> tape;
  Var<double> x = tape.input(uniform({3, 4}, gen)), w = tape.input(uniform({5, 4}, gen)), bad = tape.input(uniform({5, 3}, gen));
  std::vector<int32_t> targets = {1, 2, 7};
  TensorView<const int32_t> t{Shape{3}, targets.data()};
  std::string m = euler_test::error_of<ShapeError>([&] { linear_cross_entropy(x, bad, t); });
  CHECK(m.find("linear_cross_entropy") != std::string::npos);
  m = euler_test::error_of<ShapeError>([&] { linear_cross_entropy(x, w, t); });
  CHECK(m.find("target 7") != std::string::npos);
  m = euler_test::error_of<ShapeError>([&] { linear_cross_entropy(x, w, t, -100, 9); });
  CHECK(m.find("9 classes") != std::string::npos);
}

}  // namespace test_linear_cross_entropy
