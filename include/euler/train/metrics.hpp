// euler/train/metrics.hpp: full-ranking evaluation for next-item recommendation (HR, NDCG, MRR @ K).
//
// Every row of a score matrix ranks all items against the row's one target item (no sampled
// negatives), as in the paper's protocol and RecBole's full-sort evaluation. Letters: B rows (users),
// K score columns = the items 1..K-1 plus column 0, the padding item, which is never ranked.
//
// The rank of a target (1 = best) is the number of candidate items whose score is NOT below the
// target's, the target included:
//     rank = 1 + #{candidates j != target : !(score[j] < score[target])}
// That one comparison fixes every special case, each in the target's disfavour:
//   - ties are broken pessimistically: an item scoring exactly the target's score ranks ahead of it,
//     whatever its id (a model scoring every item alike gets the worst rank, not the best);
//   - a NaN score on another item ranks that item ahead of the target (torch.topk, and so RecBole,
//     also puts NaN first);
//   - a NaN target score gives the worst rank of the row, the number of candidates (K - 1 without
//     exclusion).
// Candidates are the items 1..K-1, minus the row's history when exclusion is on. Exclusion is OFF by
// default, as RecBole does for sequential models (it only masks padding); when on, each distinct
// history item other than the target is removed from the row's candidates. The target is never
// excluded, even when it occurs in the history (a repeat consumption still has to be ranked).
//
// Per row, with rank r and cutoff k:  HR@k = [r <= k] (= Recall@k, one target per row),
// NDCG@k = [r <= k] / log2(r + 1),  MRR@k = [r <= k] / r;  each averaged over rows.
//
// Rows are ranked in parallel; ranks are integers and RankingMetrics keeps only a histogram of them,
// so every result is identical for any thread count and any order of add() calls.
//
//     euler::RankingMetrics valid;                                // cutoffs 5, 10, 20; no exclusion
//     for (each batch) valid.add(scores, targets);                // scores [B, K] float, targets [B]
//     double ndcg10 = valid.value("ndcg@10");
//     nlohmann::json j = valid.to_json("valid");                  // {"valid_hr@10": ..., "valid_count": ...}
//
//     auto pop = euler::popularity_scores(train_sequences, K);    // the most-popular baseline: the
//                                                                  // same [K] scores on every row
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "euler/core/parallel.hpp"
#include "euler/core/tensor.hpp"

namespace euler {

// ---- per-row metrics of a rank ----
inline double hit_at(int64_t rank, int64_t k) { return rank <= k ? 1.0 : 0.0; }
inline double ndcg_at(int64_t rank, int64_t k) { return rank <= k ? 1.0 / std::log2(double(rank) + 1.0) : 0.0; }
inline double mrr_at(int64_t rank, int64_t k) { return rank <= k ? 1.0 / double(rank) : 0.0; }

// The rank (1 = best) of each row's target among the row's candidates; see the top of this file.
//   scores    [B, K]  row-major; column 0 (padding) is ignored
//   targets   [B]     item ids in 1..K-1
//   excluded  [B] lists or empty: items to drop from each row's candidates (history exclusion);
//                     id 0 (padding) is skipped, the target is never dropped, duplicates count once.
// Throws std::invalid_argument on bad shapes and std::out_of_range on an id outside the items.
inline std::vector<int64_t> target_ranks(TensorView<const float> scores, std::span<const int32_t> targets,
                                         std::span<const std::span<const int32_t>> excluded = {}) {
  require(scores.rank() == 2, "target_ranks", "scores must be [B, K], got " + scores.shape.str());
  const int64_t rows = scores.size(0), items = scores.size(1);
  if (int64_t(targets.size()) != rows)
    throw std::invalid_argument("target_ranks: " + std::to_string(targets.size()) + " targets for " +
                                std::to_string(rows) + " score rows");
  if (!excluded.empty() && int64_t(excluded.size()) != rows)
    throw std::invalid_argument("target_ranks: " + std::to_string(excluded.size()) + " histories for " +
                                std::to_string(rows) + " score rows");
  // Validate every id before the parallel loop (an exception thrown on a pool thread would end the program).
  for (int64_t row = 0; row < rows; ++row) {
    const int32_t target = targets[size_t(row)];
    if (target < 1 || target >= items)
      throw std::out_of_range("target_ranks: row " + std::to_string(row) + " has target " + std::to_string(target) +
                              ", outside the items 1.." + std::to_string(items - 1));
    if (excluded.empty()) continue;
    for (int32_t item : excluded[size_t(row)])
      if (item < 0 || item >= items)
        throw std::out_of_range("target_ranks: row " + std::to_string(row) + " excludes item " + std::to_string(item) +
                                ", outside 0.." + std::to_string(items - 1));
  }

  std::vector<int64_t> ranks(size_t(rows), 0);
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 15) / std::max<int64_t>(1, items));
  parallel_for(rows, grain, [&](int64_t first, int64_t last) {
    std::vector<int32_t> dropped;  // this row's distinct excluded items, target and padding removed
    for (int64_t row = first; row < last; ++row) {
      const float* score = scores.data + row * items;  // [K]
      const int32_t target = targets[size_t(row)];
      const float target_score = score[target];
      // Counts the target itself (or, when its score is NaN, every candidate).
      int64_t not_below = 0;
      for (int64_t j = 1; j < items; ++j) not_below += !(score[j] < target_score);
      if (!excluded.empty()) {
        dropped.clear();
        for (int32_t item : excluded[size_t(row)])
          if (item != 0 && item != target) dropped.push_back(item);
        std::sort(dropped.begin(), dropped.end());
        dropped.erase(std::unique(dropped.begin(), dropped.end()), dropped.end());
        for (int32_t item : dropped) not_below -= !(score[item] < target_score);
      }
      ranks[size_t(row)] = not_below;
    }
  });
  return ranks;
}

