// Training parts: the Adam/AdamW optimiser against a plain scalar reference written here (double,
// 1e-12), by hand on the first step, on a quadratic, across a checkpoint (bit-exact) and with NaN
// gradients; the ranking metrics on hand-made score matrices (ranks first, tied, last, NaN, padding,
// history exclusion), each metric's formula at each cutoff, the most-popular baseline, and
// bit-identical results for 1 and 2 threads.
#include <doctest/doctest.h>

#include <euler/train/metrics.hpp>
#include <euler/train/optimizer.hpp>
#include <euler/train/progress.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace test_train_parts {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr float kNaNf = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Runs the body with `threads` threads, then restores the previous count.
struct ThreadCount {
  int saved = num_threads();
  explicit ThreadCount(int threads) { set_num_threads(threads); }
  ~ThreadCount() { set_num_threads(saved); }
};

// ---- optimiser ----

// Adam written the textbook way (Kingma & Ba with bias-corrected moments), one scalar at a time.
struct ReferenceAdam {
  AdamConfig config;
  int steps = 0;
  std::vector<double> m, v;

  double step(std::vector<double>& p, std::vector<double> g) {
    if (m.empty()) m.assign(p.size(), 0.0), v.assign(p.size(), 0.0);
    double norm = 0;
    for (double x : g) norm += x * x;
    norm = std::sqrt(norm);
    if (config.clip_norm > 0 && norm > config.clip_norm)
      for (double& x : g) x *= config.clip_norm / (norm + 1e-6);
    ++steps;
    for (size_t i = 0; i < p.size(); ++i) {
      if (config.decoupled) p[i] -= config.lr * config.weight_decay * p[i];
      double gi = config.decoupled ? g[i] : g[i] + config.weight_decay * p[i];
      m[i] = config.beta1 * m[i] + (1 - config.beta1) * gi;
      v[i] = config.beta2 * v[i] + (1 - config.beta2) * gi * gi;
      double m_hat = m[i] / (1 - std::pow(config.beta1, steps));
      double v_hat = v[i] / (1 - std::pow(config.beta2, steps));
      p[i] -= config.lr * m_hat / (std::sqrt(v_hat) + config.eps);
    }
    return norm;
  }
};

// Two named parameters (17 values) in one flat buffer, with fixed starting values.
Parameters<double> small_parameters() {
  Parameters<double> params;
  params.declare("a.weight", {3, 4});
  params.declare("b.bias", {5});
  params.allocate();
  for (int64_t i = 0; i < params.numel(); ++i) params.values()[i] = 0.3 * std::cos(0.9 * double(i)) - 0.1;
  return params;
}

// A gradient that changes with the step, and with a scale that alternates between 10 and 0.1 (so a
// clip norm of 1 is active on odd steps only).
std::vector<double> gradient_at(int step, int64_t n) {
  std::vector<double> g(static_cast<size_t>(n));
  double scale = step % 2 ? 10.0 : 0.1;
  for (int64_t i = 0; i < n; ++i) g[size_t(i)] = scale * std::sin(1.3 * double(i) + 0.7 * step) * (1 + 0.1 * double(i));
  return g;
}

// Runs `steps` steps of Adam<double> and of the reference on the same gradients; checks every value
// and the returned norms after each step, and returns how many steps had the clip active.
int compare_with_reference(const AdamConfig& config, int steps) {
  Parameters<double> params = small_parameters();
  std::vector<double> expected(params.values().begin(), params.values().end());
  Adam<double> adam(config);
  ReferenceAdam reference{config, 0, {}, {}};
  int clipped = 0;
  for (int t = 1; t <= steps; ++t) {
    std::vector<double> g = gradient_at(t, params.numel());
    std::copy(g.begin(), g.end(), params.grads().begin());
    double norm = adam.step(params);
    double expected_norm = reference.step(expected, g);
    CHECK(norm == doctest::Approx(expected_norm).epsilon(1e-14));
    if (config.clip_norm > 0 && norm > config.clip_norm) ++clipped;
    for (int64_t i = 0; i < params.numel(); ++i)
      CHECK(params.values()[i] == doctest::Approx(expected[size_t(i)]).epsilon(1e-12));
    // The gradient buffer is read, never written (clipping is folded into the update).
    CHECK(std::equal(g.begin(), g.end(), params.grads().begin()));
  }
  CHECK(adam.steps() == steps);
  return clipped;
}

