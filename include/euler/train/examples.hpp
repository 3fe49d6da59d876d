// euler/train/examples.hpp: the training examples of one epoch, and how a batch of them becomes the
// model's input (ids) and the loss's targets.
//
// Split::train(u) is a user's sequence without its last two items. Per backbone and objective:
//   SASRec, objective last  one example per prefix: history train[max(0, t-N) .. t), target train[t]
//   SASRec, objective all   one window per user: the last N+1 items give ids and next-item targets;
//                           with all_windows, also the windows before it, so that a user longer than
//                           N + 1 items is trained on the whole history each epoch (window_ends())
//   BERT4Rec                one window per user: the last N items, a mask_ratio share of positions
//                           (at least one) replaced by the mask token and predicted
// The rows themselves follow data/rows.hpp, the rule evaluation and `euler grad` use too.
//
//     std::vector<euler::Example> examples = euler::training_examples(config, sequences, false);
//     rng.shuffle(examples);
//     euler::fill_batch(config, sequences, std::span(examples).first(B), rng, ids, targets);
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "euler/core/random.hpp"
#include "euler/core/tensor.hpp"
#include "euler/data/rows.hpp"
#include "euler/model/config.hpp"

namespace euler {

struct Example {
  int32_t user;
  int32_t end;  // objective last: the target's index in train(user); all: one past its window's last item
};

// Every example of an epoch, user by user, in order (the trainer shuffles them).
inline std::vector<Example> training_examples(const EulerFormerConfig& c, std::span<const std::span<const int32_t>> sequences,
                                              bool all_windows) {
  std::vector<Example> examples;
  const bool per_prefix = c.backbone == Backbone::sasrec && c.objective == Objective::last;
  for (size_t u = 0; u < sequences.size(); ++u) {
    const int32_t length = int32_t(sequences[u].size());
    if (per_prefix) {
      for (int32_t end = 1; end < length; ++end) examples.push_back({int32_t(u), end});
    } else if (c.backbone == Backbone::bert4rec) {
      if (length >= 2) examples.push_back({int32_t(u), length});
    } else {
      for (int32_t end : window_ends(length, int32_t(c.max_len), all_windows)) examples.push_back({int32_t(u), end});
    }
  }
  return examples;
}

// ids [B, N] and targets ([B, N] per position, [B] for objective last) of one batch; BERT4Rec draws
// its masks from rng.
inline void fill_batch(const EulerFormerConfig& c, std::span<const std::span<const int32_t>> sequences, std::span<const Example> batch,
                       Rng& rng, TensorView<int32_t> ids, TensorView<int32_t> targets) {
  const int64_t N = c.max_len;
  std::fill(ids.begin(), ids.end(), 0);
  std::fill(targets.begin(), targets.end(), 0);
  for (size_t b = 0; b < batch.size(); ++b) {
    std::span<const int32_t> seq = sequences[size_t(batch[b].user)];
    int32_t* row = ids.data + int64_t(b) * N;
    if (c.backbone == Backbone::bert4rec) {  // the last N items, each masked with probability mask_ratio
      const int64_t keep = fill_history(seq, N, row);
      int32_t* target_row = targets.data + int64_t(b) * N;
      int64_t masked = 0;
      for (int64_t j = 0; j < keep; ++j) {
        if (rng.uniform() < c.mask_ratio) {
          target_row[j] = row[j];
          row[j] = c.mask_token();
          ++masked;
        }
      }
      if (masked == 0) {  // at least one prediction per list
        int64_t j = int64_t(rng.below(uint64_t(keep)));
        target_row[j] = row[j];
        row[j] = c.mask_token();
      }
    } else if (c.objective == Objective::all) {
      fill_window(seq.first(size_t(batch[b].end)), N, row, targets.data + int64_t(b) * N);
    } else {  // one prefix: the N items before `end`, then the item at `end` as the target
      fill_history(seq.first(size_t(batch[b].end)), N, row);
      targets.data[b] = seq[size_t(batch[b].end)];
    }
  }
}

}  // namespace euler