// The k of a metric name: "ndcg@10" -> 10. Names are hr, recall (the same with one target), ndcg or
// mrr, then @k with k >= 1; anything else is std::invalid_argument naming the name.
inline int metric_cutoff(std::string_view name) {
  const size_t at = name.find('@');
  const std::string_view metric = name.substr(0, at);
  int k = 0;
  bool k_ok = false;
  if (at != std::string_view::npos) {
    const char* first = name.data() + at + 1;
    const char* last = name.data() + name.size();
    auto [end, error] = std::from_chars(first, last, k);
    k_ok = error == std::errc() && end == last && k >= 1 && k <= (1 << 20);
  }
  if (!(metric == "hr" || metric == "recall" || metric == "ndcg" || metric == "mrr") || !k_ok)
    throw std::invalid_argument("unknown metric \"" + std::string(name) + "\" (expected hr@k, recall@k, ndcg@k or mrr@k)");
  return k;
}

struct RankingOptions {
  std::vector<int> cutoffs = {5, 10, 20};  // the K of HR@K, NDCG@K, MRR@K reported by to_json()
  bool exclude_history = false;            // drop each row's history items from its candidates
                                           // (off: RecBole's default for sequential models)
};

// Accumulates ranks over batches and reports the averaged metrics.
class RankingMetrics {
 public:
  explicit RankingMetrics(RankingOptions options = {}) : options_(std::move(options)) {
    auto& cutoffs = options_.cutoffs;
    std::sort(cutoffs.begin(), cutoffs.end());
    cutoffs.erase(std::unique(cutoffs.begin(), cutoffs.end()), cutoffs.end());
    if (cutoffs.empty() || cutoffs.front() < 1 || cutoffs.back() > kMaxCutoff)
      throw std::invalid_argument("RankingMetrics: cutoffs must be non-empty and within 1.." +
                                  std::to_string(kMaxCutoff));
    rank_counts_.assign(size_t(cutoffs.back()) + 1, 0);
  }

  const RankingOptions& options() const { return options_; }
  int max_cutoff() const { return options_.cutoffs.back(); }

  // Ranks computed elsewhere (each >= 1).
  void add_ranks(std::span<const int64_t> ranks) {
    for (int64_t rank : ranks)
      if (rank < 1) throw std::invalid_argument("RankingMetrics::add_ranks: rank " + std::to_string(rank) + " < 1");
    for (int64_t rank : ranks)
      if (rank < int64_t(rank_counts_.size())) ++rank_counts_[size_t(rank)];
    count_ += int64_t(ranks.size());
  }

  // Rank a batch and add it. scores [B, K], targets [B], histories [B] (each row's history items).
  // Histories are used only when options().exclude_history is on, and are required then.
  void add(TensorView<const float> scores, std::span<const int32_t> targets,
           std::span<const std::span<const int32_t>> histories = {}) {
    if (options_.exclude_history && histories.empty() && !targets.empty())
      throw std::invalid_argument("RankingMetrics::add: exclude_history is on but no histories were given");
    std::vector<int64_t> ranks = target_ranks(scores, targets, options_.exclude_history ? histories
                                                                                        : std::span<const std::span<const int32_t>>{});
    add_ranks(ranks);
  }