bool same_bits(TensorView<const float> a, TensorView<const float> b) {
  return a.numel() == b.numel() && std::memcmp(a.data, b.data, size_t(a.numel()) * sizeof(float)) == 0;
}

// ---- metrics ----

// Ranks from the definition, one item at a time: candidates are items 1..K-1 not excluded (the target
// always is one); an item counts against the target when it is the target, ties it, beats it, or
// either score is NaN.
int64_t reference_rank(const float* score, int64_t items, int32_t target, std::span<const int32_t> excluded) {
  int64_t rank = 0;
  for (int32_t j = 1; j < items; ++j) {
    bool is_excluded = j != target && std::find(excluded.begin(), excluded.end(), j) != excluded.end();
    if (is_excluded) continue;
    if (j == target || std::isnan(score[j]) || std::isnan(score[target]) || score[j] >= score[target]) ++rank;
  }
  return rank;
}

Tensor<float> matrix(int64_t rows, int64_t cols, std::vector<float> values) {
  REQUIRE(int64_t(values.size()) == rows * cols);
  Tensor<float> t({rows, cols});
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

}  // namespace

// =================================================================================================
// Adam
// =================================================================================================

TEST_CASE("Adam: the first step by hand is lr * g / (|g| + eps), for Adam, Adam+L2 and AdamW") {
  const double lr = 0.01, wd = 0.1, eps = 1e-8;
  const std::vector<double> p0 = {0.5, -1.0, 2.0}, g = {0.2, -3.0, 0.0};
  auto first_step = [&](AdamConfig config) {
    Parameters<double> params;
    params.declare("w", {3});
    params.allocate();
    std::copy(p0.begin(), p0.end(), params.values().begin());
    std::copy(g.begin(), g.end(), params.grads().begin());
    Adam<double> adam(config);
    double norm = adam.step(params);
    CHECK(norm == doctest::Approx(std::sqrt(0.04 + 9.0)).epsilon(1e-15));
    CHECK(adam.steps() == 1);
    return std::vector<double>(params.values().begin(), params.values().end());
  };
  // m = 0.1 g, v = 0.001 g^2; step size lr / 0.1, denominator sqrt(v) / sqrt(0.001) + eps = |g| + eps.
  std::vector<double> adam = first_step({.lr = lr});
  std::vector<double> l2 = first_step({.lr = lr, .weight_decay = wd});
  std::vector<double> adamw = first_step({.lr = lr, .weight_decay = wd, .decoupled = true});
  for (size_t i = 0; i < 3; ++i) {
    CHECK(adam[i] == doctest::Approx(p0[i] - lr * g[i] / (std::abs(g[i]) + eps)).epsilon(1e-13));
    double g_l2 = g[i] + wd * p0[i];
    CHECK(l2[i] == doctest::Approx(p0[i] - lr * g_l2 / (std::abs(g_l2) + eps)).epsilon(1e-13));
    CHECK(adamw[i] == doctest::Approx(p0[i] * (1 - lr * wd) - lr * g[i] / (std::abs(g[i]) + eps)).epsilon(1e-13));
  }
  CHECK(adam[2] == p0[2]);  // a zero gradient moves nothing
}

