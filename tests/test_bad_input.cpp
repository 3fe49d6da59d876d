// Bad input, case by case, for every loader: the interaction formats (ml-1m, ml-100k, pairs,
// sequences, inter, csv, and auto-detection), the dataset builder, and the batch files of
// `euler grad` / `euler recommend`. One TEST_CASE per kind of bad input (the list of issue 7 and
// docs/reliability.md); each checks that every loader gives a DataError / IoError naming the file,
// the line and the problem, or the documented tolerant behaviour.
#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include <euler/data/batch_file.hpp>
#include <euler/data/dataset.hpp>
#include <euler/data/interactions.hpp>
#include <euler/io/safetensors.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

namespace test_bad_input {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;
namespace fs = std::filesystem;

namespace {

fs::path folder() { return euler_test::scratch_dir("bad_input"); }
std::string write(const std::string& name, std::string_view bytes) {
  std::string path = (folder() / name).string();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  return path;
}

std::string data_error(const std::function<void()>& f) { return euler_test::error_of<DataError>(f); }
std::string io_error(const std::function<void()>& f) { return euler_test::error_of<IoError>(f); }

// The DataError of reading `bytes` as file `name` in `format`.
std::string interactions_error(const std::string& name, std::string_view bytes, Format format = Format::auto_detect) {
  std::string path = write(name, bytes);
  return data_error([&] { read_interactions(path, format); });
}
// The DataError of reading `bytes` as a batch file (ids 1..9, lists of at least 2).
std::string batch_error(const std::string& name, std::string_view bytes) {
  std::string path = write(name, bytes);
  return data_error([&] { read_id_lists(path, 9, 2); });
}
std::vector<std::vector<int32_t>> batch(const std::string& name, std::string_view bytes) {
  return read_id_lists(write(name, bytes), 9, 2);
}

// One small file per format, with `row(user, item, rating, time)` giving each format's line.
struct FormatCase {
  const char* name;
  Format format;
  const char* header;  // "" for headerless formats
  std::string (*row)(const char* user, const char* item, const char* rating, const char* time);
};
const FormatCase kFormats[] = {
    {"ratings.dat", Format::ml_1m, "",
     [](const char* u, const char* i, const char* r, const char* t) { return std::string(u) + "::" + i + "::" + r + "::" + t; }},
    {"u.data", Format::ml_100k, "",
     [](const char* u, const char* i, const char* r, const char* t) { return std::string(u) + "\t" + i + "\t" + r + "\t" + t; }},
    {"pairs.txt", Format::pairs, "", [](const char* u, const char* i, const char*, const char*) { return std::string(u) + " " + i; }},
    {"seq.txt", Format::sequences, "", [](const char* u, const char* i, const char*, const char*) { return std::string(u) + " " + i; }},
    {"x.inter", Format::inter, "user_id:token\titem_id:token\trating:float\ttimestamp:float",
     [](const char* u, const char* i, const char* r, const char* t) { return std::string(u) + "\t" + i + "\t" + r + "\t" + t; }},
    {"x.csv", Format::csv, "user_id,item_id,rating,timestamp",
     [](const char* u, const char* i, const char* r, const char* t) { return std::string(u) + "," + i + "," + r + "," + t; }},
};
std::string file_of(const FormatCase& f, const std::vector<std::string>& rows, const std::string& eol = "\n") {
  std::string text = *f.header ? std::string(f.header) + eol : "";
  for (const std::string& r : rows) text += r + eol;
  return text;
}

}  // namespace

TEST_CASE("bad input: a wrong number of fields names the file, the line and the counts") {
  CHECK_CONTAINS(interactions_error("f.dat", "1::2::3::4\n1::2::3\n"), "f.dat:2: expected 4 fields separated by '::', got 3");
  CHECK_CONTAINS(interactions_error("f.data", "1\t2\t3\t4\n1\t2\t3\t4\t5\n", Format::ml_100k),
                 "f.data:2: expected 4 fields 'user item rating timestamp' separated by tabs, got 5");
  CHECK_CONTAINS(interactions_error("f.txt", "1 2\n1 2 3\n", Format::pairs), "f.txt:2: expected 2 fields 'user item' separated by spaces, got 3");
  CHECK_CONTAINS(interactions_error("f2.txt", "1 2 3\n7\n", Format::sequences), "f2.txt:2: user '7' has no items");
  CHECK_CONTAINS(interactions_error("f.inter", "user_id:token\titem_id:token\n1\t2\t3\n"),
                 "f.inter:2: expected 2 tab-separated fields as in the header, got 3");
  CHECK_CONTAINS(interactions_error("f.csv", "user_id,item_id,rating\n1,2\n"), "f.csv:2: expected 3 comma-separated fields as in the header, got 2");
  CHECK_CONTAINS(batch_error("f.batch", "1 2 3\n4\n"), "f.batch:2: 1 id, but a list needs at least 2 (history items, then the target)");
}

TEST_CASE("bad input: non-numeric ratings, timestamps and batch ids") {
  CHECK_CONTAINS(interactions_error("n.dat", "1::2::good::4\n"), "n.dat:1: field 3 (rating) 'good' is not a number");
  CHECK_CONTAINS(interactions_error("n.data", "1\t2\t3\t4\n1\t2\t3\tyesterday\n"),
                 "n.data:2: field 4 (timestamp) 'yesterday' is not a number (timestamps must be numeric");
  CHECK_CONTAINS(interactions_error("n.inter", "user_id:token\titem_id:token\trating:float\n1\t2\t3.5x\n"),
                 "n.inter:2: field 3 (rating) '3.5x' is not a number");
  CHECK_CONTAINS(interactions_error("n.csv", "user_id,item_id,timestamp\n1,2,0x10\n"), "n.csv:2: field 3 (timestamp) '0x10' is not a number");
  CHECK_CONTAINS(interactions_error("nan.csv", "user_id,item_id,rating\n1,2,nan\n"), "nan.csv:2: field 3 (rating) 'nan' is not a finite number");
  CHECK_CONTAINS(interactions_error("big.dat", "1::2::1e999::4\n"), "big.dat:1: field 3 (rating) '1e999' is out of range");
  CHECK_CONTAINS(batch_error("n.batch", "1 2\n3 four 5\n"), "n.batch:2: 'four' is not an integer id");
  CHECK_CONTAINS(batch_error("n2.batch", "1 2.5\n"), "n2.batch:1: '2.5' is not an integer id");
}

TEST_CASE("bad input: negative, signed, padded and overflowing ids") {
  // MovieLens and SASRec/S3-Rec text: ids are integers, so "+186", "0186" and "186" are one user;
  // a negative id is an integer like any other.
  InteractionLog log = read_interactions(write("neg.txt", "-5 7\n+186 07\n0186 +7\n186 8\n"), Format::pairs);
  Dataset data = build_dataset(log);
  CHECK(data.user_tokens == std::vector<std::string>{"-5", "186"});
  CHECK(data.item_tokens == std::vector<std::string>{"", "7", "8"});
  CHECK(data.sequences[1] == std::vector<int32_t>{1, 1, 2});
  CHECK_CONTAINS(interactions_error("big.txt", "1 100000000000000000000000000000\n", Format::pairs),
                 "big.txt:1: field 2 (item id) '100000000000000000000000000000' is not an integer in range: ids in pairs files are "
                 "integers (for other ids use format 'csv' or 'inter')");
  CHECK_CONTAINS(interactions_error("sign.txt", "1 2\n+-3 2\n", Format::pairs), "sign.txt:2: field 1 (user id) '+-3' is not an integer");
  CHECK_CONTAINS(interactions_error("alpha.data", "1\t2\t3\t4\n1\tB00X\t3\t5\n"),
                 "alpha.data:2: field 2 (item id) 'B00X' is not an integer: ids in ml-100k files are integers");
  CHECK_CONTAINS(interactions_error("alpha.dat", "u1::2::3::4\n"), "alpha.dat:1: field 1 (user id) 'u1' is not an integer: ids in ml-1m");
  CHECK_CONTAINS(interactions_error("alpha.txt", "1 2 3\n2 4 x5\n", Format::sequences), "alpha.txt:2: field 3 (item id) 'x5' is not an integer");
  CHECK_CONTAINS(interactions_error("float.txt", "1 2\n1 2.0\n", Format::pairs), "float.txt:2: field 2 (item id) '2.0' is not an integer");
  // csv and inter ids are tokens: "+186" and "186" are two users there.
  Dataset tokens = build_dataset(read_interactions(write("signs.csv", "user_id,item_id\n+186,7\n186,7\n")));
  CHECK(tokens.user_tokens == std::vector<std::string>{"186", "+186"});  // integers first, then the other tokens
  // Batch files: ids index the model's item table, so they must be in 1..max.
  CHECK_CONTAINS(batch_error("neg.batch", "1 -3\n"), "neg.batch:1: id -3 is outside 1..9");
  CHECK_CONTAINS(batch_error("zero.batch", "0 3\n"), "zero.batch:1: id 0 is outside 1..9");
  CHECK_CONTAINS(batch_error("big.batch", "1 2\n1 99999999999999999999999\n"),
                 "big.batch:2: id '99999999999999999999999' overflows (ids are 1..9)");
  CHECK_CONTAINS(batch_error("int32.batch", "1 4294967297\n"), "int32.batch:1: id 4294967297 is outside 1..9");
}

TEST_CASE("bad input: an empty file") {
  for (const FormatCase& f : kFormats) {
    CAPTURE(f.name);
    CHECK_CONTAINS(interactions_error(std::string("empty_") + f.name, "", f.format), "empty file (no interactions)");
  }
  std::string path = write("empty.auto", "");
  CHECK(data_error([&] { read_interactions(path); }) == path + ": empty file (no interactions)");
  CHECK_CONTAINS(interactions_error("blank.txt", "\n \n\t\n"), "blank.txt: no interactions: the file is empty or has only blank lines");
  CHECK_CONTAINS(batch_error("empty.batch", ""), "empty.batch: empty file (no lists)");
  CHECK_CONTAINS(batch_error("blank.batch", "\n\n  \n"), "blank.batch: no lists in the file");
  std::string st = write("empty.safetensors", "");
  CHECK_THROWS_WITH_AS(safetensors::File::read(st), doctest::Contains("file too short for a safetensors header (0 bytes)"),
                       safetensors::FormatError);
}

TEST_CASE("bad input: a header and no rows") {
  CHECK_CONTAINS(interactions_error("h.csv", "user_id,item_id,rating,timestamp\n"), "h.csv: no interactions: the file has only a header line");
  CHECK_CONTAINS(interactions_error("h.inter", "user_id:token\titem_id:token\n"), "h.inter: no interactions: the file has only a header line");
  CHECK_CONTAINS(interactions_error("h.dat", "UserID::MovieID::Rating::Timestamp\n"),
                 "h.dat:1: field 1 (user id) 'UserID' is not an integer: ids in ml-1m files are integers (a header line? this format has none)");
  CHECK_CONTAINS(interactions_error("h.data", "user\titem\trating\ttimestamp\n"),
                 "h.data:1: field 1 (user id) 'user' is not an integer: ids in ml-100k files are integers (a header line? this format has none)");
  CHECK_CONTAINS(interactions_error("h.txt", "user_id item_id\n1 2\n"), "h.txt:1: 'user_id item_id' looks like a header");
  CHECK_CONTAINS(interactions_error("h2.txt", "user items\n1 2 3\n", Format::sequences), "h2.txt:1: 'user items' looks like a header");
  // A header with the wrong column names lists what it found.
  CHECK_CONTAINS(interactions_error("cols.csv", "visitor,page\n1,2\n"),
                 "cols.csv:1: no user column 'user_id' in the header; columns found: 'visitor', 'page'");
  CHECK_CONTAINS(batch_error("h.batch", "# history then target\n"), "h.batch: no lists in the file (only blank lines and '#' comments)");
}

TEST_CASE("bad input: CRLF line ends are accepted by every loader") {
  for (const FormatCase& f : kFormats) {
    CAPTURE(f.name);
    InteractionLog log = read_interactions(write(std::string("crlf_") + f.name, file_of(f, {f.row("1", "2", "3", "4"), f.row("1", "5", "3", "6")}, "\r\n")),
                                           f.format);
    REQUIRE(log.rows.size() == 2);
    CHECK(log.item_token(log.rows[1]) == "5");
    if (log.has_timestamps) CHECK(log.rows[1].timestamp == 6.0);
  }
  CHECK(batch("crlf.batch", "1 2 3\r\n4 5\r\n") == std::vector<std::vector<int32_t>>{{1, 2, 3}, {4, 5}});
}

TEST_CASE("bad input: a UTF-8 byte-order mark is skipped by every loader") {
  for (const FormatCase& f : kFormats) {
    CAPTURE(f.name);
    InteractionLog log = read_interactions(write(std::string("bom_") + f.name, "\xEF\xBB\xBF" + file_of(f, {f.row("1", "2", "3", "4")})), f.format);
    REQUIRE(log.rows.size() == 1);
    CHECK(log.user_tokens == std::vector<std::string>{"1"});
  }
  CHECK(read_interactions(write("bom_auto.csv", "\xEF\xBB\xBFuser_id,item_id\n1,2\n")).format == Format::csv);
  CHECK(batch("bom.batch", "\xEF\xBB\xBF" "1 2\n") == std::vector<std::vector<int32_t>>{{1, 2}});
  CHECK_CONTAINS(batch_error("utf16.batch", std::string("\xFF\xFE" "1\0 \0" "2\0", 8)), "utf16.batch: is UTF-16 text");
}

TEST_CASE("bad input: trailing spaces and tabs are trimmed by every loader") {
  for (const FormatCase& f : kFormats) {
    CAPTURE(f.name);
    std::string text = *f.header ? std::string(f.header) + " \t\n" : "";
    text += f.row("1", "2", "3", "4") + "  \t \n" + f.row("1", "5", "3", "6") + " \n";
    InteractionLog log = read_interactions(write(std::string("trail_") + f.name, text), f.format);
    REQUIRE(log.rows.size() == 2);
    CHECK(log.item_tokens == std::vector<std::string>{"2", "5"});
  }
  CHECK(batch("trail.batch", "1 2 \t \n3 4  \n") == std::vector<std::vector<int32_t>>{{1, 2}, {3, 4}});
}

TEST_CASE("bad input: Latin-1 bytes are token bytes in csv and inter, refused ids elsewhere, escaped in messages") {
  for (const FormatCase& f : kFormats) {
    CAPTURE(f.name);
    std::string path = write(std::string("latin1_") + f.name, file_of(f, {f.row("caf\xe9", "cr\xe8me", "3", "4")}));
    if (f.format == Format::csv || f.format == Format::inter) {
      InteractionLog log = read_interactions(path, f.format);
      REQUIRE(log.rows.size() == 1);
      CHECK(log.user_tokens == std::vector<std::string>{"caf\xe9"});
      CHECK(log.item_tokens == std::vector<std::string>{"cr\xe8me"});
    } else {
      CHECK_CONTAINS(data_error([&] { read_interactions(path, f.format); }), ":1: field 1 (user id) 'caf\\xe9' is not an integer");
    }
  }
  CHECK_CONTAINS(interactions_error("l.dat", "1::2::tr\xe8s::4\n"), "l.dat:1: field 3 (rating) 'tr\\xe8s' is not a number");
  CHECK_CONTAINS(batch_error("l.batch", "1 \xe9\xe9\n"), "l.batch:1: '\\xe9\\xe9' is not an integer id");
}

TEST_CASE("bad input: exact duplicate rows are dropped where timestamps identify them, kept with --dedup none") {
  for (const FormatCase& f : kFormats) {
    CAPTURE(f.name);
    std::string row = f.row("1", "2", "3", "4");
    InteractionLog log = read_interactions(write(std::string("dup_") + f.name, file_of(f, {row, row, row})), f.format);
    CHECK(log.rows.size() == 3);
    Dataset data = build_dataset(log);
    // Without timestamps (pairs, sequences) every row is an interaction: there are no exact duplicates.
    if (log.has_timestamps) {
      CHECK(data.sequences[0] == std::vector<int32_t>{1});
      CHECK(data.filters.removed_duplicates == 2);
    } else {
      CHECK(data.sequences[0] == std::vector<int32_t>{1, 1, 1});
    }
    DatasetOptions keep_all;
    keep_all.dedup = Dedup::none;
    CHECK(build_dataset(log, keep_all).sequences[0] == std::vector<int32_t>{1, 1, 1});
    DatasetOptions consecutive;
    consecutive.dedup = Dedup::consecutive;
    CHECK(build_dataset(log, consecutive).sequences[0] == std::vector<int32_t>{1});
  }
  CHECK(batch("dup.batch", "1 2\n1 2\n").size() == 2);
}

TEST_CASE("bad input: extremely long lines load, and bad ones give short messages") {
  // 2 million items on one line (about 16 MB).
  std::string line = "7";
  for (int i = 0; i < 2000000; ++i) line += " 1" + std::to_string(i % 1000);
  InteractionLog log = read_interactions(write("long.txt", line + "\n"), Format::sequences);
  CHECK(log.rows.size() == 2000000);
  std::string ids = "1";
  for (int i = 0; i < 1000000; ++i) ids += " " + std::to_string(1 + i % 9);
  CHECK(batch("long.batch", ids + "\n")[0].size() == 1000001);
  // A 16 MB field: the message quotes 48 bytes and gives the length.
  std::string huge(16 << 20, '9');
  for (const std::string& message : {interactions_error("long.dat", "1::2::3" + huge + "x::4\n"), batch_error("long2.batch", "1 8" + huge + "x\n"),
                                     interactions_error("long.csv", "user_id,item_id,rating\n1,2,3" + huge + "x\n")}) {
    CHECK_CONTAINS(message, "(16777218 bytes)");
    CHECK(message.size() < 300);
  }
}

TEST_CASE("bad input: a directory instead of a file") {
  std::string dir = folder().string();
  CHECK(io_error([&] { read_interactions(dir); }) == dir + ": is a directory, not a file");
  CHECK(io_error([&] { read_id_lists(dir, 9); }) == dir + ": is a directory, not a file");
  CHECK(io_error([&] { load_dataset(dir); }) == dir + ": is a directory, not a file");
  CHECK(io_error([&] { safetensors::File::read(dir); }) == dir + ": is a directory, not a file");
}

TEST_CASE("bad input: unreadable files are IoErrors naming the path and the reason") {
  std::string missing = (folder() / "missing.dat").string();
  CHECK(io_error([&] { read_interactions(missing); }) == missing + ": cannot open: No such file or directory");
  CHECK(io_error([&] { read_id_lists(missing, 9); }) == missing + ": cannot open: No such file or directory");

  // Permission denied: root reads any file, so this part only runs for other users.
  std::string locked = write("locked.dat", "1::2::3::4\n");
  ::chmod(locked.c_str(), 0);
  if (::geteuid() == 0) {
    MESSAGE("skipped the chmod 000 check: running as root, which reads any file (the /proc check below covers a failing read)");
  } else {
    CHECK(io_error([&] { read_interactions(locked); }) == locked + ": cannot open: Permission denied");
    CHECK(io_error([&] { read_id_lists(locked, 9); }) == locked + ": cannot open: Permission denied");
  }

  // A file that opens but whose read fails, even for root: /proc/self/mem at offset 0 (EIO).
  std::string mem = "/proc/self/mem";
  if (fs::exists(mem)) {
    CHECK_CONTAINS(io_error([&] { read_interactions(mem); }), mem + ": read failed after 0 bytes: Input/output error");
    CHECK_CONTAINS(io_error([&] { read_id_lists(mem, 9); }), mem + ": read failed");
    CHECK_CONTAINS(io_error([&] { safetensors::File::read(mem); }), mem + ": read failed");
  } else {
    MESSAGE("skipped the /proc/self/mem check: no /proc");
  }

  // A device would never end: refused by name. A FIFO that nobody writes to reads as empty, at once.
  CHECK(io_error([&] { read_interactions("/dev/zero"); }) == "/dev/zero: is not a regular file or a pipe (a device or a socket); refusing to read it");
  std::string fifo = (folder() / "fifo").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK(data_error([&] { read_interactions(fifo); }) == fifo + ": empty file (no interactions)");
  CHECK(data_error([&] { read_id_lists(fifo, 9); }) == fifo + ": empty file (no lists)");

  // A path through a regular file.
  std::string through = write("plain.txt", "1 2\n") + "/inside";
  CHECK(io_error([&] { read_interactions(through); }) == through + ": cannot open: Not a directory");
}

TEST_CASE("bad input: NUL bytes and CR-only line ends are refused by every loader") {
  for (const FormatCase& f : kFormats) {
    CAPTURE(f.name);
    std::string text = file_of(f, {f.row("1", "2", "3", "4"), f.row("1", "2", "3", "4")});
    text[text.size() - 2] = '\0';
    int line = *f.header ? 3 : 2;
    CHECK_CONTAINS(interactions_error(std::string("nul_") + f.name, text, f.format),
                   ":" + std::to_string(line) + ": NUL byte: this looks like a binary file, not text");
    CHECK_CONTAINS(interactions_error(std::string("cr_") + f.name, file_of(f, {f.row("1", "2", "3", "4"), f.row("1", "2", "3", "4")}, "\r"), f.format),
                   "has CR-only line ends");
  }
  CHECK_CONTAINS(batch_error("nul.batch", std::string("1 2\n3\0 4\n", 9)), "nul.batch:2: NUL byte");
}

TEST_CASE("bad input: data that the filters empty, or that has no user to evaluate") {
  DatasetOptions options;
  options.min_user_interactions = 5;
  std::string path = write("short.txt", "1 2\n1 3\n2 3\n");
  CHECK_CONTAINS(data_error([&] { load_dataset(path, options); }),
                 path + ": no interactions left after the filters (read 3, rating threshold removed 0, k-core removed 3)");
  DatasetOptions ratings;
  ratings.min_rating = 4;
  std::string low = write("low.dat", "1::2::3::4\n1::3::1::5\n");
  CHECK_CONTAINS(data_error([&] { load_dataset(low, ratings); }), "rating threshold removed 2");
}

}  // namespace test_bad_input
