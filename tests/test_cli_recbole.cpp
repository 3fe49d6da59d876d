// `euler train --config FILE.yaml`: a RecBole config read with RecBole's meaning (src/recbole_config.hpp).
#include <doctest/doctest.h>

#include "cli_helpers.hpp"

#include <euler/data/synthetic.hpp>
#include <euler/io/atomic_file.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace test_cli_recbole {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;
namespace fs = std::filesystem;

#if EULER_CLI_YAML
namespace {
std::string temp_path(const std::string& name) { return euler_test::temp_path("cli_recbole", name); }
int run(const std::string& args, const std::string& log) { return euler_test::run_cli(args, log); }
std::string small_data() {
  std::string data = temp_path("small.txt");
  if (!fs::exists(data)) {
    SyntheticConfig s;
    s.users = 80;
    std::ofstream(data) << to_s3rec_text(generate_synthetic(s));
  }
  return data;
}
std::string write(const std::string& name, const std::string& text) {
  std::string path = temp_path(name);
  std::ofstream(path) << text;
  return path;
}
}  // namespace

TEST_CASE("euler train --config FILE.yaml: RecBole's keys as flags, RecBole's defaults, one warning for the rest") {
  std::string config = write("run.yaml", R"yaml(# a RecBole file
field_separator: "\t"
MAX_ITEM_LIST_LENGTH: 10
hidden_size: 8
inner_size: 16
n_layers: 1
user_inter_num_interval: "[0,inf)"
item_inter_num_interval: "[0,inf)"
epochs: 1
train_batch_size: 32
learning_rate: 0.002
stopping_step: 7
valid_metric: Hit@10
eval_args:
    split: {'LS': 'valid_and_test'}
    order: TO
    mode: full
train_neg_sample_args: ~
lamb: 0.0001
show_progress: False
)yaml");
  std::string out = temp_path("run"), log = temp_path("run.log");
  fs::remove_all(out);
  // --lr on the command line wins over learning_rate in the file.
  REQUIRE(run("train --data " + small_data() + " --config " + config + " --lr 0.003 --quiet --out " + out, log) == 0);
  std::string printed = read_file(log);
  CHECK(printed.find(config + ": keys with no effect in euler: field_separator, show_progress\n") != std::string::npos);
  CHECK(printed.find("RecBole's defaults apply: seed 2020, no rating filter, duplicates kept\n") != std::string::npos);
  auto result = nlohmann::json::parse(read_file(out + "/result.json"));
  const nlohmann::json& train = result.at("train");
  CHECK(train["lr"] == 0.003);
  CHECK(train["batch_size"] == 32);
  CHECK(train["epochs"] == 1);
  CHECK(train["patience"] == 7);
  CHECK(train["valid_metric"] == "hr@10");
  CHECK(train["seed"] == 2020);
  const nlohmann::json& model = result.at("config");
  CHECK(model["MAX_ITEM_LIST_LENGTH"] == 10);
  CHECK(model["hidden_size"] == 8);
  CHECK(model["lamb"] == 0.0001);
  CHECK(model["hidden_dropout_prob"] == 0.5);  // RecBole's SASRec default, as euler's
  CHECK(result.at("data")["removed_by_core"] == 0);

  // The example config written from the paper's settings runs as it is (here with a smaller model
  // and one epoch; the flags win).
  std::string example = fs::path(__FILE__).parent_path().parent_path() / "examples" / "configs" / "ml-1m.yaml";
  fs::remove_all(out);
  REQUIRE(run("train --data " + small_data() + " --config " + example +
                  " --min-user 0 --min-item 0 --epochs 1 --hidden 8 --inner 16 --layers 1 --max-len 10 --quiet --out " + out,
              log) == 0);
  printed = read_file(log);
  CHECK(printed.find("keys with no effect in euler: field_separator, USER_ID_FIELD") == std::string::npos);  // a column flag
  CHECK(printed.find("keys with no effect in euler: field_separator, load_col\n") != std::string::npos);
  CHECK(printed.find("RecBole's defaults apply: seed 2020, duplicates kept\n") != std::string::npos);
  result = nlohmann::json::parse(read_file(out + "/result.json"));
  CHECK(result["train"]["batch_size"] == 4096);
  CHECK(result["train"]["patience"] == 15);
  CHECK(result["train"]["valid_metric"] == "ndcg@10");
  CHECK(result["config"]["MAX_ITEM_LIST_LENGTH"] == 10);
  CHECK(result["config"]["lamb"] == 1e-5);
}

TEST_CASE("euler train --config FILE.yaml: what euler cannot do is an error naming the file, line and key") {
  struct Case {
    std::string yaml, message;
    int exit_code;
  };
  const Case cases[] = {
      {"epochs: 2\nloss_type: BPR\n", ".yaml:2: key 'loss_type' is 'BPR'; euler trains with cross-entropy", 1},
      {"train_neg_sample_args:\n  distribution: uniform\n  sample_num: 1\n", ".yaml:1: key 'train_neg_sample_args' asks for negative sampling", 1},
      {"user_inter_num_interval: \"[5,100]\"\n", ".yaml:1: key 'user_inter_num_interval' has the upper bound 100", 1},
      {"val_interval:\n  rating: \"(3,inf)\"\n", ".yaml:1: key 'val_interval' rating excludes its lower bound; write it as \"[3,inf)\"", 1},
      {"eval_args:\n  mode: uni100\n", "key 'eval_args' has mode \"uni100\"; euler ranks every item (full)", 1},
      {"eval_args:\n  split: {'RS': [0.8, 0.1, 0.1]}\n", "key 'eval_args' has split {\"RS\":[0.8,0.1,0.1]}; euler splits leave-one-out", 1},
      {"learning_rate: fast\n", ".yaml:1: key 'learning_rate' must be a number, got \"fast\"", 1},
      {"n_layers: two\n", "key 'n_layers' must be an integer", 1},
      {"epochs: [1, 2\n", ".yaml:2:1: not valid YAML", 1},
      {"- 1\n- 2\n", "expected a mapping of RecBole keys", 1},
      {"valid_metric: AUC\n", "--valid-metric: unknown metric \"auc\"", 2},
  };
  int index = 0;
  for (const Case& c : cases) {
    CAPTURE(c.yaml);
    std::string config = write("bad-" + std::to_string(index++) + ".yaml", c.yaml), log = temp_path("bad.log");
    CHECK(run("train --data " + small_data() + " --config " + config + " --quiet --out " + temp_path("bad-run"), log) == c.exit_code);
    std::string printed = read_file(log);
    CAPTURE(printed);
    CHECK(printed.find(c.message) != std::string::npos);
    CHECK_FALSE(fs::exists(temp_path("bad-run") + "/checkpoint.safetensors"));
  }
}
#else
TEST_CASE("euler train --config FILE.yaml without yaml-cpp says how to get it") {
  std::string config = euler_test::temp_path("cli_recbole", "run.yaml"), log = euler_test::temp_path("cli_recbole", "log");
  std::ofstream(config) << "epochs: 1\n";
  CHECK(euler_test::run_cli("train --data x.txt --config " + config, log) == 1);
  CHECK(read_file(log).find("built without yaml-cpp") != std::string::npos);
}
#endif

}  // namespace test_cli_recbole