  // Add another accumulator's rows (same cutoffs).
  void merge(const RankingMetrics& other) {
    if (other.options_.cutoffs != options_.cutoffs)
      throw std::invalid_argument("RankingMetrics::merge: different cutoffs");
    for (size_t r = 0; r < rank_counts_.size(); ++r) rank_counts_[r] += other.rank_counts_[r];
    count_ += other.count_;
  }

  void reset() {
    std::fill(rank_counts_.begin(), rank_counts_.end(), 0);
    count_ = 0;
  }

  // Rows added so far.
  int64_t count() const { return count_; }

  // "hr@10", "recall@10" (the same), "ndcg@10" or "mrr@10", for any k in 1..max_cutoff(); 0 before
  // any row was added (count() tells the two apart).
  double value(std::string_view name) const {
    int64_t k = 0;  // metric_cutoff parses the name; here k must also be one this accumulator counts
    try {
      k = metric_cutoff(name);
    } catch (const std::invalid_argument&) {
    }
    if (k < 1 || k > max_cutoff())
      throw std::invalid_argument("RankingMetrics::value: unknown metric \"" + std::string(name) +
                                  "\" (expected hr@k, recall@k, ndcg@k or mrr@k with k in 1.." +
                                  std::to_string(max_cutoff()) + ")");
    const std::string_view metric = name.substr(0, name.find('@'));
    double (*per_row)(int64_t, int64_t) = metric == "ndcg" ? ndcg_at : metric == "mrr" ? mrr_at : hit_at;
    if (count_ == 0) return 0.0;
    double sum = 0;
    for (int64_t rank = 1; rank <= k; ++rank) sum += double(rank_counts_[size_t(rank)]) * per_row(rank, k);
    return sum / double(count_);
  }

  // {"<prefix>_hr@5": ..., "<prefix>_ndcg@5": ..., "<prefix>_mrr@5": ..., ... , "<prefix>_count": B}
  // for every cutoff; without the "<prefix>_" when the prefix is empty.
  nlohmann::json to_json(const std::string& prefix = "") const {
    const std::string head = prefix.empty() ? "" : prefix + "_";
    nlohmann::json out = nlohmann::json::object();
    for (int k : options_.cutoffs)
      for (const char* metric : {"hr", "ndcg", "mrr"}) {
        const std::string name = std::string(metric) + "@" + std::to_string(k);
        out[head + name] = value(name);
      }
    out[head + "count"] = count_;
    return out;
  }

 private:
  static constexpr int kMaxCutoff = 1 << 20;

  RankingOptions options_;
  std::vector<int64_t> rank_counts_;  // [max cutoff + 1] rows whose target had rank r; deeper ranks only in count_
  int64_t count_ = 0;
};

namespace metrics_detail {
template <class Sequences>
std::vector<float> popularity_scores(const Sequences& train_sequences, int64_t items) {
  if (items < 1) throw std::invalid_argument("popularity_scores: K must be >= 1, got " + std::to_string(items));
  std::vector<float> scores(size_t(items), 0.0f);
  for (size_t user = 0; user < train_sequences.size(); ++user)
    for (int32_t item : train_sequences[user]) {
      if (item < 1 || item >= items)
        throw std::out_of_range("popularity_scores: sequence " + std::to_string(user) + " has item " +
                                std::to_string(item) + ", outside 1.." + std::to_string(items - 1));
      scores[size_t(item)] += 1.0f;
    }
  scores[0] = -std::numeric_limits<float>::infinity();
  return scores;
}
}  // namespace metrics_detail

// The most-popular baseline: scores [K] = how often each item occurs in the training sequences,
// -inf for the padding item 0 (counts are exact in float up to 2^24). Every user gets the same row;
// rank it with target_ranks() or add() like a model's scores. Counting only the training part of each sequence keeps the held-out items
// out (the span overload takes Split::train(user) views without copying).
inline std::vector<float> popularity_scores(const std::vector<std::vector<int32_t>>& train_sequences, int64_t items) {
  return metrics_detail::popularity_scores(train_sequences, items);
}
inline std::vector<float> popularity_scores(std::span<const std::span<const int32_t>> train_sequences, int64_t items) {
  return metrics_detail::popularity_scores(train_sequences, items);
}

}  // namespace euler
