// euler/train/baselines.hpp: a count-based Markov baseline for full-ranking next-item evaluation,
// much stronger than the most-popular one (popularity_scores in euler/train/metrics.hpp), with no
// training beyond counting.
//
// For every gap g = 1..L it counts how often item b occurs g positions after item a in the training
// sequences, C_g[a][b]. The last L items of a history vote for what comes next, each with its
// conditional frequency at its distance from the end:
//     markov[i] = sum_{g=1..min(L,N)} w_g * C_g[h[N-g]][i] / R_g(h[N-g]),   w_g = 1 / g^gap_exponent
// where h is the history (oldest first, length N) and R_g(a) = sum_b C_g[a][b]. An item a with no
// successor at gap g (R_g(a) = 0) and a padding item 0 in the history vote for nothing.
//
// Scores are ranking keys, not the Markov values: score() orders the items by the pair
// (markov, popularity) and returns each item's level in that order (equal pairs share a level). So
//   - a higher Markov score always ranks higher, however small the difference (no additive
//     tie-break term that float precision could let reorder items);
//   - items with the same Markov score (for example the items never seen after the history, or
//     every item for an empty history) rank by training popularity, the order of popularity_scores;
//   - items equal on both tie, and target_ranks() counts ties against the target, as for any model;
//   - the padding item 0 scores -inf and is never ranked.
// Levels are integers below 2K, exact in float. Markov values are summed in double in the order
// g = 1..L; two items with the same counts get bitwise equal values, but two whose exact sums are
// equal through different counts may differ in the last bit, and then that bit decides, not the
// popularity. markov_scores() gives the Markov values themselves.
//
// Letters: B histories, N history length, K items = the ids 1..K-1 plus the padding id 0 (the model's
// table rows, Dataset::table_rows()), L the order. Counts are stored sparsely, per (g, a) a list of
// (b, count) sorted by b: memory O(L * (K + interactions)), never a dense K x K table. Rows of a batch are
// scored in parallel, each independently, so results are identical for any thread count.
//
//     std::vector<std::span<const int32_t>> train;                 // Split::train(u) for every user
//     euler::MarkovBaseline markov(train, K);                      // L = 10, w_g = 1/g
//     euler::Tensor<float> scores = markov.scores(histories);      // [B, K]
//     euler::RankingMetrics valid({.exclude_history = true});
//     valid.add(scores, targets, histories);
//
// popularity_metrics and markov_metrics give the two baselines' metrics on (history, target) pairs, as
// the trainer reports them beside every model.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "euler/core/parallel.hpp"
#include "euler/core/tensor.hpp"
#include "euler/train/metrics.hpp"

