// The count-based Markov baseline (euler/train/baselines.hpp): Markov values computed by hand on a
// tiny set of sequences (exact: every fraction is a power of two), the popularity order for an empty
// history, the (markov, popularity) order checked pair by pair on random data (the tie-break never
// reorders), the padding item, bad input, identical bits for 1 and 2 threads, and rank 1 where the
// last item determines the next.
#include <doctest/doctest.h>

#include <euler/train/baselines.hpp>
#include <euler/train/metrics.hpp>

#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace test_baselines {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Runs the body with `threads` threads, then restores the previous count.
struct ThreadCount {
  int saved = num_threads();
  explicit ThreadCount(int threads) { set_num_threads(threads); }
  ~ThreadCount() { set_num_threads(saved); }
};

// K = 5 (items 1..4), 3 sequences, order 2. The pairs (a -> b, b g positions after a):
//   g = 1: 1->2, 2->3, 3->1 | 1->2, 2->4 | 3->2, 2->3, 3->4
//   g = 2: 1->3, 2->1       | 1->4       | 3->3, 2->4
// so the counts are
//   C_1[1] = {2: 2}              R = 2       C_2[1] = {3: 1, 4: 1}  R = 2
//   C_1[2] = {3: 2, 4: 1}        R = 3       C_2[2] = {1: 1, 4: 1}  R = 2
//   C_1[3] = {1: 1, 2: 1, 4: 1}  R = 3       C_2[3] = {3: 1}        R = 1
// and the popularity item 1: 3, item 2: 3, item 3: 3, item 4: 2. The histories below end in voters
// whose R is a power of two, so every expected value is exact in double.
std::vector<std::vector<int32_t>> tiny_sequences() { return {{1, 2, 3, 1}, {1, 2, 4}, {3, 2, 3, 4}}; }

}  // namespace

TEST_CASE("Markov baseline: Markov values by hand, order 2, both weightings") {
  const auto train = tiny_sequences();
  std::vector<double> markov(5);

  // History ending (2, 1): g = 1 votes C_1[1] / 2 = {2: 1}; g = 2 votes w_2 * C_2[2] / 2 = {1: w/2, 4: w/2}.
  MarkovBaseline inverse_gap(train, 5, {.order = 2, .gap_exponent = 1.0});  // w_2 = 1/2
  const std::vector<int32_t> history = {3, 2, 1};
  inverse_gap.markov_scores(history, markov);
  CHECK(markov == std::vector<double>{0.0, 0.25, 1.0, 0.0, 0.25});

  MarkovBaseline uniform(train, 5, {.order = 2, .gap_exponent = 0.0});  // w_2 = 1
  uniform.markov_scores(history, markov);
  CHECK(markov == std::vector<double>{0.0, 0.5, 1.0, 0.0, 0.5});

  // Order 1 ignores the item two back.
  MarkovBaseline first_order(train, 5, {.order = 1});
  first_order.markov_scores(history, markov);
  CHECK(markov == std::vector<double>{0.0, 0.0, 1.0, 0.0, 0.0});

  // History ending (3, 1): g = 1 {2: 1}; g = 2 w_2 * C_2[3] / 1 = {3: 1/2}. A history of one item
  // votes with g = 1 only; the padding id 0 votes for nothing.
  inverse_gap.markov_scores(std::vector<int32_t>{3, 1}, markov);
  CHECK(markov == std::vector<double>{0.0, 0.0, 1.0, 0.5, 0.0});
  inverse_gap.markov_scores(std::vector<int32_t>{1}, markov);
  CHECK(markov == std::vector<double>{0.0, 0.0, 1.0, 0.0, 0.0});
  inverse_gap.markov_scores(std::vector<int32_t>{1, 0}, markov);
  CHECK(markov == std::vector<double>{0.0, 0.0, 0.0, 0.25, 0.25});

  // Item 4 never occurs before anything at gap 1: no votes, every Markov value 0.
  inverse_gap.markov_scores(std::vector<int32_t>{0, 4}, markov);
  CHECK(markov == std::vector<double>(5, 0.0));

  // The ranking keys of history (3, 2, 1): Markov 2 (1.0) > 1 = 4 (0.25, popularity 3 > 2) > 3 (0, no
  // vote). Popularity levels: count 2 -> 0, count 3 -> 1; the voted items take 2, 3, 4.
  std::vector<float> scores(5);
  inverse_gap.score(history, scores);
  CHECK(scores == std::vector<float>{-kInf, 3.0f, 4.0f, 1.0f, 2.0f});
  const std::vector<int32_t> targets = {2, 1, 4, 3};
  Tensor<float> rows({4, 5});
  for (int64_t row = 0; row < 4; ++row) std::copy(scores.begin(), scores.end(), rows.data() + row * 5);
  CHECK(target_ranks(rows, targets) == std::vector<int64_t>{1, 2, 3, 4});
}

