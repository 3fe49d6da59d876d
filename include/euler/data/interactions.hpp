// euler/data/interactions.hpp: read the user-item interaction files that recommender benchmarks
// ship in, into one list of raw interactions (user token, item token, rating, timestamp, line).
//
// Formats (Format, named on command lines by parse_format):
//   ml-1m      MovieLens-1M ratings.dat, `UserID::MovieID::Rating::Timestamp`.
//   ml-100k    MovieLens-100K u.data, `user \t item \t rating \t timestamp` (spaces also accepted).
//   pairs      `user item` per line, the file order being the time order (SASRec's data/*.txt).
//              No ratings, no timestamps.
//   sequences  one user per line, `user item1 item2 ...`, items oldest first (S3-Rec's data/*.txt).
//              A user on several lines gets the lines' items appended in file order.
//   inter      RecBole atomic file: tab-separated, typed header `user_id:token item_id:token
//              rating:float timestamp:float`, columns in any order, rating and timestamp optional,
//              other columns ignored.
//   csv        comma-separated with a header row naming the columns; fields may be double-quoted
//              ("" inside quotes is a quote; a quoted field cannot span lines). Rating and timestamp
//              columns are optional, other columns ignored.
// The column names for inter and csv are ColumnNames (default user_id, item_id, rating, timestamp).
//
// Format::auto_detect applies these rules in order and throws DataError when none fits:
//   1. the name (less a ".gz") ends in ".inter" -> inter; in ".csv" -> csv;
//   2. the first non-blank line contains "::" -> ml-1m (so a .dat without "::" falls through);
//   3. every tab-separated field of the first line is `name:type` (type token, token_seq, float or
//      float_seq) -> inter;
//   4. the first line contains a comma and no tab -> csv;
//   5. over every non-blank line, counting fields separated by spaces or tabs, and counting the
//      distinct first fields (users): a table has a row per interaction, so its users repeat (at
//      most half as many users as lines); a sequences file has a line per user.
//      - the same count everywhere: 2 -> pairs; 4, tab-separated or a table -> ml-100k; one line of
//        3 or more -> sequences; otherwise refused as ambiguous (a user per line, or a table of that
//        many columns?);
//      - counts that vary: not a table -> sequences; a table -> refused, naming the first line whose
//        count differs from the most common one (a u.data with one broken line is never read as
//        sequences);
//      - 1 field everywhere -> refused.
//   The format used is in InteractionLog::format (and in `euler train`'s JSON line as data.format).
//
// Text handling (every format):
//   - A gzip file (by its magic bytes, whatever its name) is decompressed by running `gzip -dc`
//     (data/text_file.hpp); a corrupt one is a DataError quoting gzip's message.
//   - A UTF-8 byte-order mark is skipped; CRLF line ends and trailing spaces/tabs are accepted;
//     blank lines are skipped. UTF-16 text, NUL bytes (a binary file) and CR-only line ends are
//     refused with a DataError saying so.
//   - Ids: in ml-1m, ml-100k, pairs and sequences files (MovieLens and SASRec / S3-Rec text) they
//     are integers: "+186", "0186" and "186" are one user, stored as "186"; anything else is refused
//     with the line (use csv or inter for other ids). In inter and csv files they are opaque tokens
//     (any bytes but the separator, Latin-1 included), compared byte for byte. Ids must be non-empty.
//     Fields are trimmed of surrounding spaces and tabs.
//   - Ratings and timestamps must be finite numbers (std::from_chars); "nan", "inf" and dates are
//     refused. A pairs or sequences file whose first line looks like a header (a non-integer token
//     where the next line has only integers) is refused: those formats have no header.
//   - Every row is kept, duplicates included; build_dataset removes exact duplicates (DatasetOptions::dedup).
//   - Lines of any length are fine (S3-Rec lines hold thousands of items); fields are walked in
//     place, never split into per-line vectors. Error messages quote at most 48 bytes of a field.
// Every problem is a DataError "file:line: problem"; a file that cannot be read (missing, a
// directory, no permission) is an IoError naming it.
//
// Tokens are interned: each row holds indices into user_tokens / item_tokens (in order of first
// appearance), so a million rows cost 32 bytes each and the dataset builder works on integers.
//
//     auto log = euler::read_interactions("ml-1m/ratings.dat");           // format detected
//     for (const auto& row : log.rows)
//       std::printf("%s %s %g\n", log.user_token(row).c_str(), log.item_token(row).c_str(), row.rating);
//     auto csv = euler::read_interactions("clicks.csv", euler::Format::csv, {.user = "visitor", .item = "page"});
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "euler/data/data_error.hpp"
#include "euler/data/text_file.hpp"
#include "euler/io/atomic_file.hpp"