namespace euler {

struct MarkovOptions {
  // The defaults won on ML-1M (ml-1m.std.txt, 5-core, leave-one-out) validation NDCG@10, history
  // excluded, among L in {1, 2, 3, 5, 10} and w_g in {1/g, 1}: 0.155, against 0.135 for L = 1 and
  // 0.021 for popularity. With 1/g, longer histories gain little beyond L = 10 (0.157 at L = 20);
  // with w = 1 they start to lose after L = 5.
  int order = 10;             // L: how many of the last history items vote; typical 5..20
  double gap_exponent = 1.0;  // w_g = 1 / g^gap_exponent for the item g positions back: 1 gives 1/g,
                              // 0 gives every gap the same weight. Within 0..16.
};

class MarkovBaseline {
 public:
  // Counts the gaps 1..L of every training sequence (ids 1..K-1, oldest first).
  // Throws std::out_of_range on an id outside 1..K-1, std::invalid_argument on bad options or K.
  MarkovBaseline(std::span<const std::span<const int32_t>> train_sequences, int64_t items, MarkovOptions options = {})
      : items_(items), options_(options) {
    if (items < 1 || items > kMaxItems)
      throw std::invalid_argument("MarkovBaseline: K must be within 1.." + std::to_string(kMaxItems) + ", got " +
                                  std::to_string(items));
    if (options.order < 1)
      throw std::invalid_argument("MarkovBaseline: order must be >= 1, got " + std::to_string(options.order));
    if (!(options.gap_exponent >= 0.0 && options.gap_exponent <= 16.0))
      throw std::invalid_argument("MarkovBaseline: gap_exponent must be within 0..16, got " +
                                  std::to_string(options.gap_exponent));
    int64_t interactions = 0;
    for (size_t sequence = 0; sequence < train_sequences.size(); ++sequence) {
      for (int32_t item : train_sequences[sequence])
        if (item < 1 || item >= items)
          throw std::out_of_range("MarkovBaseline: sequence " + std::to_string(sequence) + " has item " +
                                  std::to_string(item) + ", outside 1.." + std::to_string(items - 1));
      interactions += int64_t(train_sequences[sequence].size());
    }
    if (interactions > std::numeric_limits<int32_t>::max())
      throw std::invalid_argument("MarkovBaseline: " + std::to_string(interactions) +
                                  " training interactions, more than int32 counts hold");

    for (int gap = 1; gap <= options.order; ++gap)
      gap_weights_.push_back(1.0 / std::pow(double(gap), options.gap_exponent));
    gaps_.resize(size_t(options.order));
    for (int gap = 1; gap <= options.order; ++gap) count_gap(train_sequences, gap, gaps_[size_t(gap - 1)]);
    count_popularity(train_sequences);
  }

  // The same over owned sequences (e.g. Dataset::sequences in a test).
  MarkovBaseline(const std::vector<std::vector<int32_t>>& train_sequences, int64_t items, MarkovOptions options = {})
      : MarkovBaseline(std::vector<std::span<const int32_t>>(train_sequences.begin(), train_sequences.end()), items,
                       options) {}

  int64_t items() const { return items_; }
  const MarkovOptions& options() const { return options_; }

  // Ranking keys for one history (oldest first; id 0 = padding, skipped): scores [K], see the top of
  // this file. Throws std::out_of_range on an id outside 0..K-1, std::invalid_argument on a wrong size.
  void score(std::span<const int32_t> history, std::span<float> scores) const {
    check_history(history, 0);
    if (int64_t(scores.size()) != items_)
      throw std::invalid_argument("MarkovBaseline::score: " + std::to_string(scores.size()) + " scores for K = " +
                                  std::to_string(items_));
    Workspace workspace(items_);
    score_row(history, scores, workspace);
  }

