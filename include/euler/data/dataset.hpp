// euler/data/dataset.hpp: from an interaction file to per-user item sequences with dense ids, and the
// leave-one-out split the trainer and the evaluator read.
//
// build_dataset applies, in this order (the paper's protocol, RecBole's order):
//   0. duplicates (DatasetOptions::dedup, default exact): a row with the user, item and timestamp of
//      an earlier row is dropped, and counted in FilterReport::removed_duplicates.
//   1. the rating threshold: keep rating >= min_rating. Only for files with ratings (ml-1m,
//      ml-100k, and inter/csv with a rating column); a negative or NaN min_rating disables it.
//   2. iterative k-core: drop every row whose user has fewer than min_user_interactions rows or
//      whose item has fewer than min_item_interactions rows, recount, and repeat until a pass drops
//      nothing. Counts are rows, so repeated (user, item) pairs count each time. 0 or 1 = no filter.
//   3. per-user chronological order: a stable sort by timestamp, ties kept in file order; formats
//      without timestamps (pairs, sequences) keep the file order, which is their time order.
//   4. dense ids. Items get 1..K (0 is the padding id of the model's item table, so the table has
//      K + 1 = table_rows() rows); users get 0..U-1, their index in `sequences`. Ids follow the
//      order of the surviving raw tokens: integer tokens first, by value (ties such as "7" and
//      "07" bytewise), then all other tokens bytewise. So the ids depend only on which tokens
//      survive, never on the file order, and files whose ids are already 1..K (S3-Rec) keep them.
// The raw tokens stay available: item_token(id) / item_id(token), user_token(u) / user_id(token).
//
// leave_one_out: a user with n >= 3 interactions has the test target s[n-1] (history s[0..n-2]),
// the validation target s[n-2] (history s[0..n-3]) and the training sequence s[0..n-3]. A user
// with fewer than 3 is kept for training only (the whole sequence; no validation or test target),
// as in SASRec's data_partition. The split holds spans into the dataset, no copies.
//
//     euler::DatasetOptions options = euler::DatasetOptions::paper();   // rating >= 3, 10-core
//     euler::Dataset data = euler::load_dataset("ml-1m/ratings.dat", options);
//     std::puts(data.summary().c_str());
//     euler::Split split = euler::leave_one_out(data);
//     for (int32_t u : split.evaluated_users) evaluate(split.test_history(u), split.test_target(u));
//     std::string original = data.item_token(42);                      // the file's id of item 42
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "euler/data/data_error.hpp"
#include "euler/data/interactions.hpp"

namespace euler {

// Which repeated rows build_dataset drops before the filters (step 0):
//   none         keep every row;
//   exact        rows with the user, item and timestamp of an earlier row (the file's rows doubled,
//                a join gone wrong). Files without timestamps (pairs, sequences) have no exact
//                duplicates: every row is an interaction;
//   consecutive  exact, and a row whose item repeats the user's previous item in time order.
enum class Dedup { none, exact, consecutive };
inline constexpr std::array<std::string_view, 3> dedup_names = {"none", "exact", "consecutive"};
inline Dedup parse_dedup(std::string_view name) {
  for (size_t i = 0; i < dedup_names.size(); ++i)
    if (dedup_names[i] == name) return Dedup(i);
  throw DataError("unknown --dedup '" + std::string(name) + "': expected none, exact or consecutive");
}

struct DatasetOptions {
  Format format = Format::auto_detect;   // or parse_format("ml-1m"), ...
  ColumnNames columns;                   // csv / inter column names
  Dedup dedup = Dedup::exact;            // repeated rows dropped before the filters
  double min_rating = -1;                // keep rating >= this; paper: 3. Negative or NaN: keep all
  int64_t min_user_interactions = 0;     // k-core on users; paper: 10 (Yelp: 40)
  int64_t min_item_interactions = 0;     // k-core on items; paper: 10

  // The paper's protocol: rating >= 3, users and items with >= 10 interactions.
  static DatasetOptions paper() {
    DatasetOptions options;
    options.min_rating = 3;
    options.min_user_interactions = 10;
    options.min_item_interactions = 10;
    return options;
  }
};

// What the filters removed, for the summary and for checking a preprocessing against a paper.
struct FilterReport {
  int64_t rows_read = 0;
  int64_t removed_duplicates = 0;         // by DatasetOptions::dedup
  bool rating_threshold_applied = false;  // false when disabled or the file has no ratings
  int64_t removed_by_rating = 0;
  int64_t removed_by_core = 0;
  int64_t core_rounds = 0;                // k-core passes that removed something