namespace euler {

enum class Format { auto_detect, ml_1m, ml_100k, pairs, sequences, inter, csv };

// Command-line names of the formats, in declaration order.
inline constexpr std::array<std::string_view, 7> format_names = {"auto",      "ml-1m", "ml-100k", "pairs",
                                                                 "sequences", "inter", "csv"};

inline std::string_view format_name(Format format) { return format_names[size_t(format)]; }

// "auto|ml-1m|ml-100k|pairs|sequences|inter|csv" -> Format; anything else is a DataError.
inline Format parse_format(std::string_view name) {
  std::string accepted;
  for (size_t i = 0; i < format_names.size(); ++i) {
    if (format_names[i] == name) return Format(i);
    accepted += (i ? "|" : "") + std::string(format_names[i]);
  }
  throw DataError("unknown data format '" + std::string(name) + "': expected one of " + accepted);
}

// Column names looked up in the header of csv and inter files (exact, case-sensitive). An absent
// rating or timestamp column (or an empty name here) means the file has none; an absent user or
// item column is an error listing the columns found.
struct ColumnNames {
  std::string user = "user_id";
  std::string item = "item_id";
  std::string rating = "rating";
  std::string timestamp = "timestamp";
};

// Hash for maps keyed by std::string that are searched with a std::string_view (no copy).
struct TokenHash {
  using is_transparent = void;
  size_t operator()(std::string_view token) const noexcept { return std::hash<std::string_view>{}(token); }
};
using TokenIndex = std::unordered_map<std::string, int32_t, TokenHash, std::equal_to<>>;

// One row of the file. user / item index InteractionLog::user_tokens / item_tokens.
struct Interaction {
  int32_t user = 0;
  int32_t item = 0;
  double rating = std::numeric_limits<double>::quiet_NaN();     // NaN when the format has none
  double timestamp = std::numeric_limits<double>::quiet_NaN();  // NaN when the format has none
  int64_t line = 0;                                             // 1-based line in the file
};

struct InteractionLog {
  std::string source;                     // the path (or name) used in messages
  Format format = Format::auto_detect;    // the format actually parsed, never auto_detect
  bool has_ratings = false;               // every row has a rating
  bool has_timestamps = false;            // every row has a timestamp
  std::vector<std::string> user_tokens;   // raw user ids, in order of first appearance
  std::vector<std::string> item_tokens;   // raw item ids, in order of first appearance
  std::vector<Interaction> rows;          // file order (for sequences: line by line, item by item)

  const std::string& user_token(const Interaction& row) const { return user_tokens[size_t(row.user)]; }
  const std::string& item_token(const Interaction& row) const { return item_tokens[size_t(row.item)]; }
};

namespace data_detail {

[[noreturn]] inline void fail(const std::string& source, int64_t line, const std::string& problem) {
  throw DataError(source + ":" + std::to_string(line) + ": " + problem);
}

inline bool is_blank(char c) { return c == ' ' || c == '\t'; }

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

inline bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t extra = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : 4;
    if (extra == 4 || i + extra >= s.size()) return false;  // not a lead byte, or cut off
    for (size_t k = 1; k <= extra; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += extra + 1;
  }
  return true;
}

// A field for an error message: in quotes, at most 48 bytes, control bytes (and any byte >= 0x80
// when the field is not valid UTF-8, e.g. Latin-1) written as \xNN.
inline std::string quote(std::string_view field) {
  constexpr size_t max_shown = 48;
  bool utf8 = valid_utf8(field);
  size_t shown = std::min(field.size(), max_shown);
  if (utf8)
    while (shown > 0 && shown < field.size() && (static_cast<unsigned char>(field[shown]) & 0xC0) == 0x80) --shown;
  std::string out = "'";
  for (size_t i = 0; i < shown; ++i) {
    unsigned char c = static_cast<unsigned char>(field[i]);
    if (c < 0x20 || c == 0x7F || (c >= 0x80 && !utf8)) {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += char(c);
    }
  }
  out += shown < field.size() ? "...' (" + std::to_string(field.size()) + " bytes)" : "'";
  return out;
}

inline bool is_integer_token(std::string_view s) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return ec == std::errc() && end == s.data() + s.size();
}

