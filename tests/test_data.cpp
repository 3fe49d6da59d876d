// Data loading: every reader on small crafted files, every kind of bad input (each a DataError naming
// file, line and problem, or an IoError naming the path), the dataset builder (rating threshold,
// iterative k-core, chronological order, deterministic ids), leave-one-out, and the counts of the
// real benchmark files under shared/data (skipped with a message when they are absent; the folder
// is $EULER_SHARED_DATA, by default <this file's folder>/../../shared/data).
#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include <euler/data/dataset.hpp>
#include <euler/data/interactions.hpp>
#include <euler/data/rows.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

namespace test_data {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;
namespace fs = std::filesystem;

namespace {

fs::path temp_folder() { return euler_test::scratch_dir("test_data"); }
std::string write_temp(const std::string& name, std::string_view bytes) {
  std::string path = (temp_folder() / name).string();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  return path;
}

// The message of the DataError / IoError `action` throws ("" and a failed check when it throws none).
std::string data_error(const std::function<void()>& action) { return euler_test::error_of<DataError>(action); }
std::string io_error(const std::function<void()>& action) { return euler_test::error_of<IoError>(action); }
std::string read_error(const std::string& name, std::string_view bytes, Format format = Format::auto_detect,
                       const ColumnNames& columns = {}) {
  std::string path = write_temp(name, bytes);
  return data_error([&] { read_interactions(path, format, columns); });
}

std::vector<std::string> item_tokens_of(const Dataset& data, int32_t user) {
  std::vector<std::string> tokens;
  for (int32_t item : data.sequences[size_t(user)]) tokens.push_back(data.item_token(item));
  return tokens;
}
using Strings = std::vector<std::string>;

std::string shared_data() {
  if (const char* env = std::getenv("EULER_SHARED_DATA"); env && *env) return env;
  return (fs::path(__FILE__).parent_path() / "../../shared/data").lexically_normal().string();
}
// The path of a file under shared/data, or "" (with a message) when it is absent.
std::string shared_file(const std::string& relative) {
  fs::path path = fs::path(shared_data()) / relative;
  if (fs::is_regular_file(path)) return path.string();
  MESSAGE("skipped: " << path.string() << " is absent (set EULER_SHARED_DATA to the data folder)");
  return "";
}
double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

// ---- formats -------------------------------------------------------------------------------------

TEST_CASE("data: rows of model input: the last N items, a window with its targets, BERT4Rec's mask") {
  using Row = std::vector<int32_t>;
  const Row items = {1, 2, 3, 4, 5};
  Row ids(3, -1), targets(3, -1);
  CHECK(fill_history(items, 3, ids.data()) == 3);
  CHECK(ids == Row{3, 4, 5});  // the most recent N
  CHECK(fill_history(std::span<const int32_t>(items).first(2), 3, ids.data()) == 2);
  CHECK(ids == Row{1, 2, 0});  // left-aligned, padded on the right
  CHECK(fill_history({}, 3, ids.data()) == 0);
  CHECK(ids == Row{0, 0, 0});

  fill_window(items, 3, ids.data(), targets.data());  // N + 1 = 4 items: 3 inputs, each with its next
  CHECK(ids == Row{2, 3, 4});
  CHECK(targets == Row{3, 4, 5});
  fill_window(std::span<const int32_t>(items).first(2), 3, ids.data(), targets.data());
  CHECK(ids == Row{1, 0, 0});
  CHECK(targets == Row{2, 0, 0});

  CHECK(fill_masked(items, 3, 99, ids.data()) == 2);  // full: the last N - 1 items, then the mask
  CHECK(ids == Row{4, 5, 99});
  CHECK(fill_masked(std::span<const int32_t>(items).first(1), 3, 99, ids.data()) == 1);
  CHECK(ids == Row{1, 99, 0});
  CHECK(fill_masked({}, 1, 99, ids.data()) == 0);
  CHECK(ids[0] == 99);
}

TEST_CASE("data: format names round trip, and an unknown name lists the accepted ones") {
  for (std::string_view name : format_names) CHECK(format_name(parse_format(name)) == name);
  CHECK(parse_format("ml-1m") == Format::ml_1m);
  CHECK(parse_format("auto") == Format::auto_detect);
  CHECK_THROWS_WITH_AS(parse_format("movielens"),
                       "unknown data format 'movielens': expected one of auto|ml-1m|ml-100k|pairs|sequences|inter|csv",
                       DataError);
}

TEST_CASE("data: ml-1m ratings.dat, plain and gzip-compressed") {
  std::string text = "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4.5::978298413\n";
  std::string path = write_temp("ratings.dat", text);
  InteractionLog log = read_interactions(path);
  CHECK(log.format == Format::ml_1m);
  CHECK(log.has_ratings);
  CHECK(log.has_timestamps);
  REQUIRE(log.rows.size() == 3);
  CHECK(log.user_tokens == Strings{"1", "2"});
  CHECK(log.item_tokens == Strings{"1193", "661"});
  CHECK(log.user_token(log.rows[2]) == "2");
  CHECK(log.item_token(log.rows[2]) == "1193");
  CHECK(log.rows[2].rating == 4.5);
  CHECK(log.rows[2].timestamp == 978298413.0);
  CHECK(log.rows[2].line == 3);

  REQUIRE(std::system(("gzip -c '" + path + "' > '" + path + ".gz'").c_str()) == 0);
  InteractionLog unzipped = read_interactions(path + ".gz");
  CHECK(unzipped.format == Format::ml_1m);
  REQUIRE(unzipped.rows.size() == 3);
  CHECK(unzipped.rows[1].rating == 3.0);
  CHECK(unzipped.item_tokens == log.item_tokens);

  // gzip data is recognised by its magic bytes whatever the name; a plain file named .gz is plain.
  std::string bytes = read_file(path + ".gz");
  CHECK(read_interactions(write_temp("ratings_disguised.dat", bytes)).rows.size() == 3);
  CHECK(read_interactions(write_temp("plain_named.dat.gz", text)).rows.size() == 3);

  // A truncated or damaged archive is a DataError quoting gzip.
  std::string truncated = write_temp("truncated.dat.gz", bytes.substr(0, bytes.size() / 2));
  std::string message = data_error([&] { read_interactions(truncated); });
  CHECK(message.find(truncated + ": corrupt gzip data: ") == 0);
  CHECK(message.find("gzip") != std::string::npos);
}

TEST_CASE("data: ml-100k u.data (tabs; spaces accepted when the format is named)") {
  InteractionLog log = read_interactions(write_temp("u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n"));
  CHECK(log.format == Format::ml_100k);
  REQUIRE(log.rows.size() == 2);
  CHECK(log.user_token(log.rows[1]) == "186");
  CHECK(log.rows[1].timestamp == 891717742.0);
  InteractionLog spaced = read_interactions(write_temp("u_spaces.data", "196 242 3 881250949\n186  302 3 891717742\n"),
                                            Format::ml_100k);
  CHECK(spaced.rows.size() == 2);
  CHECK(spaced.item_token(spaced.rows[1]) == "302");
}

TEST_CASE("data: user-item pairs and one-user-per-line sequences") {
  InteractionLog pairs = read_interactions(write_temp("pairs.txt", "1 10\n1 11\n2 10\n1 12\n"));
  CHECK(pairs.format == Format::pairs);
  CHECK_FALSE(pairs.has_ratings);
  CHECK_FALSE(pairs.has_timestamps);
  REQUIRE(pairs.rows.size() == 4);
  CHECK(std::isnan(pairs.rows[0].rating));
  CHECK(std::isnan(pairs.rows[0].timestamp));
  CHECK(pairs.item_token(pairs.rows[3]) == "12");

  // A user on two lines gets both lines' items, in file order.
  InteractionLog seq = read_interactions(write_temp("seq.txt", "1 5 6 7\n2 5\n3 8 9\n1 9\n"));
  CHECK(seq.format == Format::sequences);
  REQUIRE(seq.rows.size() == 7);
  CHECK(seq.rows[6].line == 4);
  Dataset data = build_dataset(seq);
  CHECK(item_tokens_of(data, *data.find_user("1")) == Strings{"5", "6", "7", "9"});
  CHECK(item_tokens_of(data, *data.find_user("3")) == Strings{"8", "9"});
}

TEST_CASE("data: RecBole .inter with columns in any order, optional rating and timestamp") {
  InteractionLog log = read_interactions(write_temp(
      "shuffled.inter",
      "item_id:token\ttimestamp:float\tuser_id:token\tname:token_seq\trating:float\n10\t5\tu1\tfoo bar\t4\n11\t3\tu2\t\t2\n"));
  CHECK(log.format == Format::inter);
  CHECK(log.has_ratings);
  CHECK(log.has_timestamps);
  REQUIRE(log.rows.size() == 2);
  CHECK(log.user_token(log.rows[0]) == "u1");
  CHECK(log.item_token(log.rows[0]) == "10");
  CHECK(log.rows[0].timestamp == 5.0);
  CHECK(log.rows[1].rating == 2.0);

  InteractionLog bare = read_interactions(write_temp("bare.inter", "user_id:token\titem_id:token\nA\tx\nB\ty\n"));
  CHECK_FALSE(bare.has_ratings);
  CHECK_FALSE(bare.has_timestamps);
  CHECK(bare.rows.size() == 2);
  // The typed header alone identifies the format, whatever the name.
  CHECK(read_interactions(write_temp("typed_header.txt", "user_id:token\titem_id:token\nA\tx\n")).format == Format::inter);
  // A row may stop early when the columns it lacks are unused.
  InteractionLog short_row =
      read_interactions(write_temp("short.inter", "user_id:token\titem_id:token\tname:token_seq\nA\tx\n"));
  CHECK(short_row.rows.size() == 1);
}

TEST_CASE("data: CSV with named columns, quotes and custom column names") {
  InteractionLog log = read_interactions(write_temp(
      "clicks.csv", "timestamp,user_id,item_id,rating\n5,\"u,1\",\"say \"\"hi\"\"\",3.5\n 6 , u2 , x , 1\n"));
  CHECK(log.format == Format::csv);
  REQUIRE(log.rows.size() == 2);
  CHECK(log.user_token(log.rows[0]) == "u,1");
  CHECK(log.item_token(log.rows[0]) == "say \"hi\"");
  CHECK(log.rows[0].rating == 3.5);
  CHECK(log.user_token(log.rows[1]) == "u2");
  CHECK(log.rows[1].timestamp == 6.0);

  ColumnNames names;
  names.user = "visitor";
  names.item = "page";
  names.timestamp = "when";
  InteractionLog custom = read_interactions(write_temp("custom.csv", "page,visitor,when,extra\np1,v1,10,z\np2,v1,9,\n"),
                                            Format::csv, names);
  CHECK_FALSE(custom.has_ratings);
  CHECK(custom.has_timestamps);
  CHECK(custom.rows.size() == 2);
  CHECK(custom.item_token(custom.rows[1]) == "p2");

  // The default names are missing: the message lists what the header has.
  std::string missing = read_error("other.csv", "uid,iid\n1,2\n");
  CHECK(missing.find("other.csv:1: no user column 'user_id' in the header; columns found: 'uid', 'iid'") != std::string::npos);
  std::string semicolons = read_error("semi.csv", "user_id;item_id\n1;2\n");
  CHECK(semicolons.find("separated by ';'") != std::string::npos);
  CHECK(read_error("twice.csv", "user_id,item_id,user_id\n1,2,3\n").find("twice.csv:1: column 'user_id' appears twice") !=
        std::string::npos);
  CHECK(read_error("open_quote.csv", "user_id,item_id\n\"1,2\n").find("open_quote.csv:2: unterminated quoted field") !=
        std::string::npos);
  CHECK(read_error("after_quote.csv", "user_id,item_id\n\"1\"x,2\n").find("after_quote.csv:2: unexpected 'x' after a closing quote") !=
        std::string::npos);
}

TEST_CASE("data: auto-detection rules, and refusals when unsure") {
  CHECK(read_interactions(write_temp("a.dat", "1::2::3::4\n")).format == Format::ml_1m);
  CHECK(read_interactions(write_temp("a.txt", "1::2::3::4\n")).format == Format::ml_1m);
  CHECK(read_interactions(write_temp("pairs.dat", "1 2\n1 3\n")).format == Format::pairs);  // .dat without '::'
  CHECK(read_interactions(write_temp("b", "1\t2\t3\t4\n5\t6\t7\t8\n")).format == Format::ml_100k);
  CHECK(read_interactions(write_temp("c", "1\t2\n1\t3\n")).format == Format::pairs);
  CHECK(read_interactions(write_temp("d", "1 2 3\n4 5\n")).format == Format::sequences);
  CHECK(read_interactions(write_temp("e", "1 2 3 4 5\n")).format == Format::sequences);
  CHECK(read_interactions(write_temp("f", "user_id,item_id\n1,2\n")).format == Format::csv);
  CHECK(read_interactions(write_temp("g.inter", "user_id:token\titem_id:token\n1\t2\n")).format == Format::inter);
  CHECK(read_interactions(write_temp("h.CSV", "user_id,item_id\n1,2\n")).format == Format::csv);

  std::string table = read_error("table.txt", "1 2 3 4\n5 6 7 8\n9 10 11 12\n");
  CHECK(table.find("table.txt: cannot detect the format: each of the 3 lines has 4 fields") != std::string::npos);
  // Users that repeat make a 4-column table u.data with spaces.
  CHECK(read_interactions(write_temp("spaced.data", "1 2 3 4\n1 6 7 8\n2 3 4 5\n2 5 6 7\n")).format == Format::ml_100k);
  CHECK(table.find("name the format explicitly") != std::string::npos);
  CHECK(read_interactions(write_temp("table2.txt", "1 2 3 4\n5 6 7 8\n"), Format::sequences).rows.size() == 6);
  CHECK(read_error("single.txt", "1\n2\n").find("single.txt: cannot detect the format: every line has a single field") !=
        std::string::npos);
}

TEST_CASE("data: detection reads the whole file: a table with one broken line is refused, never read as sequences") {
  // u.data with a 3-field line among its first lines (the case that trained on ratings as items).
  std::string udata;
  for (int i = 0; i < 50; ++i) udata += std::to_string(1 + i % 5) + "\t" + std::to_string(100 + i) + "\t4\t88125" + std::to_string(1000 + i) + "\n";
  size_t second_line = udata.find('\n') + 1;
  std::string early = udata.substr(0, second_line) + "3\t17\t5\n" + udata.substr(second_line);
  std::string message = read_error("early.data", early);
  CHECK(message.find("early.data:2: has 3 fields, but 50 of the file's 51 lines have 4 ('ml-100k') and its 5 users repeat") != std::string::npos);
  CHECK(message.find("fix the line, or name the format explicitly") != std::string::npos);
  // A 5-field line, and one far beyond the first 1000 lines.
  CHECK(read_error("five.data", udata + "1\t2\t3\t4\t5\n").find("five.data:51: has 5 fields, but 50 of") != std::string::npos);
  std::string pairs;
  for (int i = 0; i < 5000; ++i) pairs += std::to_string(i % 100) + " " + std::to_string(i) + "\n";
  CHECK(read_error("late.txt", pairs + "7 8 9\n").find("late.txt:5001: has 3 fields, but 5000 of the file's 5001 lines have 2 ('pairs')") !=
        std::string::npos);
  // The same lines with each user on one line of varying length are sequences.
  CHECK(read_interactions(write_temp("seqs.txt", "1 2 3\n2 4\n3 5 6 7\n")).format == Format::sequences);
  // A named format does not detect: every line must fit it.
  CHECK(read_error("early2.data", early, Format::ml_100k).find("early2.data:2: expected 4 fields") != std::string::npos);
}

// ---- bad input ---------------------------------------------------------------------------------

TEST_CASE("data: wrong field counts name the file, the line and the counts") {
  std::string path = write_temp("ratings.dat", "1::1193::5::978300760\n1::661::3\n");
  CHECK(data_error([&] { read_interactions(path); }) == path + ":2: expected 4 fields separated by '::', got 3");
  CHECK(read_error("many.dat", "1::2::3::4::5\n").find("many.dat:1: expected 4 fields separated by '::', got 5") !=
        std::string::npos);
  CHECK(read_error("u1.data", "1\t2\t3\t4\n1\t2\t3\n", Format::ml_100k)
            .find("u1.data:2: expected 4 fields 'user item rating timestamp' separated by tabs, got 3") != std::string::npos);
  std::string pairs = read_error("p.txt", "1 2\n3 4\n5 6 7\n", Format::pairs);
  CHECK(pairs.find("p.txt:3: expected 2 fields 'user item' separated by spaces, got 3") != std::string::npos);
  // Varying counts with a line per user mean one user per line.
  CHECK(read_interactions(write_temp("p2.txt", "1 2\n3 4\n5 6 7\n")).format == Format::sequences);
  CHECK(read_error("s.txt", "1 2 3\n4\n", Format::sequences).find("s.txt:2: user '4' has no items") != std::string::npos);
  CHECK(read_error("x.inter", "user_id:token\titem_id:token\n1\t2\t3\n")
            .find("x.inter:2: expected 2 tab-separated fields as in the header, got 3") != std::string::npos);
  CHECK(read_error("x2.inter", "user_id:token\tname:token\titem_id:token\n1\n")
            .find("x2.inter:2: expected 3 tab-separated fields as in the header, got 1") != std::string::npos);
  CHECK(read_error("x.csv", "user_id,item_id\n1,2\n\n1,2,3\n").find("x.csv:4: expected 2 comma-separated fields as in the header, got 3") !=
        std::string::npos);
  CHECK(read_error("bad_header.inter", "user_id\titem_id\n1\t2\n")
            .find("bad_header.inter:1: header field 1 'user_id' is not 'name:type'") != std::string::npos);
}

TEST_CASE("data: ratings and timestamps must be finite numbers; ids must be non-empty") {
  CHECK(read_error("r.dat", "1::2::3::4\n1::2::five::978300760\n").find("r.dat:2: field 3 (rating) 'five' is not a number") !=
        std::string::npos);
  CHECK(read_error("t.dat", "1::2::3::4\n1::2::3::2000-01-01\n")
            .find("t.dat:2: field 4 (timestamp) '2000-01-01' is not a number (timestamps must be numeric") != std::string::npos);
  CHECK(read_error("n.dat", "1::2::nan::4\n").find("n.dat:1: field 3 (rating) 'nan' is not a finite number") != std::string::npos);
  CHECK(read_error("i.data", "1\t2\t3\tinf\n").find("i.data:1: field 4 (timestamp) 'inf' is not a finite number") !=
        std::string::npos);
  CHECK(read_error("e.dat", "1::2::3::4\n1::::3::4\n").find("e.dat:2: field 2 (item id) is empty") != std::string::npos);
  CHECK(read_error("e2.dat", "::2::3::4\n").find("e2.dat:1: field 1 (user id) is empty") != std::string::npos);
  CHECK(read_error("e.dat2", "1:: 2 ::3:: \n", Format::ml_1m).find("e.dat2:1: field 4 (timestamp) is empty") != std::string::npos);
  CHECK(read_error("e.csv", "user_id,item_id,rating\n,2,3\n").find("e.csv:2: field 1 (user id) is empty") != std::string::npos);
  CHECK(read_error("r.csv", "user_id,item_id,rating\n1,2,\n").find("r.csv:2: field 3 (rating) is empty") != std::string::npos);
  CHECK(read_error("e.inter", "user_id:token\titem_id:token\trating:float\n1\t\t3\n").find("e.inter:2: field 2 (item id) is empty") !=
        std::string::npos);
  // A trailing tab is trimmed like any trailing blank, so an empty last field is a missing one.
  CHECK(read_error("e2.inter", "user_id:token\titem_id:token\n1\t\n")
            .find("e2.inter:2: expected 2 tab-separated fields as in the header, got 1") != std::string::npos);
  // A header in front of u.data: the hint says so.
  CHECK(read_error("hdr.data", "user\titem\trating\ttimestamp\n1\t2\t3\t4\n")
            .find("hdr.data:1: field 1 (user id) 'user' is not an integer: ids in ml-100k files are integers (a header line? this format "
                  "has none)") != std::string::npos);
  // A header whose id fields happen to be numbers still gets the hint at its first non-number.
  CHECK(read_error("hdr2.data", "1\t2\trating\ttimestamp\n1\t2\t3\t4\n")
            .find("hdr2.data:1: field 3 (rating) 'rating' is not a number (a header line? this format has none)") != std::string::npos);
  CHECK(read_error("hdr.txt", "user item\n1 2\n").find("hdr.txt:1: 'user item' looks like a header") != std::string::npos);
  // Alphanumeric ids (e.g. Amazon ASINs) are not mistaken for a header; they are not integers, which
  // these formats need.
  CHECK(read_error("asin.txt", "A1X B000 B001\nA2Y B001 B002 B003\n").find("asin.txt:1: field 1 (user id) 'A1X' is not an integer") !=
        std::string::npos);
}

TEST_CASE("data: empty files, blank files and header-only files are refused") {
  CHECK(read_error("empty.dat", "") == (temp_folder() / "empty.dat").string() + ": empty file (no interactions)");
  CHECK(read_error("blank.txt", "\n  \n\t\n").find("blank.txt: no interactions: the file is empty or has only blank lines") !=
        std::string::npos);
  CHECK(read_error("bom_only.txt", "\xEF\xBB\xBF").find("no interactions") != std::string::npos);
  CHECK(read_error("header.csv", "user_id,item_id,rating\n").find("header.csv: no interactions: the file has only a header line") !=
        std::string::npos);
  CHECK(read_error("header.inter", "user_id:token\titem_id:token\n\n").find("header.inter: no interactions: the file has only a header line") !=
        std::string::npos);
  CHECK(read_error("blank.dat", "\n\n", Format::ml_1m).find("no interactions") != std::string::npos);
}

TEST_CASE("data: CRLF line ends, a UTF-8 byte-order mark and trailing blanks are accepted") {
  InteractionLog crlf = read_interactions(write_temp("crlf.dat", "1::2::3::4\r\n5::6::7::8\r\n"));
  REQUIRE(crlf.rows.size() == 2);
  CHECK(crlf.item_token(crlf.rows[1]) == "6");
  CHECK(crlf.rows[1].timestamp == 8.0);
  CHECK(read_interactions(write_temp("crlf.csv", "user_id,item_id,timestamp\r\n1,2,3\r\n")).rows[0].timestamp == 3.0);
  CHECK(read_interactions(write_temp("crlf.inter", "user_id:token\titem_id:token\r\n1\t2\r\n")).item_tokens == Strings{"2"});
  CHECK(read_interactions(write_temp("crlf_seq.txt", "1 2 3\r\n4 5\r\n")).item_tokens == Strings{"2", "3", "5"});
  CHECK(read_interactions(write_temp("crlf.data", "1\t2\t3\t4\r\n")).rows[0].timestamp == 4.0);

  InteractionLog bom = read_interactions(write_temp("bom.csv", "\xEF\xBB\xBFuser_id,item_id\n1,2\n"));
  CHECK(bom.user_tokens == Strings{"1"});
  CHECK(read_interactions(write_temp("bom.dat", "\xEF\xBB\xBF" "1::2::3::4\n")).user_tokens == Strings{"1"});

  InteractionLog trailing = read_interactions(write_temp("trail.dat", "1::2::3::4  \t\n5::6::7::8 \n"));
  CHECK(trailing.rows[0].timestamp == 4.0);
  CHECK(read_interactions(write_temp("trail.txt", "1 2 \t\n1 3\t\n")).item_tokens == Strings{"2", "3"});
  CHECK(read_interactions(write_temp("trail_seq.txt", "1 2 3   \n4 5\t\n")).rows.size() == 3);
  CHECK(read_interactions(write_temp("trail.inter", "user_id:token\titem_id:token\t\n1\t2\t\n")).rows.size() == 1);
  CHECK(read_interactions(write_temp("trail.csv", "user_id,item_id  \n1,2 \t\n")).rows.size() == 1);
}

TEST_CASE("data: Latin-1 bytes are opaque token bytes; messages escape them") {
  InteractionLog log = read_interactions(write_temp("latin1.csv", "user_id,item_id\ncaf\xe9,cr\xe8me\ncaf\xe9,br\xfbl\xe9" "e\n"));
  CHECK(log.user_tokens == Strings{"caf\xe9"});
  CHECK(log.item_tokens == Strings{"cr\xe8me", "br\xfbl\xe9" "e"});
  Dataset data = build_dataset(log);
  CHECK(data.item_token(data.item_id("cr\xe8me")) == "cr\xe8me");
  CHECK(read_error("latin1.dat", "1::2::\xe9t\xe9::4\n").find("field 3 (rating) '\\xe9t\\xe9' is not a number") != std::string::npos);
  // Valid UTF-8 is shown as is.
  CHECK(read_error("utf8.dat", "1::2::\xc3\xa9t\xc3\xa9::4\n").find("'\xc3\xa9t\xc3\xa9' is not a number") != std::string::npos);
}

TEST_CASE("data: exact duplicate rows are removed and counted; --dedup none keeps them, consecutive drops repeats") {
  // Every row twice (and an exact duplicate that is not adjacent, among same-second ratings).
  InteractionLog log = read_interactions(write_temp("dup.dat", "1::2::5::100\n1::2::5::100\n1::3::5::101\n1::3::5::101\n"
                                                                "1::4::5::101\n1::3::4::101\n1::3::5::102\n2::2::5::7\n2::2::5::7\n"));
  CHECK(log.rows.size() == 9);
  Dataset data = build_dataset(log);
  CHECK(data.filters.removed_duplicates == 4);
  CHECK(data.n_interactions == 5);
  CHECK(item_tokens_of(data, 0) == Strings{"2", "3", "4", "3"});  // 3 at 101 once, 4 at 101, 3 at 102
  CHECK(data.summary().find("removed 4 duplicate rows (--dedup exact)") != std::string::npos);
  CHECK(data.filters.rows_kept() == 5);

  DatasetOptions none;
  none.dedup = Dedup::none;
  Dataset all = build_dataset(log, none);
  CHECK(all.n_interactions == 9);
  CHECK(all.filters.removed_duplicates == 0);
  CHECK(all.summary().find("no duplicates removed") != std::string::npos);

  // consecutive: also a repeat of the previous item in time order (3 at 101 after 4 at 101 stays:
  // ties keep the file order, 1::3::5::101 comes before 1::4::5::101).
  DatasetOptions consecutive;
  consecutive.dedup = Dedup::consecutive;
  Dataset repeats = build_dataset(read_interactions(write_temp("rep.txt", "1 5\n1 5\n1 6\n1 5\n1 5\n2 5\n")), consecutive);
  CHECK(item_tokens_of(repeats, 0) == Strings{"5", "6", "5"});
  CHECK(repeats.filters.removed_duplicates == 2);
  CHECK(parse_dedup("consecutive") == Dedup::consecutive);
  CHECK(data_error([] { parse_dedup("all"); }).find("unknown --dedup 'all': expected none, exact or consecutive") != std::string::npos);
}

TEST_CASE("data: filters that remove more than a quarter of the rows are warned about, naming the flags that keep them") {
  std::string text;
  for (int u = 1; u <= 20; ++u)
    for (int i = 1; i <= (u <= 2 ? 12 : 3); ++i) text += std::to_string(u) + " " + std::to_string(i) + "\n";
  InteractionLog log = read_interactions(write_temp("small_core.txt", text));
  DatasetOptions core;
  core.min_user_interactions = 10;
  Dataset data = build_dataset(log, core);
  CHECK(data.filters.rows_read == 78);
  CHECK(data.filters.removed_by_core == 54);
  CHECK(data.filters.removed_most());
  std::string warning = data.filter_warning();
  CHECK(warning.find("warning: ") == 0);
  CHECK(warning.find("small_core.txt: the filters removed 78 of 78 rows") == std::string::npos);  // 24 remain
  CHECK(warning.find("the filters removed 54 of 78 rows (69%): k-core (users >= 10, items >= 0) 54") != std::string::npos);
  CHECK(warning.find("--min-user 0 --min-item 0") != std::string::npos);
  CHECK(data.summary().find(warning) != std::string::npos);
  // A quarter or less: no warning.
  CHECK(build_dataset(log).filter_warning().empty());
}

TEST_CASE("data: text that is not UTF-8/Latin-1 lines is refused with a reason") {
  CHECK(read_error("utf16.csv", std::string("\xFF\xFEu\0s\0", 6)).find("utf16.csv: is UTF-16 text") != std::string::npos);
  CHECK(read_error("binary.dat", std::string("1::2::3::4\n1::2\0\x01::3::4\n", 23)).find("binary.dat:2: NUL byte") !=
        std::string::npos);
  CHECK(read_error("mac.txt", "1 2\r1 3\r").find("mac.txt: has CR-only line ends") != std::string::npos);
}

TEST_CASE("data: 10 MB lines load (S3-Rec users with very long sequences) or fail with a short message") {
  // One user with 1.5 million items on one 10 MB line.
  std::string line = "1";
  line.reserve(13 << 20);
  const int n = 1500000;
  for (int i = 0; i < n; ++i) line += " " + std::to_string(1000000 + i % 5000);
  line += "\n2 1000001 1000002\n";
  CHECK(line.size() > (10u << 20));
  InteractionLog log = read_interactions(write_temp("long.txt", line));
  CHECK(log.rows.size() == size_t(n) + 2);
  CHECK(log.item_tokens.size() == 5000);
  Dataset data = build_dataset(log);
  CHECK(data.sequences[size_t(data.user_id("1"))].size() == size_t(n));

  // A 10 MB field of garbage, and a 10 MB line of separators: DataErrors with short messages.
  std::string garbage = "1::2::" + std::string(10 << 20, 'x') + "::4\n";
  std::string message = read_error("garbage.dat", garbage);
  CHECK(message.find("garbage.dat:1: field 3 (rating) 'xxxx") != std::string::npos);
  CHECK(message.find("(10485760 bytes) is not a number") != std::string::npos);
  CHECK(message.size() < 300);
  std::string separators;
  for (int i = 0; i < (5 << 20); ++i) separators += "::";
  message = read_error("separators.dat", separators + "\n");
  CHECK(message.find("separators.dat:1: expected 4 fields separated by '::', got 5242881") != std::string::npos);
  message = read_error("long_pair.txt", "1 " + std::string(10 << 20, '7') + " 3\n", Format::pairs);
  CHECK(message.find("long_pair.txt:1: expected 2 fields") != std::string::npos);
}

TEST_CASE("data: unreadable paths are IoErrors naming the path") {
  std::string folder = temp_folder().string();
  CHECK(io_error([&] { read_interactions(folder); }).find(folder + ": is a directory") == 0);
  std::string missing = (temp_folder() / "no_such_file.dat").string();
  CHECK(io_error([&] { read_interactions(missing); }).find(missing + ": cannot open") == 0);
  std::string file = write_temp("plain.txt", "1 2\n");
  CHECK(io_error([&] { read_interactions(file + "/inside"); }).find(file + "/inside: cannot open") == 0);

  std::string locked = write_temp("locked.txt", "1 2\n");
  ::chmod(locked.c_str(), 0);
  if (::access(locked.c_str(), R_OK) == 0) {
    MESSAGE("skipped the unreadable-file check: running as root, which reads any file");
  } else {
    CHECK(io_error([&] { read_interactions(locked); }).find(locked + ": cannot open: Permission denied") == 0);
  }
}

// ---- the dataset ---------------------------------------------------------------------------------

TEST_CASE("data: chronological order per user, timestamp ties kept in file order") {
  // Rows in random order; user 7's rows by time: e(1), b(3), d(3), a(5), c(5).
  InteractionLog log = read_interactions(write_temp(
      "order.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n7\ta\t4\t5\n8\tz\t4\t9\n7\tb\t4\t3\n7\tc\t4\t5\n7\td\t4\t3\n8\ty\t4\t2\n7\te\t4\t1\n"));
  Dataset data = build_dataset(log);
  CHECK(item_tokens_of(data, data.user_id("7")) == Strings{"e", "b", "d", "a", "c"});
  CHECK(item_tokens_of(data, data.user_id("8")) == Strings{"y", "z"});

  // Without timestamps the file order is the time order.
  Dataset pairs = build_dataset(read_interactions(write_temp("order.csv", "user_id,item_id\n1,c\n2,a\n1,a\n1,b\n")));
  CHECK(item_tokens_of(pairs, pairs.user_id("1")) == Strings{"c", "a", "b"});
}

TEST_CASE("data: iterative k-core needs several rounds") {
  // min 2 and 2. Round 1 drops D (1 row), so z has 1 row; round 2 drops C-z, so C has 1 row;
  // round 3 drops C-y; round 4 drops nothing. Left: A and B with x and y.
  std::string text = "user_id,item_id\nA,x\nA,y\nB,x\nB,y\nC,y\nC,z\nD,z\n";
  InteractionLog log = read_interactions(write_temp("core.csv", text));
  DatasetOptions options;
  options.min_user_interactions = 2;
  options.min_item_interactions = 2;
  Dataset data = build_dataset(log, options);
  CHECK(data.filters.core_rounds == 3);
  CHECK(data.filters.removed_by_core == 3);
  CHECK(data.n_users == 2);
  CHECK(data.n_items == 2);
  CHECK(data.n_interactions == 4);
  CHECK(data.user_tokens == Strings{"A", "B"});
  CHECK_FALSE(data.find_user("C"));
  CHECK_FALSE(data.find_item("z"));
  CHECK(data.sequences[0] == std::vector<int32_t>{1, 2});
  CHECK(data.summary().find("k-core (users >= 2, items >= 2) removed 3 in 3 rounds") != std::string::npos);

  // Thresholds of 0 or 1 remove nothing.
  options.min_user_interactions = options.min_item_interactions = 1;
  CHECK(build_dataset(log, options).n_interactions == 7);

  options.min_user_interactions = options.min_item_interactions = 5;
  CHECK(data_error([&] { build_dataset(log, options); }).find("no interactions left after the filters") != std::string::npos);
}

TEST_CASE("data: ids are dense, deterministic and independent of the file order") {
  std::string rows[] = {"u2\t10\t5\t1\n", "u1\t9\t5\t2\n", "u10\t100\t5\t3\n", "u1\tabc\t5\t4\n", "u2\tAbc\t5\t5\n",
                        "u1\t07\t5\t6\n", "u2\t7\t5\t7\n"};
  std::string header = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n", forward = header, backward = header;
  for (int i = 0; i < 7; ++i) forward += rows[i], backward += rows[6 - i];
  Dataset a = build_dataset(read_interactions(write_temp("fwd.inter", forward)));
  Dataset b = build_dataset(read_interactions(write_temp("bwd.inter", backward)));
  // Integers by value (equal values bytewise: "07" < "7"), then other tokens bytewise ('A' < 'a').
  CHECK(a.item_tokens == Strings{"", "07", "7", "9", "10", "100", "Abc", "abc"});
  CHECK(a.user_tokens == Strings{"u1", "u10", "u2"});
  CHECK(a.item_tokens == b.item_tokens);
  CHECK(a.user_tokens == b.user_tokens);
  CHECK(a.sequences == b.sequences);
  CHECK(a.table_rows() == 8);
  CHECK(a.item_id("100") == 5);
  CHECK(a.item_token(5) == "100");
  CHECK(a.user_token(a.user_id("u2")) == "u2");
  CHECK(a.sequences[size_t(a.user_id("u1"))] == std::vector<int32_t>{3, 7, 1});  // 9, abc, 07 by time

  CHECK_THROWS_AS(a.item_token(0), std::out_of_range);  // the padding row has no token
  CHECK_THROWS_AS(a.item_token(8), std::out_of_range);
  CHECK_THROWS_AS(a.user_token(3), std::out_of_range);
  CHECK(data_error([&] { a.item_id("nope"); }).find("no item 'nope' (not in the file, or removed by the filters)") !=
        std::string::npos);
  CHECK(data_error([&] { a.user_id("nope"); }).find("no user 'nope'") != std::string::npos);
}

TEST_CASE("data: the rating threshold keeps rating >= min_rating, only where there are ratings") {
  std::string text = "1::11::1::1\n1::12::2::2\n1::13::3::3\n1::14::4::4\n1::15::5::5\n2::11::2.5::1\n2::12::3.0::2\n";
  InteractionLog log = read_interactions(write_temp("ratings_threshold.dat", text));
  DatasetOptions options;
  options.min_rating = 3;
  Dataset data = build_dataset(log, options);
  CHECK(data.filters.rating_threshold_applied);
  CHECK(data.filters.removed_by_rating == 3);
  CHECK(data.summary().find("rating >= 3 removed 3; no k-core filter") != std::string::npos);
  CHECK(item_tokens_of(data, data.user_id("1")) == Strings{"13", "14", "15"});
  CHECK(item_tokens_of(data, data.user_id("2")) == Strings{"12"});
  CHECK_FALSE(data.find_item("11"));

  for (double disabled : {-1.0, std::nan("")}) {
    options.min_rating = disabled;
    Dataset all = build_dataset(log, options);
    CHECK_FALSE(all.filters.rating_threshold_applied);
    CHECK(all.n_interactions == 7);
  }
  // A file without ratings ignores the threshold (and says so).
  options.min_rating = 3;
  Dataset pairs = build_dataset(read_interactions(write_temp("no_ratings.txt", "1 1\n1 2\n")), options);
  CHECK_FALSE(pairs.filters.rating_threshold_applied);
  CHECK(pairs.n_interactions == 2);
  CHECK(pairs.summary().find("no ratings in the file") != std::string::npos);

  // The threshold runs before the k-core, which then counts only the kept rows.
  options.min_user_interactions = 2;
  Dataset both = build_dataset(log, options);
  CHECK(both.n_users == 1);
  CHECK(both.user_tokens == Strings{"1"});
}

TEST_CASE("data: summary and statistics") {
  DatasetOptions options = DatasetOptions::paper();
  CHECK(options.min_rating == 3);
  CHECK(options.min_user_interactions == 10);
  CHECK(options.min_item_interactions == 10);
  Dataset data = build_dataset(read_interactions(write_temp("stats.txt", "1 1\n1 2\n1 3\n2 1\n")));
  CHECK(data.n_users == 2);
  CHECK(data.n_items == 3);
  CHECK(data.n_interactions == 4);
  CHECK(data.sparsity() == doctest::Approx(1.0 - 4.0 / 6.0));
  CHECK(data.mean_sequence_length() == doctest::Approx(2.0));
  std::string summary = data.summary();
  CHECK(summary.find("(pairs)") != std::string::npos);
  CHECK(summary.find("users 2, items 3, interactions 4") != std::string::npos);
  CHECK(summary.find("sparsity 33.3333%, mean sequence length 2.00 (shortest 1, longest 3)") != std::string::npos);
  CHECK(summary.find("read 4 rows; no duplicates removed; no ratings in the file; no k-core filter") != std::string::npos);
}

TEST_CASE("data: leave-one-out split, users with fewer than 3 interactions train only") {
  Dataset data = build_dataset(read_interactions(write_temp("split.txt", "11 1 2 3 4 5\n12 6 7\n13 1 2 3\n14 8\n"), Format::sequences));
  Split split = leave_one_out(data);
  int32_t a = data.user_id("11"), b = data.user_id("12"), c = data.user_id("13"), d = data.user_id("14");
  auto items = [&](std::span<const int32_t> s) {
    Strings tokens;
    for (int32_t i : s) tokens.push_back(data.item_token(i));
    return tokens;
  };
  CHECK(split.evaluated_users == std::vector<int32_t>{a, c});
  CHECK(items(split.train(a)) == Strings{"1", "2", "3"});
  CHECK(items(split.validation_history(a)) == Strings{"1", "2", "3"});
  CHECK(data.item_token(split.validation_target(a)) == "4");
  CHECK(items(split.test_history(a)) == Strings{"1", "2", "3", "4"});
  CHECK(data.item_token(split.test_target(a)) == "5");
  CHECK(items(split.train(c)) == Strings{"1"});
  CHECK(data.item_token(split.test_target(c)) == "3");
  CHECK(items(split.train(b)) == Strings{"6", "7"});
  CHECK(items(split.train(d)) == Strings{"8"});
  CHECK_FALSE(split.is_evaluated(b));
  CHECK_THROWS_AS(split.validation_target(b), std::out_of_range);
  CHECK_THROWS_AS(split.test_history(d), std::out_of_range);
  CHECK_THROWS_AS(split.train(4), std::out_of_range);
  CHECK(split.n_train_interactions == 3 + 2 + 1 + 1);
  CHECK(split.train(a).data() == data.sequences[size_t(a)].data());  // a view, not a copy
  CHECK(split.test_history(a).data() == data.sequences[size_t(a)].data());
}

// ---- the real files ------------------------------------------------------------------------------

TEST_CASE("data: real ml-100k u.data and the RecBole ml-100k.inter agree") {
  std::string udata = shared_file("ml-100k/u.data"), inter = shared_file("recbole/ml-100k/ml-100k.inter");
  if (udata.empty() || inter.empty()) return;
  auto start = std::chrono::steady_clock::now();
  Dataset a = load_dataset(udata);
  double seconds = seconds_since(start);
  Dataset b = load_dataset(inter);
  CHECK(a.format == Format::ml_100k);
  CHECK(b.format == Format::inter);
  CHECK(a.n_users == 943);
  CHECK(a.n_items == 1682);
  CHECK(a.n_interactions == 100000);
  CHECK(b.n_users == 943);
  CHECK(b.n_items == 1682);
  CHECK(b.n_interactions == 100000);
  CHECK(a.item_tokens == b.item_tokens);
  CHECK(a.user_tokens == b.user_tokens);
  CHECK(a.sequences == b.sequences);
  // Ids 1..943 / 1..1682 keep their values (integer tokens in numeric order).
  CHECK(a.item_token(1682) == "1682");
  CHECK(a.user_token(0) == "1");
  MESSAGE(a.summary() << "\n  loaded in " << seconds << " s");
  DatasetOptions paper = DatasetOptions::paper();
  Dataset filtered = load_dataset(udata, paper);
  MESSAGE("ml-100k with rating >= 3 and 10-core: " << filtered.n_users << " users, " << filtered.n_items << " items, "
                                                   << filtered.n_interactions << " interactions");
}

TEST_CASE("data: real ml-1m.seq.txt counts (SASRec-style pairs)") {
  std::string path = shared_file("ml-1m/ml-1m.seq.txt");
  if (path.empty()) return;
  auto start = std::chrono::steady_clock::now();
  InteractionLog log = read_interactions(path);
  double read_seconds = seconds_since(start);
  Dataset data = build_dataset(log);
  double seconds = seconds_since(start);
  CHECK(log.format == Format::pairs);
  CHECK(data.n_users == 6040);
  CHECK(data.n_items == 3706);
  CHECK(data.n_interactions == 1000209);
  CHECK(data.user_token(0) == "1");
  MESSAGE(data.summary() << "\n  read in " << read_seconds << " s, dataset built in " << seconds << " s");
  CHECK(seconds < 2.0);

  DatasetOptions items5;
  items5.min_item_interactions = 5;  // SASRec's ML-1M statistics: items with >= 5 interactions only
  Dataset sasrec = build_dataset(log, items5);
  CHECK(sasrec.n_items == 3416);
  CHECK(sasrec.n_interactions == 999611);
  CHECK(sasrec.n_users == 6040);
  CHECK(sasrec.table_rows() == 3417);

  DatasetOptions core10 = DatasetOptions::paper();  // no ratings in this file: only the 10-core applies
  Dataset paper = build_dataset(log, core10);
  CHECK_FALSE(paper.filters.rating_threshold_applied);
  for (const auto& s : paper.sequences) CHECK(s.size() >= 10);
  MESSAGE("ml-1m.seq.txt with users >= 10 and items >= 10 (no rating threshold: the file has none):\n" << paper.summary());
  Split split = leave_one_out(paper);
  CHECK(split.evaluated_users.size() == size_t(paper.n_users));
  CHECK(split.n_train_interactions == paper.n_interactions - 2 * paper.n_users);
}

TEST_CASE("data: real partial ratings.dat.gz (users 1-2999) matches ml-1m.seq.txt") {
  std::string path = shared_file("ml-1m/ratings_users0001-2999.dat.gz");
  if (path.empty()) return;
  auto start = std::chrono::steady_clock::now();
  InteractionLog log = read_interactions(path);
  double seconds = seconds_since(start);
  CHECK(log.format == Format::ml_1m);
  CHECK(log.rows.size() == 487650);
  Dataset data = build_dataset(log);
  CHECK(data.n_users == 2999);
  CHECK(data.n_items == 3615);
  CHECK(data.n_interactions == 487650);
  MESSAGE(data.summary() << "\n  read (with gzip -dc) in " << seconds << " s");
  DatasetOptions rated;
  rated.min_rating = 3;
  Dataset kept = build_dataset(log, rated);
  CHECK(kept.n_interactions == 127216 + 170579 + 108545);  // ratings 3, 4 and 5 (the README's counts)
  MESSAGE("with rating >= 3:\n" << kept.summary());
  Dataset paper = build_dataset(log, DatasetOptions::paper());
  MESSAGE("with rating >= 3 and 10-core:\n" << paper.summary());

  // Each user's set of movies equals that user's sequence in ml-1m.seq.txt (README check).
  std::string seq_path = shared_file("ml-1m/ml-1m.seq.txt");
  if (seq_path.empty()) return;
  Dataset full = load_dataset(seq_path);
  int64_t differing = 0;
  for (int32_t u = 0; u < data.n_users; ++u) {
    std::multiset<std::string> raw, seq;
    for (int32_t i : data.sequences[size_t(u)]) raw.insert(data.item_token(i));
    for (int32_t i : full.sequences[size_t(full.user_id(data.user_token(u)))]) seq.insert(full.item_token(i));
    differing += raw != seq;
  }
  CHECK(differing == 0);
}

TEST_CASE("data: real S3-Rec files (Beauty, Yelp, LastFM) counts") {
  struct Expected {
    const char* file;
    int64_t users, items, interactions;
  };
  for (Expected e : {Expected{"s3rec/Beauty.txt", 22363, 12101, 198502}, Expected{"s3rec/Yelp.txt", 30431, 20033, 316354},
                     Expected{"s3rec/LastFM.txt", 1090, 3646, 52551}}) {
    std::string file = e.file;
    CAPTURE(file);
    std::string path = shared_file(file);
    if (path.empty()) continue;
    auto start = std::chrono::steady_clock::now();
    Dataset data = load_dataset(path);
    double seconds = seconds_since(start);
    CHECK(data.format == Format::sequences);
    CHECK(data.n_users == e.users);
    CHECK(data.n_items == e.items);
    CHECK(data.n_interactions == e.interactions);
    // The files' ids are already 1..K: they keep their values.
    CHECK(data.item_token(1) == "1");
    CHECK(data.item_token(int32_t(e.items)) == std::to_string(e.items));
    MESSAGE(data.summary() << "\n  loaded in " << seconds << " s");
  }
}

}  // namespace test_data