  int64_t rows_kept() const { return rows_read - removed_duplicates - removed_by_rating - removed_by_core; }
  // More than a quarter of the file removed: the dataset trained on is not the file the user named.
  bool removed_most() const { return rows_read > 0 && 4 * (rows_read - rows_kept()) > rows_read; }
};

struct Dataset {
  std::vector<std::vector<int32_t>> sequences;  // [U] item ids (1..K) of user u, oldest first
  int64_t n_users = 0;                          // U
  int64_t n_items = 0;                          // K
  int64_t n_interactions = 0;                   // total length of the sequences
  std::vector<std::string> user_tokens;         // [U] raw id of user u
  std::vector<std::string> item_tokens;         // [K + 1] raw id of item i; [0] = "" (padding)
  TokenIndex user_by_token;                     // raw id -> u
  TokenIndex item_by_token;                     // raw id -> i
  std::string source;                           // the file
  Format format = Format::auto_detect;          // the format it was read as
  bool has_ratings = false, has_timestamps = false;
  DatasetOptions options;                       // the options it was built with
  FilterReport filters;

  // Rows of the model's item embedding table: the K items plus the padding row 0.
  int table_rows() const { return int(n_items + 1); }

  const std::string& item_token(int32_t item) const {
    if (item < 1 || item > n_items)
      throw std::out_of_range("item id " + std::to_string(item) + " is outside 1.." + std::to_string(n_items));
    return item_tokens[size_t(item)];
  }
  const std::string& user_token(int32_t user) const {
    if (user < 0 || user >= n_users)
      throw std::out_of_range("user id " + std::to_string(user) + " is outside 0.." + std::to_string(n_users - 1));
    return user_tokens[size_t(user)];
  }
  std::optional<int32_t> find_item(std::string_view token) const {
    auto found = item_by_token.find(token);
    return found == item_by_token.end() ? std::nullopt : std::optional<int32_t>(found->second);
  }
  std::optional<int32_t> find_user(std::string_view token) const {
    auto found = user_by_token.find(token);
    return found == user_by_token.end() ? std::nullopt : std::optional<int32_t>(found->second);
  }
  // The id of a raw token, or DataError (never seen, or removed by the filters).
  int32_t item_id(std::string_view token) const {
    if (auto id = find_item(token)) return *id;
    throw DataError(source + ": no item " + data_detail::quote(token) + " (not in the file, or removed by the filters)");
  }
  int32_t user_id(std::string_view token) const {
    if (auto id = find_user(token)) return *id;
    throw DataError(source + ": no user " + data_detail::quote(token) + " (not in the file, or removed by the filters)");
  }

  // 1 - interactions / (users * items).
  double sparsity() const {
    return n_users && n_items ? 1.0 - double(n_interactions) / (double(n_users) * double(n_items)) : 1.0;
  }
  double mean_sequence_length() const { return n_users ? double(n_interactions) / double(n_users) : 0.0; }

  std::string summary() const {
    size_t shortest = 0, longest = 0;
    for (size_t u = 0; u < sequences.size(); ++u) {
      shortest = u == 0 ? sequences[u].size() : std::min(shortest, sequences[u].size());
      longest = std::max(longest, sequences[u].size());
    }
    char line[512];
    std::string out = source + " (" + std::string(format_name(format)) + ")\n";
    std::snprintf(line, sizeof line, "  users %lld, items %lld, interactions %lld\n", (long long)n_users,
                  (long long)n_items, (long long)n_interactions);
    out += line;
    std::snprintf(line, sizeof line, "  sparsity %.4f%%, mean sequence length %.2f (shortest %zu, longest %zu)\n",
                  100.0 * sparsity(), mean_sequence_length(), shortest, longest);
    out += line;
    std::string rating = has_ratings ? "no rating threshold" : "no ratings in the file";
    if (filters.rating_threshold_applied) {
      std::snprintf(line, sizeof line, "rating >= %g removed %lld", options.min_rating, (long long)filters.removed_by_rating);
      rating = line;
    }
    std::string core = "no k-core filter";
    if (options.min_user_interactions > 1 || options.min_item_interactions > 1) {
      char buffer[200];
      std::snprintf(buffer, sizeof buffer, "k-core (users >= %lld, items >= %lld) removed %lld in %lld round%s",
                    (long long)options.min_user_interactions, (long long)options.min_item_interactions,
                    (long long)filters.removed_by_core, (long long)filters.core_rounds, filters.core_rounds == 1 ? "" : "s");
      core = buffer;
    }
    std::string duplicates = "no duplicates removed";
    if (filters.removed_duplicates > 0)
      duplicates = "removed " + std::to_string(filters.removed_duplicates) + " duplicate rows (--dedup " +
                   std::string(dedup_names[size_t(options.dedup)]) + ")";
    std::snprintf(line, sizeof line, "  read %lld rows; %s; %s; %s", (long long)filters.rows_read, duplicates.c_str(), rating.c_str(),
                  core.c_str());
    out += line;
    if (std::string warning = filter_warning(); !warning.empty()) out += "\n" + warning;
    return out;
  }