// Non-blank lines with their 1-based numbers, right-trimmed of '\r', spaces and tabs.
class LineReader {
 public:
  explicit LineReader(std::string_view text) : text_(text) {}
  bool next(std::string_view& line) {
    while (pos_ < text_.size()) {
      const char* begin = text_.data() + pos_;
      size_t rest = text_.size() - pos_;
      const void* newline = std::memchr(begin, '\n', rest);
      size_t length = newline ? size_t(static_cast<const char*>(newline) - begin) : rest;
      pos_ += length + 1;
      ++number_;
      line = std::string_view(begin, length);
      while (!line.empty() && (line.back() == '\r' || is_blank(line.back()))) line.remove_suffix(1);
      size_t first = 0;
      while (first < line.size() && is_blank(line[first])) ++first;
      if (first < line.size()) return true;
    }
    return false;
  }
  int64_t number() const { return number_; }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  int64_t number_ = 0;
};

// Fields separated by runs of spaces and tabs, walked in place.
inline bool next_word(std::string_view line, size_t& pos, std::string_view& word) {
  while (pos < line.size() && is_blank(line[pos])) ++pos;
  if (pos >= line.size()) return false;
  size_t start = pos;
  while (pos < line.size() && !is_blank(line[pos])) ++pos;
  word = line.substr(start, pos - start);
  return true;
}
inline size_t count_words(std::string_view line) {
  size_t pos = 0, count = 0;
  std::string_view word;
  while (next_word(line, pos, word)) ++count;
  return count;
}

// Split on a separator, keeping the first N fields (trimmed) and returning how many there are.
template <size_t N>
size_t split_fields(std::string_view line, std::string_view separator, std::array<std::string_view, N>& out) {
  size_t count = 0, start = 0;
  while (true) {
    size_t end = line.find(separator, start);
    if (count < N) out[count] = trim(line.substr(start, end == std::string_view::npos ? line.size() - start : end - start));
    ++count;
    if (end == std::string_view::npos) return count;
    start = end + separator.size();
  }
}

// Token -> index, in order of first appearance. Consecutive repeats (a user's rows) skip the hash.
class TokenTable {
 public:
  explicit TokenTable(std::vector<std::string>& tokens) : tokens_(tokens) {}
  int32_t intern(std::string_view token) {
    if (last_ >= 0 && tokens_[size_t(last_)] == token) return last_;
    auto found = index_.find(token);
    if (found != index_.end()) return last_ = found->second;
    if (tokens_.size() >= size_t(std::numeric_limits<int32_t>::max()))
      throw DataError("more than 2^31 distinct ids: not supported");
    int32_t id = int32_t(tokens_.size());
    tokens_.emplace_back(token);
    index_.emplace(std::string(token), id);
    return last_ = id;
  }

 private:
  std::vector<std::string>& tokens_;
  TokenIndex index_;
  int32_t last_ = -1;
};

// Appends rows to a log, checking tokens and parsing numbers with messages naming the line.
class RowSink {
 public:
  explicit RowSink(InteractionLog& log) : log_(log), users_(log.user_tokens), items_(log.item_tokens) {}