  // Ranking keys for a batch: [B, K], row b for histories[b]. Rows run in parallel (euler::parallel_for).
  Tensor<float> scores(std::span<const std::span<const int32_t>> histories) const {
    const int64_t rows = int64_t(histories.size());
    for (int64_t row = 0; row < rows; ++row) check_history(histories[size_t(row)], row);  // before the threads
    Tensor<float> out({rows, items_});
    const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 14) / items_);
    parallel_for(rows, grain, [&](int64_t first, int64_t last) {
      Workspace workspace(items_);
      for (int64_t row = first; row < last; ++row)
        score_row(histories[size_t(row)], std::span<float>(out.data() + row * items_, size_t(items_)), workspace);
    });
    return out;
  }

  // The Markov values themselves (no popularity, no levels): markov [K], markov[0] = 0.
  void markov_scores(std::span<const int32_t> history, std::span<double> markov) const {
    check_history(history, 0);
    if (int64_t(markov.size()) != items_)
      throw std::invalid_argument("MarkovBaseline::markov_scores: " + std::to_string(markov.size()) +
                                  " scores for K = " + std::to_string(items_));
    std::fill(markov.begin(), markov.end(), 0.0);
    std::vector<int32_t> touched;
    add_votes(history, markov, touched);
  }

 private:
  static constexpr int64_t kMaxItems = int64_t(1) << 23;  // levels < 2K stay exact in float

  // C_g as compressed rows: the successors of item a at this gap are successors[offsets[a] ..
  // offsets[a + 1]) (sorted ids) with their counts; totals[a] = R_g(a).
  struct GapCounts {
    std::vector<int64_t> offsets;     // [K + 1]
    std::vector<int32_t> successors;  // [distinct (a, b) pairs]
    std::vector<int32_t> counts;      // [distinct (a, b) pairs], each >= 1
    std::vector<int64_t> totals;      // [K]
  };

  // One thread's scratch: the Markov values of the row being scored (zero outside `touched`).
  struct Workspace {
    std::vector<double> markov;    // [K]
    std::vector<int32_t> touched;  // items with a vote in this row
    explicit Workspace(int64_t items) : markov(size_t(items), 0.0) {}
  };

  void check_history(std::span<const int32_t> history, int64_t row) const {
    for (int32_t item : history)
      if (item < 0 || item >= items_)
        throw std::out_of_range("MarkovBaseline: history " + std::to_string(row) + " has item " + std::to_string(item) +
                                ", outside 0.." + std::to_string(items_ - 1));
  }

  void count_gap(std::span<const std::span<const int32_t>> sequences, int gap, GapCounts& out) const {
    const size_t items = size_t(items_);
    // Bucket every pair (a, b) = (s[t], s[t + gap]) by a, then sort each bucket and merge repeats.
    std::vector<int64_t> bucket_start(items + 1, 0);
    for (std::span<const int32_t> s : sequences)
      for (size_t t = 0; t + size_t(gap) < s.size(); ++t) ++bucket_start[size_t(s[t]) + 1];
    for (size_t a = 0; a < items; ++a) bucket_start[a + 1] += bucket_start[a];
    std::vector<int32_t> followers(static_cast<size_t>(bucket_start[items]));  // not size_t(...): clang reads that as a function declaration
    std::vector<int64_t> fill(bucket_start.begin(), bucket_start.end() - 1);
    for (std::span<const int32_t> s : sequences)
      for (size_t t = 0; t + size_t(gap) < s.size(); ++t) followers[size_t(fill[size_t(s[t])]++)] = s[t + size_t(gap)];

    out.offsets.assign(items + 1, 0);
    out.totals.assign(items, 0);
    out.successors.clear();
    out.counts.clear();
    for (size_t a = 0; a < items; ++a) {
      auto first = followers.begin() + bucket_start[a], last = followers.begin() + bucket_start[a + 1];
      std::sort(first, last);
      for (auto run = first; run != last;) {
        auto run_end = std::upper_bound(run, last, *run);
        out.successors.push_back(*run);
        out.counts.push_back(int32_t(run_end - run));
        run = run_end;
      }
      out.totals[a] = int64_t(last - first);
      out.offsets[a + 1] = int64_t(out.successors.size());
    }
  }

  // Training counts per item, and each item's level among the distinct counts (0 = the rarest).
  void count_popularity(std::span<const std::span<const int32_t>> sequences) {
    popularity_.assign(size_t(items_), 0);
    for (std::span<const int32_t> s : sequences)
      for (int32_t item : s) ++popularity_[size_t(item)];
    std::vector<int64_t> distinct(popularity_.begin() + 1, popularity_.end());
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    popularity_levels_ = int64_t(distinct.size());
    popularity_level_.assign(size_t(items_), -std::numeric_limits<float>::infinity());
    for (size_t item = 1; item < size_t(items_); ++item)
      popularity_level_[item] =
          float(std::lower_bound(distinct.begin(), distinct.end(), popularity_[item]) - distinct.begin());
  }

  // markov[b] += w_g * C_g[h[N-g]][b] / R_g(h[N-g]) for g = 1..min(L, N), in that order; appends to
  // `touched` each b whose value was 0 before (every vote is > 0).
  void add_votes(std::span<const int32_t> history, std::span<double> markov, std::vector<int32_t>& touched) const {
    const size_t length = history.size();
    for (size_t gap = 1; gap <= gaps_.size() && gap <= length; ++gap) {
      const int32_t voter = history[length - gap];
      const GapCounts& counts = gaps_[gap - 1];
      if (voter == 0 || counts.totals[size_t(voter)] == 0) continue;
      const double per_count = gap_weights_[gap - 1] / double(counts.totals[size_t(voter)]);
      for (int64_t e = counts.offsets[size_t(voter)]; e < counts.offsets[size_t(voter) + 1]; ++e) {
        const int32_t next = counts.successors[size_t(e)];
        if (markov[size_t(next)] == 0.0) touched.push_back(next);
        markov[size_t(next)] += per_count * double(counts.counts[size_t(e)]);
      }
    }
  }

  // Levels of (markov, popularity): items without a vote keep their popularity level (0..P-1); the
  // voted ones, sorted by the pair, take P, P+1, ... (equal pairs share a level).
  void score_row(std::span<const int32_t> history, std::span<float> scores, Workspace& workspace) const {
    std::vector<double>& markov = workspace.markov;
    std::vector<int32_t>& touched = workspace.touched;
    touched.clear();
    add_votes(history, markov, touched);
    std::copy(popularity_level_.begin(), popularity_level_.end(), scores.begin());
    auto below = [&](int32_t x, int32_t y) {
      if (markov[size_t(x)] != markov[size_t(y)]) return markov[size_t(x)] < markov[size_t(y)];
      return popularity_[size_t(x)] < popularity_[size_t(y)];
    };
    std::sort(touched.begin(), touched.end(), [&](int32_t x, int32_t y) { return below(x, y) || (!below(y, x) && x < y); });
    int64_t level = popularity_levels_;
    for (size_t k = 0; k < touched.size(); ++k) {
      if (k > 0 && below(touched[k - 1], touched[k])) ++level;
      scores[size_t(touched[k])] = float(level);
    }
    for (int32_t item : touched) markov[size_t(item)] = 0.0;
  }

  int64_t items_;                        // K
  MarkovOptions options_;
  std::vector<double> gap_weights_;      // [L] w_g
  std::vector<GapCounts> gaps_;          // [L] C_g
  std::vector<int64_t> popularity_;      // [K] training counts
  std::vector<float> popularity_level_;  // [K] level among distinct counts; -inf for the padding 0
  int64_t popularity_levels_ = 0;        // P: distinct counts among the items 1..K-1
};