TEST_CASE("Markov baseline: an empty history ranks by popularity, padding is -inf") {
  // K = 7: counts 1: 4, 2: 1, 3: 4, 4: 0, 5: 2, 6: 7.
  const std::vector<std::vector<int32_t>> train = {{6, 1, 6, 3, 6}, {1, 6, 3, 5}, {6, 1, 6, 3, 2}, {3, 5, 6, 1}};
  MarkovBaseline markov(train, 7);
  std::vector<float> scores(7);
  markov.score({}, scores);
  CHECK(scores[0] == -kInf);
  // Levels of the distinct counts 0, 1, 2, 4, 7.
  CHECK(scores == std::vector<float>{-kInf, 3.0f, 1.0f, 3.0f, 0.0f, 2.0f, 4.0f});

  // The same ranks as the most-popular baseline, ties (items 1 and 3) included.
  std::vector<float> pop = popularity_scores(train, 7);
  const std::vector<int32_t> targets = {1, 2, 3, 4, 5, 6};
  Tensor<float> ours({6, 7}), theirs({6, 7});
  for (int64_t row = 0; row < 6; ++row) {
    std::copy(scores.begin(), scores.end(), ours.data() + row * 7);
    std::copy(pop.begin(), pop.end(), theirs.data() + row * 7);
  }
  CHECK(target_ranks(ours, targets) == target_ranks(theirs, targets));
  CHECK(target_ranks(ours, targets) == std::vector<int64_t>{3, 5, 3, 6, 4, 1});

  // The batch form gives the same row, and -inf in column 0 of every row.
  const std::vector<int32_t> empty;
  const std::vector<std::span<const int32_t>> histories = {empty, std::span<const int32_t>(train[0])};
  Tensor<float> batch = markov.scores(histories);
  REQUIRE(batch.shape() == Shape{2, 7});
  CHECK(std::vector<float>(batch.data(), batch.data() + 7) == scores);
  CHECK(batch.at({1, 0}) == -kInf);
}

TEST_CASE("Markov baseline: a tiny Markov lead beats a huge popularity lead") {
  // K = 9. History (6, 1), order 2, w = 1, 1/2:
  //   g = 1, voter 1: C_1[1] = {3: 1, 5: 999}, R = 1000  -> item 3 gets 1/1000
  //   g = 2, voter 6: C_2[6] = {2: 2, 7: 997}, R = 999   -> item 2 gets (1/2) 2/999 = 1/999
  // Item 2 leads by 1/999 - 1/1000 = 1e-6, but item 3 is 10000 times more popular (a sequence of
  // 20000 3s). An additive popularity term kept below the smallest vote (1/1998 here) would flip them.
  std::vector<std::vector<int32_t>> train;
  train.push_back({1, 3});
  for (int i = 0; i < 999; ++i) train.push_back({1, 5});
  for (int i = 0; i < 2; ++i) train.push_back({6, 8, 2});
  for (int i = 0; i < 997; ++i) train.push_back({6, 8, 7});
  train.push_back(std::vector<int32_t>(20000, 3));
  train.back()[0] = 4;
  MarkovBaseline markov(train, 9, {.order = 2});
  const std::vector<int32_t> history = {6, 1};
  std::vector<double> value(9);
  markov.markov_scores(history, value);
  REQUIRE(value[2] > value[3]);
  CHECK(value[2] - value[3] == doctest::Approx(1.0 / 999 - 1.0 / 1000));
  std::vector<float> scores(9);
  markov.score(history, scores);
  CHECK(scores[2] > scores[3]);
  CHECK(scores[5] > scores[7]);  // 0.999 > 997/1998
  CHECK(scores[7] > scores[2]);
  CHECK(scores[3] > scores[8]);  // voted items above the unvoted ones, whatever their popularity
  CHECK(scores[3] > scores[4]);
  CHECK(scores[8] > scores[4]);  // unvoted: item 8 (999 times) above item 4 (once)
}