  // A warning when the filters removed more than a quarter of the rows, naming the flags that keep
  // the file whole; "" otherwise.
  std::string filter_warning() const {
    if (!filters.removed_most()) return "";
    int64_t removed = filters.rows_read - filters.rows_kept();
    char line[400];
    std::snprintf(line, sizeof line, "warning: %s: the filters removed %lld of %lld rows (%.0f%%): ", source.c_str(),
                  (long long)removed, (long long)filters.rows_read, 100.0 * double(removed) / double(filters.rows_read));
    std::string out = line;
    std::vector<std::string> parts, flags;
    if (filters.removed_duplicates) parts.push_back("duplicates " + std::to_string(filters.removed_duplicates)), flags.push_back("--dedup none");
    if (filters.removed_by_rating) {
      std::snprintf(line, sizeof line, "rating >= %g %lld", options.min_rating, (long long)filters.removed_by_rating);
      parts.push_back(line), flags.push_back("--min-rating -1");
    }
    if (filters.removed_by_core) {
      std::snprintf(line, sizeof line, "k-core (users >= %lld, items >= %lld) %lld", (long long)options.min_user_interactions,
                    (long long)options.min_item_interactions, (long long)filters.removed_by_core);
      parts.push_back(line), flags.push_back("--min-user 0 --min-item 0");
    }
    for (size_t i = 0; i < parts.size(); ++i) out += (i ? ", " : "") + parts[i];
    out += ". Metrics will be those of the remaining " + std::to_string(filters.rows_kept()) +
           " rows; to keep the file whole, use";
    for (const std::string& flag : flags) out += " " + flag;
    return out;
  }
};

namespace data_detail {

// Raw tokens in id order: integers by value first (ties bytewise), then the rest bytewise.
inline std::vector<int32_t> order_tokens(const std::vector<std::string>& tokens, const std::vector<uint8_t>& used) {
  struct Key {
    bool integer;
    int64_t value;
    int32_t index;
  };
  std::vector<Key> keys;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (!used[i]) continue;
    const std::string& t = tokens[i];
    int64_t value = 0;
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
    bool integer = ec == std::errc() && end == t.data() + t.size();
    keys.push_back(Key{integer, integer ? value : 0, int32_t(i)});
  }
  std::sort(keys.begin(), keys.end(), [&](const Key& a, const Key& b) {
    if (a.integer != b.integer) return a.integer;
    if (a.integer && a.value != b.value) return a.value < b.value;
    return tokens[size_t(a.index)] < tokens[size_t(b.index)];
  });
  std::vector<int32_t> order(keys.size());
  for (size_t k = 0; k < keys.size(); ++k) order[k] = keys[k].index;
  return order;
}

// Step 0: clear keep[r] for the rows `mode` drops (see Dedup); returns how many. The first row in
// file order of each group of duplicates stays.
inline int64_t drop_duplicates(const InteractionLog& log, Dedup mode, std::vector<uint8_t>& keep) {
  const auto& rows = log.rows;
  if (mode == Dedup::none) return 0;
  std::vector<size_t> order(rows.size());
  for (size_t r = 0; r < order.size(); ++r) order[r] = r;
  auto time = [&](size_t r) { return log.has_timestamps ? rows[r].timestamp : 0.0; };
  int64_t removed = 0;
  if (log.has_timestamps) {  // exact: same user, item and timestamp
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return std::tuple(rows[a].user, rows[a].item, rows[a].timestamp, a) < std::tuple(rows[b].user, rows[b].item, rows[b].timestamp, b);
    });
    for (size_t k = 1; k < order.size(); ++k) {
      const Interaction &now = rows[order[k]], &before = rows[order[k - 1]];
      if (now.user == before.user && now.item == before.item && now.timestamp == before.timestamp) keep[order[k]] = 0, ++removed;
    }
  }
  if (mode == Dedup::consecutive) {  // the user's rows in time order (ties in file order)
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return std::tuple(rows[a].user, time(a), a) < std::tuple(rows[b].user, time(b), b);
    });
    int64_t previous = -1;  // the user's last kept row
    for (size_t k = 0; k < order.size(); ++k) {
      size_t r = order[k];
      if (k > 0 && rows[order[k - 1]].user != rows[r].user) previous = -1;
      if (!keep[r]) continue;
      if (previous >= 0 && rows[size_t(previous)].item == rows[r].item) {
        keep[r] = 0, ++removed;
      } else {
        previous = int64_t(r);
      }
    }
  }
  return removed;
}

