// euler/data/batch_file.hpp: the plain-text batch files of `euler grad` and `euler recommend`.
//
// One list per line: item ids in time order, separated by spaces or tabs; for `euler grad` the last
// id on each line is the target. Blank lines and lines starting with '#' are skipped. Every problem
// is a DataError naming the file, the line and what is wrong (non-numeric field, id out of range or
// overflowing, a list too short, binary data, ...).
//
//     auto lists = euler::read_id_lists("batch.txt", /*max_id=*/3416, /*min_length=*/2);
//     auto [ids, targets] = euler::make_grad_batch(lists, config);    // right-padded [B, N] + targets
#pragma once

#include <charconv>
#include <string>
#include <vector>

#include "euler/core/tensor.hpp"
#include "euler/data/data_error.hpp"
#include "euler/data/interactions.hpp"
#include "euler/data/rows.hpp"
#include "euler/io/atomic_file.hpp"
#include "euler/model/config.hpp"

namespace euler {

// Parse a base-10 id in [lo, hi]; on failure throw DataError "where: what" (the field quoted, at
// most 48 bytes of it, bytes that are not UTF-8 escaped).
inline int64_t parse_id(std::string_view field, int64_t lo, int64_t hi, const std::string& where) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
  if (ec == std::errc::result_out_of_range && end == field.data() + field.size())
    throw DataError(where + ": id " + data_detail::quote(field) + " overflows (ids are " + std::to_string(lo) + ".." +
                    std::to_string(hi) + ")");
  if (ec != std::errc() || end != field.data() + field.size())
    throw DataError(where + ": " + data_detail::quote(field) + " is not an integer id");
  if (value < lo || value > hi)
    throw DataError(where + ": id " + std::to_string(value) + " is outside " + std::to_string(lo) + ".." + std::to_string(hi));
  return value;
}

// Lists of ids in [1, max_id], one per non-blank line, each at least `min_length` ids long. The text
// rules of interactions.hpp apply: a UTF-8 byte-order mark, CRLF line ends and trailing blanks are
// accepted; UTF-16, NUL bytes and CR-only line ends are refused. Exact duplicate lines are kept
// (each is a list). Throws DataError "file:line: problem", or IoError when the file cannot be read.
// parse_id_lists does the same on text in memory (`path` names it in messages).
inline std::vector<std::vector<int32_t>> parse_id_lists(std::string_view bytes, const std::string& path, int64_t max_id,
                                                        size_t min_length = 1) {
  if (bytes.empty()) throw DataError(path + ": empty file (no lists)");
  std::string_view text = data_detail::check_text(bytes, path);
  std::vector<std::vector<int32_t>> lists;
  data_detail::LineReader lines(text);
  std::string_view line, field;
  while (lines.next(line)) {
    size_t pos = 0;
    std::vector<int32_t> list;
    std::string where = path + ":" + std::to_string(lines.number());
    while (data_detail::next_word(line, pos, field)) {
      if (list.empty() && field[0] == '#') break;
      list.push_back(int32_t(parse_id(field, 1, max_id, where)));
    }
    if (list.empty()) continue;  // a comment
    if (list.size() < min_length)
      throw DataError(where + ": " + std::to_string(list.size()) + " id" + (list.size() == 1 ? "" : "s") +
                      ", but a list needs at least " + std::to_string(min_length) +
                      (min_length == 2 ? " (history items, then the target)" : ""));
    lists.push_back(std::move(list));
  }
  if (lists.empty()) throw DataError(path + ": no lists in the file (only blank lines and '#' comments)");
  return lists;
}
inline std::vector<std::vector<int32_t>> read_id_lists(const std::string& path, int64_t max_id, size_t min_length = 1) {
  return parse_id_lists(read_file(path), path, max_id, min_length);
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
    std::span<const int32_t> history(list.data(), list.size() - 1);
    if (c.backbone == Backbone::bert4rec) {
      g.targets.data()[b * N + fill_masked(history, N, c.mask_token(), ids)] = list.back();
    } else if (c.objective == Objective::all) {
      fill_window(list, N, ids, g.targets.data() + b * N);
    } else {
      fill_history(history, N, ids);
      g.targets.data()[b] = list.back();
    }
  }
  return g;
}

}  // namespace euler