  int32_t user(std::string_view token, int64_t line, size_t field) { return users_.intern(id(token, "user id", line, field)); }
  int32_t item(std::string_view token, int64_t line, size_t field) { return items_.intern(id(token, "item id", line, field)); }
  // `first_line`: this is the file's first line, where a header is the likely cause of an error.
  double number(std::string_view text, const char* what, int64_t line, size_t field, bool first_line) {
    double value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    std::string hint = first_line ? " (a header line? this format has none)" : "";
    if (text.empty()) fail(log_.source, line, "field " + std::to_string(field) + " (" + what + ") is empty" + hint);
    if (ec == std::errc::result_out_of_range && end == text.data() + text.size())
      fail(log_.source, line, "field " + std::to_string(field) + " (" + what + ") " + quote(text) + " is out of range");
    if (ec != std::errc() || end != text.data() + text.size())
      fail(log_.source, line,
           "field " + std::to_string(field) + " (" + what + ") " + quote(text) + " is not a number" +
               (std::string_view(what) == "timestamp" && !first_line ? " (timestamps must be numeric, e.g. Unix seconds)" : "") +
               hint);
    if (!std::isfinite(value))
      fail(log_.source, line, "field " + std::to_string(field) + " (" + what + ") " + quote(text) + " is not a finite number");
    return value;
  }
  void add(int32_t user, int32_t item, double rating, double timestamp, int64_t line) {
    log_.rows.push_back(Interaction{user, item, rating, timestamp, line});
  }

 private:
  // The id a token stands for: itself, or in the integer-id formats its integer in decimal ("+07" -> "7").
  std::string_view id(std::string_view token, const char* what, int64_t line, size_t field) {
    if (token.empty()) fail(log_.source, line, "field " + std::to_string(field) + " (" + what + ") is empty");
    if (log_.format == Format::inter || log_.format == Format::csv) return token;
    std::string_view digits = token.front() == '+' ? token.substr(1) : token;
    int64_t value = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (digits.empty() || (digits.front() == '-' && token.front() == '+') || ec != std::errc() || end != digits.data() + digits.size())
      fail(log_.source, line,
           "field " + std::to_string(field) + " (" + what + ") " + quote(token) + " is not an integer" +
               (ec == std::errc::result_out_of_range ? " in range" : "") + ": ids in " + std::string(format_name(log_.format)) +
               " files are integers (" + (looks_like_header(token) ? "a header line? this format has none" : "for other ids use format 'csv' or 'inter'") +
               ")");
    auto [text_end, unused] = std::to_chars(canonical_.data(), canonical_.data() + canonical_.size(), value);
    return std::string_view(canonical_.data(), size_t(text_end - canonical_.data()));
  }

  // A word without digits on the first line: a column name more likely than an id.
  bool looks_like_header(std::string_view token) const {
    return log_.rows.empty() && std::none_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; });
  }

  InteractionLog& log_;
  TokenTable users_, items_;
  std::array<char, 24> canonical_{};
};

inline constexpr double no_value = std::numeric_limits<double>::quiet_NaN();

// Room for one row per line, so a million-row file does not grow the vector a dozen times.
inline void reserve_rows(std::string_view text, InteractionLog& log) {
  log.rows.reserve(size_t(std::count(text.begin(), text.end(), '\n')) + 1);
}

inline void parse_ml_1m(std::string_view text, InteractionLog& log) {
  reserve_rows(text, log);
  log.has_ratings = log.has_timestamps = true;
  RowSink sink(log);
  LineReader lines(text);
  std::string_view line;
  std::array<std::string_view, 4> f;
  bool first = true;
  while (lines.next(line)) {
    int64_t n = lines.number();
    size_t count = split_fields(line, "::", f);
    if (count != 4) fail(log.source, n, "expected 4 fields separated by '::', got " + std::to_string(count));
    int32_t user = sink.user(f[0], n, 1), item = sink.item(f[1], n, 2);
    double rating = sink.number(f[2], "rating", n, 3, first), timestamp = sink.number(f[3], "timestamp", n, 4, first);
    sink.add(user, item, rating, timestamp, n);
    first = false;
  }
}

inline void parse_ml_100k(std::string_view text, InteractionLog& log) {
  reserve_rows(text, log);
  log.has_ratings = log.has_timestamps = true;
  RowSink sink(log);
  LineReader lines(text);
  std::string_view line;
  std::array<std::string_view, 4> f;
  bool first = true;
  while (lines.next(line)) {
    int64_t n = lines.number();
    size_t pos = 0, count = 0;
    std::string_view word;
    while (next_word(line, pos, word)) {
      if (count < 4) f[count] = word;
      ++count;
    }
    if (count != 4)
      fail(log.source, n, "expected 4 fields 'user item rating timestamp' separated by tabs, got " + std::to_string(count));
    int32_t user = sink.user(f[0], n, 1), item = sink.item(f[1], n, 2);
    double rating = sink.number(f[2], "rating", n, 3, first), timestamp = sink.number(f[3], "timestamp", n, 4, first);
    sink.add(user, item, rating, timestamp, n);
    first = false;
  }
}

