// Tests for euler/core/random.hpp and euler/ops/nn.hpp: values against hand-computed numbers, gradients
// against finite differences (double), determinism across thread counts, and error messages.
#include <doctest/doctest.h>

#include "test_helpers.hpp"


#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "euler/check/gradcheck.hpp"
#include "euler/core/random.hpp"
#include "euler/ops/nn.hpp"

namespace test_ops_nn {  // this file's own names: see "unity build" in CMakeLists.txt

using euler::Rng;
using euler::Shape;
using euler::ShapeError;
using euler::Tape;
using euler::Tensor;
using euler::TensorView;
using euler::Var;
using Vars = std::span<const Var<double>>;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

template <class T = double>
Tensor<T> normal_tensor(const Shape& shape, uint64_t seed, T stddev = T(1)) {
  Tensor<T> t(shape);
  Rng rng(seed);
  euler::fill_normal(t.view(), rng, T(0), stddev);
  return t;
}

// Runs f with `threads` threads, then restores the previous count.
template <class F>
void with_threads(int threads, F&& f) {
  int previous = euler::num_threads();
  euler::set_num_threads(threads);
  f();
  euler::set_num_threads(previous);
}

// The message of the ShapeError that f throws (a failed check and "" when it throws none).
template <class F>
std::string shape_error_of(F&& f) {
  return euler_test::error_of<ShapeError>(f);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

void check_gradient(const euler::check::GradcheckResult& result) {
  INFO(result.report);
  CHECK(result.ok);
}

}  // namespace

// =================================================================================================
// random.hpp
// =================================================================================================

TEST_CASE("Rng: same seed gives the same sequence, another seed another one") {
  Rng a(42), b(42), c(43);
  int same_as_c = 0;
  for (int i = 0; i < 1000; ++i) {
    uint64_t x = a.next_u64();
    CHECK(x == b.next_u64());
    same_as_c += x == c.next_u64();
  }
  CHECK(same_as_c == 0);
  CHECK(a.counter() == 1000);
}

TEST_CASE("Rng: state() and set_state() resume the exact sequence") {
  Rng rng(7);
  for (int i = 0; i < 10; ++i) rng.uniform();
  euler::RngState saved = rng.state();
  CHECK(saved.seed == 7);
  CHECK(saved.counter == 10);
  std::vector<double> first;
  for (int i = 0; i < 20; ++i) first.push_back(i % 2 ? rng.uniform() : rng.normal());
  Rng restored(123);
  restored.set_state(saved);
  for (int i = 0; i < 20; ++i) CHECK(first[size_t(i)] == (i % 2 ? restored.uniform() : restored.normal()));
  CHECK(restored.state() == rng.state());
  CHECK(Rng(saved).uniform() == Rng(saved).uniform());
}

TEST_CASE("Rng: uniform lies in [0, 1) with mean 1/2 and variance 1/12") {
  Rng rng(1);
  const int n = 100000;
  double sum = 0, sum_sq = 0, lo = 1, hi = 0;
  for (int i = 0; i < n; ++i) {
    double u = rng.uniform();
    lo = std::min(lo, u);
    hi = std::max(hi, u);
    sum += u;
    sum_sq += u * u;
  }
  double mean = sum / n, var = sum_sq / n - mean * mean;
  CHECK(lo >= 0.0);
  CHECK(hi < 1.0);
  CHECK(std::abs(mean - 0.5) < 0.005);    // sigma of the mean: 0.0009
  CHECK(std::abs(var - 1.0 / 12) < 0.003);
  // Ten equal bins hold about n / 10 each (sigma about 95).
  std::vector<int> bins(10, 0);
  for (int i = 0; i < n; ++i) ++bins[size_t(rng.uniform() * 10)];
  for (int count : bins) CHECK(std::abs(count - n / 10) < 500);
  // uniform(lo, hi)
  for (int i = 0; i < 1000; ++i) {
    double u = rng.uniform(-3.0, 5.0);
    CHECK(u >= -3.0);
    CHECK(u < 5.0);
  }
}

TEST_CASE("Rng: normal has mean 0 and variance 1, in double and float") {
  Rng rng(2);
  const int n = 100000;
  double sum = 0, sum_sq = 0, sum_f = 0, sum_sq_f = 0;
  for (int i = 0; i < n; ++i) {
    double z = rng.normal();
    float zf = rng.normal<float>();
    CHECK(std::isfinite(z));
    sum += z;
    sum_sq += z * z;
    sum_f += zf;
    sum_sq_f += double(zf) * zf;
  }
  CHECK(std::abs(sum / n) < 0.015);  // sigma 0.0032
  CHECK(std::abs(sum_sq / n - 1) < 0.02);  // sigma 0.0045
  CHECK(std::abs(sum_f / n) < 0.015);
  CHECK(std::abs(sum_sq_f / n - 1) < 0.02);
  double shifted = 0;
  for (int i = 0; i < n; ++i) shifted += rng.normal(10.0, 0.5);
  CHECK(std::abs(shifted / n - 10) < 0.01);
}

TEST_CASE("Rng: below(n) is in range and unbiased; below(0) throws") {
  Rng rng(3);
  std::vector<int> counts(7, 0);
  const int n = 70000;
  for (int i = 0; i < n; ++i) {
    uint64_t k = rng.below(7);
    REQUIRE(k < 7);
    ++counts[size_t(k)];
  }
  for (int c : counts) CHECK(std::abs(c - n / 7) < 450);  // sigma about 93
  CHECK(rng.below(1) == 0);
  uint64_t big = (uint64_t(1) << 63) + 12345;  // rejection matters most here
  for (int i = 0; i < 100; ++i) CHECK(rng.below(big) < big);
  std::string message = shape_error_of([&] { rng.below(0); });
  CHECK(contains(message, "Rng::below"));
}

TEST_CASE("Rng: shuffle permutes, deterministically, and every position moves sometimes") {
  std::vector<int> a(50), b(50);
  std::iota(a.begin(), a.end(), 0);
  std::iota(b.begin(), b.end(), 0);
  Rng ra(9), rb(9);
  ra.shuffle(a);
  rb.shuffle(std::span<int>(b));
  CHECK(a == b);
  std::vector<int> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int> identity(50);
  std::iota(identity.begin(), identity.end(), 0);
  CHECK(sorted == identity);
  CHECK(a != identity);
  // Over many shuffles of 4 items, each of the 24 orders turns up about equally often.
  std::vector<int> order_counts(24, 0);
  Rng rng(10);
  for (int trial = 0; trial < 24000; ++trial) {
    std::vector<int> v{0, 1, 2, 3};
    rng.shuffle(v);
    int code = 0;  // rank of the permutation
    for (int i = 0; i < 4; ++i) {
      int smaller_after = 0;
      for (int j = i + 1; j < 4; ++j) smaller_after += v[size_t(j)] < v[size_t(i)];
      code = code * (4 - i) + smaller_after;
    }
    ++order_counts[size_t(code)];
  }
  for (int c : order_counts) CHECK(std::abs(c - 1000) < 160);  // sigma about 31
}

TEST_CASE("Rng: reserve hands out the same numbers sequential draws would") {
  Rng bulk(11), sequential(11);
  sequential.uniform();
  bulk.uniform();
  uint64_t base = bulk.reserve(100);
  CHECK(base == 1);
  CHECK(bulk.counter() == 101);
  euler::RandomStream stream = bulk.stream();
  for (uint64_t i = 0; i < 100; ++i) {
    CHECK(stream.uniform(base + i) == sequential.uniform());
    CHECK(euler::uniform_at(11, Rng::kStream, base + i) == stream.uniform(base + i));
  }
  CHECK(bulk.uniform() == sequential.uniform());  // both at counter 101 now

  // fill_uniform / fill_normal equal the sequential draws too.
  Tensor<double> u({1000}), z({1000});
  Rng filler(12), reference(12);
  euler::fill_uniform(u.view(), filler, -2.0, 2.0);
  euler::fill_normal(z.view(), filler, 1.0, 3.0);
  for (int64_t i = 0; i < 1000; ++i) CHECK(u[i] == -2.0 + 4.0 * reference.uniform());
  for (int64_t i = 0; i < 1000; ++i) CHECK(z[i] == 1.0 + 3.0 * reference.normal());
  CHECK(filler.state() == reference.state());
}

TEST_CASE("Rng: streams of one seed, and neighbouring seeds, are unrelated") {
  const int n = 20000;
  auto correlation = [&](auto first, auto second) {
    double sxy = 0, sx = 0, sy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; ++i) {
      double x = first(uint64_t(i)), y = second(uint64_t(i));
      sx += x, sy += y, sxy += x * y, sxx += x * x, syy += y * y;
    }
    double cov = sxy / n - sx / n * sy / n;
    return cov / std::sqrt((sxx / n - sx / n * sx / n) * (syy / n - sy / n * sy / n));
  };
  auto at = [](uint64_t seed, uint64_t stream) { return [=](uint64_t i) { return euler::uniform_at(seed, stream, i); }; };
  CHECK(std::abs(correlation(at(5, 0), at(5, 1))) < 0.04);  // sigma 0.007
  CHECK(std::abs(correlation(at(5, 0), at(6, 0))) < 0.04);
  // Successive numbers of one stream are uncorrelated too.
  CHECK(std::abs(correlation(at(5, 0), [](uint64_t i) { return euler::uniform_at(5, 0, i + 1); })) < 0.04);
  CHECK(euler::random_bits(5, 0, 0) != euler::random_bits(5, 1, 0));
}