TEST_CASE("Adam: ten steps match the scalar reference (Adam, Adam+L2, AdamW, clipping)") {
  SUBCASE("Adam") { compare_with_reference({.lr = 0.01}, 10); }
  SUBCASE("Adam, other betas and eps") { compare_with_reference({.lr = 0.05, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-3}, 10); }
  SUBCASE("Adam + L2") { compare_with_reference({.lr = 0.01, .weight_decay = 0.05}, 10); }
  SUBCASE("AdamW") { compare_with_reference({.lr = 0.01, .weight_decay = 0.05, .decoupled = true}, 10); }
  SUBCASE("Adam + clipping") { CHECK(compare_with_reference({.lr = 0.01, .clip_norm = 1.0}, 10) == 5); }
  SUBCASE("AdamW + clipping") {
    CHECK(compare_with_reference({.lr = 0.01, .weight_decay = 0.05, .decoupled = true, .clip_norm = 1.0}, 10) == 5);
  }
  SUBCASE("Adam + L2 + clipping: the decay is added after the clip") {
    CHECK(compare_with_reference({.lr = 0.01, .weight_decay = 0.05, .clip_norm = 1.0}, 10) == 5);
  }
}

TEST_CASE("Adam: clipping scales by clip_norm / (norm + 1e-6) and returns the norm before clipping") {
  // beta1 = 0 makes m the clipped gradient and beta2 = 0 makes sqrt(v) its magnitude; eps = 1 keeps
  // the magnitude visible in the update: p1 = p0 - lr * c g / (c |g| + 1).
  Parameters<double> params;
  params.declare("w", {2});
  params.allocate();
  params.grads()[0] = 3.0;
  params.grads()[1] = 4.0;  // norm 5
  Adam<double> adam({.lr = 1.0, .beta1 = 0, .beta2 = 0, .eps = 1.0, .clip_norm = 1.0});
  CHECK(adam.step(params) == doctest::Approx(5.0).epsilon(1e-15));
  const double c = 1.0 / (5.0 + 1e-6);
  CHECK(params.values()[0] == doctest::Approx(-3 * c / (3 * c + 1)).epsilon(1e-14));
  CHECK(params.values()[1] == doctest::Approx(-4 * c / (4 * c + 1)).epsilon(1e-14));
  CHECK(Adam<double>::global_norm(params.grads()) == doctest::Approx(5.0).epsilon(1e-15));
}

TEST_CASE("Adam: a quadratic's loss goes down") {
  // loss = 0.5 sum a_i (p_i - c_i)^2, gradient a_i (p_i - c_i), in float.
  const int64_t n = 1000;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> curvature(0.5f, 2.0f), centre(-3.0f, 3.0f);
  std::vector<float> a(n), c(n);
  for (int64_t i = 0; i < n; ++i) a[size_t(i)] = curvature(rng), c[size_t(i)] = centre(rng);
  Parameters<float> params;
  params.declare("w", {n});
  params.allocate();
  auto loss = [&] {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += 0.5 * a[size_t(i)] * std::pow(params.values()[i] - c[size_t(i)], 2);
    return sum;
  };
  Adam<float> adam({.lr = 0.05});
  const double initial = loss();
  double previous = initial;
  for (int t = 1; t <= 300; ++t) {
    for (int64_t i = 0; i < n; ++i) params.grads()[i] = a[size_t(i)] * (params.values()[i] - c[size_t(i)]);
    adam.step(params);
    if (t % 20 == 0 && t <= 100) {
      double now = loss();
      CHECK(now < previous);
      previous = now;
    }
  }
  CHECK(loss() < 1e-3 * initial);
}