// pairs and sequences have no header; a first line of words above a line of integers is one.
inline void refuse_header(std::string_view text, const std::string& source) {
  LineReader lines(text);
  std::string_view first, second, word;
  if (!lines.next(first)) return;
  int64_t first_number = lines.number();
  if (!lines.next(second)) return;
  bool first_has_word = false, second_all_integers = true;
  size_t pos = 0;
  while (next_word(first, pos, word)) first_has_word = first_has_word || !is_integer_token(word);
  pos = 0;
  while (next_word(second, pos, word)) second_all_integers = second_all_integers && is_integer_token(word);
  if (first_has_word && second_all_integers)
    fail(source, first_number,
         quote(first) + " looks like a header, but 'pairs' and 'sequences' files have none: remove the line, or use 'csv' or 'inter'");
}

inline void parse_pairs(std::string_view text, InteractionLog& log, bool detected) {
  refuse_header(text, log.source);
  reserve_rows(text, log);
  RowSink sink(log);
  LineReader lines(text);
  std::string_view line;
  while (lines.next(line)) {
    int64_t n = lines.number();
    size_t pos = 0;
    std::string_view user, item, extra;
    next_word(line, pos, user);
    if (!next_word(line, pos, item) || next_word(line, pos, extra))
      fail(log.source, n,
           "expected 2 fields 'user item' separated by spaces, got " + std::to_string(count_words(line)) +
               (detected ? " (if the file has one user per line, use format 'sequences')" : ""));
    int32_t u = sink.user(user, n, 1), i = sink.item(item, n, 2);
    sink.add(u, i, no_value, no_value, n);
  }
}

inline void parse_sequences(std::string_view text, InteractionLog& log) {
  refuse_header(text, log.source);
  RowSink sink(log);
  LineReader lines(text);
  std::string_view line;
  while (lines.next(line)) {
    int64_t n = lines.number();
    size_t pos = 0;
    std::string_view token;
    next_word(line, pos, token);
    int32_t user = sink.user(token, n, 1);
    size_t field = 1;
    while (next_word(line, pos, token)) sink.add(user, sink.item(token, n, ++field), no_value, no_value, n);
    if (field == 1) fail(log.source, n, "user " + quote(token) + " has no items (expected 'user item1 item2 ...')");
  }
}

// The columns of a csv or inter header that hold user, item, rating, timestamp (-1: absent).
struct ColumnPlan {
  std::array<int64_t, 4> index = {-1, -1, -1, -1};
  int64_t header_fields = 0;
  int64_t needed = 0;  // 1 + the largest used index
};

inline ColumnPlan plan_columns(const std::vector<std::string>& header, const ColumnNames& names, const std::string& source,
                               int64_t line, char separator) {
  ColumnPlan plan;
  plan.header_fields = int64_t(header.size());
  const std::string* wanted[4] = {&names.user, &names.item, &names.rating, &names.timestamp};
  for (size_t k = 0; k < 4; ++k) {
    for (size_t c = 0; c < header.size(); ++c) {
      if (wanted[k]->empty() || header[c] != *wanted[k]) continue;
      if (plan.index[k] >= 0)
        fail(source, line,
             "column " + quote(*wanted[k]) + " appears twice (fields " + std::to_string(plan.index[k] + 1) + " and " +
                 std::to_string(c + 1) + ")");
      plan.index[k] = int64_t(c);
    }
  }
  for (size_t k = 0; k < 2; ++k) {
    if (plan.index[k] >= 0) continue;
    std::string found;
    for (size_t c = 0; c < header.size() && c < 20; ++c) found += (c ? ", " : "") + quote(header[c]);
    if (header.size() > 20) found += ", ... (" + std::to_string(header.size()) + " columns)";
    std::string hint = std::string(". Name the ") + (k == 0 ? "user" : "item") + " column with " + (k == 0 ? "--user-column" : "--item-column") +
                       " (ColumnNames in the library)";
    if (header.size() == 1 && separator == ',' && header[0].find_first_of(";\t") != std::string::npos)
      hint = ". Only commas separate csv fields; is this file separated by ';' or tabs?";
    fail(source, line, "no " + std::string(k == 0 ? "user" : "item") + " column " + quote(*wanted[k]) +
                           " in the header; columns found: " + found + hint);
  }
  for (int64_t index : plan.index) plan.needed = std::max(plan.needed, index + 1);
  return plan;
}