TEST_CASE("Markov baseline: the keys order every pair by (markov, popularity), on random data") {
  const int64_t items = 40;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> item(1, int32_t(items - 1)), length(1, 30);
  std::vector<std::vector<int32_t>> train(60);
  for (auto& s : train) {
    s.resize(size_t(length(rng)));
    for (auto& x : s) x = item(rng) % 12 + 1 + (item(rng) % 5 == 0 ? 12 : 0);  // skewed, items 25.. unseen
  }
  std::vector<int64_t> popularity(size_t(items), 0);
  for (const auto& s : train)
    for (int32_t x : s) ++popularity[size_t(x)];

  for (double exponent : {0.0, 1.0})
    for (int order : {1, 3, 8}) {
      MarkovBaseline markov(train, items, {.order = order, .gap_exponent = exponent});
      for (int trial = 0; trial < 20; ++trial) {
        std::vector<int32_t> history(size_t(length(rng) % 10));
        for (auto& x : history) x = item(rng) % 24 + 1;
        std::vector<double> value(static_cast<size_t>(items));
        std::vector<float> key(static_cast<size_t>(items));
        markov.markov_scores(history, value);
        markov.score(history, key);
        CHECK(key[0] == -kInf);
        for (size_t i = 1; i < size_t(items); ++i)
          for (size_t j = 1; j < size_t(items); ++j) {
            const bool above = value[i] > value[j] || (value[i] == value[j] && popularity[i] > popularity[j]);
            const bool same = value[i] == value[j] && popularity[i] == popularity[j];
            if (above) CHECK(key[i] > key[j]);
            if (same) CHECK(key[i] == key[j]);
          }
      }
    }
}

TEST_CASE("Markov baseline: rank 1 when the last item determines the next") {
  // next(i) = i % 9 + 1 over the items 1..9 (K = 12: items 10 and 11 never occur). Sequences walk the
  // cycle from every start; item 9, the most popular, is put in extra sequences of its own.
  const int64_t items = 12;
  std::vector<std::vector<int32_t>> train;
  for (int32_t start = 1; start <= 9; ++start) {
    std::vector<int32_t> s;
    for (int32_t x = start, t = 0; t < 7 + start; ++t, x = x % 9 + 1) s.push_back(x);
    train.push_back(s);
  }
  for (int i = 0; i < 50; ++i) train.push_back({9});

  std::vector<std::vector<int32_t>> histories;
  std::vector<int32_t> targets;
  for (int32_t start = 1; start <= 9; ++start)
    for (int32_t n = 1; n <= 12; ++n) {
      std::vector<int32_t> h;
      for (int32_t x = start, t = 0; t < n; ++t, x = x % 9 + 1) h.push_back(x);
      targets.push_back(h.back() % 9 + 1);
      histories.push_back(h);
    }
  const std::vector<std::span<const int32_t>> views(histories.begin(), histories.end());
  for (int order : {1, 2, 5})
    for (double exponent : {0.0, 1.0}) {
      MarkovBaseline markov(train, items, {.order = order, .gap_exponent = exponent});
      Tensor<float> scores = markov.scores(views);
      for (int64_t rank : target_ranks(scores, targets)) CHECK(rank == 1);
      RankingMetrics metrics({.cutoffs = {1}, .exclude_history = true});
      metrics.add(scores, targets, views);
      CHECK(metrics.value("ndcg@1") == 1.0);
    }
  // The most-popular baseline, for contrast, gets rank 1 only when the target is item 9.
  std::vector<float> pop = popularity_scores(train, items);
  Tensor<float> same_row({int64_t(targets.size()), items});
  for (size_t row = 0; row < targets.size(); ++row) std::copy(pop.begin(), pop.end(), same_row.data() + row * size_t(items));
  std::vector<int64_t> pop_ranks = target_ranks(same_row, targets);
  for (size_t row = 0; row < targets.size(); ++row) CHECK((pop_ranks[row] == 1) == (targets[row] == 9));
}