TEST_CASE("Rng: bulk fills do not depend on the thread count") {
  Tensor<float> one({100003}), three({100003});
  Rng a(13), b(13);
  with_threads(1, [&] { euler::fill_normal(one.view(), a); });
  with_threads(3, [&] { euler::fill_normal(three.view(), b); });
  CHECK(std::equal(one.begin(), one.end(), three.begin()));
  CHECK(a.state() == b.state());
}

TEST_CASE("Rng: usable as a standard random bit generator") {
  static_assert(std::uniform_random_bit_generator<Rng>);
  Rng a(14), b(14);
  Tensor<double> x = Tensor<double>::uniform({8}, a, 0.0, 1.0);
  Tensor<double> y = Tensor<double>::uniform({8}, b, 0.0, 1.0);
  CHECK(std::equal(x.begin(), x.end(), y.begin()));
  std::uniform_int_distribution<int> dice(1, 6);
  int roll = dice(a);
  CHECK(roll >= 1);
  CHECK(roll <= 6);
}

// =================================================================================================
// softmax, log_softmax
// =================================================================================================

TEST_CASE("softmax / log_softmax: hand-computed values") {
  Tape<double> tape;
  // Row 0: exp(x) = [1, 2, 3] -> [1/6, 2/6, 3/6]. Row 1: huge equal scores -> [1/3, 1/3, 1/3] (no overflow).
  Tensor<double> x = Tensor<double>::from({2, 3}, {0, std::log(2.0), std::log(3.0), 1000, 1000, 1000});
  auto y = euler::softmax(tape.constant(x));
  auto ly = euler::log_softmax(tape.constant(x));
  const double expected[] = {1.0 / 6, 2.0 / 6, 3.0 / 6, 1.0 / 3, 1.0 / 3, 1.0 / 3};
  for (int i = 0; i < 6; ++i) {
    CHECK(y.value()[i] == doctest::Approx(expected[i]).epsilon(1e-14));
    CHECK(ly.value()[i] == doctest::Approx(std::log(expected[i])).epsilon(1e-14));
  }
  CHECK(std::string(y.op()) == "softmax");
  CHECK(std::string(ly.op()) == "log_softmax");
}