TEST_CASE("Adam: saving and restoring the state continues bit-exactly") {
  const int64_t n = 5000;
  auto fill_gradient = [](Parameters<float>& p, int t) {
    for (int64_t i = 0; i < p.numel(); ++i)
      p.grads()[i] = p.values()[i] - 0.5f + 0.1f * float(std::sin(0.01 * double(i) * t));
  };
  auto make = [&] {
    Parameters<float> p;
    p.declare("w", {n});
    p.allocate();
    for (int64_t i = 0; i < n; ++i) p.values()[i] = float(std::cos(double(i)));
    return p;
  };
  const AdamConfig config{.lr = 0.01, .weight_decay = 0.01, .decoupled = true, .clip_norm = 10};

  Parameters<float> straight = make();
  Adam<float> straight_adam(config);
  Tensor<float> saved_values, saved_m, saved_v;
  int64_t saved_steps = 0;
  for (int t = 1; t <= 10; ++t) {
    if (t == 6) {  // checkpoint after 5 steps
      saved_values = Tensor<float>::copy_of(straight.values());
      saved_m = straight_adam.moment1().clone();
      saved_v = straight_adam.moment2().clone();
      saved_steps = straight_adam.steps();
    }
    fill_gradient(straight, t);
    straight_adam.step(straight);
  }
  CHECK(saved_steps == 5);

  Parameters<float> resumed = make();
  std::copy(saved_values.begin(), saved_values.end(), resumed.values().begin());
  Adam<float> resumed_adam(config);
  resumed_adam.set_state(saved_steps, saved_m, saved_v);
  CHECK(resumed_adam.steps() == 5);
  for (int t = 6; t <= 10; ++t) {
    fill_gradient(resumed, t);
    resumed_adam.step(resumed);
  }
  CHECK(same_bits(resumed.values(), straight.values()));
  CHECK(same_bits(resumed_adam.moment1(), straight_adam.moment1()));
  CHECK(same_bits(resumed_adam.moment2(), straight_adam.moment2()));
  CHECK(resumed_adam.steps() == 10);

  // Restoring only the values, without the optimiser state, does not continue the same way.
  Parameters<float> fresh = make();
  std::copy(saved_values.begin(), saved_values.end(), fresh.values().begin());
  Adam<float> fresh_adam(config);
  for (int t = 6; t <= 10; ++t) {
    fill_gradient(fresh, t);
    fresh_adam.step(fresh);
  }
  CHECK(fresh_adam.steps() == 5);
  CHECK_FALSE(same_bits(fresh.values(), straight.values()));
}

TEST_CASE("Adam: a NaN or inf gradient is reported and the step is skipped") {
  Parameters<float> params;
  params.declare("w", {100});
  params.allocate();
  for (int64_t i = 0; i < 100; ++i) params.values()[i] = float(i) * 0.01f, params.grads()[i] = 1.0f;
  Adam<float> adam;
  adam.step(params);
  Tensor<float> values = Tensor<float>::copy_of(params.values());
  Tensor<float> m = adam.moment1().clone(), v = adam.moment2().clone();

  for (float bad : {kNaNf, kInf, -kInf}) {
    params.grads()[37] = bad;
    double norm = adam.step(params);
    if (std::isnan(bad))
      CHECK(std::isnan(norm));
    else
      CHECK(norm == std::numeric_limits<double>::infinity());
    CHECK(adam.steps() == 1);
    CHECK(same_bits(params.values(), values));
    CHECK(same_bits(adam.moment1(), m));
    CHECK(same_bits(adam.moment2(), v));
  }
  // The next finite gradient steps normally, as step 2.
  params.grads()[37] = 1.0f;
  CHECK(adam.step(params) == doctest::Approx(10.0));
  CHECK(adam.steps() == 2);
  CHECK(params.values()[0] < values[0]);
}

TEST_CASE("Adam: identical bits for 1, 2 and 3 threads") {
  const int64_t n = (int64_t(1) << 20) + 123;
  auto run = [&](int threads) {
    ThreadCount scope(threads);
    Parameters<float> params;
    params.declare("w", {n});
    params.allocate();
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (int64_t i = 0; i < n; ++i) params.values()[i] = normal(rng);
    Adam<float> adam({.lr = 0.01, .weight_decay = 0.01, .clip_norm = 100});
    std::vector<double> norms;
    for (int t = 0; t < 3; ++t) {
      for (int64_t i = 0; i < n; ++i) params.grads()[i] = normal(rng);
      norms.push_back(adam.step(params));
    }
    return std::make_pair(Tensor<float>::copy_of(params.values()), norms);
  };
  auto [one_values, one_norms] = run(1);
  for (int threads : {2, 3}) {
    auto [values, norms] = run(threads);
    CHECK(same_bits(one_values, values));
    CHECK(one_norms == norms);
  }
}