// Iterative k-core on the kept rows: drops every row whose user or item has fewer kept interactions
// than the options ask, again and again until a pass drops nothing.
inline void k_core(const InteractionLog& log, const DatasetOptions& options, std::vector<uint8_t>& keep, FilterReport& filters) {
  if (options.min_user_interactions <= 1 && options.min_item_interactions <= 1) return;
  const auto& rows = log.rows;
  std::vector<int64_t> user_count(log.user_tokens.size()), item_count(log.item_tokens.size());
  while (true) {
    std::fill(user_count.begin(), user_count.end(), 0);
    std::fill(item_count.begin(), item_count.end(), 0);
    for (size_t r = 0; r < rows.size(); ++r)
      if (keep[r]) ++user_count[size_t(rows[r].user)], ++item_count[size_t(rows[r].item)];
    int64_t removed = 0;
    for (size_t r = 0; r < rows.size(); ++r)
      if (keep[r] && (user_count[size_t(rows[r].user)] < options.min_user_interactions ||
                      item_count[size_t(rows[r].item)] < options.min_item_interactions))
        keep[r] = 0, ++removed;
    if (removed == 0) return;
    filters.removed_by_core += removed;
    ++filters.core_rounds;
  }
}

// Chronological order: the kept rows grouped by user in file order (a counting sort), then stably by
// timestamp, as dense item ids into data.sequences (data.n_users is set).
inline void fill_sequences(const InteractionLog& log, const std::vector<uint8_t>& keep, const std::vector<int32_t>& user_id,
                           const std::vector<int32_t>& item_id, Dataset& data) {
  const auto& rows = log.rows;
  std::vector<int64_t> start(size_t(data.n_users) + 1, 0);
  for (size_t r = 0; r < rows.size(); ++r)
    if (keep[r]) ++start[size_t(user_id[size_t(rows[r].user)]) + 1];
  for (size_t u = 0; u < size_t(data.n_users); ++u) start[u + 1] += start[u];
  data.n_interactions = start.back();
  std::vector<int64_t> fill(start.begin(), start.end() - 1);
  std::vector<size_t> by_user(size_t(data.n_interactions));
  for (size_t r = 0; r < rows.size(); ++r)
    if (keep[r]) by_user[size_t(fill[size_t(user_id[size_t(rows[r].user)])]++)] = r;
  data.sequences.resize(size_t(data.n_users));
  for (size_t u = 0; u < size_t(data.n_users); ++u) {
    auto first = by_user.begin() + start[u], last = by_user.begin() + start[u + 1];
    if (log.has_timestamps)
      std::stable_sort(first, last, [&](size_t a, size_t b) { return rows[a].timestamp < rows[b].timestamp; });
    auto& sequence = data.sequences[u];
    sequence.reserve(size_t(last - first));
    for (auto it = first; it != last; ++it) sequence.push_back(item_id[size_t(rows[*it].item)]);
  }
}

}  // namespace data_detail

