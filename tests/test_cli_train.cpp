// `euler train`, `euler eval` and `euler recommend` end to end on a small file, and their errors.
#include <doctest/doctest.h>

#include "cli_helpers.hpp"

#include <euler/data/synthetic.hpp>
#include <euler/eulerformer.hpp>
#include <euler/train/metrics.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace test_cli_train {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;
namespace fs = std::filesystem;

namespace {
std::string temp_path(const std::string& name) { return euler_test::temp_path("cli_train", name); }
int run(const std::string& args, const std::string& log) { return euler_test::run_cli(args, log); }
std::string last_line(const std::string& text) {
  std::string t = text;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  return t.substr(t.rfind('\n') == std::string::npos ? 0 : t.rfind('\n') + 1);
}
}  // namespace

TEST_CASE("euler train, eval and recommend on a small file") {
  SyntheticConfig s;
  s.users = 120;
  std::string data = temp_path("small.txt"), out = temp_path("run"), log = temp_path("log");
  std::ofstream(data) << to_s3rec_text(generate_synthetic(s));
  std::string common = " --data " + data + " --max-len 10 --hidden 8 --inner 16 --layers 1 --min-user 0 --min-item 0";
  REQUIRE(run("train" + common + " --objective all --epochs 2 --batch-size 32 --quiet --out " + out, log) == 0);
  auto result = nlohmann::json::parse(last_line(read_file(log)));
  for (const char* key : {"test_ndcg@10", "test_hr@10", "test_mrr@10", "valid_ndcg@10", "pop_test_ndcg@10"})
    CHECK_MESSAGE(result.contains(key), key);
  CHECK(result["test_count"].get<int>() == 120);
  for (const char* file : {"best.safetensors", "checkpoint.safetensors", "log.jsonl"}) CHECK(fs::exists(fs::path(out) / file));

  // eval on the same data reproduces the trainer's test metrics of the best weights
  REQUIRE(run("eval --checkpoint " + out + "/best.safetensors" + " --data " + data + " --min-user 0 --min-item 0", log) == 0);
  auto evaluated = nlohmann::json::parse(last_line(read_file(log)));
  CHECK(evaluated["test_ndcg@10"].get<double>() == doctest::Approx(result["test_ndcg@10"].get<double>()).epsilon(1e-12));

  // --ranks writes one rank per user and split; the metrics recomputed from them are the printed ones
  std::string ranks_file = temp_path("ranks.tsv");
  REQUIRE(run("eval --checkpoint " + out + "/best.safetensors --data " + data + " --min-user 0 --min-item 0 --ranks " +
                  ranks_file,
              log) == 0);
  CHECK(nlohmann::json::parse(last_line(read_file(log))) == evaluated);
  std::istringstream table(read_file(ranks_file));
  std::string header;
  std::getline(table, header);
  CHECK(header == "user\tvalid_rank\ttest_rank");
  std::set<std::string> users;
  double sums[2][3] = {};  // [valid, test][hr, ndcg, mrr] @10
  std::string user;
  int64_t ranks[2];
  while (table >> user >> ranks[0] >> ranks[1]) {
    users.insert(user);
    for (int split = 0; split < 2; ++split) {
      REQUIRE(ranks[split] >= 1);
      REQUIRE(ranks[split] <= int64_t(s.items));
      sums[split][0] += hit_at(ranks[split], 10);
      sums[split][1] += ndcg_at(ranks[split], 10);
      sums[split][2] += mrr_at(ranks[split], 10);
    }
  }
  CHECK(table.eof());
  REQUIRE(users.size() == 120);
  const char* split_names[2] = {"valid", "test"};
  const char* metric_names[3] = {"hr", "ndcg", "mrr"};
  for (int split = 0; split < 2; ++split)
    for (int m = 0; m < 3; ++m) {
      std::string key = std::string(split_names[split]) + "_" + metric_names[m] + "@10";
      CHECK_MESSAGE(sums[split][m] / 120.0 == doctest::Approx(evaluated[key].get<double>()).epsilon(1e-12), key);
    }

  // recommend for a user and for a given history
  REQUIRE(run("recommend --checkpoint " + out + "/best.safetensors --history \"3 17 42\" --k 5", log) == 0);
  auto recs = nlohmann::json::parse(last_line(read_file(log)));
  CHECK(recs["items"].size() == 5);
  REQUIRE(run("recommend --checkpoint " + out + "/best.safetensors --user 7 --k 3 --exclude-history --data " + data +
                  " --min-user 0 --min-item 0",
              log) == 0);
  CHECK(nlohmann::json::parse(last_line(read_file(log)))["items"].size() == 3);

  // resume continues from the checkpoint
  REQUIRE(run("train" + common + " --objective all --epochs 3 --batch-size 32 --quiet --out " + out + " --resume " + out +
                  "/checkpoint.safetensors",
              log) == 0);
  CHECK(nlohmann::json::parse(last_line(read_file(log)))["epochs"].get<int>() == 3);

  // --keep-mb 0 (the fused layer recomputes its intermediates in backward) trains to the same metrics
  REQUIRE(run("train" + common + " --objective all --epochs 2 --batch-size 32 --quiet --keep-mb 0", log) == 0);
  auto recomputed = nlohmann::json::parse(last_line(read_file(log)));
  CHECK(recomputed["valid_ndcg@10"].get<double>() == result["valid_ndcg@10"].get<double>());
  CHECK(recomputed["test_ndcg@10"].get<double>() == result["test_ndcg@10"].get<double>());
}