TEST_CASE("Adam: bad configurations and mismatched buffers throw") {
  CHECK_THROWS_AS(Adam<float>({.lr = -1}), std::invalid_argument);
  CHECK_THROWS_AS(Adam<float>({.beta1 = 1.0}), std::invalid_argument);
  CHECK_THROWS_AS(Adam<float>({.beta2 = kNaN}), std::invalid_argument);
  CHECK_THROWS_AS(Adam<float>({.clip_norm = -1}), std::invalid_argument);
  Tensor<float> values = Tensor<float>::zeros({4}), grads = Tensor<float>::zeros({3});
  Adam<float> adam;
  CHECK_THROWS_AS(adam.step(values, grads), ShapeError);
  Tensor<float> grads4 = Tensor<float>::zeros({4}), values5 = Tensor<float>::zeros({5});
  adam.step(values, grads4);
  CHECK_THROWS_AS(adam.step(values5, Tensor<float>::zeros({5})), ShapeError);  // moments are for 4 values
  CHECK_THROWS_AS(adam.set_state(1, Tensor<float>::zeros({4}), Tensor<float>::zeros({5})), ShapeError);
  adam.config().lr = -0.5;
  CHECK_THROWS_AS(adam.step(values, grads4), std::invalid_argument);
}

// =================================================================================================
// Ranking metrics
// =================================================================================================

TEST_CASE("ranks: target first, tied, last, NaN, and a huge padding column") {
  // K = 6: padding column 0 and items 1..5.
  Tensor<float> scores = matrix(7, 6, {
      1e30f, 5, 1, 2, 3, 4,           // target 1 scores best; padding's huge score is ignored -> 1
      kInf,  3, 3, 3, 1, 2,           // target 2 tied with items 1 and 3 -> pessimistic: 3
      0,     1, 2, 3, 4, 5,           // target 1 scores worst -> 5
      0,     1, 2, kNaNf, 4, 5,       // target 3 is NaN -> worst: 5
      0,     kNaNf, 1, 5, 2, 3,       // target 3 best among numbers, item 1 NaN ranks ahead -> 2
      kNaNf, 1, 1, 1, 1, 1,           // all tied -> 5 (the padding's NaN is ignored)
      0,     -kInf, -kInf, 0, 0, 7,   // target 5 best; -inf items are below -> 1
  });
  std::vector<int32_t> targets = {1, 2, 1, 3, 3, 4, 5};
  std::vector<int64_t> ranks = target_ranks(scores, targets);
  CHECK(ranks == std::vector<int64_t>{1, 3, 5, 5, 2, 5, 1});
  for (int64_t row = 0; row < 7; ++row)
    CHECK(ranks[size_t(row)] == reference_rank(scores.data() + row * 6, 6, targets[size_t(row)], {}));
}