TEST_CASE("softmax: rows sum to 1 (float and double), log_softmax rows logsumexp to 0") {
  Tensor<float> xf = normal_tensor<float>({2, 3, 4, 37}, 21, 5.0f);
  Tape<float> tape_f;
  auto yf = euler::softmax(tape_f.constant(xf));
  for (int64_t r = 0; r < yf.numel() / 37; ++r) {
    double s = 0;
    for (int64_t j = 0; j < 37; ++j) s += yf.value()[r * 37 + j];
    CHECK(s == doctest::Approx(1.0).epsilon(1e-6));
  }
  Tensor<double> x = normal_tensor({5, 11}, 22, 3.0);
  Tape<double> tape;
  auto ly = euler::log_softmax(tape.constant(x));
  for (int64_t r = 0; r < 5; ++r) {
    double s = 0;
    for (int64_t j = 0; j < 11; ++j) s += std::exp(ly.value()[r * 11 + j]);
    CHECK(s == doctest::Approx(1.0).epsilon(1e-14));
  }
}

TEST_CASE("softmax: an additive mask broadcasts NumPy-style") {
  const int64_t B = 2, H = 3, S = 4;
  Tensor<double> scores = normal_tensor({B, H, S, S}, 31);
  // Causal mask [S, S]: -inf above the diagonal.
  Tensor<double> causal = Tensor<double>::zeros({S, S});
  for (int64_t i = 0; i < S; ++i)
    for (int64_t j = i + 1; j < S; ++j) causal.at({i, j}) = -kInf;
  // The same mask spelled out in full, and as [B, 1, S, S].
  Tensor<double> full({B, H, S, S}), per_batch({B, 1, S, S});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < S; ++i)
      for (int64_t j = 0; j < S; ++j) {
        per_batch.at({b, 0, i, j}) = causal.at({i, j});
        for (int64_t h = 0; h < H; ++h) full.at({b, h, i, j}) = causal.at({i, j});
      }
  Tape<double> tape;
  auto x = tape.constant(scores);
  auto y_small = euler::softmax(x, causal);
  auto y_batch = euler::softmax(x, per_batch);
  auto y_full = euler::softmax(x, full);
  for (int64_t i = 0; i < scores.numel(); ++i) {
    CHECK(y_small.value()[i] == y_full.value()[i]);
    CHECK(y_batch.value()[i] == y_full.value()[i]);
  }
  // Row i attends to keys 0..i only; row 0 is all on key 0.
  CHECK(y_full.value().at({1, 2, 0, 0}) == 1.0);
  CHECK(y_full.value().at({1, 2, 2, 3}) == 0.0);
  // Hand check of one masked row: softmax over the unmasked keys alone.
  double z0 = scores.at({0, 1, 1, 0}), z1 = scores.at({0, 1, 1, 1});
  CHECK(y_full.value().at({0, 1, 1, 0}) == doctest::Approx(std::exp(z0) / (std::exp(z0) + std::exp(z1))).epsilon(1e-14));

  // A key-padding mask [B, 1, 1, S]: the last key of batch 1 is masked.
  Tensor<double> padding = Tensor<double>::zeros({B, 1, 1, S});
  padding.at({1, 0, 0, S - 1}) = -10000;
  auto y_pad = euler::softmax(x, padding);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < S; ++i) {
      CHECK(y_pad.value().at({1, h, i, S - 1}) == 0.0);
      CHECK(y_pad.value().at({0, h, i, S - 1}) > 0.0);
    }
  // A mask of size 1 along the last axis adds one number per row: no change to the softmax.
  Tensor<double> per_row = normal_tensor({B, H, S, 1}, 32);
  auto y_row = euler::softmax(x, per_row);
  auto y_plain = euler::softmax(x);
  for (int64_t i = 0; i < scores.numel(); ++i) CHECK(y_row.value()[i] == doctest::Approx(y_plain.value()[i]).epsilon(1e-14));
  // log_softmax with the mask agrees with log(softmax).
  auto ly = euler::log_softmax(x, causal);
  for (int64_t i = 0; i < scores.numel(); ++i) CHECK(std::exp(ly.value()[i]) == doctest::Approx(y_full.value()[i]).epsilon(1e-14));
}