TEST_CASE("Markov baseline: identical bits for 1 and 2 threads") {
  const int64_t items = 101;
  std::mt19937 rng(3);
  std::uniform_int_distribution<int32_t> item(1, int32_t(items - 1)), length(0, 25);
  std::vector<std::vector<int32_t>> train(300), histories(400);
  for (auto* set : {&train, &histories})
    for (auto& s : *set) {
      s.resize(size_t(length(rng)));
      for (auto& x : s) x = item(rng) % 50 + item(rng) % 51 + 1;  // triangular: a popularity slope
    }
  MarkovBaseline markov(train, items, {.order = 5});
  const std::vector<std::span<const int32_t>> views(histories.begin(), histories.end());
  auto run = [&](int threads) {
    ThreadCount scope(threads);
    return markov.scores(views);
  };
  Tensor<float> one = run(1), two = run(2);
  REQUIRE(one.shape() == two.shape());
  CHECK(std::memcmp(one.data(), two.data(), size_t(one.numel()) * sizeof(float)) == 0);
  // And each row is what score() gives alone.
  std::vector<float> row(static_cast<size_t>(items));
  markov.score(histories[123], row);
  CHECK(std::memcmp(row.data(), one.data() + 123 * items, size_t(items) * sizeof(float)) == 0);
}

TEST_CASE("Markov baseline: bad input") {
  const std::vector<std::vector<int32_t>> good = {{1, 2, 3}};
  CHECK_THROWS_WITH_AS(MarkovBaseline(std::vector<std::vector<int32_t>>{{1, 2}, {3, 5}}, 5),
                       "MarkovBaseline: sequence 1 has item 5, outside 1..4", std::out_of_range);
  CHECK_THROWS_WITH_AS(MarkovBaseline(std::vector<std::vector<int32_t>>{{0, 1}}, 5),
                       "MarkovBaseline: sequence 0 has item 0, outside 1..4", std::out_of_range);
  CHECK_THROWS_WITH_AS(MarkovBaseline(good, 5, {.order = 0}), "MarkovBaseline: order must be >= 1, got 0",
                       std::invalid_argument);
  CHECK_THROWS_AS(MarkovBaseline(good, 5, {.gap_exponent = -1.0}), std::invalid_argument);
  CHECK_THROWS_AS(MarkovBaseline(good, 5, {.gap_exponent = std::numeric_limits<double>::quiet_NaN()}),
                  std::invalid_argument);
  CHECK_THROWS_AS(MarkovBaseline(good, 0), std::invalid_argument);

  MarkovBaseline markov(good, 5);
  std::vector<float> scores(5), short_scores(4);
  CHECK_THROWS_WITH_AS(markov.score(std::vector<int32_t>{1, 7}, scores),
                       "MarkovBaseline: history 0 has item 7, outside 0..4", std::out_of_range);
  CHECK_THROWS_AS(markov.score(std::vector<int32_t>{1}, short_scores), std::invalid_argument);
  const std::vector<int32_t> fine = {1, 2}, bad = {-1};
  const std::vector<std::span<const int32_t>> histories = {fine, bad};
  CHECK_THROWS_WITH_AS(markov.scores(histories), "MarkovBaseline: history 1 has item -1, outside 0..4",
                       std::out_of_range);
  CHECK(markov.scores({}).shape() == Shape{0, 5});
}

}  // namespace test_baselines