TEST_CASE("metrics: HR, NDCG and MRR at 5, 10 and 20 follow their formulas") {
  const std::vector<int64_t> ranks = {1, 2, 3, 5, 6, 10, 11, 20, 21, 100, 3};
  RankingMetrics metrics;
  metrics.add_ranks(ranks);
  CHECK(metrics.count() == 11);
  for (int k : {5, 10, 20}) {
    double hr = 0, ndcg = 0, mrr = 0;
    for (int64_t r : ranks)
      if (r <= k) hr += 1, ndcg += 1 / std::log2(double(r) + 1), mrr += 1.0 / double(r);
    const std::string at = "@" + std::to_string(k);
    CHECK(metrics.value("hr" + at) == doctest::Approx(hr / 11).epsilon(1e-14));
    CHECK(metrics.value("recall" + at) == metrics.value("hr" + at));
    CHECK(metrics.value("ndcg" + at) == doctest::Approx(ndcg / 11).epsilon(1e-14));
    CHECK(metrics.value("mrr" + at) == doctest::Approx(mrr / 11).epsilon(1e-14));
  }
  // Single rows by hand.
  RankingMetrics one;
  one.add_ranks(std::vector<int64_t>{3});
  CHECK(one.value("hr@5") == 1.0);
  CHECK(one.value("ndcg@5") == doctest::Approx(0.5).epsilon(1e-15));  // 1 / log2(4)
  CHECK(one.value("mrr@5") == doctest::Approx(1.0 / 3).epsilon(1e-15));
  CHECK(one.value("hr@2") == 0.0);  // any k up to the largest cutoff
  CHECK(one.value("ndcg@2") == 0.0);
  CHECK(hit_at(10, 10) == 1.0);
  CHECK(hit_at(11, 10) == 0.0);
  CHECK(ndcg_at(1, 10) == 1.0);
  CHECK(mrr_at(4, 10) == 0.25);

  nlohmann::json j = metrics.to_json("valid");
  CHECK(j.size() == 10);  // 3 metrics x 3 cutoffs + count
  CHECK(j["valid_hr@10"].get<double>() == metrics.value("hr@10"));
  CHECK(j["valid_ndcg@20"].get<double>() == metrics.value("ndcg@20"));
  CHECK(j["valid_mrr@5"].get<double>() == metrics.value("mrr@5"));
  CHECK(j["valid_count"].get<int64_t>() == 11);
  CHECK(metrics.to_json().contains("ndcg@10"));

  CHECK_THROWS_AS(metrics.value("hr@21"), std::invalid_argument);
  CHECK_THROWS_AS(metrics.value("precision@10"), std::invalid_argument);
  CHECK_THROWS_AS(metrics.value("ndcg@"), std::invalid_argument);
  CHECK_THROWS_AS(metrics.value("ndcg@10x"), std::invalid_argument);
  CHECK_THROWS_AS(metrics.add_ranks(std::vector<int64_t>{0}), std::invalid_argument);
  CHECK_THROWS_AS((RankingMetrics({.cutoffs = {0, 10}})), std::invalid_argument);

  RankingMetrics empty;
  CHECK(empty.count() == 0);
  CHECK(empty.value("ndcg@10") == 0.0);

  // merge = adding the same rows to one accumulator; reset empties it.
  RankingMetrics first, second;
  first.add_ranks(std::span(ranks).first(4));
  second.add_ranks(std::span(ranks).subspan(4));
  first.merge(second);
  CHECK(first.to_json("test") == metrics.to_json("test"));
  first.reset();
  CHECK(first.count() == 0);
  CHECK(first.value("hr@20") == 0.0);

  RankingMetrics custom({.cutoffs = {50, 1}});
  custom.add_ranks(ranks);
  CHECK(custom.value("hr@1") == doctest::Approx(1.0 / 11));
  CHECK(custom.value("hr@50") == doctest::Approx(10.0 / 11));
  CHECK(custom.to_json().size() == 7);
}

TEST_CASE("metrics: add() ranks score matrices; history exclusion only when asked") {
  Tensor<float> scores = matrix(3, 6, {
      0, 9, 8, 7, 1, 2,      // target 3: items 1 and 2 ahead -> 3
      0, 1, 2, 3, 4, 5,      // target 5 -> 1
      0, 6, 6, kNaNf, 1, 2,  // target 3 NaN -> worst
  });
  std::vector<int32_t> targets = {3, 5, 3};
  // Row 0's history holds item 1 twice (counted once), the target itself (never excluded) and
  // padding 0 (ignored); row 1's history holds items that score below the target; row 2 drops item 4.
  std::vector<int32_t> history0 = {1, 3, 1, 0}, history1 = {4, 2}, history2 = {4};
  std::vector<std::span<const int32_t>> histories = {history0, history1, history2};

  CHECK(target_ranks(scores, targets) == std::vector<int64_t>{3, 1, 5});
  CHECK(target_ranks(scores, targets, histories) == std::vector<int64_t>{2, 1, 4});
  for (int64_t row = 0; row < 3; ++row)
    CHECK(target_ranks(scores, targets, histories)[size_t(row)] ==
          reference_rank(scores.data() + row * 6, 6, targets[size_t(row)], histories[size_t(row)]));

  // The target in the history keeps its place: excluding {target} changes nothing.
  std::vector<int32_t> only_target = {3};
  std::vector<std::span<const int32_t>> self = {only_target, {}, {}};
  CHECK(target_ranks(scores, targets, self) == std::vector<int64_t>{3, 1, 5});

  RankingMetrics plain;  // exclusion off: the histories are ignored
  plain.add(scores, targets, histories);
  CHECK(plain.value("mrr@5") == doctest::Approx((1.0 / 3 + 1.0 + 1.0 / 5) / 3));

  RankingMetrics excluding({.exclude_history = true});
  excluding.add(scores, targets, histories);
  CHECK(excluding.value("mrr@5") == doctest::Approx((1.0 / 2 + 1.0 + 1.0 / 4) / 3));
  CHECK(excluding.value("ndcg@5") == doctest::Approx((1 / std::log2(3.0) + 1.0 + 1 / std::log2(5.0)) / 3));
  CHECK_THROWS_AS(excluding.add(scores, targets), std::invalid_argument);
}