TEST_CASE("euler train without --out keeps the run in a new runs/ directory; progress lines in a log") {
  SyntheticConfig s;
  s.users = 120;
  fs::path dir = euler_test::scratch_dir("cli_train_default_out");
  std::string data = (dir / "small.txt").string(), log = (dir / "log").string();
  std::ofstream(data) << to_s3rec_text(generate_synthetic(s));
  // stderr is a file here, not a terminal: a plain progress line every --progress-every seconds.
  std::string command = "cd " + dir.string() + " && " + EULER_CLI_PATH + " train --data small.txt --max-len 10 --hidden 8 --inner 16" +
                        " --layers 1 --min-user 0 --min-item 0 --objective all --epochs 1 --batch-size 8 --threads 1" +
                        " --progress-every 0.000001 --pos rope > log 2>&1";
  REQUIRE(std::system(command.c_str()) == 0);
  std::string text = read_file(log);
  CHECK(text.find("writing the run to runs/") != std::string::npos);
  CHECK(text.find("-rope (--out DIR to choose)") != std::string::npos);
  CHECK(text.find("\r") == std::string::npos);  // no terminal bar in a log
  size_t at = text.find("epoch 1  ");
  REQUIRE(at != std::string::npos);
  std::string line = text.substr(at, text.find('\n', at) - at);
  CHECK(line.find("%  ") != std::string::npos);
  CHECK(line.find(" seq/s  ETA ") != std::string::npos);
  std::vector<fs::path> runs;
  for (const auto& entry : fs::directory_iterator(dir / "runs")) runs.push_back(entry.path());
  REQUIRE(runs.size() == 1);
  for (const char* file : {"best.safetensors", "checkpoint.safetensors", "log.jsonl", "result.json"})
    CHECK_MESSAGE(fs::exists(runs[0] / file), file);
  // A second run started in the same second gets its own directory.
  REQUIRE(std::system(command.c_str()) == 0);
  size_t count = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir / "runs")) ++count;
  CHECK(count == 2);
  // A run refused after its directory was made (here by the memory estimate) leaves none behind.
  std::string refused = command;
  refused.replace(refused.find(" > log"), 6, " --max-memory 1M > refused.log");
  CHECK(std::system(refused.c_str()) != 0);
  CHECK(read_file((dir / "refused.log").string()).find("writing the run to runs/") != std::string::npos);
  count = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir / "runs")) ++count;
  CHECK(count == 2);
}

TEST_CASE("euler train and friends: bad invocations give a clear message and a non-zero exit") {
  std::string log = temp_path("err"), data = temp_path("tiny.txt");
  std::ofstream(data) << "1 1 2 3 4\n2 2 3 4 5\n";
  auto fails_with = [&](const std::string& args, int code, const std::string& message) {
    CAPTURE(args);
    CHECK(run(args, log) == code);
    CHECK_MESSAGE(read_file(log).find(message) != std::string::npos, read_file(log));
  };
  fails_with("train", 2, "missing --data");
  fails_with("train --data " + data + " --frobnicate", 2, "frobnicate");
  fails_with("train --data /no/such/file.txt", 1, "/no/such/file.txt");
  fails_with("train --data " + data + " --batch-size -3", 2, "--batch-size must be >= 1");
  fails_with("train --data " + data + " --max-len 0", 2, "MAX_ITEM_LIST_LENGTH must be >= 1");
  fails_with("train --data " + data + " --heads 3 --hidden 8", 2, "not divisible by n_heads");
  fails_with("train --data " + data + " --pos rotary", 1, "'rotary' is not one of none|learned|sinusoidal|rope|euler");
  fails_with("train --data " + data + " --all-windows", 2, "--all-windows is for --objective all");
  fails_with("eval --data " + data, 2, "missing --checkpoint");
  fails_with("recommend --checkpoint /no/such.safetensors --history \"1 2\"", 1, "/no/such.safetensors");
  fails_with("recommend --checkpoint x.safetensors", 2, "exactly one of --user");
}

