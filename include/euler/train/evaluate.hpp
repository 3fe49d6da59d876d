// euler/train/evaluate.hpp: a trained model at work: full-ranking metrics over many users
// (evaluate), the top k items after one history (recommend), and the per-user ranks table of
// `euler eval --ranks` and a run's ranks.tsv (ranks_table). No gradients are recorded.
//
// Scores are computed for the last N items of each history (right-padded, fill_histories), in
// batches. A ranking needs finite scores: evaluate counts the rows with a NaN or +inf (the trainer
// stops, or ranks them last, by its on_nonfinite option) and recommend refuses them.
//
//     euler::RankingMetrics m = euler::evaluate(model, histories, targets, {.exclude_history = true});
//     auto top = euler::recommend(model, history, 10, /*exclude_history=*/true);  // {(item, score), ...}
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "euler/check/finite.hpp"
#include "euler/data/dataset.hpp"
#include "euler/data/rows.hpp"
#include "euler/model/model.hpp"
#include "euler/train/metrics.hpp"

namespace euler {

// A NaN or inf where a number was needed: a training step (the message names the epoch, the step and
// the op that produced it) or the scores of a ranking.
class NonFiniteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Right-padded [B, N] ids of the last N items of each history (all-padding rows for empty ones).
inline void fill_histories(std::span<const std::span<const int32_t>> histories, int64_t N, int32_t* ids /*[B, N]*/) {
  for (size_t b = 0; b < histories.size(); ++b) {
    fill_history(histories[b], N, ids + int64_t(b) * N);
  }
}

// Rows whose scores hold a NaN or +inf, which make a ranking meaningless (-inf only puts an item
// last; a NaN target is ranked last), and the first non-finite value of the first such batch.
struct UnusableScores {
  int64_t rows = 0;
  NonFinite first;
};

// Full-ranking metrics of a model on (history, target) pairs, batched, without recording gradients.
// `unusable`, when given, counts the rows whose scores hold a NaN or +inf. `ranks`, when given,
// receives every row's target rank (1 = best) in row order, for per-user and paired comparisons.
template <class T>
RankingMetrics evaluate(const EulerFormer<T>& model, std::span<const std::span<const int32_t>> histories,
                        std::span<const int32_t> targets, const RankingOptions& options, int batch = 1024,
                        UnusableScores* unusable = nullptr, std::vector<int64_t>* ranks = nullptr) {
  RankingMetrics metrics(options);
  if (ranks) ranks->clear();
  int64_t N = model.config().max_len;
  Tape<T> tape;
  Rng unused(0);
  Context<T> ctx{tape, model.parameters(), /*dropout_on=*/false, unused};
  Tensor<int32_t> ids = Tensor<int32_t>::zeros({std::clamp<int64_t>(int64_t(histories.size()), 1, batch), N});
  Tensor<float> scores;
  for (size_t first = 0; first < histories.size(); first += size_t(batch)) {
    size_t count = std::min(histories.size() - first, size_t(batch));
    tape.reset();
    NoGrad<T> no_grad(tape);
    fill_histories(histories.subspan(first, count), N, ids.data());
    TensorView<const int32_t> idv{Shape{int64_t(count), N}, ids.data()};
    TensorView<T> s = model.score(ctx, idv).value();  // [count, K]
    for (int64_t row = 0; unusable && row < s.shape[0]; ++row) {
      const T* r = s.data + row * s.shape[1];
      bool bad = std::any_of(r, r + s.shape[1], [](T x) { return std::isnan(x) || x == std::numeric_limits<T>::infinity(); });
      if (bad && unusable->rows++ == 0) unusable->first = first_nonfinite_value(tape);
    }
    TensorView<const float> sf;
    if constexpr (std::is_same_v<T, float>) {
      sf = {s.shape, s.data};
    } else {
      scores = Tensor<float>(s.shape);
      for (int64_t i = 0; i < s.numel(); ++i) scores[i] = float(s[i]);
      sf = {scores.shape(), scores.data()};
    }
    auto excluded = options.exclude_history ? histories.subspan(first, count) : std::span<const std::span<const int32_t>>{};
    std::vector<int64_t> batch_ranks = target_ranks(sf, targets.subspan(first, count), excluded);
    metrics.add_ranks(batch_ranks);
    if (ranks) ranks->insert(ranks->end(), batch_ranks.begin(), batch_ranks.end());
  }
  return metrics;
}

// The k items a model scores highest after `history` (item ids, oldest first), best first, ties by
// id; with exclude_history, items of the history are left out. Scores holding NaN or inf (weights that
// overflow on this history) are a NonFiniteError: they have no order.
template <class T>
std::vector<std::pair<int32_t, T>> recommend(const EulerFormer<T>& model, std::span<const int32_t> history, int64_t k,
                                             bool exclude_history) {
  const int64_t N = model.config().max_len, K = model.config().n_items;
  Tensor<int32_t> ids = Tensor<int32_t>::zeros({1, N});
  fill_histories(std::span<const std::span<const int32_t>>(&history, 1), N, ids.data());
  Tape<T> tape;
  NoGrad<T> no_grad(tape);
  Rng unused(0);
  Context<T> ctx{tape, model.parameters(), /*dropout_on=*/false, unused};
  TensorView<T> scores = model.score(ctx, ids.view()).value();  // [1, K]
  if (int64_t bad = first_nonfinite_index(scores.data, scores.numel()); bad >= 0)
    throw NonFiniteError("the scores hold a non-finite number (item " + std::to_string(bad) + ": " + std::to_string(double(scores[bad])) +
                         "): the weights overflow on this history");
  std::vector<uint8_t> excluded(size_t(K), 0);
  if (exclude_history)
    for (int32_t i : history) excluded[size_t(i)] = 1;
  std::vector<int32_t> candidates;
  for (int32_t i = 1; i < K; ++i)
    if (!excluded[size_t(i)]) candidates.push_back(i);
  size_t top = size_t(std::clamp<int64_t>(k, 0, int64_t(candidates.size())));
  std::partial_sort(candidates.begin(), candidates.begin() + std::ptrdiff_t(top), candidates.end(),
                    [&](int32_t a, int32_t b) { return scores[a] > scores[b] || (scores[a] == scores[b] && a < b); });
  std::vector<std::pair<int32_t, T>> best;
  for (size_t i = 0; i < top; ++i) best.emplace_back(candidates[i], scores[candidates[i]]);
  return best;
}

// Each user's validation and test rank as a tab-separated table (user, valid_rank, test_rank), the
// file `euler eval --ranks` and a run's ranks.tsv hold, for paired comparisons of two models.
inline std::string ranks_table(const Dataset& data, std::span<const int32_t> users, std::span<const int64_t> valid_ranks,
                               std::span<const int64_t> test_ranks) {
  std::string table = "user\tvalid_rank\ttest_rank\n";
  for (size_t i = 0; i < users.size(); ++i)
    table += data.user_token(users[i]) + "\t" + std::to_string(valid_ranks[i]) + "\t" + std::to_string(test_ranks[i]) + "\n";
  return table;
}

}  // namespace euler
