// Tests for euler/ops/layout.hpp: values on hand-made inputs, gradients by finite differences,
// error messages, and inputs that need no gradient.
#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include <algorithm>
#include <numeric>
#include <random>

#include "euler/check/gradcheck.hpp"
#include "euler/ops/layout.hpp"
#include "euler/ops/matmul.hpp"
#include "euler/ops/reduce.hpp"

namespace test_ops_layout {  // this file's own names: see "unity build" in CMakeLists.txt

using euler::Shape;
using euler::ShapeError;
using euler::Tape;
using euler::Tensor;
using euler::Var;
using Vars = std::span<const Var<double>>;

namespace {

// 0, 1, 2, ... in the given shape.
Tensor<double> iota(const Shape& shape) {
  Tensor<double> t(shape);
  std::iota(t.begin(), t.end(), 0.0);
  return t;
}

Tensor<double> random(const Shape& shape, uint64_t seed = 7) {
  std::mt19937_64 rng(seed);
  return Tensor<double>::uniform(shape, rng);
}

// A leaf holding a copy of t in the tape's memory (the tape only references what input() is given).
Var<double> leaf(Tape<double>& tape, const Tensor<double>& t) {
  euler::TensorView<double> v = tape.alloc(t.shape());
  std::copy(t.begin(), t.end(), v.begin());
  return tape.input(v);
}

std::vector<double> values(Var<double> v) { return {v.value().begin(), v.value().end()}; }
std::vector<double> values(euler::TensorView<double> v) { return {v.begin(), v.end()}; }

// Element-by-element permute, the reference for the copy kernels: y axis a = x axis order[a].
template <class T>
std::vector<T> naive_permute(const T* x, const Shape& xs, std::vector<int> order) {
  Shape ys = xs;
  for (int a = 0; a < xs.rank; ++a) ys[a] = xs[order[a]];
  std::vector<T> y(size_t(xs.numel()));
  std::array<int64_t, 4> index{};  // index into y
  for (int64_t i = 0; i < ys.numel(); ++i) {
    int64_t rest = i;
    for (int a = ys.rank - 1; a >= 0; --a) index[a] = rest % ys[a], rest /= ys[a];
    int64_t offset = 0;
    for (int b = 0; b < xs.rank; ++b) {
      int a = int(std::find(order.begin(), order.end(), b) - order.begin());
      offset = offset * xs[b] + index[a];
    }
    y[size_t(i)] = x[offset];
  }
  return y;
}

// Run f, expect a ShapeError, and return its message.
template <class F>
std::string shape_error(F&& f) {
  return euler_test::error_of<ShapeError>(f);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("reshape aliases the input, keeps the order, and passes gradients through") {
  Tape<double> tape;
  Tensor<double> x = iota({2, 3});
  Var<double> vx = tape.input(x);
  Var<double> y = euler::reshape(vx, Shape{3, 1, 2});
  CHECK(y.shape() == Shape{3, 1, 2});
  CHECK(y.value().data == vx.value().data);  // no copy
  CHECK(values(y) == std::vector<double>{0, 1, 2, 3, 4, 5});
  CHECK(y.value().at({2, 0, 1}) == 5);

  auto r = euler::check::gradcheck([](Tape<double>&, Vars v) { return euler::reshape(v[0], Shape{4, 3}); },
                                   {random({2, 3, 2})});
  CHECK_MESSAGE(r.ok, r.report);

  std::string msg = shape_error([&] { euler::reshape(vx, Shape{4}); });
  CHECK(contains(msg, "reshape"));
  CHECK(contains(msg, "[2, 3]"));
  CHECK(contains(msg, "[4]"));
}

TEST_CASE("part_as: parts of one node alias it, and each part's gradient reaches its elements") {
  Tape<double> tape;
  Var<double> vx = tape.input(iota({3, 4}));
  Var<double> a = euler::part_as(vx, 1, Shape{2, 2}, "first");
  Var<double> b = euler::part_as(vx, 11, Shape{}, "last");
  CHECK(a.value().data == vx.value().data + 1);  // no copy
  CHECK(values(a) == std::vector<double>{1, 2, 3, 4});
  CHECK(b.value()[0] == 11);
  // Overlapping parts, each used twice: the gradients add up in the shared elements.
  tape.backward(euler::sum(a * a) + euler::sum(euler::part_as(vx, 3, Shape{4}, "second")) * b);
  CHECK(values(tape.grad(vx)) == std::vector<double>{0, 2, 4, 6 + 11, 8 + 11, 11, 11, 0, 0, 0, 0, 3 + 4 + 5 + 6});

  auto r = euler::check::gradcheck(
      [](Tape<double>&, Vars v) {
        return euler::part_as(v[0], 2, Shape{3, 2}, "first") * euler::part_as(v[0], 5, Shape{3, 2}, "second") +
               euler::part_as(v[0], 11, Shape{}, "last");
      },
      {random({3, 4})});
  CHECK_MESSAGE(r.ok, r.report);

  std::string msg = shape_error([&] { euler::part_as(vx, 10, Shape{3}, "tail"); });
  CHECK(contains(msg, "tail"));
  CHECK(contains(msg, "[10, 13)"));
  CHECK(contains(msg, "[3, 4]"));
}

TEST_CASE("permute values against hand-computed numbers") {
  Tape<double> tape;
  // x [2, 3]: transpose of a matrix.
  Var<double> m = leaf(tape, iota({2, 3}));
  Var<double> mt = euler::permute(m, {1, 0});
  CHECK(mt.shape() == Shape{3, 2});
  CHECK(values(mt) == std::vector<double>{0, 3, 1, 4, 2, 5});

  // x [2, 2, 3] with order (2, 0, 1): y[k, i, j] = x[i, j, k] = 6i + 3j + k.
  Var<double> x = leaf(tape, iota({2, 2, 3}));
  Var<double> y = euler::permute(x, {2, 0, 1});
  CHECK(y.shape() == Shape{3, 2, 2});
  CHECK(values(y) == std::vector<double>{0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11});

  // Negative entries count from the end: (-1, 0, 1) is (2, 0, 1).
  CHECK(values(euler::permute(x, {-1, 0, 1})) == values(y));
  // The identity is a plain copy.
  CHECK(values(euler::permute(x, {0, 1, 2})) == values(x));
}

TEST_CASE("permute matches an element-by-element reference for every order of rank 3 and 4") {
  Tape<double> tape;
  // Extents above the 32-wide tile and not multiples of it exercise the tiled (last axis moves) path.
  for (Shape shape : {Shape{2, 3, 4, 5}, Shape{3, 1, 37, 41}, Shape{2, 33, 5, 35}}) {
    Tensor<double> x = random(shape);
    Var<double> vx = tape.input(x);
    std::vector<int> order{0, 1, 2, 3};
    do {
      Var<double> y = euler::permute(vx, order);  // a vector converts to the span overload
      CHECK(values(y) == naive_permute(x.data(), shape, order));
      // Backward is the inverse permutation: dx = permute(dy, inverse).
      Tensor<double> seed = random(y.shape(), 11);
      std::vector<int> inverse(4);
      for (int a = 0; a < 4; ++a) inverse[size_t(order[size_t(a)])] = a;
      Tape<double> t2;
      Var<double> x2 = t2.input(x);
      Var<double> y2 = euler::permute(x2, std::span<const int>(order));
      t2.backward(y2, seed);
      CHECK(values(t2.grad(x2)) == naive_permute(seed.data(), y.shape(), inverse));
    } while (std::next_permutation(order.begin(), order.end()));
  }
  for (Shape shape : {Shape{4, 5, 6}, Shape{40, 3, 35}}) {
    Tensor<double> x = random(shape);
    Var<double> vx = tape.input(x);
    std::vector<int> order{0, 1, 2};
    do {
      CHECK(values(euler::permute(vx, std::span<const int>(order))) == naive_permute(x.data(), shape, order));
    } while (std::next_permutation(order.begin(), order.end()));
  }
}

TEST_CASE("permute and transpose gradients") {
  auto r3 = euler::check::gradcheck([](Tape<double>&, Vars v) { return euler::permute(v[0], {2, 0, 1}); },
                                    {random({2, 3, 4})});
  CHECK_MESSAGE(r3.ok, r3.report);
  auto r4 = euler::check::gradcheck([](Tape<double>&, Vars v) { return euler::permute(v[0], {3, 1, 0, 2}); },
                                    {random({2, 3, 2, 4})});
  CHECK_MESSAGE(r4.ok, r4.report);
  auto r4b = euler::check::gradcheck([](Tape<double>&, Vars v) { return euler::permute(v[0], {1, 3, 2, 0}); },
                                     {random({3, 2, 4, 2})});
  CHECK_MESSAGE(r4b.ok, r4b.report);
  auto rt = euler::check::gradcheck([](Tape<double>&, Vars v) { return euler::transpose(v[0], 0, -1); },
                                    {random({3, 2, 4})});
  CHECK_MESSAGE(rt.ok, rt.report);
}

TEST_CASE("transpose values") {
  Tape<double> tape;
  Var<double> x = leaf(tape, iota({2, 3, 2}));
  // y[i, k, j] = x[i, j, k] = 6i + 2j + k
  Var<double> y = euler::transpose(x, -1, 1);
  CHECK(y.shape() == Shape{2, 2, 3});
  CHECK(values(y) == std::vector<double>{0, 2, 4, 1, 3, 5, 6, 8, 10, 7, 9, 11});
  CHECK(std::string(y.op()) == "transpose");
  CHECK(values(euler::transpose(x, 1, 1)) == values(x));
}

TEST_CASE("permute and transpose reject bad orders and axes") {
  Tape<double> tape;
  Var<double> x = leaf(tape, iota({2, 3, 4}));
  std::string dup = shape_error([&] { euler::permute(x, {0, 2, 2}); });
  CHECK(dup == "permute: order [0, 2, 2] is not a permutation of the axes of [2, 3, 4]");
  std::string size = shape_error([&] { euler::permute(x, {1, 0}); });
  CHECK(contains(size, "permute: order [1, 0]"));
  CHECK(contains(size, "[2, 3, 4]"));
  CHECK(contains(shape_error([&] { euler::permute(x, {0, 1, 3}); }), "[2, 3, 4]"));
  CHECK(shape_error([&] { euler::transpose(x, 0, 3); }) == "transpose: axis 3 out of range for shape [2, 3, 4]");
}

TEST_CASE("split_heads and merge_heads") {
  Tape<double> tape;
  // x [B=1, N=2, D=4], 2 heads of 2 channels: head h of position n is x[0, n, 2h:2h+2].
  Var<double> x = leaf(tape, iota({1, 2, 4}));
  Var<double> heads = euler::split_heads(x, 2);
  CHECK(heads.shape() == Shape{1, 2, 2, 2});
  CHECK(values(heads) == std::vector<double>{0, 1, 4, 5, 2, 3, 6, 7});
  Var<double> merged = euler::merge_heads(heads);
  CHECK(merged.shape() == Shape{1, 2, 4});
  CHECK(values(merged) == values(x));

  // Round trip on a larger input (B=2, N=5, D=12, H=3), and the same as a reference permute.
  Tensor<double> big = random({2, 5, 12});
  Var<double> vb = tape.input(big);
  Var<double> hb = euler::split_heads(vb, 3);
  CHECK(hb.shape() == Shape{2, 3, 5, 4});
  CHECK(values(hb) == naive_permute(big.data(), Shape{2, 5, 3, 4}, {0, 2, 1, 3}));
  CHECK(values(euler::merge_heads(hb)) == values(vb));

  auto rs = euler::check::gradcheck([](Tape<double>&, Vars v) { return euler::split_heads(v[0], 3); },
                                    {random({2, 3, 6})});
  CHECK_MESSAGE(rs.ok, rs.report);
  auto rm = euler::check::gradcheck([](Tape<double>&, Vars v) { return euler::merge_heads(v[0]); },
                                    {random({2, 3, 4, 2})});
  CHECK_MESSAGE(rm.ok, rm.report);
  auto rr = euler::check::gradcheck(
      [](Tape<double>&, Vars v) { return euler::merge_heads(euler::exp(euler::split_heads(v[0], 2))); },
      {random({2, 3, 4})});
  CHECK_MESSAGE(rr.ok, rr.report);

  CHECK(shape_error([&] { euler::split_heads(x, 3); }) == "split_heads: heads 3 does not divide D = 4 of [1, 2, 4]");
  CHECK(contains(shape_error([&] { euler::split_heads(heads, 2); }), "split_heads: expected x [B, N, D], got [1, 2, 2, 2]"));
  CHECK(contains(shape_error([&] { euler::merge_heads(x); }), "merge_heads: expected x [B, H, N, dh], got [1, 2, 4]"));
}

TEST_CASE("slice values on the first, middle and last axis") {
  Tape<double> tape;
  Var<double> x = leaf(tape, iota({3, 2, 4}));
  Var<double> first = euler::slice(x, 0, 1, 2);  // rows 1..2
  CHECK(first.shape() == Shape{2, 2, 4});
  CHECK(values(first) == std::vector<double>{8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23});
  Var<double> middle = euler::slice(x, 1, 1, 1);
  CHECK(middle.shape() == Shape{3, 1, 4});
  CHECK(values(middle) == std::vector<double>{4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23});
  Var<double> last = euler::slice(x, -1, 1, 2);
  CHECK(last.shape() == Shape{3, 2, 2});
  CHECK(values(last) == std::vector<double>{1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22});
  CHECK(euler::slice(x, 2, 4, 0).numel() == 0);

  for (int axis : {0, 1, -1}) {
    auto r = euler::check::gradcheck([axis](Tape<double>&, Vars v) { return euler::slice(v[0], axis, 1, 2); },
                                     {random({3, 4, 5})});
    CHECK_MESSAGE(r.ok, r.report);
  }
  // Two overlapping slices of one input: their gradients add.
  auto r2 = euler::check::gradcheck(
      [](Tape<double>&, Vars v) { return euler::slice(v[0], 1, 0, 3) * euler::slice(v[0], 1, 1, 3); },
      {random({2, 4, 3})});
  CHECK_MESSAGE(r2.ok, r2.report);

  CHECK(shape_error([&] { euler::slice(x, 1, 1, 2); }) == "slice: range [1, 3) out of bounds for axis 1 of shape [3, 2, 4]");
  CHECK(contains(shape_error([&] { euler::slice(x, 0, -1, 1); }), "[3, 2, 4]"));
  CHECK(shape_error([&] { euler::slice(x, 3, 0, 1); }) == "slice: axis 3 out of range for shape [3, 2, 4]");
}

TEST_CASE("concat values, gradients and errors") {
  Tape<double> tape;
  Var<double> a = leaf(tape, iota({1, 2}));
  Var<double> b = leaf(tape, Tensor<double>::from({2, 2}, {10, 11, 12, 13}));
  Var<double> c = leaf(tape, Tensor<double>::from({1, 2}, {20, 21}));
  Var<double> rows = euler::concat({a, b, c}, 0);
  CHECK(rows.shape() == Shape{4, 2});
  CHECK(values(rows) == std::vector<double>{0, 1, 10, 11, 12, 13, 20, 21});

  Var<double> p = leaf(tape, iota({2, 1}));
  Var<double> q = leaf(tape, Tensor<double>::from({2, 2}, {10, 11, 12, 13}));
  std::vector<Var<double>> list{p, q, p};
  Var<double> cols = euler::concat(list, -1);
  CHECK(cols.shape() == Shape{2, 4});
  CHECK(values(cols) == std::vector<double>{0, 10, 11, 0, 1, 12, 13, 1});

  auto r0 = euler::check::gradcheck([](Tape<double>&, Vars v) { return euler::concat(v, 0); },
                                    {random({1, 3, 2}, 1), random({3, 3, 2}, 2), random({2, 3, 2}, 3)});
  CHECK_MESSAGE(r0.ok, r0.report);
  auto rl = euler::check::gradcheck([](Tape<double>&, Vars v) { return euler::concat(v, -1); },
                                    {random({2, 3, 1}, 1), random({2, 3, 4}, 2), random({2, 3, 2}, 3)});
  CHECK_MESSAGE(rl.ok, rl.report);
  auto rm = euler::check::gradcheck([](Tape<double>&, Vars v) { return euler::concat({v[0], v[1], v[0]}, 1); },
                                    {random({2, 2, 3}, 1), random({2, 1, 3}, 2)});
  CHECK_MESSAGE(rm.ok, rm.report);

  CHECK(shape_error([&] { euler::concat({a, p}, 0); }) == "concat: shapes [1, 2] and [2, 1] differ outside axis 0");
  CHECK(contains(shape_error([&] { euler::concat({a, leaf(tape, iota({2}))}, 0); }), "[1, 2] and [2]"));
  CHECK(shape_error([&] { euler::concat(std::span<const Var<double>>(), 0); }) == "concat: no inputs");
  CHECK(shape_error([&] { euler::concat({a, c}, 2); }) == "concat: axis 2 out of range for shape [1, 2]");
}

TEST_CASE("embedding values and gradients with repeated ids") {
  Tape<double> tape;
  Tensor<double> table = iota({4, 3});  // row k is 3k, 3k + 1, 3k + 2
  Tensor<int32_t> ids = Tensor<int32_t>::from({2, 2}, {2, 0, 2, 3});
  Var<double> vt = tape.input(table);
  Var<double> y = euler::embedding(vt, ids);
  CHECK(y.shape() == Shape{2, 2, 3});
  CHECK(values(y) == std::vector<double>{6, 7, 8, 0, 1, 2, 6, 7, 8, 9, 10, 11});

  // d(sum(y * w))/dtable: row 2 collects positions 0 and 2, row 1 nothing.
  Tensor<double> w = iota({2, 2, 3});
  tape.backward(euler::sum(y * tape.constant(w)));
  CHECK(values(tape.grad(vt)) == std::vector<double>{3, 4, 5, 0, 0, 0, 6, 8, 10, 9, 10, 11});

  // Scalar ids give one row; 3-d ids give rank 4.
  Tensor<int32_t> one = Tensor<int32_t>::from({}, {1});
  CHECK(values(euler::embedding(vt, one)) == std::vector<double>{3, 4, 5});
  CHECK(euler::embedding(vt, Tensor<int32_t>::full({2, 1, 3}, 0)).shape() == Shape{2, 1, 3, 3});

  auto r = euler::check::gradcheck(
      [&ids](Tape<double>&, Vars v) { return euler::embedding(v[0], ids); }, {random({4, 3})});
  CHECK_MESSAGE(r.ok, r.report);
}

TEST_CASE("embedding padding_idx reads the row but sends it no gradient") {
  Tape<double> tape;
  Tensor<double> table = iota({3, 2});
  Tensor<int32_t> ids = Tensor<int32_t>::from({4}, {1, 0, 1, 2});
  Var<double> vt = tape.input(table);
  Var<double> y = euler::embedding(vt, ids, 1);
  CHECK(values(y) == std::vector<double>{2, 3, 0, 1, 2, 3, 4, 5});
  tape.backward(euler::sum(y * tape.constant_copy(random({4, 2}))));
  euler::TensorView<double> dtable = tape.grad(vt);
  CHECK(dtable.at({1, 0}) == 0.0);
  CHECK(dtable.at({1, 1}) == 0.0);
  CHECK(dtable.at({0, 0}) != 0.0);

  // Finite differences see the padding row through the forward; masking those positions out of the
  // output makes the function's true gradient match nn.Embedding's (zero for the padding row).
  Tensor<double> mask = Tensor<double>::from({4, 2}, {0, 0, 1, 1, 0, 0, 1, 1});
  auto r = euler::check::gradcheck(
      [&](Tape<double>& t, Vars v) { return euler::embedding(v[0], ids, 1) * t.constant(mask); }, {random({3, 2})});
  CHECK_MESSAGE(r.ok, r.report);
}

TEST_CASE("embedding keeps its own copy of the ids") {
  Tape<double> tape;
  Var<double> vt = leaf(tape, iota({3, 2}));
  Var<double> y;
  {
    std::vector<int32_t> ids{2, 2, 0};
    y = euler::embedding(vt, euler::TensorView<const int32_t>{Shape{3}, ids.data()});
    std::fill(ids.begin(), ids.end(), 1);  // the caller reuses its buffer before backward
  }
  tape.backward(euler::sum(y));
  CHECK(values(tape.grad(vt)) == std::vector<double>{1, 1, 0, 0, 2, 2});
}

TEST_CASE("embedding backward does not depend on the thread count") {
  // Many repeated ids and a wide table, so that the columns are split between threads.
  const int64_t rows = 50, dim = 256, n = 4000;
  std::mt19937_64 rng(3);
  Tensor<float> table = Tensor<float>::uniform({rows, dim}, rng);
  Tensor<float> seed = Tensor<float>::uniform({n, dim}, rng);
  Tensor<int32_t> ids({n});
  for (int64_t i = 0; i < n; ++i) ids[i] = int32_t(rng() % rows);
  auto dtable = [&](int threads) {
    euler::set_num_threads(threads);
    Tape<float> tape;
    Var<float> vt = tape.input(table);
    tape.backward(euler::embedding(vt, ids, 7), seed);
    return std::vector<float>(tape.grad(vt).begin(), tape.grad(vt).end());
  };
  int threads = euler::num_threads();
  std::vector<float> serial = dtable(1);
  CHECK(dtable(std::max(2, threads)) == serial);
  CHECK(dtable(3) == serial);
  euler::set_num_threads(threads);
}

TEST_CASE("embedding rejects ids out of range") {
  Tape<double> tape;
  Var<double> vt = leaf(tape, iota({10, 4}));
  Tensor<int32_t> ids = Tensor<int32_t>::from({5}, {0, 9, 3, 57, 1});
  CHECK(shape_error([&] { euler::embedding(vt, ids); }) == "embedding: id 57 at position 3 out of range for table [10, 4]");
  Tensor<int32_t> negative = Tensor<int32_t>::from({2}, {-1, 0});
  CHECK(shape_error([&] { euler::embedding(vt, negative); }) ==
        "embedding: id -1 at position 0 out of range for table [10, 4]");
  Tensor<int32_t> fine = Tensor<int32_t>::from({1}, {0});
  CHECK(shape_error([&] { euler::embedding(vt, fine, 10); }) == "embedding: padding_idx 10 out of range for table [10, 4]");
  CHECK(contains(shape_error([&] { euler::embedding(vt, Tensor<int32_t>::full({1, 1, 1, 1}, 0)); }), "[1, 1, 1, 1]"));
  Var<double> flat = leaf(tape, iota({4}));
  CHECK(shape_error([&] { euler::embedding(flat, fine); }) == "embedding: expected table [K, D], got [4]");
}

TEST_CASE("gather_rows picks one position per batch element") {
  Tape<double> tape;
  Var<double> x = leaf(tape, iota({2, 3, 2}));  // x[b, n, :] = 6b + 2n, 6b + 2n + 1
  Tensor<int32_t> index = Tensor<int32_t>::from({2}, {2, 0});
  Var<double> y = euler::gather_rows(x, index);
  CHECK(y.shape() == Shape{2, 2});
  CHECK(values(y) == std::vector<double>{4, 5, 6, 7});
  tape.backward(euler::sum(y * tape.constant_copy(Tensor<double>::from({2, 2}, {1, 2, 3, 4}))));
  CHECK(values(tape.grad(x)) == std::vector<double>{0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0});

  auto r = euler::check::gradcheck([&index](Tape<double>&, Vars v) { return euler::gather_rows(v[0], index); },
                                   {random({2, 3, 4})});
  CHECK_MESSAGE(r.ok, r.report);

  Tensor<int32_t> far = Tensor<int32_t>::from({2}, {1, 3});
  CHECK(shape_error([&] { euler::gather_rows(x, far); }) == "gather_rows: index 3 at batch 1 out of range for x [2, 3, 2]");
  Tensor<int32_t> short_index = Tensor<int32_t>::from({1}, {0});
  CHECK(shape_error([&] { euler::gather_rows(x, short_index); }) ==
        "gather_rows: index [1] does not match x [2, 3, 2] (expected [2])");
  CHECK(contains(shape_error([&] { euler::gather_rows(y, index); }), "gather_rows: expected x [B, N, D], got [2, 2]"));
}

TEST_CASE("inputs that need no gradient: the ops work and backward touches nothing") {
  Tape<double> tape;
  Tensor<double> x = iota({2, 3, 4});
  Tensor<double> table = iota({5, 4});
  Tensor<int32_t> ids = Tensor<int32_t>::from({3}, {4, 0, 4});
  Tensor<int32_t> index = Tensor<int32_t>::from({2}, {1, 2});
  Var<double> cx = tape.constant(x);
  Var<double> ct = tape.constant(table);

  size_t before = tape.pool().in_use_bytes();
  Var<double> e = euler::embedding(ct, ids);
  // Only the output was allocated: no copy of the ids, no gradient scratch.
  CHECK(tape.pool().in_use_bytes() - before == 128);  // [3, 4] doubles in whole 64-byte lines
  CHECK(values(e) == std::vector<double>{16, 17, 18, 19, 0, 1, 2, 3, 16, 17, 18, 19});

  std::vector<Var<double>> outputs{
      euler::reshape(cx, Shape{6, 4}), euler::permute(cx, {2, 0, 1}), euler::transpose(cx, 0, 2),
      euler::merge_heads(euler::split_heads(cx, 2)), euler::slice(cx, 1, 1, 2), euler::concat({cx, cx}, 0),
      e, euler::gather_rows(cx, index)};
  for (Var<double> y : outputs) {
    CHECK_FALSE(y.requires_grad());
    CHECK_FALSE(bool(tape.node(y.id).backward));
  }
  CHECK(values(outputs[7]) == std::vector<double>{4, 5, 6, 7, 20, 21, 22, 23});

  // Mixed with an input that does need a gradient: only that input receives one.
  Var<double> vx = tape.input(x);
  Var<double> joined = euler::concat({cx, vx, cx}, 1);
  tape.backward(euler::sum(joined));
  CHECK(tape.node(cx.id).grad == nullptr);
  CHECK(tape.node(ct.id).grad == nullptr);
  for (double g : values(tape.grad(vx))) CHECK(g == 1.0);

  // With recording off nothing is kept either.
  euler::NoGrad<double> no_grad(tape);
  Var<double> vt = tape.input(table);
  size_t mark = tape.pool().in_use_bytes();
  Var<double> quiet = euler::embedding(vt, ids);
  CHECK_FALSE(quiet.requires_grad());
  CHECK(tape.pool().in_use_bytes() - mark == 128);
}

TEST_CASE("the usage snippet of layout.hpp runs, in float") {
  const int64_t B = 2, N = 3, K = 5, D = 8;
  std::mt19937_64 rng(5);
  Tensor<float> table_values = Tensor<float>::uniform({K, D}, rng), wq_values = Tensor<float>::uniform({D, D}, rng);
  Tensor<int32_t> ids = Tensor<int32_t>::from({B, N}, {1, 2, 3, 4, 0, 0});
  Tensor<int32_t> last_index = Tensor<int32_t>::from({B}, {2, 0});
  Tape<float> tape;
  Var<float> table = tape.input(table_values), wq = tape.input(wq_values);

  auto h = euler::embedding(table, ids);                 // table [K, D], ids [B, N] -> [B, N, D]
  auto q = euler::split_heads(euler::matmul(h, wq), 4);  // [B, N, D] -> [B, 4, N, D/4]
  auto o = euler::merge_heads(q);                        // [B, 4, N, D/4] -> [B, N, D]
  auto last = euler::gather_rows(o, last_index);         // last_index [B] -> [B, D]
  auto first = euler::slice(o, 1, 0, 1);                 // [B, N, D] -> [B, 1, D]
  auto both = euler::concat({first, o}, 1);              // [B, 1 + N, D]

  CHECK(q.shape() == Shape{B, 4, N, D / 4});
  CHECK(last.shape() == Shape{B, D});
  CHECK(both.shape() == Shape{B, 1 + N, D});
  tape.backward(euler::sum(last) + euler::sum(both));
  CHECK(tape.grad(table).numel() == K * D);
  CHECK(tape.grad(wq).vec().allFinite());
}

}  // namespace test_ops_layout