TEST_CASE("softmax / log_softmax: a fully masked row gives 0 / -inf and no NaN in the gradient") {
  Tensor<double> x = Tensor<double>::from({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor<double> mask = Tensor<double>::from({2, 3}, {0, -kInf, 0, -kInf, -kInf, -kInf});
  Tensor<double> dx_soft = Tensor<double>::zeros({2, 3}), dx_log = Tensor<double>::zeros({2, 3});
  Tensor<double> seed = Tensor<double>::from({2, 3}, {0.5, -1, 2, 3, 1, -2});
  {
    Tape<double> tape;
    auto y = euler::softmax(tape.param(x, dx_soft), mask);
    for (int64_t j = 0; j < 3; ++j) CHECK(y.value().at({1, j}) == 0.0);
    CHECK(y.value().at({0, 1}) == 0.0);
    CHECK(y.value().at({0, 0}) == doctest::Approx(std::exp(1.0) / (std::exp(1.0) + std::exp(3.0))));
    tape.backward(y, seed);
  }
  {
    Tape<double> tape;
    auto y = euler::log_softmax(tape.param(x, dx_log), mask);
    for (int64_t j = 0; j < 3; ++j) CHECK(y.value().at({1, j}) == -kInf);
    tape.backward(y, seed);
  }
  for (int64_t i = 0; i < 6; ++i) {
    CHECK(std::isfinite(dx_soft[i]));
    CHECK(std::isfinite(dx_log[i]));
  }
  for (int64_t j = 0; j < 3; ++j) {
    CHECK(dx_soft.at({1, j}) == 0.0);
    CHECK(dx_log.at({1, j}) == 0.0);
  }
  CHECK(dx_soft.at({0, 1}) == 0.0);  // a masked key gets no gradient through softmax
}

TEST_CASE("softmax / log_softmax: backward formulas against hand-computed numbers") {
  // y = [1/6, 2/6, 3/6], dy = [1, 0, 0]: softmax dx = y * (dy - y0) = [1/6 * 5/6, -2/6 * 1/6, -3/6 * 1/6]
  // log_softmax dx = dy - y * sum(dy) = [1 - 1/6, -2/6, -3/6]
  Tensor<double> x = Tensor<double>::from({3}, {0, std::log(2.0), std::log(3.0)});
  Tensor<double> dy = Tensor<double>::from({3}, {1, 0, 0});
  Tensor<double> dx = Tensor<double>::zeros({3}), dlx = Tensor<double>::zeros({3});
  Tape<double> tape;
  tape.backward(euler::softmax(tape.param(x, dx)), dy);
  tape.backward(euler::log_softmax(tape.param(x, dlx)), dy);
  CHECK(dx[0] == doctest::Approx(5.0 / 36).epsilon(1e-14));
  CHECK(dx[1] == doctest::Approx(-2.0 / 36).epsilon(1e-14));
  CHECK(dx[2] == doctest::Approx(-3.0 / 36).epsilon(1e-14));
  CHECK(dlx[0] == doctest::Approx(5.0 / 6).epsilon(1e-14));
  CHECK(dlx[1] == doctest::Approx(-2.0 / 6).epsilon(1e-14));
  CHECK(dlx[2] == doctest::Approx(-3.0 / 6).epsilon(1e-14));
}

TEST_CASE("softmax / log_softmax: gradcheck, without and with broadcast masks") {
  const int64_t B = 2, H = 2, S = 3;
  Tensor<double> x = normal_tensor({B, H, S, S}, 41, 2.0);
  Tensor<double> per_batch = normal_tensor({B, 1, S, S}, 42);
  per_batch.at({1, 0, 2, 0}) = -10000;  // masked keys, as in the authors' PyTorch code
  per_batch.at({0, 0, 1, 2}) = -10000;
  Tensor<double> square = normal_tensor({S, S}, 43);
  square.at({0, 1}) = -10000;
  square.at({0, 2}) = -10000;  // row 0 attends to key 0 only
  Tensor<double> rank3 = normal_tensor({2, 5, 7}, 44, 3.0);
  // log_softmax keeps masked scores near -10000 in its output, and central differences of outputs that
  // large lose about 1e-6 to rounding (x + mask is only exact to 2e-12); so its checks mask with -30.
  auto moderate = [](Tensor<double> mask) {
    Tensor<double> copy = mask.clone();
    for (double& v : copy) v = std::max(v, -30.0);
    return copy;
  };
  Tensor<double> per_batch_30 = moderate(per_batch), square_30 = moderate(square);

  check_gradient(euler::check::gradcheck([](Tape<double>&, Vars v) { return euler::softmax(v[0]); }, {x.clone()}));
  check_gradient(euler::check::gradcheck([](Tape<double>&, Vars v) { return euler::softmax(v[0]); }, {rank3.clone()}));
  check_gradient(euler::check::gradcheck([&](Tape<double>&, Vars v) { return euler::softmax(v[0], per_batch); }, {x.clone()}));
  check_gradient(euler::check::gradcheck([&](Tape<double>&, Vars v) { return euler::softmax(v[0], square); }, {x.clone()}));
  check_gradient(euler::check::gradcheck([](Tape<double>&, Vars v) { return euler::log_softmax(v[0]); }, {x.clone()}));
  check_gradient(euler::check::gradcheck([](Tape<double>&, Vars v) { return euler::log_softmax(v[0]); }, {rank3.clone()}));
  check_gradient(euler::check::gradcheck([&](Tape<double>&, Vars v) { return euler::log_softmax(v[0], per_batch_30); }, {x.clone()}));
  check_gradient(euler::check::gradcheck([&](Tape<double>&, Vars v) { return euler::log_softmax(v[0], square_30); }, {x.clone()}));
}

TEST_CASE("softmax / log_softmax: bad masks and inputs throw ShapeError naming the op and the shapes") {
  Tape<double> tape;
  Tensor<double> x_data = Tensor<double>::zeros({2, 4, 4});
  auto x = tape.constant(x_data);
  Tensor<double> wrong = Tensor<double>::zeros({2, 3});
  std::string message = shape_error_of([&] { euler::softmax(x, wrong); });
  CHECK(contains(message, "softmax"));
  CHECK(contains(message, "[2, 3]"));
  CHECK(contains(message, "[2, 4, 4]"));
  message = shape_error_of([&] { euler::log_softmax(x, wrong); });
  CHECK(contains(message, "log_softmax"));
  CHECK(contains(message, "[2, 3]"));
  Tensor<double> too_big = Tensor<double>::zeros({1, 2, 4, 4});
  message = shape_error_of([&] { euler::softmax(x, too_big); });
  CHECK(contains(message, "[1, 2, 4, 4]"));
  Tensor<double> scalar_data = Tensor<double>::zeros(Shape{});
  message = shape_error_of([&] { euler::softmax(tape.constant(scalar_data)); });
  CHECK(contains(message, "softmax"));
  CHECK(contains(message, "[]"));
}

// =================================================================================================
// layer_norm
// =================================================================================================

TEST_CASE("layer_norm: hand-computed values") {
  // Row [1, 2, 3, 4]: mean 2.5, biased variance 1.25; row [2, 2, 2, 2]: variance 0 -> xhat 0.
  const double eps = 1e-5;
  Tensor<double> x = Tensor<double>::from({2, 4}, {1, 2, 3, 4, 2, 2, 2, 2});
  Tensor<double> gamma = Tensor<double>::from({4}, {1, 2, 1, 1});
  Tensor<double> beta = Tensor<double>::from({4}, {0, 0, 1, 0});
  Tape<double> tape;
  auto y = euler::layer_norm(tape.constant(x), tape.constant(gamma), tape.constant(beta), eps);
  const double rstd = 1 / std::sqrt(1.25 + eps);
  const double expected[] = {-1.5 * rstd, -0.5 * rstd * 2, 0.5 * rstd + 1, 1.5 * rstd, 0, 0, 1, 0};
  for (int i = 0; i < 8; ++i) CHECK(y.value()[i] == doctest::Approx(expected[i]).epsilon(1e-14));
  CHECK(std::string(y.op()) == "layer_norm");
}

TEST_CASE("layer_norm: backward against hand-computed numbers") {
  // x = [1, 2, 3, 4], gamma = 1, beta = 0, eps = 0, dy = [1, 0, 0, 0]:
  // xhat = [-3, -1, 1, 3] / sqrt(5); dbeta = dy; dgamma = dy * xhat;
  // dx = rstd * (dy - mean(dy) - xhat * mean(dy * xhat)), rstd = 1 / sqrt(1.25)
  Tensor<double> x = Tensor<double>::from({1, 4}, {1, 2, 3, 4});
  Tensor<double> gamma = Tensor<double>::full({4}, 1.0), beta = Tensor<double>::zeros({4});
  Tensor<double> dx = Tensor<double>::zeros({1, 4}), dgamma = Tensor<double>::zeros({4}), dbeta = Tensor<double>::zeros({4});
  Tape<double> tape;
  auto y = euler::layer_norm(tape.param(x, dx), tape.param(gamma, dgamma), tape.param(beta, dbeta), 0.0);
  tape.backward(y, Tensor<double>::from({1, 4}, {1, 0, 0, 0}));
  const double root5 = std::sqrt(5.0), rstd = 1 / std::sqrt(1.25);
  const double xhat[] = {-3 / root5, -1 / root5, 1 / root5, 3 / root5};
  for (int j = 0; j < 4; ++j) {
    double expected_dx = rstd * ((j == 0) - 0.25 - xhat[j] * xhat[0] / 4);
    CHECK(dx[j] == doctest::Approx(expected_dx).epsilon(1e-12));
    CHECK(dgamma[j] == doctest::Approx(j == 0 ? xhat[0] : 0.0).epsilon(1e-12));
    CHECK(dbeta[j] == (j == 0 ? 1.0 : 0.0));
  }
}

TEST_CASE("layer_norm: gradcheck for x, gamma and beta") {
  Tensor<double> x = normal_tensor({2, 3, 5}, 51, 2.0);
  Tensor<double> gamma = normal_tensor({5}, 52);
  Tensor<double> beta = normal_tensor({5}, 53);
  auto f = [](Tape<double>&, Vars v) { return euler::layer_norm(v[0], v[1], v[2], 1e-5); };
  check_gradient(euler::check::gradcheck(f, {x, gamma, beta}));
  Tensor<double> x2 = normal_tensor({7, 6}, 54, 0.3);
  Tensor<double> gamma2 = normal_tensor({6}, 55), beta2 = normal_tensor({6}, 56);
  check_gradient(euler::check::gradcheck([](Tape<double>&, Vars v) { return euler::layer_norm(v[0], v[1], v[2], 0.1); },
                                         {x2, gamma2, beta2}));
}

TEST_CASE("layer_norm: only the inputs that need a gradient get one") {
  Tensor<double> x = normal_tensor({3, 4}, 57);
  Tensor<double> gamma = normal_tensor({4}, 58), beta = normal_tensor({4}, 59);
  Tensor<double> dgamma = Tensor<double>::zeros({4});
  Tape<double> tape;
  auto xv = tape.constant(x);
  auto betav = tape.constant(beta);
  auto y = euler::layer_norm(xv, tape.param(gamma, dgamma), betav);
  tape.backward(y, Tensor<double>::full({3, 4}, 1.0));
  CHECK(tape.node(xv.id).grad == nullptr);
  CHECK(tape.node(betav.id).grad == nullptr);
  // dgamma = sum over rows of dy * xhat = sum of xhat over rows (dy = 1).
  for (int64_t j = 0; j < 4; ++j) {
    double expected = 0;
    for (int64_t r = 0; r < 3; ++r) {
      double mean = 0, var = 0;
      for (int64_t k = 0; k < 4; ++k) mean += x.at({r, k}) / 4;
      for (int64_t k = 0; k < 4; ++k) var += (x.at({r, k}) - mean) * (x.at({r, k}) - mean) / 4;
      expected += (x.at({r, j}) - mean) / std::sqrt(var + 1e-5);
    }
    CHECK(dgamma[j] == doctest::Approx(expected).epsilon(1e-12));
  }
}

TEST_CASE("layer_norm: gradients are bitwise identical for any thread count") {
  const int64_t rows = 300, D = 256;  // enough rows to split over threads and chunks
  Tensor<float> x = normal_tensor<float>({rows, D}, 61), gamma = normal_tensor<float>({D}, 62),
                beta = normal_tensor<float>({D}, 63), seed = normal_tensor<float>({rows, D}, 64);
  auto run = [&](int threads) {
    std::vector<Tensor<float>> grads{Tensor<float>::zeros({rows, D}), Tensor<float>::zeros({D}), Tensor<float>::zeros({D})};
    with_threads(threads, [&] {
      Tape<float> tape;
      auto y = euler::layer_norm(tape.param(x, grads[0]), tape.param(gamma, grads[1]), tape.param(beta, grads[2]));
      tape.backward(y, seed);
    });
    return grads;
  };
  auto one = run(1), three = run(3);
  for (size_t k = 0; k < 3; ++k) CHECK(std::equal(one[k].begin(), one[k].end(), three[k].begin()));
}

TEST_CASE("layer_norm: wrong gamma / beta shapes and bad eps throw ShapeError naming the op and the shapes") {
  Tape<double> tape;
  Tensor<double> x = Tensor<double>::zeros({2, 5});
  Tensor<double> good = Tensor<double>::zeros({5}), bad = Tensor<double>::zeros({4});
  auto xv = tape.constant(x);
  std::string message = shape_error_of([&] { euler::layer_norm(xv, tape.constant(bad), tape.constant(good)); });
  CHECK(contains(message, "layer_norm"));
  CHECK(contains(message, "[2, 5]"));
  CHECK(contains(message, "[4]"));
  message = shape_error_of([&] { euler::layer_norm(xv, tape.constant(good), tape.constant(bad)); });
  CHECK(contains(message, "[4]"));
  message = shape_error_of([&] { euler::layer_norm(xv, tape.constant(good), tape.constant(good), -1.0); });
  CHECK(contains(message, "layer_norm"));
  CHECK(contains(message, "eps"));
}

// =================================================================================================
// dropout
// =================================================================================================

TEST_CASE("dropout: keeps about 1 - p of the elements, scaled by 1 / (1 - p)") {
  const int64_t n = 100000;
  const float p = 0.3f, scale = 1 / (1 - p);
  Tensor<float> x = normal_tensor<float>({n}, 71);
  Tape<float> tape;
  Rng rng(72);
  auto y = euler::dropout(tape.constant(x), p, rng);
  CHECK(rng.counter() == uint64_t(n));
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (y.value()[i] != 0.0f) {
      ++kept;
      CHECK(y.value()[i] == x[i] * scale);
    }
  }
  CHECK(std::abs(double(kept) / n - 0.7) < 0.01);  // sigma 0.0014
}

TEST_CASE("dropout: backward is exactly mask * scale * dy") {
  const int64_t n = 5000;
  const float p = 0.25f, scale = 1 / (1 - p);
  Tensor<float> x = Tensor<float>::full({50, 100}, 1.0f);  // y = scale where kept: y shows the mask
  Tensor<float> dx = Tensor<float>::zeros({50, 100});
  Tensor<float> dy = normal_tensor<float>({50, 100}, 73);
  Tape<float> tape;
  Rng rng(74);
  auto y = euler::dropout(tape.param(x, dx), p, rng);
  tape.backward(y, dy);
  for (int64_t i = 0; i < n; ++i) {
    bool keep = y.value()[i] != 0.0f;
    CHECK(y.value()[i] == (keep ? scale : 0.0f));
    CHECK(dx[i] == (keep ? dy[i] * scale : 0.0f));
  }
}

TEST_CASE("dropout: the mask follows the Rng state, not the thread count") {
  Tensor<float> x = Tensor<float>::full({70001}, 1.0f);
  auto mask_of = [&](euler::RngState state, int threads) {
    Tensor<float> y;
    with_threads(threads, [&] {
      Tape<float> tape;
      Rng rng(state);
      y = Tensor<float>::copy_of(euler::dropout(tape.constant(x), 0.5f, rng).value());
    });
    return y;
  };
  Tensor<float> a = mask_of({81, 0}, 1), b = mask_of({81, 0}, 3), c = mask_of({81, 1}, 1);
  CHECK(std::equal(a.begin(), a.end(), b.begin()));
  CHECK(!std::equal(a.begin(), a.end(), c.begin()));
  // Two dropouts in a row draw from consecutive blocks: different masks.
  Tape<float> tape;
  Rng rng(82);
  auto first = euler::dropout(tape.constant(x), 0.5f, rng);
  auto second = euler::dropout(tape.constant(x), 0.5f, rng);
  CHECK(!std::equal(first.value().begin(), first.value().end(), second.value().begin()));
  CHECK(rng.counter() == 2 * uint64_t(x.numel()));
  // Element i is kept exactly when DropoutMask(stream, base, p) says so.
  euler::DropoutMask mask(Rng(82).stream(), uint64_t(x.numel()), 0.5);
  for (int64_t i = 0; i < x.numel(); ++i) CHECK((second.value()[i] != 0.0f) == mask.keep(i));
}

TEST_CASE("dropout: the masks look independent (pairs of neighbours, neighbouring blocks, long runs)") {
  // 2^20 draws at p = 0.5: each frequency below has sigma <= 0.0005; the bounds are 8 sigma.
  const int64_t n = int64_t(1) << 20;
  euler::RandomStream stream = Rng(123).stream();
  euler::DropoutMask a(stream, 0, 0.5), b(stream, 1, 0.5);  // blocks one counter apart
  int64_t kept = 0, both_neighbours = 0, both_blocks = 0, longest = 0, run = 0;
  for (int64_t i = 0; i < n; ++i) {
    bool k = a.keep(i);
    kept += k;
    both_neighbours += k && a.keep(i + 1);
    both_blocks += k && b.keep(i);
    run = k ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  CHECK(std::abs(double(kept) / double(n) - 0.5) < 0.004);
  CHECK(std::abs(double(both_neighbours) / double(n) - 0.25) < 0.004);
  CHECK(std::abs(double(both_blocks) / double(n) - 0.25) < 0.004);
  CHECK(longest < 40);  // expected about log2(n) = 20
  // p is honoured to 2^-24, also for small p.
  euler::DropoutMask rare(stream, 7, 0.01);
  int64_t dropped = 0;
  for (int64_t i = 0; i < n; ++i) dropped += !rare.keep(i);
  CHECK(std::abs(double(dropped) / double(n) - 0.01) < 0.001);  // sigma 0.0001
}

TEST_CASE("dropout: p == 0 returns x itself; p outside [0, 1) throws naming the op and p") {
  Tape<double> tape;
  Tensor<double> x_data = Tensor<double>::zeros({2, 3});
  auto x = tape.constant(x_data);
  Rng rng(91);
  auto y = euler::dropout(x, 0.0, rng);
  CHECK(y.id == x.id);
  CHECK(rng.counter() == 0);
  for (double p : {1.0, 1.5, -0.1, std::nan("")}) {
    std::string message = shape_error_of([&] { euler::dropout(x, p, rng); });
    CHECK(contains(message, "dropout"));
    CHECK(contains(message, "p = "));
    CHECK(contains(message, "[2, 3]"));
  }
  CHECK(contains(shape_error_of([&] { euler::dropout(x, 1.5, rng); }), "1.5"));
}

TEST_CASE("dropout: gradcheck with a fixed mask") {
  Tensor<double> x = normal_tensor({4, 6}, 92);
  auto f = [](Tape<double>&, Vars v) {
    Rng rng(93);  // a fresh Rng per evaluation: every evaluation uses the same mask
    return euler::dropout(v[0], 0.4, rng);
  };
  check_gradient(euler::check::gradcheck(f, {x}));
  // Composed: the mask must be the same in the analytic and the numeric pass.
  auto g = [](Tape<double>&, Vars v) {
    Rng rng(94);
    return euler::softmax(euler::dropout(v[0], 0.5, rng));
  };
  check_gradient(euler::check::gradcheck(g, {x.clone()}));
}

// =================================================================================================
// cross_entropy
// =================================================================================================

TEST_CASE("cross_entropy: hand-computed value and gradient, with an ignored row") {
  // Row 0: exp(logits) = [1, 2, 3], target 2: -log(3/6) = log 2. Row 1 ignored. Row 2: target 0 of
  // equal logits: log 3. Mean over the 2 counted rows: (log 2 + log 3) / 2.
  Tensor<double> logits = Tensor<double>::from({3, 3}, {0, std::log(2.0), std::log(3.0), 5, -1, 2, 7, 7, 7});
  Tensor<int32_t> targets = Tensor<int32_t>::from({3}, {2, -100, 0});
  Tensor<double> dlogits = Tensor<double>::zeros({3, 3});
  Tape<double> tape;
  auto loss = euler::cross_entropy(tape.param(logits, dlogits), targets);
  CHECK(loss.shape() == Shape{});
  CHECK(loss.value()[0] == doctest::Approx((std::log(2.0) + std::log(3.0)) / 2).epsilon(1e-14));
  tape.backward(loss);
  // dlogits = (softmax - onehot) / count
  const double expected[] = {1.0 / 12, 2.0 / 12, 3.0 / 12 - 0.5, 0, 0, 0, 1.0 / 6 - 0.5, 1.0 / 6, 1.0 / 6};
  for (int i = 0; i < 9; ++i) CHECK(dlogits[i] == doctest::Approx(expected[i]).epsilon(1e-14));
}

TEST_CASE("cross_entropy: equals -mean of log_softmax picked at the targets, value and gradient") {
  const int64_t M = 6, K = 9;
  Tensor<double> logits = normal_tensor({M, K}, 101, 3.0);
  Tensor<int32_t> targets = Tensor<int32_t>::from({M}, {3, 0, 8, -1, 4, 4});
  const int32_t ignore = -1;
  const double count = 5;
  Tensor<double> d_ce = Tensor<double>::zeros({M, K}), d_ref = Tensor<double>::zeros({M, K});
  Tape<double> tape;
  auto ce = euler::cross_entropy(tape.param(logits, d_ce), targets, ignore);
  tape.backward(ce);
  auto ls = euler::log_softmax(tape.param(logits, d_ref));
  Tensor<double> pick_seed = Tensor<double>::zeros({M, K});  // d(-mean of picked)/d(log_softmax)
  double reference = 0;
  for (int64_t r = 0; r < M; ++r) {
    if (targets[r] == ignore) continue;
    reference -= ls.value().at({r, targets[r]}) / count;
    pick_seed.at({r, targets[r]}) = -1 / count;
  }
  tape.backward(ls, pick_seed);
  CHECK(ce.value()[0] == doctest::Approx(reference).epsilon(1e-14));
  for (int64_t i = 0; i < M * K; ++i) CHECK(d_ce[i] == doctest::Approx(d_ref[i]).epsilon(1e-13));
}

TEST_CASE("cross_entropy: gradcheck with ignored rows") {
  Tensor<double> logits = normal_tensor({7, 5}, 111, 2.0);
  Tensor<int32_t> targets = Tensor<int32_t>::from({7}, {0, -100, 4, 2, -100, 1, 2});
  check_gradient(euler::check::gradcheck([&](Tape<double>&, Vars v) { return euler::cross_entropy(v[0], targets); },
                                         {logits}));
  // A [B, N, K] batch with [B, N] targets and a custom ignore_index.
  Tensor<double> batched = normal_tensor({2, 3, 4}, 112);
  Tensor<int32_t> batched_targets = Tensor<int32_t>::from({2, 3}, {1, 3, 7, 0, 7, 2});
  check_gradient(euler::check::gradcheck(
      [&](Tape<double>&, Vars v) { return euler::cross_entropy(v[0], batched_targets, 7); }, {batched}));
}

TEST_CASE("cross_entropy: [B, N, K] with [B, N] targets equals the flattened [B * N, K]") {
  Tensor<double> logits = normal_tensor({2, 3, 4}, 121);
  Tensor<int32_t> targets = Tensor<int32_t>::from({2, 3}, {1, 3, 0, 0, 2, 2});
  Tape<double> tape;
  auto batched = euler::cross_entropy(tape.constant(logits), targets);
  auto flat = euler::cross_entropy(tape.constant(logits.reshaped({6, 4})), targets.reshaped({6}));
  CHECK(batched.value()[0] == flat.value()[0]);
}

TEST_CASE("cross_entropy: when every row is ignored the loss and the gradient are 0") {
  Tensor<double> logits = normal_tensor({3, 4}, 131);
  Tensor<int32_t> targets = Tensor<int32_t>::full({3}, -100);
  Tensor<double> dlogits = Tensor<double>::zeros({3, 4});
  Tape<double> tape;
  auto loss = euler::cross_entropy(tape.param(logits, dlogits), targets);
  CHECK(loss.value()[0] == 0.0);
  tape.backward(loss);
  for (int64_t i = 0; i < 12; ++i) CHECK(dlogits[i] == 0.0);
}

TEST_CASE("cross_entropy: a wide float row (K = 3416) matches a double reference") {
  const int64_t M = 40, K = 3416;
  Tensor<float> logits = normal_tensor<float>({M, K}, 141, 4.0f);
  Tensor<int32_t> targets({M});
  for (int64_t r = 0; r < M; ++r) targets[r] = int32_t((r * 977) % K);
  targets[5] = -100;
  Tensor<float> dlogits = Tensor<float>::zeros({M, K});
  Tape<float> tape;
  auto loss = euler::cross_entropy(tape.param(logits, dlogits), targets);
  tape.backward(loss);
  double reference = 0;
  for (int64_t r = 0; r < M; ++r) {
    if (targets[r] == -100) continue;
    double max = -kInf, sum = 0;
    for (int64_t j = 0; j < K; ++j) max = std::max(max, double(logits.at({r, j})));
    for (int64_t j = 0; j < K; ++j) sum += std::exp(double(logits.at({r, j})) - max);
    reference += (max + std::log(sum) - double(logits.at({r, targets[r]}))) / (M - 1);
    double row_grad_sum = 0;
    for (int64_t j = 0; j < K; ++j) row_grad_sum += dlogits.at({r, j});
    CHECK(std::abs(row_grad_sum) < 1e-6);  // softmax - onehot sums to 0
  }
  CHECK(double(loss.value()[0]) == doctest::Approx(reference).epsilon(1e-5));
  for (int64_t j = 0; j < K; ++j) CHECK(dlogits.at({5, j}) == 0.0f);
}

TEST_CASE("cross_entropy: bad targets throw ShapeError naming the op, the row and the value") {
  Tape<double> tape;
  Tensor<double> logits_data = Tensor<double>::zeros({3, 4});
  auto logits = tape.constant(logits_data);
  Tensor<int32_t> out_of_range = Tensor<int32_t>::from({3}, {0, 4, 1});
  std::string message = shape_error_of([&] { euler::cross_entropy(logits, out_of_range); });
  CHECK(contains(message, "cross_entropy"));
  CHECK(contains(message, "row 1"));
  CHECK(contains(message, "target 4"));
  CHECK(contains(message, "[3, 4]"));
  Tensor<int32_t> negative = Tensor<int32_t>::from({3}, {0, 1, -3});
  message = shape_error_of([&] { euler::cross_entropy(logits, negative); });
  CHECK(contains(message, "row 2"));
  CHECK(contains(message, "target -3"));
  // -100 is fine by default, but not when ignore_index is something else.
  Tensor<int32_t> default_ignored = Tensor<int32_t>::from({3}, {0, -100, 1});
  CHECK_NOTHROW(euler::cross_entropy(logits, default_ignored));
  CHECK(contains(shape_error_of([&] { euler::cross_entropy(logits, default_ignored, -1); }), "target -100"));
  Tensor<int32_t> wrong_shape = Tensor<int32_t>::from({2}, {0, 1});
  message = shape_error_of([&] { euler::cross_entropy(logits, wrong_shape); });
  CHECK(contains(message, "cross_entropy"));
  CHECK(contains(message, "[3, 4]"));
  CHECK(contains(message, "[2]"));
}

}  // namespace test_ops_nn