TEST_CASE("ranks: bad shapes and ids throw") {
  Tensor<float> scores = Tensor<float>::zeros({2, 4});
  std::vector<int32_t> good = {1, 3};
  CHECK_THROWS_AS(target_ranks(scores, std::vector<int32_t>{1}), std::invalid_argument);
  CHECK_THROWS_AS(target_ranks(scores, std::vector<int32_t>{0, 1}), std::out_of_range);  // padding
  CHECK_THROWS_AS(target_ranks(scores, std::vector<int32_t>{1, 4}), std::out_of_range);
  CHECK_THROWS_AS(target_ranks(Tensor<float>::zeros({8}), good), ShapeError);
  std::vector<int32_t> bad_history = {5};
  std::vector<std::span<const int32_t>> one = {bad_history};
  CHECK_THROWS_AS(target_ranks(scores, good, one), std::invalid_argument);  // 1 history, 2 rows
  std::vector<std::span<const int32_t>> two = {bad_history, {}};
  CHECK_THROWS_AS(target_ranks(scores, good, two), std::out_of_range);
  CHECK(target_ranks(Tensor<float>::zeros({0, 4}), {}).empty());
}

TEST_CASE("popularity baseline on a tiny dataset") {
  // K = 5: items 1..4. Counts: item 1 once, item 2 three times, item 3 four times, item 4 never.
  std::vector<std::vector<int32_t>> train = {{1, 2, 2, 3}, {2, 3}, {3, 3}};
  std::vector<float> pop = popularity_scores(train, 5);
  REQUIRE(pop.size() == 5);
  CHECK(pop[0] == -kInf);
  CHECK(pop[1] == 1.0f);
  CHECK(pop[2] == 3.0f);
  CHECK(pop[3] == 4.0f);
  CHECK(pop[4] == 0.0f);

  // The span overload (e.g. over Split::train views) counts the same.
  std::vector<std::span<const int32_t>> views(train.begin(), train.end());
  CHECK(popularity_scores(views, 5) == pop);

  // Every user gets the same row; targets 3, 2, 1, 4 rank 1, 2, 3, 4.
  std::vector<int32_t> targets = {3, 2, 1, 4};
  Tensor<float> scores({4, 5});
  for (int64_t row = 0; row < 4; ++row) std::copy(pop.begin(), pop.end(), scores.data() + row * 5);
  CHECK(target_ranks(scores, targets) == std::vector<int64_t>{1, 2, 3, 4});
  RankingMetrics metrics({.cutoffs = {1, 2}});
  metrics.add(scores, targets);
  CHECK(metrics.value("hr@1") == 0.25);
  CHECK(metrics.value("hr@2") == 0.5);
  CHECK(metrics.value("mrr@2") == doctest::Approx((1.0 + 0.5) / 4));

  CHECK_THROWS_AS(popularity_scores(std::vector<std::vector<int32_t>>{{1, 5}}, 5), std::out_of_range);
  CHECK_THROWS_AS(popularity_scores(std::vector<std::vector<int32_t>>{{0}}, 5), std::out_of_range);
}