TEST_CASE("euler train --seeds: one run per seed, their mean and sd, result.json and ranks.tsv; a rerun resumes") {
  SyntheticConfig s;
  s.users = 80;
  std::string data = temp_path("seeds.txt"), out = temp_path("seeds_run"), log = temp_path("seeds_log");
  std::ofstream(data) << to_s3rec_text(generate_synthetic(s));
  std::string train = "train --data " + data + " --max-len 10 --hidden 8 --inner 16 --layers 1 --min-user 0 --min-item 0" +
                      " --objective all --epochs 2 --batch-size 32 --quiet --out " + out;
  REQUIRE(run(train + " --seeds 3,1", log) == 0);
  nlohmann::json summary = nlohmann::json::parse(last_line(read_file(log)));
  CHECK(summary["seeds"] == nlohmann::json::array({3, 1}));
  CHECK(summary == nlohmann::json::parse(read_file(out + "/summary.json")));

  // Each seed's directory: result.json (the final report, config, options, data) and ranks.tsv.
  std::vector<nlohmann::json> results;
  for (const char* seed : {"3", "1"}) {
    std::string dir = out + "/seed-" + seed;
    nlohmann::json r = nlohmann::json::parse(read_file(dir + "/result.json"));
    CHECK(r["train"]["seed"] == std::stoi(seed));
    CHECK(r["config"]["pos"] == "euler");
    CHECK(r["data"]["users"] == 80);
    CHECK(r["rotation"].size() == 1);  // one layer's delta and b
    CHECK(r["training_seconds"].get<double>() > 0);
    CHECK(r["command"].get<std::string>().find("--seeds 3,1") != std::string::npos);
    for (const char* key : {"test_ndcg@10", "markov_test_ndcg@10", "pop_test_ndcg@10"}) CHECK_MESSAGE(r["result"].contains(key), key);
    // ranks.tsv gives back the reported test NDCG@10
    std::istringstream table(read_file(dir + "/ranks.tsv"));
    std::string header, user;
    std::getline(table, header);
    CHECK(header == "user\tvalid_rank\ttest_rank");
    int64_t valid_rank = 0, test_rank = 0, users = 0;
    double ndcg = 0;
    while (table >> user >> valid_rank >> test_rank) ndcg += ndcg_at(test_rank, 10), ++users;
    CHECK(users == 80);
    CHECK(ndcg / 80.0 == doctest::Approx(r["result"]["test_ndcg@10"].get<double>()).epsilon(1e-12));
    results.push_back(r["result"]);
  }
  CHECK(results[0]["test_ndcg@10"] != results[1]["test_ndcg@10"]);  // the seeds differ
  double a = results[0]["test_ndcg@10"].get<double>(), b = results[1]["test_ndcg@10"].get<double>();
  CHECK(summary["test_ndcg@10"]["mean"].get<double>() == doctest::Approx((a + b) / 2).epsilon(1e-12));
  CHECK(summary["test_ndcg@10"]["sd"].get<double>() == doctest::Approx(std::abs(a - b) / std::sqrt(2.0)).epsilon(1e-9));

  // The same command again reads the finished seeds; an unfinished seed resumes from its checkpoint.
  REQUIRE(run(train + " --seeds 3,1", log) == 0);
  CHECK(nlohmann::json::parse(last_line(read_file(log))) == summary);
  fs::remove(out + "/seed-1/result.json");
  REQUIRE(run(train.substr(0, train.find(" --quiet")) + " --out " + out + " --seeds 3,1", log) == 0);
  CHECK(read_file(log).find("seed 3: finished before") != std::string::npos);
  CHECK(read_file(log).find("seed 1: resuming from") != std::string::npos);
  CHECK(nlohmann::json::parse(last_line(read_file(log))) == summary);

  // A finished run with other settings is never mixed in; bad lists are refused.
  CHECK(run(train + " --seeds 3,1 --lr 0.01", log) == 1);
  CHECK_MESSAGE(read_file(log).find("seed-3/result.json: a finished run with another training option: lr") != std::string::npos,
                read_file(log));
  CHECK(run(train + " --seeds 1,x", log) == 2);
  CHECK(read_file(log).find("--seeds: 'x' is not a seed") != std::string::npos);
  CHECK(run(train + " --seeds 1,1", log) == 2);
  CHECK(run(train + " --seeds 1 --seed 2", log) == 2);

  // euler report reads the directory: one row, the two seeds.
  REQUIRE(run("report " + out, log) == 0);
  CHECK_MESSAGE(read_file(log).find("| 1, 3 |") != std::string::npos, read_file(log));
}

}  // namespace test_cli_train
