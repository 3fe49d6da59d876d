// The command line on bad invocations: unknown flags, missing files, unwritable output, impossible
// values. Each gives one clear line on stderr and a non-zero exit: 2 for a usage error (the flags),
// 1 for everything found while running (files, data, configs, numbers).
#include <doctest/doctest.h>

#include "cli_helpers.hpp"

#include <euler/eulerformer.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>
#include <utility>

namespace test_cli_errors {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;
namespace fs = std::filesystem;

namespace {

std::string temp_path(const std::string& name) { return euler_test::temp_path("cli_errors", name); }

// Runs `args`; checks the exit code and that the output holds `message` (and `also`).
void fails_with(const std::string& args, int code, const std::string& message, const std::string& also = "") {
  std::string log = temp_path("log");
  CAPTURE(args);
  int exit_code = euler_test::run_cli(args, log);
  std::string output = read_file(log);
  CHECK_MESSAGE(exit_code == code, output);
  for (const std::string& part : {message, also})
    CHECK_MESSAGE(output.find(part) != std::string::npos, "expected '" << part << "' in: " << output);
  CHECK_MESSAGE(output.size() < 2000, output);  // one clear message, not a dump
}

// A small data file (30 users of 6 items out of 12) and a checkpoint trained on it.
struct Fixture {
  std::string data = temp_path("data.txt"), run = temp_path("run"), checkpoint = run + "/best.safetensors";
  std::string common = " --format sequences --max-len 5 --hidden 8 --inner 16 --layers 1 --min-user 0 --min-item 0 --quiet --epochs 1";
  Fixture() {
    std::ofstream out(data);
    for (int u = 0; u < 30; ++u) {
      out << 1000 + u;
      for (int k = 0; k < 6; ++k) out << " " << 1 + (3 * u + k) % 12;
      out << "\n";
    }
    out.close();
    REQUIRE(euler_test::run_cli("train --data " + data + common + " --out " + run, temp_path("train.log")) == 0);
  }
};
const Fixture& fixture() {
  static Fixture f;
  return f;
}

}  // namespace

TEST_CASE("cli: unknown commands and flags are usage errors naming them") {
  const Fixture& f = fixture();
  fails_with("", 2, "usage: euler <command>");
  fails_with("fly", 2, "euler: unknown command 'fly'");
  fails_with("train --data " + f.data + " --learning-rate 0.1", 2, "euler train: Option ", "learning-rate’ does not exist");
  fails_with("eval --checkpoint " + f.checkpoint + " --data " + f.data + " --topk 5", 2, "euler eval: Option ", "topk’ does not exist");
  fails_with("recommend --checkpoint " + f.checkpoint + " --history 1 --count 3", 2, "euler recommend: Option ", "count’ does not exist");
  fails_with("grad --weights " + f.checkpoint + " --batch x --out y --lr 1", 2, "euler grad: Option ", "lr’ does not exist");
  fails_with("train --data " + f.data + " --epochs", 2, "euler train: Option ", "epochs’ is missing an argument");
  fails_with("train --data " + f.data + " --epochs ten", 2, "Argument ", "ten’ failed to parse");
  fails_with("train --data " + f.data + " --batch-size 99999999999", 2, "Argument ", "99999999999’ failed to parse");
  fails_with("train --data " + f.data + " --format parquet", 1, "unknown data format 'parquet': expected one of auto|ml-1m|");
  fails_with("train --data " + f.data + " --backbone gpt", 1, "--backbone: 'gpt' is not one of sasrec|bert4rec");
  fails_with("train --data " + f.data + " --on-nonfinite ignore", 1, "--on-nonfinite: 'ignore' is not one of stop|skip");
  fails_with("grad --weights " + f.checkpoint + " --batch x --out y --dtype half", 2, "--dtype must be float or double, got half");
}

TEST_CASE("cli: missing files are named, with the reason") {
  const Fixture& f = fixture();
  std::string missing = temp_path("no_such_file.txt");
  fails_with("train --data " + missing + f.common, 1, "euler train: error: " + missing + ": cannot open: No such file or directory");
  fails_with("train --data " + f.data + " --config " + missing + f.common, 1, missing + ": cannot open: No such file or directory");
  fails_with("train --data " + f.data + f.common + " --resume " + missing, 1, missing + ": cannot open");
  fails_with("eval --checkpoint " + missing + " --data " + f.data, 1, "euler eval: error: " + missing + ": cannot open");
  fails_with("eval --checkpoint " + f.checkpoint + " --data " + missing + " --format sequences --min-user 0 --min-item 0", 1, missing + ": cannot open");
  fails_with("recommend --checkpoint " + missing + " --history 3", 1, missing + ": cannot open");
  fails_with("grad --weights " + f.checkpoint + " --batch " + missing + " --out " + temp_path("g.safetensors"), 1, missing + ": cannot open");
  fails_with("train --data " + fs::path(f.data).parent_path().string() + f.common, 1, ": is a directory, not a file");
  fails_with("train" + f.common, 2, "euler train: missing --data");
  fails_with("eval --data " + f.data, 2, "euler eval: missing --checkpoint");
  fails_with("grad --weights " + f.checkpoint + " --out x", 2, "euler grad: missing --batch");
  // Files that exist but are not what the flag wants.
  std::string config = temp_path("bad_config.json");
  std::ofstream(config) << "{\"hidden_size\": 8,";
  fails_with("train --data " + f.data + " --config " + config + f.common, 1, config + ": not valid JSON");
  std::ofstream(config) << "{\"hidden_sise\": 8}";
  fails_with("train --data " + f.data + " --config " + config + f.common, 1, config + ": config: unknown key 'hidden_sise'");
  fails_with("eval --checkpoint " + f.data + " --data " + f.data, 1, f.data + ": header length");
  fails_with("train --data " + f.checkpoint + f.common, 1, f.checkpoint + ":", ": NUL byte: this looks like a binary file, not text");
}

TEST_CASE("cli: an unwritable output directory is reported before any training") {
  const Fixture& f = fixture();
  std::string file = temp_path("a_file");
  std::ofstream(file) << "x";
  fails_with("train --data " + f.data + f.common + " --out " + file + "/run", 1,
             file + "/run: cannot create the output directory: Not a directory");
  fails_with("train --data " + f.data + f.common + " --out " + file, 1, file + ": exists and is not a directory (the output directory)");
  if (fs::exists("/proc/self")) {
    // /proc takes no new directories, not even from root.
    fails_with("train --data " + f.data + f.common + " --out /proc/euler_run", 1, "/proc/euler_run: cannot create the output directory");
  }
  // grad writes one file, atomically: its temporary cannot be created.
  std::string batch = temp_path("batch.txt");
  std::ofstream(batch) << "1 2 3\n";
  fails_with("grad --weights " + f.checkpoint + " --batch " + batch + " --out " + file + "/grads.safetensors", 1,
             file + "/grads.safetensors: cannot create");
  fails_with("grad --weights " + f.checkpoint + " --batch " + batch + " --out " + fs::path(file).parent_path().string(), 1,
             "exists and is not a regular file; refusing to replace it");
  // eval --ranks too.
  std::string eval = " --data " + f.data + " --format sequences --min-user 0 --min-item 0";
  fails_with("eval --checkpoint " + f.checkpoint + eval + " --ranks " + file + "/ranks.tsv", 1,
             "euler eval: error: " + file + "/ranks.tsv: cannot create");
}

TEST_CASE("cli: impossible values are refused with the limit") {
  const Fixture& f = fixture();
  std::string train = "train --data " + f.data + f.common;
  fails_with(train + " --batch-size -3", 2, "--batch-size must be >= 1");
  fails_with(train + " --batch-size 0", 2, "--batch-size must be >= 1");
  fails_with(train + " --epochs 0", 2, "--epochs must be >= 1");
  fails_with(train + " --threads 0", 2, "--threads must be >= 1");
  fails_with(train + " --eval-batch 0", 2, "--eval-batch must be >= 1");
  fails_with(train + " --patience 0", 2, "--patience must be >= 1");
  fails_with(train + " --keep-mb -1", 2, "--keep-mb must be >= 0");
  fails_with(train + " --lr 0", 2, "--lr must be a finite number > 0");
  fails_with(train + " --lr -0.1", 2, "--lr must be a finite number > 0");
  fails_with(train + " --lr nan", 2, "Argument ", "nan’ failed to parse");
  fails_with(train + " --lr 1e999", 2, "Argument ", "1e999’ failed to parse");
  fails_with(train + " --min-user -1", 2, "--min-user and --min-item must be >= 0");
  fails_with(train + " --max-len 0", 2, "config: MAX_ITEM_LIST_LENGTH must be >= 1, got 0 (--max-len)");
  fails_with(train + " --max-len 1000000", 2, "config: MAX_ITEM_LIST_LENGTH 1000000 is more than 65536");
  fails_with(train + " --hidden 7", 2, "config: hidden_size must be even and >= 2, got 7 (--hidden)");
  fails_with(train + " --hidden 8 --heads 16", 2, "config: n_heads 16 is more than hidden_size 8 (each head needs at least one channel) (--heads)");
  fails_with(train + " --hidden 8 --heads 3", 2, "config: hidden_size 8 is not divisible by n_heads 3");
  fails_with(train + " --heads 0", 2, "config: n_heads must be >= 1, got 0");
  fails_with(train + " --layers 0", 2, "config: n_layers must be >= 1, got 0 (--layers)");
  fails_with(train + " --inner 0", 2, "config: inner_size must be >= 1, got 0");
  fails_with(train + " --dropout 1.5", 2, "config: hidden_dropout_prob must be in [0, 1), got 1.5");
  fails_with(train + " --attn-dropout -0.1", 2, "config: attn_dropout_prob must be in [0, 1)");
  fails_with(train + " --tep 0", 2, "config: tep must be > 0");
  fails_with(train + " --lamb -1", 2, "config: lamb must be >= 0");
  fails_with(train + " --weight-decay -1", 2, "--weight-decay must be a finite number >= 0");
  fails_with(train + " --clip -1", 2, "--clip must be a finite number >= 0");
  fails_with(train + " --min-user 50", 1, "no interactions left after the filters");
  fails_with("eval --checkpoint " + f.checkpoint + " --data " + f.data + " --format sequences --min-user 0 --min-item 0 --eval-batch 0", 2,
             "--eval-batch must be >= 1, got 0");
  fails_with("eval --checkpoint " + f.checkpoint + " --data " + f.data + " --format sequences --min-user 0 --min-item 0 --threads -2", 2,
             "--threads must be >= 1, got -2");
  fails_with("recommend --checkpoint " + f.checkpoint + " --history 3 --k 0", 2, "--k must be >= 1");
  fails_with("recommend --checkpoint " + f.checkpoint + " --history 3 --threads 0", 2, "--threads must be >= 1, got 0");
  fails_with("recommend --checkpoint " + f.checkpoint + " --history \"3 frog\"", 1, "--history: item 'frog' is not one of the items");
  fails_with("recommend --checkpoint " + f.checkpoint + " --history \" \"", 1, "--history: no item ids given");
  fails_with("recommend --checkpoint " + f.checkpoint + " --user nobody --data " + f.data + " --format sequences --min-user 0 --min-item 0", 1,
             "no user 'nobody'");
  std::string batch = temp_path("batch_errors.txt");
  std::ofstream(batch) << "1 2 3\n4\n";
  fails_with("grad --weights " + f.checkpoint + " --batch " + batch + " --out " + temp_path("g.safetensors"), 1,
             batch + ":2: 1 id, but a list needs at least 2 (history items, then the target)");
  std::ofstream(batch) << "1 2 99\n";
  fails_with("grad --weights " + f.checkpoint + " --batch " + batch + " --out " + temp_path("g.safetensors"), 1,
             batch + ":1: id 99 is outside 1..12");
  fails_with("grad --weights " + f.checkpoint + " --batch " + batch + " --out x --threads 0", 2, "--threads must be >= 1, got 0");
  // Data that does not match the checkpoint.
  std::string other = temp_path("other.txt");
  std::ofstream(other) << "1 1 2 3\n2 2 3 77\n";
  fails_with("eval --checkpoint " + f.checkpoint + " --data " + other + " --format sequences --min-user 0 --min-item 0", 1,
             other + ": item '77' (after filtering) not in " + f.checkpoint + "; use the data and filter flags the model was trained with");
  // Items the checkpoint has and the data lacks leave the ranking, which the output says.
  std::ofstream(other) << "1 1 2 3\n2 2 3 4\n";
  std::string log = temp_path("subset.log");
  REQUIRE(euler_test::run_cli("eval --checkpoint " + f.checkpoint + " --data " + other + " --format sequences --min-user 0 --min-item 0", log) == 0);
  std::string printed = read_file(log);
  CHECK(printed.find(f.checkpoint + ": items re-indexed to " + other + " by id; 8 items the data lacks are left out of the ranking") !=
        std::string::npos);
  CHECK(printed.find("\"items_left_out\":8") != std::string::npos);
}

TEST_CASE("cli: a learning rate that overflows stops training with the step and the op") {
  const Fixture& f = fixture();
  fails_with("train --data " + f.data + f.common + " --lr 1e38", 1,
             "euler train: error: epoch 1, step 1: the optimizer step (lr 1e+38, gradient norm ");
  fails_with("train --data " + f.data + f.common + " --lr 1e38 --on-nonfinite skip", 1, "made a parameter non-finite");
}

TEST_CASE("cli: damaged checkpoints are named, with what is wrong") {
  const Fixture& f = fixture();
  std::string eval = " --data " + f.data + " --format sequences --min-user 0 --min-item 0";
  std::string bytes = read_file(f.checkpoint);
  std::string truncated = temp_path("truncated.safetensors");
  write_file_atomically(truncated, bytes.substr(0, bytes.size() / 2));
  fails_with("eval --checkpoint " + truncated + eval, 1, truncated + ": header length", "runs past the end of the file");
  // Rewritten without one tensor, and with damaged item tokens.
  safetensors::File file = safetensors::File::read(f.run + "/checkpoint.safetensors");
  auto rewrite = [&](const std::string& name, const std::string& drop, const std::string& tokens) {
    safetensors::Writer w;
    w.metadata = file.metadata();
    if (!tokens.empty()) w.metadata["item_tokens"] = tokens;
    std::vector<Tensor<float>> keep;
    for (const auto& info : file.tensors()) {
      if (info.name == drop) continue;
      keep.push_back(file.tensor<float>(info.name));
      w.add(info.name, keep.back().view());
    }
    std::string path = temp_path(name);
    w.write(path);
    return path;
  };
  std::string missing = rewrite("missing.safetensors", "LayerNorm.bias", "");
  fails_with("eval --checkpoint " + missing + eval, 1, missing + ": missing tensors for this model: LayerNorm.bias");
  fails_with("recommend --checkpoint " + missing + " --history 3", 1, missing + ": missing tensors for this model: LayerNorm.bias");
  std::string tokens = rewrite("tokens.safetensors", "", "[\"\", \"1\"");
  fails_with("eval --checkpoint " + tokens + eval, 1, tokens + ": metadata 'item_tokens' is not a JSON list of strings");
  std::string few = rewrite("few_tokens.safetensors", "", "[\"\", \"1\"]");
  fails_with("recommend --checkpoint " + few + " --history 1", 1, few + ": metadata 'item_tokens' has 2 entries, but the model has 13 item rows");
  // A whole training checkpoint (optimizer state included) evaluates.
  CHECK(euler_test::run_cli("eval --checkpoint " + f.run + "/checkpoint.safetensors" + eval, temp_path("ok.log")) == 0);
}

TEST_CASE("cli: a checkpoint with NaN, inf, an F64 number beyond float or integers in a parameter is refused by eval, recommend and grad") {
  const Fixture& f = fixture();
  safetensors::File file = safetensors::File::read(f.checkpoint);
  const std::string table = "item_embedding.weight";  // [13, 8]
  // The checkpoint with the item table replaced: element 26 (row 3, column 2) set to `value`, stored as S.
  auto with_table = [&](const std::string& name, auto value) {
    using S = decltype(value);
    safetensors::Writer w;
    w.metadata = file.metadata();
    for (const auto& info : file.tensors()) {
      if (info.name != table) {
        w.add(info.name, file.tensor<float>(info.name).view());
        continue;
      }
      Tensor<float> values = file.tensor<float>(table);
      Tensor<S> stored(values.shape());
      for (int64_t i = 0; i < values.numel(); ++i) stored[i] = S(values[i]);
      stored[26] = value;
      w.add(table, stored.view());
    }
    std::string path = temp_path(name);
    w.write(path);
    return path;
  };
  std::string batch = temp_path("nonfinite_batch.txt");
  std::ofstream(batch) << "1 2 3\n4 5 6 7\n";
  std::string eval = " --data " + f.data + " --format sequences --min-user 0 --min-item 0";
  // Each command exits 1 with one line naming the command, the file, the tensor and what is wrong.
  auto refused = [&](const std::string& path, const std::string& problem) {
    for (auto [command, args] : {std::pair{"eval", "eval --checkpoint " + path + eval},
                                 std::pair{"recommend", "recommend --checkpoint " + path + " --history 3"},
                                 std::pair{"grad", "grad --weights " + path + " --batch " + batch + " --out " + temp_path("g.safetensors")}}) {
      CAPTURE(args);
      std::string log = temp_path("nonfinite.log");
      CHECK(euler_test::run_cli(args, log) == 1);
      std::string output = read_file(log);
      CHECK(output == std::string("euler ") + command + ": error: " + path + ": tensor 'item_embedding.weight' " + problem + "\n");
    }
  };
  const float inf = std::numeric_limits<float>::infinity();
  refused(with_table("nan.safetensors", std::numeric_limits<float>::quiet_NaN()),
          "(shape [13, 8]) holds a non-finite number, first at element 26 (nan)");
  refused(with_table("inf.safetensors", inf), "(shape [13, 8]) holds a non-finite number, first at element 26 (inf)");
  refused(with_table("minus_inf.safetensors", -inf), "(shape [13, 8]) holds a non-finite number, first at element 26 (-inf)");
  refused(with_table("big.safetensors", 1e300), "(F64, shape [13, 8]) holds a number beyond the range of float, first at element 26 (1e+300)");
  refused(with_table("ints.safetensors", int32_t(1)), "holds I32 integers, but floating-point numbers (F32 or F64) are expected");
  // Finite weights so large that the forward pass overflows: eval, recommend and grad refuse the NaN
  // and inf scores instead of ranking them (eval once printed metrics with such users ranked last).
  {
    safetensors::Writer w;
    w.metadata = file.metadata();
    std::vector<Tensor<float>> tensors;
    tensors.reserve(file.tensors().size());
    for (const auto& info : file.tensors()) {
      Tensor<float> values = file.tensor<float>(info.name);
      tensors.push_back(info.name == table ? Tensor<float>::full(values.shape(), 3e38f) : std::move(values));
      w.add(info.name, tensors.back().view());
    }
    std::string overflow = temp_path("overflow.safetensors"), out = temp_path("overflow_grads.safetensors");
    w.write(overflow);
    fails_with("eval --checkpoint " + overflow + eval, 1, "euler eval: error: " + overflow + ": the scores of ", "hold NaN or inf");
    fails_with("recommend --checkpoint " + overflow + " --history 3", 1, "euler recommend: error: the scores hold a non-finite number");
    fails_with("grad --weights " + overflow + " --batch " + batch + " --out " + out, 1, "is not finite; nothing written");
    CHECK_FALSE(fs::exists(out));
  }
  // The same checkpoint with finite values loads, in F32 and in F64.
  std::string log = temp_path("finite.log");
  for (std::string path : {with_table("finite.safetensors", 0.5f), with_table("finite64.safetensors", 0.25)}) {
    CAPTURE(path);
    CHECK(euler_test::run_cli("eval --checkpoint " + path + eval, log) == 0);
    CHECK(euler_test::run_cli("recommend --checkpoint " + path + " --history 3", log) == 0);
    CHECK(euler_test::run_cli("grad --weights " + path + " --batch " + batch + " --out " + temp_path("g.safetensors"), log) == 0);
  }
}

namespace {
// The JSON line a successful run printed last (its other output lines are stderr's).
nlohmann::json last_json_line(const std::string& output) {
  size_t start = output.rfind("\n{");
  return nlohmann::json::parse(output.substr(start == std::string::npos ? 0 : start + 1));
}
}  // namespace

TEST_CASE("cli: inputs that once ran to exit 0 with wrong numbers are refused, or say what was done to them") {
  std::string log = temp_path("silent.log");
  // A u.data table with one short line among its first: refused naming the line, never read as sequences.
  std::string broken = temp_path("broken.data");
  {
    std::ofstream out(broken);
    for (int i = 0; i < 60; ++i) out << 1 + i % 6 << "\t" << 10 + i % 15 << "\t4\t" << 881250000 + i << "\n";
    out << "3\t17\t5\n";
  }
  fails_with("train --data " + broken + " --quiet --epochs 1", 1, broken + ":61: has 3 fields, but 60 of the file's 61 lines have 4 ('ml-100k')");
  fails_with("train --data " + broken + " --format ml-100k --quiet --epochs 1", 1, broken + ":61: expected 4 fields");
  // Ids that are not integers in a MovieLens file.
  std::string alpha = temp_path("alpha.dat");
  std::ofstream(alpha) << "1::2::5::100\nx7::3::4::101\n";
  fails_with("train --data " + alpha + " --quiet", 1, alpha + ":2: field 1 (user id) 'x7' is not an integer");

  // The same table, whole and doubled (every row twice): the duplicates are dropped and counted, the
  // format that was detected and what the filters kept are in the JSON line, also under --quiet.
  std::string doubled = temp_path("doubled.data");
  {
    std::ofstream out(doubled);
    for (int copy = 0; copy < 2; ++copy)
      for (int i = 0; i < 60; ++i) out << 1 + i % 6 << "\t" << 10 + i % 15 << "\t4\t" << 881250000 + i << "\n";
  }
  std::string tiny = " --max-len 5 --hidden 8 --inner 16 --layers 1 --quiet --epochs 1 --min-user 0 --min-item 0";
  REQUIRE(euler_test::run_cli("train --data " + doubled + tiny, log) == 0);
  nlohmann::json data = last_json_line(read_file(log))["data"];
  CHECK(data["format"] == "ml-100k");
  CHECK(data["format_detected"] == true);
  CHECK(data["rows_read"] == 120);
  CHECK(data["removed_duplicates"] == 60);
  CHECK(data["rows_kept"] == 60);
  CHECK(read_file(log).find("warning: " + doubled + ": the filters removed 60 of 120 rows (50%): duplicates 60") != std::string::npos);
  REQUIRE(euler_test::run_cli("train --data " + doubled + tiny + " --dedup none", log) == 0);
  CHECK(last_json_line(read_file(log))["data"]["rows_kept"] == 120);
  fails_with("train --data " + doubled + tiny + " --dedup some", 1, "unknown --dedup 'some': expected none, exact or consecutive");
  // The default 10-core filter removing most of a file is a warning under --quiet too, naming the flags.
  std::string mostly_short = temp_path("mostly_short.txt");  // 2 users of 12 items, 18 of 3
  {
    std::ofstream out(mostly_short);
    for (int u = 1; u <= 20; ++u)
      for (int i = 1; i <= (u <= 2 ? 12 : 3); ++i) out << u << " " << i << "\n";
  }
  REQUIRE(euler_test::run_cli("train --data " + mostly_short + " --max-len 5 --hidden 8 --inner 16 --layers 1 --quiet --epochs 1 --min-user 10 "
                              "--min-item 0", log) == 0);
  CHECK(read_file(log).find("warning: " + mostly_short + ": the filters removed 54 of 78 rows (69%)") != std::string::npos);
  CHECK(read_file(log).find("--min-user 0 --min-item 0") != std::string::npos);
}

TEST_CASE("cli: --resume on other data or with another learning rate is refused naming what differs") {
  const Fixture& f = fixture();
  std::string run = temp_path("resume_other");
  std::string train = "train --format sequences --max-len 5 --hidden 8 --inner 16 --layers 1 --min-user 0 --min-item 0 --quiet";
  REQUIRE(euler_test::run_cli(train + " --data " + f.data + " --out " + run + " --epochs 1", temp_path("resume_other.log")) == 0);
  std::string checkpoint = run + "/checkpoint.safetensors";
  // The same 12 items and 30 users, item ids 1 and 2 swapped in every line.
  std::string swapped = temp_path("swapped.txt");
  {
    std::ifstream in(f.data);
    std::ofstream out(swapped);
    for (std::string line; std::getline(in, line);) {
      std::istringstream words(line);
      std::string user, item;
      words >> user;
      out << user;
      while (words >> item) out << " " << (item == "1" ? "2" : item == "2" ? "1" : item);
      out << "\n";
    }
  }
  train += " --epochs 2";
  fails_with(train + " --data " + swapped + " --resume " + checkpoint, 1, "cannot resume on " + swapped + ", whose interactions differ");
  std::string fewer = temp_path("fewer.txt");
  std::ofstream(fewer) << "1 1 2 3\n2 2 3 4\n3 3 4 5\n";
  fails_with(train + " --data " + fewer + " --resume " + checkpoint, 1, "whose n_items differs: 5 items, the checkpoint's run had 12");
  fails_with(train + " --data " + f.data + " --lr 0.01 --resume " + checkpoint, 1,
             "cannot resume with another training option: lr is 0.01 in this run and 0.001 in the checkpoint's");
  std::string log = temp_path("resume_more.log");
  CHECK(euler_test::run_cli(train + " --data " + f.data + " --patience 3 --resume " + checkpoint, log) == 0);
  CHECK(read_file(log).find("with epochs 2 (the run so far had 1)") != std::string::npos);
  CHECK(read_file(log).find("with patience 3 (the run so far had 15)") != std::string::npos);
}

TEST_CASE("cli: too many threads is a usage error naming the limit; every JSON line parses whatever the paths hold") {
  const Fixture& f = fixture();
  fails_with("train --data " + f.data + f.common + " --threads 10000", 2, "--threads 10000 is more than ", "(4 per hardware thread");
  fails_with("eval --checkpoint " + f.checkpoint + " --data " + f.data + " --threads 100000", 2, "--threads 100000 is more than");
  // grad's JSON line with a quote and a backslash in --out.
  std::string batch = temp_path("json_batch.txt");
  std::ofstream(batch) << "1 2 3\n";
  std::string out = temp_path("odd \"name\\.safetensors");
  std::string log = temp_path("json.log");
  REQUIRE(euler_test::run_cli("grad --weights " + f.checkpoint + " --batch " + batch + " --out '" + out + "'", log) == 0);
  nlohmann::json line = last_json_line(read_file(log));
  CHECK(line["out"] == out);
  CHECK(line["loss"].is_number());

  // Latin-1 ids in a csv (which JSON cannot hold as they are): the run once stopped at its first
  // checkpoint with "[json.exception.type_error.316] invalid UTF-8 byte". Now the checkpoint keeps
  // them byte for byte, recommend finds them, and its JSON line parses (with U+FFFD in their place).
  std::string latin1 = temp_path("latin1.csv"), run = temp_path("latin1_run");
  std::ofstream(latin1) << "user_id,item_id\n1,caf\xe9\n1,b\n1,c\n2,b\n2,caf\xe9\n2,c\n";
  REQUIRE(euler_test::run_cli("train --data " + latin1 + " --min-user 0 --min-item 0 --quiet --epochs 1 --max-len 5 --hidden 8 --inner 16 "
                              "--layers 1 --out " + run, log) == 0);
  REQUIRE(euler_test::run_cli("recommend --checkpoint " + run + "/best.safetensors --history 'caf\xe9 b' --k 3", log) == 0);
  nlohmann::json top = last_json_line(read_file(log));
  REQUIRE(top["items"].size() == 3);
  CHECK(std::count(top["items"].begin(), top["items"].end(), "caf\xef\xbf\xbd") == 1);
}

TEST_CASE("cli: a run that would need more memory than its limit is refused before it allocates, with the estimate") {
  const Fixture& f = fixture();
  std::string data = " --data " + f.data + " --format sequences --hidden 8 --inner 16 --layers 1 --min-user 0 --min-item 0 --quiet --epochs 1";
  // N = 65536: the attention of one list is 65536^2 scores. Before: std::bad_alloc after gigabytes.
  fails_with("train" + data + " --max-len 65536 --max-memory 8G", 1, "euler train: error: this run would need about ",
             "(largest part: the attention of one tile of 1 list(s) of 65536 positions (N^2) per thread: ");
  fails_with("train" + data + " --max-len 65536 --max-memory 8G", 1, "more than the limit of 8.0 GB");
  // --batch-size and --eval-batch far beyond the data are sized by the data there is: the run trains.
  std::string log = temp_path("memory.log");
  CHECK(euler_test::run_cli("train" + data + " --max-len 5 --batch-size 2147483647 --eval-batch 2147483647", log) == 0);
  // A limit below what a small run needs; a limit that is not a size.
  fails_with("train" + data + " --max-len 5 --max-memory 0.5M", 1, "this run would need about ", "more than the limit of 500 KB");
  fails_with("train" + data + " --max-memory lots", 2, "--max-memory: 'lots' is not a size (expected e.g. 500M or 8G)");
  // A checkpoint whose config was edited to MAX_ITEM_LIST_LENGTH 65536, with position tables of that
  // length so that its tensors fit the config (a file of 3 MB).
  safetensors::File file = safetensors::File::read(f.checkpoint);
  safetensors::Writer w;
  w.metadata = file.metadata();
  nlohmann::json config = nlohmann::json::parse(w.metadata.at("config"));
  config["MAX_ITEM_LIST_LENGTH"] = 65536;
  w.metadata["config"] = config.dump();
  std::vector<Tensor<float>> tensors;
  tensors.reserve(file.tensors().size());
  for (const auto& info : file.tensors()) {
    if (info.name.find(".euler.alpha") != std::string::npos) continue;  // the authors' angle table is optional
    bool positional = info.name == "position_embedding.weight" || info.name == "rotary_embedding.weight";  // [N, 8], [N, 4]
    tensors.push_back(positional ? Tensor<float>::zeros({65536, info.shape[1]}) : file.tensor<float>(info.name));
    w.add(info.name, tensors.back().view());
  }
  std::string edited = temp_path("n65536.safetensors");
  w.write(edited);
  fails_with("eval --checkpoint " + edited + " --data " + f.data + " --format sequences --min-user 0 --min-item 0 --max-memory 8G", 1,
             "euler eval: error: evaluating " + edited + " would need about ");
  fails_with("recommend --checkpoint " + edited + " --history 3 --max-memory 8G", 1, "euler recommend: error: scoring with " + edited);
  std::string batch = temp_path("memory_batch.txt");
  std::ofstream(batch) << "1 2 3\n";
  fails_with("grad --weights " + edited + " --batch " + batch + " --out " + temp_path("g.safetensors") + " --max-memory 8G", 1,
             "euler grad: error: euler grad on " + batch + " would need about ");
}

namespace {
// The peak resident memory in MB of `euler ARGS` (output to `log`) and its exit code: that child's
// alone (wait4), not of every program this test process ran before.
std::pair<double, int> peak_mb(const std::string& args, const std::string& log) {
  std::string command = std::string(EULER_CLI_PATH) + " " + args + " > " + log + " 2>&1";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  rusage usage{};
  if (pid < 0 || ::wait4(pid, &status, 0, &usage) != pid) return {0, -1};
  return {double(usage.ru_maxrss) * 1024 / 1e6, WIFEXITED(status) ? WEXITSTATUS(status) : -1};  // ru_maxrss is in KB
}
}  // namespace

TEST_CASE("cli: the memory estimate is within a factor of 2 of what a run takes") {
#if defined(__SANITIZE_ADDRESS__)
  MESSAGE("euler-skip: under AddressSanitizer, whose shadow memory and quarantine are not the run's tensors");
  return;
#endif
  // A run large enough that its tensors dominate: 2,000 users, N = 100, batch 512 (the all-positions
  // objective keeps about 300 MB per layer for backward). The program's own memory (the libraries it
  // maps: about 220 MB with cuBLAS) is the peak of `euler train --help`, and is subtracted.
  std::string synthetic = (fs::path(__FILE__).parent_path() / ".." / "data" / "synthetic.txt").string();
  std::string log = temp_path("estimate.log");
  auto [program, help_code] = peak_mb("train --help", log);
  REQUIRE(help_code == 0);
  auto [peak, code] = peak_mb("train --data " + synthetic + " --min-user 0 --min-item 0 --max-len 100 --hidden 32 --inner 64 --layers 2 "
                              "--objective all --batch-size 512 --epochs 1 --quiet --threads 2", log);
  REQUIRE(code == 0);
  double estimate = last_json_line(read_file(log))["memory_estimate_mb"].get<double>();
  MESSAGE("peak " << peak << " MB, of which the program " << program << " MB; estimate " << estimate << " MB");
  CHECK(estimate > 300);
  CHECK(peak - program < 2 * estimate);
  CHECK(peak - program > 0.5 * estimate);
}

TEST_CASE("cli: --version prints the library's version") {
  std::string log = temp_path("version.log");
  CHECK(euler_test::run_cli("--version", log) == 0);
  CHECK(read_file(log) == std::string("euler ") + EULER_VERSION_STRING + "\n");
  CHECK(std::string(EULER_VERSION_STRING) ==
        std::to_string(EULER_VERSION_MAJOR) + "." + std::to_string(EULER_VERSION_MINOR) + "." + std::to_string(EULER_VERSION_PATCH));
}

TEST_CASE("cli: --threads defaults to the machine's hardware threads") {
  std::string threads = std::to_string(std::max(1u, std::thread::hardware_concurrency()));
  for (const char* command : {"train", "eval", "recommend", "grad"}) {
    CAPTURE(command);
    std::string log = temp_path("threads.log");
    CHECK(euler_test::run_cli(std::string(command) + " --help", log) == 0);
    std::string help;  // cxxopts wraps the help: compare with single spaces
    for (char c : read_file(log))
      if (!std::isspace(static_cast<unsigned char>(c)) || (!help.empty() && help.back() != ' ')) help += std::isspace(static_cast<unsigned char>(c)) ? ' ' : c;
    CHECK_CONTAINS(help, "--threads arg threads (by default the machine's hardware threads; under mpirun, divided among the "
                         "processes on the machine) (default: " + threads + ")");
  }
}

}  // namespace test_cli_errors
