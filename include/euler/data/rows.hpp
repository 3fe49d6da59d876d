// euler/data/rows.hpp: how an item list becomes a row of model input, the one rule that training,
// evaluation, `euler grad` and BERT4Rec's scoring share.
//
// A row holds N item ids from position 0 (left-aligned) and is padded with 0 on the right, as RecBole
// builds them; the model reads its output at the last valid position. Three kinds of row:
//
//   fill_history(history, N, ids)          the last N items of a history: what SASRec scores, and one
//                                          per-prefix training example (objective last)
//   fill_window(items, N, ids, targets)    the last N + 1 items as N inputs and the item after each:
//                                          one all-positions training example (objective all), for
//                                          each window end of window_ends
//   fill_masked(history, N, mask, ids)     the last N - 1 items, then the mask token: what BERT4Rec
//                                          scores (returns the mask's position)
//
//     std::vector<int32_t> ids(N);
//     euler::fill_history(user_items, N, ids.data());   // {.., 17, 4, 9, 0, 0} for a short history
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

namespace euler {

// The last N items of `history` into ids[0, N), right-padded with 0. Returns how many were copied.
inline int64_t fill_history(std::span<const int32_t> history, int64_t N, int32_t* ids /*[N]*/) {
  const size_t keep = std::min<size_t>(history.size(), size_t(N));
  std::fill(ids, ids + N, 0);
  std::copy(history.end() - std::ptrdiff_t(keep), history.end(), ids);
  return int64_t(keep);
}

// The all-positions objective's windows over a training sequence of `length` items: the end (one past
// the last item) of each window of up to N + 1 items, latest first. Window [end - N - 1, end) gives N
// inputs and their next items as targets, so consecutive windows (ends N apart) predict every item
// after the first exactly once. `all` false: only the last window, as SASRec and RecBole train.
//     window_ends(450, 200, true) == {450, 250, 50};  window_ends(450, 200, false) == {450}
inline std::vector<int32_t> window_ends(int32_t length, int32_t N, bool all) {
  std::vector<int32_t> ends;
  for (int32_t end = length; end >= 2; end -= N) {
    ends.push_back(end);
    if (!all) break;
  }
  return ends;
}

// One all-positions example: the last N + 1 of `items` (a sequence cut at a window's end) as up to N
// inputs ids [N] and their next items targets [N], from position 0; the rest of both rows is padding 0.
inline void fill_window(std::span<const int32_t> items, int64_t N, int32_t* ids /*[N]*/, int32_t* targets /*[N]*/) {
  std::span<const int32_t> window = items.last(std::min<size_t>(items.size(), size_t(N) + 1));
  std::fill(ids, ids + N, 0);
  std::fill(targets, targets + N, 0);
  for (size_t j = 0; j + 1 < window.size(); ++j) {
    ids[j] = window[j];
    targets[j] = window[j + 1];
  }
}

// The last N - 1 items of `history`, then `mask` (BERT4Rec predicts the item at the mask), right-padded
// with 0. Returns the mask's position (N - 1 when the history fills the row).
inline int64_t fill_masked(std::span<const int32_t> history, int64_t N, int32_t mask, int32_t* ids /*[N]*/) {
  const int64_t at = fill_history(history.last(std::min<size_t>(history.size(), size_t(N - 1))), N, ids);
  ids[at] = mask;
  return at;
}

}  // namespace euler
