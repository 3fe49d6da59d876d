// euler/data/batch_file.hpp: the plain-text batch files of `euler grad` and `euler recommend`.
//
// One list per line: item ids in time order, space-separated; for `euler grad` the last id on each
// line is the target. Blank lines and lines starting with '#' are skipped. Every problem is a
// DataError naming the file, the line and what is wrong (non-numeric field, id out of range, ...).
//
//     auto lists = euler::read_id_lists("batch.txt", /*max_id=*/3416);
//     auto [ids, targets] = euler::make_grad_batch(lists, config);    // right-padded [B, N] + targets
#pragma once

#include <charconv>
#include <sstream>
#include <string>
#include <vector>

#include "euler/core/tensor.hpp"
#include "euler/data/data_error.hpp"
#include "euler/io/atomic_file.hpp"
#include "euler/model/config.hpp"

namespace euler {

// Parse a base-10 id in [lo, hi]; on failure throw DataError "where: what".
inline int64_t parse_id(std::string_view field, int64_t lo, int64_t hi, const std::string& where) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
  if (ec == std::errc::result_out_of_range) throw DataError(where + ": id '" + std::string(field) + "' overflows");
  if (ec != std::errc() || end != field.data() + field.size())
    throw DataError(where + ": '" + std::string(field) + "' is not an integer id");
  if (value < lo || value > hi)
    throw DataError(where + ": id " + std::to_string(value) + " is outside " + std::to_string(lo) + ".." + std::to_string(hi));
  return value;
}

// Lists of ids in [1, max_id], one per non-empty line.
inline std::vector<std::vector<int32_t>> read_id_lists(const std::string& path, int64_t max_id) {
  std::string text = read_file(path);
  std::vector<std::vector<int32_t>> lists;
  std::istringstream in(text);
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::istringstream fields(line);
    std::string field;
    std::vector<int32_t> list;
    while (fields >> field) {
      if (list.empty() && field[0] == '#') break;
      list.push_back(int32_t(parse_id(field, 1, max_id, path + ":" + std::to_string(number))));
    }
    if (!list.empty()) lists.push_back(std::move(list));
  }
  if (lists.empty()) throw DataError(path + ": no lists in the file");
  return lists;
}

// Right-padded ids [B, N] and targets for one forward and backward of `euler grad`: each list is the
// history followed by its target. SASRec (objective last): ids = the last N history items, targets
// [B]. SASRec (objective all): the list's last N + 1 items give ids and next-item targets [B, N].
// BERT4Rec: the last N - 1 history items then the mask token, whose target is the list's target.
struct GradBatch {
  Tensor<int32_t> ids, targets;
};
inline GradBatch make_grad_batch(const std::vector<std::vector<int32_t>>& lists, const EulerFormerConfig& c,
                                 const std::string& source) {
  int64_t B = int64_t(lists.size()), N = c.max_len;
  bool per_position = c.backbone == Backbone::bert4rec || c.objective == Objective::all;
  GradBatch g{Tensor<int32_t>::zeros({B, N}), per_position ? Tensor<int32_t>::zeros({B, N}) : Tensor<int32_t>::zeros({B})};
  for (int64_t b = 0; b < B; ++b) {
    const auto& list = lists[size_t(b)];
    if (list.size() < 2)
      throw DataError(source + ": list " + std::to_string(b + 1) + " needs at least one history item and a target");
    int32_t* ids = g.ids.data() + b * N;
    if (c.backbone == Backbone::bert4rec) {
      int64_t keep = std::min<int64_t>(int64_t(list.size()) - 1, N - 1);
      for (int64_t j = 0; j < keep; ++j) ids[j] = list[list.size() - 1 - size_t(keep) + size_t(j)];
      ids[keep] = c.mask_token();
      g.targets.data()[b * N + keep] = list.back();
    } else if (c.objective == Objective::all) {
      int64_t keep = std::min<int64_t>(int64_t(list.size()), N + 1);
      size_t first = list.size() - size_t(keep);
      for (int64_t j = 0; j + 1 < keep; ++j) {
        ids[j] = list[first + size_t(j)];
        g.targets.data()[b * N + j] = list[first + size_t(j) + 1];
      }
    } else {
      int64_t keep = std::min<int64_t>(int64_t(list.size()) - 1, N);
      for (int64_t j = 0; j < keep; ++j) ids[j] = list[list.size() - 1 - size_t(keep) + size_t(j)];
      g.targets.data()[b] = list.back();
    }
  }
  return g;
}

}  // namespace euler