// One csv cell from `pos` (just past the previous comma); false at the end of the line.
inline bool next_csv_cell(std::string_view line, size_t& pos, bool& more, std::string& cell, const std::string& source,
                          int64_t number) {
  if (!more) return false;
  cell.clear();
  size_t i = pos;
  while (i < line.size() && is_blank(line[i])) ++i;
  if (i < line.size() && line[i] == '"') {
    ++i;
    while (true) {
      if (i >= line.size()) fail(source, number, "unterminated quoted field (a quoted field cannot span lines)");
      if (line[i] == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') {
          cell += '"';
          i += 2;
          continue;
        }
        ++i;
        break;
      }
      size_t end = line.find('"', i);
      if (end == std::string_view::npos) end = line.size();
      cell.append(line.substr(i, end - i));
      i = end;
    }
    while (i < line.size() && is_blank(line[i])) ++i;
    if (i < line.size() && line[i] != ',')
      fail(source, number, "unexpected " + quote(line.substr(i, 1)) + " after a closing quote (expected ',')");
  } else {
    size_t end = line.find(',', i);
    if (end == std::string_view::npos) end = line.size();
    cell.assign(trim(line.substr(i, end - i)));
    i = end;
  }
  more = i < line.size();  // stopped on a comma: another cell follows
  pos = i + 1;
  return true;
}

// Shared by csv and inter: header line, then rows whose cells are picked by a ColumnPlan.
template <class ReadCell>
void parse_table(InteractionLog& log, const ColumnNames& names, char separator, ReadCell read_cell,
                 const std::vector<std::string>& header, int64_t header_line, LineReader& lines) {
  ColumnPlan plan = plan_columns(header, names, log.source, header_line, separator);
  log.has_ratings = plan.index[2] >= 0;
  log.has_timestamps = plan.index[3] >= 0;
  RowSink sink(log);
  std::string_view line;
  std::array<std::string, 4> picked;
  std::string cell;
  std::string separator_name = separator == '\t' ? "tab-separated" : "comma-separated";
  while (lines.next(line)) {
    int64_t n = lines.number();
    int64_t count = 0;
    size_t pos = 0;
    bool more = true;
    while (read_cell(line, pos, more, cell, n)) {
      for (size_t k = 0; k < 4; ++k)
        if (plan.index[k] == count) picked[k] = cell;
      ++count;
    }
    if (count > plan.header_fields || count < plan.needed)
      fail(log.source, n,
           "expected " + std::to_string(plan.header_fields) + " " + separator_name + " fields as in the header, got " +
               std::to_string(count));
    int32_t user = sink.user(picked[0], n, size_t(plan.index[0] + 1));
    int32_t item = sink.item(picked[1], n, size_t(plan.index[1] + 1));
    double rating = log.has_ratings ? sink.number(picked[2], "rating", n, size_t(plan.index[2] + 1), false) : no_value;
    double timestamp =
        log.has_timestamps ? sink.number(picked[3], "timestamp", n, size_t(plan.index[3] + 1), false) : no_value;
    sink.add(user, item, rating, timestamp, n);
  }
}

inline bool is_inter_type(std::string_view type) {
  return type == "token" || type == "token_seq" || type == "float" || type == "float_seq";
}

