// `euler report` on small hand-written run directories: the markdown and JSON figures worked out by
// hand, the paired differences, and every bad input.
#include <doctest/doctest.h>

#include "cli_helpers.hpp"

#include <euler/io/atomic_file.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>

namespace test_cli_report {  // this file's own names: see "unity build" in CMakeLists.txt

using nlohmann::json;
namespace fs = std::filesystem;

namespace {
std::string temp_path(const std::string& name) { return euler_test::temp_path("cli_report", name); }
int run(const std::string& args, const std::string& log) { return euler_test::run_cli(args, log); }
bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A small result.json as `euler train --out` writes it. metrics: test HR, NDCG, MRR @10, valid NDCG@10.
json crafted_result(int seed, std::array<double, 4> metrics, int best_epoch, int epochs, double seconds) {
  return {{"result",
           {{"test_hr@10", metrics[0]}, {"test_ndcg@10", metrics[1]}, {"test_mrr@10", metrics[2]},
            {"valid_ndcg@10", metrics[3]}, {"valid_hr@10", 0.5}, {"test_hr@5", 0.2}, {"pop_test_hr@10", 0.02},
            {"pop_test_ndcg@10", 0.0105}, {"pop_test_mrr@10", 0.007}, {"markov_test_hr@10", 0.1},
            {"markov_test_ndcg@10", 0.05}, {"markov_test_mrr@10", 0.04}, {"best_epoch", best_epoch},
            {"epochs", epochs}, {"users", 3}}},
          {"config", {{"pos", "learned"}, {"lamb", 0}, {"n_layers", 2}, {"MAX_ITEM_LIST_LENGTH", 200}}},
          {"train", {{"seed", seed}, {"threads", 2}, {"batch_size", 128}, {"lr", 0.001}}},
          {"data", {{"source", "ml-1m.txt"}, {"users", 6040}, {"items", 3416}, {"interactions", 999611}}},
          {"training_seconds", seconds}};
}

// A run directory: result.json, and ranks.tsv with these test ranks for users u1, u2, u3.
std::string write_run(const std::string& dir, const json& result, std::array<int, 3> test_ranks) {
  fs::create_directories(dir);
  std::ofstream(dir + "/result.json") << result.dump(2);
  std::ofstream(dir + "/ranks.tsv") << "user\tvalid_rank\ttest_rank\nu1\t5\t" << test_ranks[0] << "\nu2\t5\t"
                                    << test_ranks[1] << "\nu3\t5\t" << test_ranks[2] << "\n";
  return dir;
}

// Row 1, "sasrec": one run, seed 1, test ranks (1, 20, 4) (tests/compare_ranks.cmake's A).
// Row 2, "euler": seeds 2 and 10 (in seed-10/ and seed-2/, so that only a numeric sort puts 2 first),
// another pos and lamb, threads differing between seeds (allowed), a rotation per layer, ranks
// (2, 3, 1) and (2, 30, 1).
std::string sasrec_dir() {
  return write_run(temp_path("rows/sasrec"), crafted_result(1, {0.29, 0.16, 0.12, 0.2}, 30, 45, 999.6), {1, 20, 4});
}
std::string euler_dir() {
  std::string dir = temp_path("rows/euler");
  for (int seed : {2, 10}) {
    json r = seed == 2 ? crafted_result(2, {0.30, 0.18, 0.14, 0.20}, 45, 60, 1000)
                       : crafted_result(10, {0.32, 0.17, 0.14, 0.22}, 40, 55, 1468);
    r["config"]["pos"] = "euler";
    r["config"]["lamb"] = 1e-5;
    r["train"]["threads"] = seed == 2 ? 2 : 4;
    r["rotation"] = {{{"layer", 0}, {"delta", seed == 2 ? 1.0 : 1.02}, {"b", seed == 2 ? 0.02 : 0.04}},
                     {{"layer", 1}, {"delta", seed == 2 ? 0.8 : 0.86}, {"b", nullptr}}};
    write_run(dir + "/seed-" + std::to_string(seed), r, seed == 2 ? std::array{2, 3, 1} : std::array{2, 30, 1});
  }
  fs::create_directories(dir + "/notes");  // a subdirectory without result.json is not a seed
  return dir;
}
}  // namespace

TEST_CASE("euler report: the markdown tables, worked out by hand") {
  std::string log = temp_path("log");
  REQUIRE(run("report " + sasrec_dir() + " " + euler_dir() + "/ --paired", log) == 0);
  std::string out = euler::read_file(log);
  CAPTURE(out);
  CHECK(contains(out, "Data: `ml-1m.txt`, 6,040 users, 3,416 items, 999,611 interactions.\n"));
  CHECK(contains(out, "Settings shared by all rows (seed and threads aside): MAX_ITEM_LIST_LENGTH 200, batch_size 128, "
                      "lr 0.001, n_layers 2.\n"));
  CHECK(contains(out, "| model | seeds | test HR@10 | test NDCG@10 | test MRR@10 | valid NDCG@10 | best / last epoch | "
                      "training time |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n"));
  CHECK(contains(out, "| most popular | – | 0.0200 | 0.0105 | 0.0070 | – | – | – |\n"));
  CHECK(contains(out, "| Markov | – | 0.1000 | 0.0500 | 0.0400 | – | – | – |\n"));
  // one seed: single values; training time 999.6 s rounds to 1,000
  CHECK(contains(out, "| sasrec | 1 | 0.2900 | 0.1600 | 0.1200 | 0.2000 | 30 / 45 | 1,000 s |\n"));
  // two seeds, mean ± sample sd: HR (0.30, 0.32) 0.31 ± 0.0141; NDCG (0.18, 0.17) 0.175 ± 0.0071; MRR equal;
  // valid (0.20, 0.22); time (1000 + 1468) / 2 = 1,234 s
  CHECK(contains(out, "| euler | 2, 10 | 0.3100 ± 0.0141 | 0.1750 ± 0.0071 | 0.1400 ± 0.0000 | 0.2100 ± 0.0141 | "
                      "45 / 60, 40 / 55 | 1,234 s |\n"));
  // the settings that differ (threads differ within the euler row, but are not a setting)
  CHECK(contains(out, "| model | lamb | pos |\n| --- | --- | --- |\n| sasrec | 0 | learned |\n| euler | 1e-05 | euler |\n"));
  // rotation, mean over the two seeds; b null in layer 1
  CHECK(contains(out, "| model | layer | delta | b |\n| --- | --- | --- | --- |\n| euler | 0 | 1.0100 | 0.0300 |\n"
                      "| euler | 1 | 0.8300 | – |\n\n"));  // sasrec, without rotation, has no rows here
  // paired, euler minus sasrec; per user (sasrec, euler averaged over its seeds):
  //   HR@10:   (1, 1), (0, 0.5), (1, 1): differences (0, 0.5, 0), mean 1/6, sd 0.2887, se 1/6, z 1
  //   NDCG@10: (1, 0.6309), (0, 0.25), (0.4307, 1): differences (-0.3691, 0.25, 0.5693): mean 0.1501,
  //            squares about the mean 0.2695 + 0.0100 + 0.1758 = 0.4553, sd sqrt(0.4553 / 2) = 0.4771, se 0.2755, z 0.54
  //   MRR@10:  (1, 0.5), (0, 1/6), (0.25, 1): differences (-0.5, 1/6, 0.75): mean 0.1389, se 0.3611, z 0.38
  CHECK(contains(out, "| euler minus sasrec | 3 | +0.1667 ± 0.1667 (z 1.0) | +0.1501 ± 0.2755 (z 0.5) | "
                      "+0.1389 ± 0.3611 (z 0.4) |\n"));
  CHECK(contains(out, "not of training seeds"));

  // --labels names the rows; without --paired there is no paired table
  REQUIRE(run("report " + sasrec_dir() + " " + euler_dir() + " --labels SASRec,EulerFormer", log) == 0);
  out = euler::read_file(log);
  CHECK(contains(out, "| SASRec | 1 | 0.2900 |"));
  CHECK(contains(out, "| EulerFormer | 2, 10 | 0.3100 ± 0.0141 |"));
  CHECK_FALSE(contains(out, "minus"));
}

TEST_CASE("euler report --paired: the figures of tests/compare_ranks.cmake, checked by hand") {
  std::string log = temp_path("log_compare");
  std::string a = write_run(temp_path("compare/a"), crafted_result(1, {0.3, 0.2, 0.1, 0.2}, 1, 2, 1), {1, 20, 4});
  std::string b = write_run(temp_path("compare/b"), crafted_result(1, {0.3, 0.2, 0.1, 0.2}, 1, 2, 1), {2, 3, 1});
  // the same users in another order
  std::ofstream(b + "/ranks.tsv") << "user\tvalid_rank\ttest_rank\nu3\t5\t1\nu1\t1\t2\nu2\t30\t3\n";
  REQUIRE(run("report " + a + " " + b + " --paired", log) == 0);
  std::string out = euler::read_file(log);
  CAPTURE(out);
  // NDCG@10 per user A (1, 0, 0.4307), B (0.6309, 0.5, 1): B - A +0.2334, standard error 0.3019, z 0.77;
  // HR@10 +0.3333 ± 0.3333 (z 1.00); MRR@10 A (1, 0, 0.25), B (0.5, 1/3, 1): +0.1944 ± 0.3675 (z 0.53)
  CHECK(contains(out, "| b minus a | 3 | +0.3333 ± 0.3333 (z 1.0) | +0.2334 ± 0.3019 (z 0.8) | +0.1944 ± 0.3675 (z 0.5) |"));
  // no settings differ: no such table; no rotation: no such table
  CHECK_FALSE(contains(out, "differ between rows"));
  CHECK_FALSE(contains(out, "rotation"));
}

TEST_CASE("euler report --json: the same numbers as one JSON object") {
  std::string log = temp_path("log_json");
  REQUIRE(run("report " + sasrec_dir() + " " + euler_dir() + " --paired --json", log) == 0);
  json report = json::parse(euler::read_file(log));
  CHECK(report["data"]["users"] == 6040);
  CHECK(report["shared_settings"] == json{{"MAX_ITEM_LIST_LENGTH", 200}, {"batch_size", 128}, {"lr", 0.001}, {"n_layers", 2}});
  REQUIRE(report["baselines"].size() == 2);
  CHECK(report["baselines"][1]["model"] == "Markov");
  REQUIRE(report["rows"].size() == 2);
  const json& sasrec = report["rows"][0];
  const json& euler = report["rows"][1];
  CHECK(sasrec["model"] == "sasrec");
  CHECK(sasrec["test_hr@10"]["sd"].is_null());
  CHECK(euler["seeds"] == json{2, 10});
  CHECK(euler["test_hr@10"]["mean"].get<double>() == doctest::Approx(0.31));
  CHECK(euler["test_hr@10"]["sd"].get<double>() == doctest::Approx(0.0141421356));
  CHECK(euler["best_epochs"] == json{45, 40});
  CHECK(euler["training_seconds"].get<double>() == doctest::Approx(1234));
  CHECK(euler["settings"] == json{{"lamb", 1e-5}, {"pos", "euler"}});
  CHECK(euler["rotation"][0]["delta"].get<double>() == doctest::Approx(1.01));
  CHECK(euler["rotation"][1]["b"].is_null());
  REQUIRE(report["paired"].size() == 1);
  const json& d = report["paired"][0];
  CHECK(d["model"] == "euler");
  CHECK(d["minus"] == "sasrec");
  CHECK(d["users"] == 3);
  CHECK(d["test_hr@10"]["mean"].get<double>() == doctest::Approx(1.0 / 6));
  CHECK(d["test_hr@10"]["z"].get<double>() == doctest::Approx(1.0));
  CHECK(d["test_ndcg@10"]["se"].get<double>() == doctest::Approx(0.27546).epsilon(1e-4));
}

TEST_CASE("euler report: a run written before a setting existed ran with its default") {
  std::string log = temp_path("log"), dir = temp_path("versions");
  json older = crafted_result(1, {0.3, 0.2, 0.1, 0.2}, 1, 2, 1), newer = crafted_result(2, {0.3, 0.2, 0.1, 0.2}, 1, 2, 1);
  newer["train"]["all_windows"] = false;  // the default: the same setting as the older run's
  write_run(dir + "/seed-1", older, {1, 2, 3});
  write_run(dir + "/seed-2", newer, {1, 2, 3});
  CHECK(run("report " + dir, log) == 0);
  newer["train"]["all_windows"] = true;  // not the default: a different run
  write_run(dir + "/seed-2", newer, {1, 2, 3});
  CHECK(run("report " + dir, log) == 1);
  CHECK_MESSAGE(contains(euler::read_file(log), "'all_windows' is true here and false in"), euler::read_file(log));
}

TEST_CASE("euler report: bad inputs give one line naming the file and the problem") {
  std::string log = temp_path("log_errors");
  std::string good = sasrec_dir();
  auto fails_with = [&](const std::string& args, int code, const std::vector<std::string>& parts) {
    CAPTURE(args);
    CHECK(run("report " + args, log) == code);
    std::string out = euler::read_file(log);
    for (const std::string& part : parts) CHECK_MESSAGE(contains(out, part), out);
    CHECK_MESSAGE(std::count(out.begin(), out.end(), '\n') == 1, out);
  };
  auto variant = [&](const std::string& name, const std::function<void(json&)>& change) {
    json r = crafted_result(1, {0.3, 0.2, 0.1, 0.2}, 1, 2, 1);
    change(r);
    return write_run(temp_path("bad/" + name), r, {1, 2, 3});
  };

  fails_with("", 2, {"give at least one run directory"});
  fails_with(good + " --labels a,b", 2, {"--labels has 2 names for 1 directories"});
  fs::create_directories(temp_path("bad/empty"));
  fails_with(temp_path("bad/empty"), 1, {"bad/empty/result.json: missing"});
  fails_with(temp_path("bad/nowhere"), 1, {"bad/nowhere: not a directory"});
  std::string broken = variant("broken", [](json&) {});
  std::ofstream(broken + "/result.json") << "{\"result\": {";
  fails_with(broken, 1, {"broken/result.json: not valid JSON"});
  fails_with(variant("no_mrr", [](json& r) { r["result"].erase("test_mrr@10"); }), 1,
             {"no_mrr/result.json: missing key 'result.test_mrr@10'"});
  fails_with(variant("no_time", [](json& r) { r.erase("training_seconds"); }), 1,
             {"no_time/result.json: missing key 'training_seconds'"});
  fails_with(variant("text", [](json& r) { r["result"]["test_hr@10"] = "high"; }), 1,
             {"text/result.json: 'result.test_hr@10' is not a number (got \"high\")"});
  fails_with(variant("float_epoch", [](json& r) { r["result"]["best_epoch"] = 4.5; }), 1,
             {"float_epoch/result.json: 'result.best_epoch' is not an integer"});
  fails_with(variant("bad_b", [](json& r) { r["rotation"] = {{{"layer", 0}, {"delta", 1}, {"b", "x"}}}; }), 1,
             {"bad_b/result.json: 'rotation[0].b' is not a number"});
  fails_with(good + " " + variant("other_data", [](json& r) { r["data"]["users"] = 6041; }), 1,
             {"other_data/result.json: data.users is 6041, but 6040 in", "same data"});

  // runs within one row: settings other than seed and threads must agree; seeds must differ
  std::string mixed = temp_path("bad/mixed");
  write_run(mixed + "/seed-1", crafted_result(1, {0.3, 0.2, 0.1, 0.2}, 1, 2, 1), {1, 2, 3});
  json faster = crafted_result(2, {0.3, 0.2, 0.1, 0.2}, 1, 2, 1);
  faster["train"]["lr"] = 0.002;
  write_run(mixed + "/seed-2", faster, {1, 2, 3});
  fails_with(mixed, 1, {"mixed/seed-2/result.json: runs of one row may differ only in seed and threads, but 'lr' is 0.002 here "
                        "and 0.001 in", "mixed/seed-1/result.json"});
  std::string twice = temp_path("bad/twice");
  write_run(twice + "/a", crafted_result(3, {0.3, 0.2, 0.1, 0.2}, 1, 2, 1), {1, 2, 3});
  write_run(twice + "/b", crafted_result(3, {0.3, 0.2, 0.1, 0.2}, 1, 2, 1), {1, 2, 3});
  fails_with(twice, 1, {"seed 3 again"});
  // the baselines are properties of the split: runs of the first row that disagree are on different data
  std::string split = temp_path("bad/split");
  write_run(split + "/seed-1", crafted_result(1, {0.3, 0.2, 0.1, 0.2}, 1, 2, 1), {1, 2, 3});
  json other_split = crafted_result(2, {0.3, 0.2, 0.1, 0.2}, 1, 2, 1);
  other_split["result"]["pop_test_ndcg@10"] = 0.0106;
  write_run(split + "/seed-2", other_split, {1, 2, 3});
  fails_with(split, 1, {"split/seed-2/result.json: pop_test_ndcg@10 is 0.010600", "the data differ"});

  // ranks.tsv, read with --paired only
  auto ranks_variant = [&](const std::string& name, const std::string& table) {
    std::string dir = variant(name, [](json&) {});
    std::ofstream(dir + "/ranks.tsv") << table;
    return dir;
  };
  std::string header = "user\tvalid_rank\ttest_rank\n";
  std::string bad_rank = ranks_variant("bad_rank", header + "u1\t1\t1\nu2\t3\tthree\nu3\t2\t4\n");
  CHECK(run("report " + good + " " + bad_rank, log) == 0);
  fails_with(good + " " + bad_rank + " --paired", 1, {"bad_rank/ranks.tsv:3: expected user, valid_rank, test_rank"});
  fails_with(good + " " + ranks_variant("zero", header + "u1\t1\t0\nu2\t3\t1\nu3\t2\t4\n") + " --paired", 1,
             {"zero/ranks.tsv:2: expected user"});
  fails_with(good + " " + ranks_variant("dup", header + "u1\t1\t1\nu1\t3\t20\nu3\t2\t4\n") + " --paired", 1,
             {"dup/ranks.tsv:3: user u1 appears twice"});
  fails_with(good + " " + ranks_variant("header", "user\trank\nu1\t1\n") + " --paired", 1,
             {"header/ranks.tsv:1: not an `euler eval --ranks` table"});
  fails_with(good + " " + ranks_variant("other_users", header + "u1\t1\t1\nu2\t3\t20\nu4\t2\t4\n") + " --paired", 1,
             {"other_users/ranks.tsv: no line for user u3, who is in", "sasrec/ranks.tsv"});
  fails_with(good + " " + ranks_variant("extra_user", header + "u1\t1\t1\nu2\t3\t20\nu3\t2\t4\nu5\t1\t1\n") + " --paired", 1,
             {"sasrec/ranks.tsv: no line for user u5, who is in", "extra_user/ranks.tsv"});
  std::string no_ranks = variant("no_ranks", [](json&) {});
  fs::remove(no_ranks + "/ranks.tsv");
  fails_with(good + " " + no_ranks + " --paired", 1, {"no_ranks/ranks.tsv: cannot open"});
}

}  // namespace test_cli_report