// Filters, orders and remaps a log as described at the top of this file. Throws DataError when no
// interaction survives the filters.
inline Dataset build_dataset(const InteractionLog& log, const DatasetOptions& options = {}) {
  const auto& rows = log.rows;
  const size_t n_rows = rows.size();
  Dataset data;
  data.source = log.source;
  data.format = log.format;
  data.has_ratings = log.has_ratings;
  data.has_timestamps = log.has_timestamps;
  data.options = options;
  data.filters.rows_read = int64_t(n_rows);
  std::vector<uint8_t> keep(n_rows, 1);

  // duplicates
  data.filters.removed_duplicates = data_detail::drop_duplicates(log, options.dedup, keep);

  // the rating threshold
  data.filters.rating_threshold_applied = log.has_ratings && options.min_rating >= 0;  // false for NaN
  if (data.filters.rating_threshold_applied)
    for (size_t r = 0; r < n_rows; ++r)
      if (keep[r] && !(rows[r].rating >= options.min_rating)) keep[r] = 0, ++data.filters.removed_by_rating;

  data_detail::k_core(log, options, keep, data.filters);

  // dense ids for the surviving tokens
  std::vector<uint8_t> user_used(log.user_tokens.size()), item_used(log.item_tokens.size());
  for (size_t r = 0; r < n_rows; ++r)
    if (keep[r]) user_used[size_t(rows[r].user)] = item_used[size_t(rows[r].item)] = 1;
  std::vector<int32_t> user_order = data_detail::order_tokens(log.user_tokens, user_used);
  std::vector<int32_t> item_order = data_detail::order_tokens(log.item_tokens, item_used);
  if (user_order.empty())
    throw DataError(log.source + ": no interactions left after the filters (read " + std::to_string(n_rows) +
                    ", rating threshold removed " + std::to_string(data.filters.removed_by_rating) + ", k-core removed " +
                    std::to_string(data.filters.removed_by_core) + ")");
  std::vector<int32_t> user_id(log.user_tokens.size(), -1), item_id(log.item_tokens.size(), 0);
  data.n_users = int64_t(user_order.size());
  data.n_items = int64_t(item_order.size());
  data.user_tokens.reserve(user_order.size());
  data.item_tokens.reserve(item_order.size() + 1);
  data.item_tokens.emplace_back();
  for (size_t k = 0; k < user_order.size(); ++k) {
    user_id[size_t(user_order[k])] = int32_t(k);
    data.user_tokens.push_back(log.user_tokens[size_t(user_order[k])]);
    data.user_by_token.emplace(data.user_tokens.back(), int32_t(k));
  }
  for (size_t k = 0; k < item_order.size(); ++k) {
    item_id[size_t(item_order[k])] = int32_t(k + 1);
    data.item_tokens.push_back(log.item_tokens[size_t(item_order[k])]);
    data.item_by_token.emplace(data.item_tokens.back(), int32_t(k + 1));
  }

  data_detail::fill_sequences(log, keep, user_id, item_id, data);
  return data;
}

// Read a file and build its dataset.
inline Dataset load_dataset(const std::string& path, const DatasetOptions& options = {}) {
  return build_dataset(read_interactions(path, options.format, options.columns), options);
}

// Leave-one-out views into a dataset's sequences (no copies): the dataset must outlive the split.
struct Split {
  std::span<const std::vector<int32_t>> sequences;  // [U] the dataset's sequences
  std::vector<int32_t> evaluated_users;            // users with >= 3 interactions, ascending
  int64_t n_train_interactions = 0;                // total length of train() over all users

  bool is_evaluated(int32_t user) const { return sequence(user).size() >= 3; }
  // All but the last two items; the whole sequence for a user with fewer than 3.
  std::span<const int32_t> train(int32_t user) const {
    std::span<const int32_t> s = sequence(user);
    return s.size() >= 3 ? s.first(s.size() - 2) : s;
  }
  std::span<const int32_t> validation_history(int32_t user) const { return held_out(user).first(held_out(user).size() - 2); }
  int32_t validation_target(int32_t user) const { return held_out(user)[held_out(user).size() - 2]; }
  std::span<const int32_t> test_history(int32_t user) const { return held_out(user).first(held_out(user).size() - 1); }
  int32_t test_target(int32_t user) const { return held_out(user).back(); }

 private:
  std::span<const int32_t> sequence(int32_t user) const {
    if (user < 0 || size_t(user) >= sequences.size())
      throw std::out_of_range("user id " + std::to_string(user) + " is outside 0.." + std::to_string(sequences.size()) + "-1");
    return sequences[size_t(user)];
  }
  std::span<const int32_t> held_out(int32_t user) const {
    std::span<const int32_t> s = sequence(user);
    if (s.size() < 3)
      throw std::out_of_range("user " + std::to_string(user) + " has " + std::to_string(s.size()) +
                              " interactions: training only, no validation or test target");
    return s;
  }
};

inline Split leave_one_out(const Dataset& data) {
  Split split;
  split.sequences = data.sequences;
  for (size_t u = 0; u < data.sequences.size(); ++u) {
    size_t n = data.sequences[u].size();
    if (n >= 3) split.evaluated_users.push_back(int32_t(u));
    split.n_train_interactions += int64_t(n >= 3 ? n - 2 : n);
  }
  return split;
}
Split leave_one_out(const Dataset&& data) = delete;  // the split would point into a temporary

}  // namespace euler