inline void parse_inter(std::string_view text, InteractionLog& log, const ColumnNames& names) {
  LineReader lines(text);
  std::string_view line;
  if (!lines.next(line)) return;
  int64_t header_line = lines.number();
  std::vector<std::string> header;
  size_t start = 0;
  while (true) {
    size_t end = line.find('\t', start);
    std::string_view field = trim(line.substr(start, end == std::string_view::npos ? line.size() - start : end - start));
    size_t colon = field.find(':');
    if (colon == std::string_view::npos || colon == 0 || !is_inter_type(field.substr(colon + 1)))
      fail(log.source, header_line,
           "header field " + std::to_string(header.size() + 1) + " " + quote(field) +
               " is not 'name:type' with type token, token_seq, float or float_seq (RecBole atomic files start with a "
               "typed header such as 'user_id:token')");
    header.emplace_back(field.substr(0, colon));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  auto read_cell = [](std::string_view row, size_t& pos, bool& more, std::string& cell, int64_t) {
    if (!more) return false;
    size_t end = row.find('\t', pos);
    more = end != std::string_view::npos;
    if (!more) end = row.size();
    cell.assign(trim(row.substr(pos, end - pos)));
    pos = end + 1;
    return true;
  };
  parse_table(log, names, '\t', read_cell, header, header_line, lines);
}

inline void parse_csv(std::string_view text, InteractionLog& log, const ColumnNames& names) {
  LineReader lines(text);
  std::string_view line;
  if (!lines.next(line)) return;
  int64_t header_line = lines.number();
  std::vector<std::string> header;
  std::string cell;
  size_t pos = 0;
  bool more = true;
  while (next_csv_cell(line, pos, more, cell, log.source, header_line)) header.push_back(cell);
  auto read_cell = [&log](std::string_view row, size_t& p, bool& m, std::string& c, int64_t number) {
    return next_csv_cell(row, p, m, c, log.source, number);
  };
  parse_table(log, names, ',', read_cell, header, header_line, lines);
}

// Refuses text that is not line-oriented 8-bit text; returns it without a UTF-8 byte-order mark.
inline std::string_view check_text(std::string_view text, const std::string& source) {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  else if (text.starts_with("\xFF\xFE") || text.starts_with("\xFE\xFF"))
    throw DataError(source + ": is UTF-16 text (byte-order mark " + quote(text.substr(0, 2)) + "); save it as UTF-8");
  if (const void* nul = std::memchr(text.data(), '\0', text.size())) {
    size_t offset = size_t(static_cast<const char*>(nul) - text.data());
    int64_t line = 1 + std::count(text.data(), text.data() + offset, '\n');
    fail(source, line, "NUL byte: this looks like a binary file, not text");
  }
  if (text.find('\n') == std::string_view::npos) {
    size_t cr = text.find('\r');
    if (cr != std::string_view::npos && text.find_first_not_of("\r \t", cr) != std::string_view::npos)
      throw DataError(source + ": has CR-only line ends (classic Mac OS); convert them to LF");
  }
  return text;
}

inline std::string lowercase(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace data_detail

// The format of `text` by the rules at the top of this file; `source` gives the file name. The text
// must already be free of a byte-order mark (parse_interactions removes it).
inline Format detect_format(std::string_view text, const std::string& source) {
  using namespace data_detail;
  std::string name = lowercase(std::filesystem::path(source).filename().string());
  if (name.ends_with(".gz")) name.resize(name.size() - 3);
  if (name.ends_with(".inter")) return Format::inter;
  if (name.ends_with(".csv")) return Format::csv;
  std::string explicitly = "; name the format explicitly (one of ml-1m|ml-100k|pairs|sequences|inter|csv)";

  LineReader lines(text);
  std::string_view first;
  if (!lines.next(first)) throw DataError(source + ": no interactions: the file is empty or has only blank lines");
  if (first.find("::") != std::string_view::npos) return Format::ml_1m;
  bool typed_header = true;
  size_t start = 0;
  while (typed_header) {
    size_t end = first.find('\t', start);
    std::string_view field = trim(first.substr(start, end == std::string_view::npos ? first.size() - start : end - start));
    size_t colon = field.find(':');
    typed_header = colon != std::string_view::npos && colon > 0 && is_inter_type(field.substr(colon + 1));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  if (typed_header) return Format::inter;
  bool tabbed = first.find('\t') != std::string_view::npos;
  if (!tabbed && first.find(',') != std::string_view::npos) return Format::csv;

  // Rule 5 reads the whole file: a table broken on line 90,000 must not pass for sequences.
  LineReader all(text);
  std::string_view line, word;
  std::unordered_set<std::string_view> users;   // distinct first fields
  std::map<size_t, std::pair<int64_t, int64_t>> counts;  // fields -> (lines, first line with that many)
  int64_t lines_seen = 0;
  while (all.next(line)) {
    size_t pos = 0, count = 0;
    while (next_word(line, pos, word)) {
      if (count == 0) users.insert(word);
      ++count;
    }
    auto& [lines_with, first_with] = counts[count];
    if (lines_with++ == 0) first_with = all.number();
    ++lines_seen;
  }
  size_t fewest = counts.begin()->first, most = counts.rbegin()->first;
  if (most == 1)
    throw DataError(source + ": cannot detect the format: every line has a single field, but every format needs a user "
                             "and an item" + explicitly);
  // A table (u.data, pairs) has a row per interaction, so its users repeat; a sequences file has a
  // line per user.
  bool table = lines_seen >= 2 && int64_t(users.size()) * 2 <= lines_seen;
  if (fewest == most) {
    if (most == 2) return Format::pairs;
    if (most == 4 && (tabbed || table)) return Format::ml_100k;
    if (lines_seen == 1) return Format::sequences;
    throw DataError(source + ": cannot detect the format: each of the " + std::to_string(lines_seen) + " lines has " +
                    std::to_string(most) + " fields, which fits one user per line ('sequences') and a table of that many "
                    "columns alike" + explicitly);
  }
  if (!table) return Format::sequences;  // lengths vary and each user has one line
  // A table with a line that breaks it: name the first such line, never guess.
  auto usual = std::max_element(counts.begin(), counts.end(),
                                [](const auto& a, const auto& b) { return a.second.first < b.second.first; });
  int64_t odd_line = std::numeric_limits<int64_t>::max();
  size_t odd_count = 0;
  for (const auto& [count, seen] : counts)
    if (count != usual->first && seen.second < odd_line) odd_line = seen.second, odd_count = count;
  std::string usual_format = usual->first == 2 ? " ('pairs')" : usual->first == 4 ? " ('ml-100k')" : "";
  fail(source, odd_line,
       "has " + std::to_string(odd_count) + " field" + (odd_count == 1 ? "" : "s") + ", but " + std::to_string(usual->second.first) +
           " of the file's " + std::to_string(lines_seen) + " lines have " + std::to_string(usual->first) + usual_format +
           " and its " + std::to_string(users.size()) + " users repeat (a table with a row per interaction): "
           "cannot detect the format; fix the line, or name the format explicitly (one of ml-1m|ml-100k|pairs|sequences|inter|csv)");
}

// Parse the text of an interaction file. `source` names it in messages (and, for auto_detect, gives
// the extension). Throws DataError for every problem, including a file without interactions.
inline InteractionLog parse_interactions(std::string_view text, const std::string& source,
                                         Format format = Format::auto_detect, const ColumnNames& columns = {}) {
  using namespace data_detail;
  if (text.empty()) throw DataError(source + ": empty file (no interactions)");
  text = check_text(text, source);
  bool detected = format == Format::auto_detect;
  if (detected) format = detect_format(text, source);
  InteractionLog log;
  log.source = source;
  log.format = format;
  switch (format) {
    case Format::ml_1m: parse_ml_1m(text, log); break;
    case Format::ml_100k: parse_ml_100k(text, log); break;
    case Format::pairs: parse_pairs(text, log, detected); break;
    case Format::sequences: parse_sequences(text, log); break;
    case Format::inter: parse_inter(text, log, columns); break;
    case Format::csv: parse_csv(text, log, columns); break;
    case Format::auto_detect: break;
  }
  if (log.rows.empty()) {
    bool has_header = format == Format::inter || format == Format::csv;
    LineReader lines(text);
    std::string_view line;
    bool any_line = lines.next(line);
    throw DataError(source + ": no interactions: " +
                    (!any_line ? std::string("the file is empty or has only blank lines")
                               : has_header ? "the file has only a header line" : "no rows"));
  }
  return log;
}

// Read an interaction file (plain or gzip) in the given format, or the detected one.
inline InteractionLog read_interactions(const std::string& path, Format format = Format::auto_detect,
                                        const ColumnNames& columns = {}) {
  std::string text = read_text_file(path);
  return parse_interactions(text, path, format, columns);
}

}  // namespace euler