// The metrics of the most-popular baseline (training counts, the same list for everyone) on
// (history, target) pairs; history items leave the ranking when `options` say so.
inline RankingMetrics popularity_metrics(std::span<const std::span<const int32_t>> train, int64_t items,
                                         std::span<const std::span<const int32_t>> histories, std::span<const int32_t> targets,
                                         const RankingOptions& options) {
  std::vector<float> pop = popularity_scores(train, items);
  RankingMetrics metrics(options);
  for (size_t first = 0; first < targets.size(); first += 1024) {
    size_t count = std::min<size_t>(1024, targets.size() - first);
    Tensor<float> scores({int64_t(count), int64_t(pop.size())});
    for (size_t r = 0; r < count; ++r) std::copy(pop.begin(), pop.end(), scores.data() + r * pop.size());
    auto excluded = options.exclude_history ? histories.subspan(first, count) : std::span<const std::span<const int32_t>>{};
    metrics.add_ranks(target_ranks(scores.view(), targets.subspan(first, count), excluded));
  }
  return metrics;
}

// The metrics of the Markov baseline (MarkovBaseline with the default options) on the same pairs.
inline RankingMetrics markov_metrics(std::span<const std::span<const int32_t>> train, int64_t items,
                                     std::span<const std::span<const int32_t>> histories, std::span<const int32_t> targets,
                                     const RankingOptions& options) {
  MarkovBaseline markov(train, items);
  RankingMetrics metrics(options);
  for (size_t first = 0; first < histories.size(); first += 1024) {
    size_t count = std::min<size_t>(1024, histories.size() - first);
    Tensor<float> scores = markov.scores(histories.subspan(first, count));
    metrics.add(scores.view(), targets.subspan(first, count), histories.subspan(first, count));
  }
  return metrics;
}

}  // namespace euler