TEST_CASE("metrics: 2000 x 500 random scores give the same ranks and metrics on 1 and 2 threads") {
  const int64_t rows = 2000, items = 500;
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int32_t> item(1, int32_t(items - 1)), any_id(0, int32_t(items - 1));
  Tensor<float> scores({rows, items});
  for (int64_t i = 0; i < rows * items; ++i) scores[i] = std::round(normal(rng) * 8) / 8;  // many ties
  for (int i = 0; i < 300; ++i) scores[std::uniform_int_distribution<int64_t>(0, rows * items - 1)(rng)] = kNaNf;
  std::vector<int32_t> targets(rows);
  std::vector<std::vector<int32_t>> history_store(rows);
  std::vector<std::span<const int32_t>> histories(rows);
  for (int64_t r = 0; r < rows; ++r) {
    targets[size_t(r)] = item(rng);
    int length = std::uniform_int_distribution<int>(0, 60)(rng);
    for (int j = 0; j < length; ++j) history_store[size_t(r)].push_back(any_id(rng));
    if (r % 7 == 0) history_store[size_t(r)].push_back(targets[size_t(r)]);
    histories[size_t(r)] = history_store[size_t(r)];
  }

  auto run = [&](int threads, bool exclude) {
    ThreadCount scope(threads);
    RankingMetrics metrics({.exclude_history = exclude});
    for (int64_t begin = 0; begin < rows; begin += 512) {  // in batches, like an evaluation loop
      int64_t end = std::min(rows, begin + 512);
      TensorView<const float> batch{Shape{end - begin, items}, scores.data() + begin * items};
      metrics.add(batch, std::span(targets).subspan(size_t(begin), size_t(end - begin)),
                  std::span<const std::span<const int32_t>>(histories).subspan(size_t(begin), size_t(end - begin)));
    }
    return std::make_pair(target_ranks(scores, targets, exclude ? histories : std::vector<std::span<const int32_t>>{}),
                          metrics.to_json("valid"));
  };
  for (bool exclude : {false, true}) {
    auto [ranks_one, json_one] = run(1, exclude);
    auto [ranks_two, json_two] = run(2, exclude);
    CHECK(ranks_one == ranks_two);
    CHECK(json_one == json_two);
    CHECK(json_one["valid_count"].get<int64_t>() == rows);
    int mismatches = 0;
    for (int64_t r = 0; r < rows; ++r)
      mismatches += ranks_one[size_t(r)] != reference_rank(scores.data() + r * items, items, targets[size_t(r)],
                                                           exclude ? histories[size_t(r)] : std::span<const int32_t>{});
    CHECK(mismatches == 0);
  }
}

TEST_CASE("progress: durations in minutes and seconds, counts with separators, the plain line") {
  CHECK(euler::format_duration(0.44) == "0.4s");
  CHECK(euler::format_duration(45.2) == "45s");
  CHECK(euler::format_duration(59.4) == "59s");
  CHECK(euler::format_duration(59.6) == "1m00s");
  CHECK(euler::format_duration(130) == "2m10s");
  CHECK(euler::format_duration(3725) == "1h02m");
  CHECK(euler::format_duration(-1) == "?");
  CHECK(euler::format_duration(std::numeric_limits<double>::infinity()) == "?");
  CHECK(euler::format_count(0) == "0");
  CHECK(euler::format_count(999.4) == "999");
  CHECK(euler::format_count(2310.4) == "2,310");
  CHECK(euler::format_count(1234567) == "1,234,567");
  CHECK(euler::format_count(-4321) == "-4,321");
  CHECK(euler::format_count(std::nan("")) == "?");
  // 41% of 10,000 lists in 1.775 s: 2,310 lists/s, 5,900 left: 2.6 s.
  CHECK(euler::progress_line(3, 4100, 10000, 1.775) == "epoch 3  41%  2,310 seq/s  ETA 2.6s");
  CHECK(euler::progress_line(1, 0, 10, 0.0) == "epoch 1  0%  0 seq/s  ETA ?");
}

}  // namespace test_train_parts
