// The command line on bad invocations: unknown flags, missing files, unwritable output, impossible
// values. Each gives one clear line on stderr and a non-zero exit: 2 for a usage error (the flags),
// 1 for everything found while running (files, data, configs, numbers).
#include <doctest/doctest.h>

#include "cli_helpers.hpp"

#include <euler/eulerformer.hpp>

#include <filesystem>
#include <fstream>
#include <limits>
#include <utility>

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
    if (fs::exists(checkpoint)) return;
    std::ofstream out(data);
    for (int u = 0; u < 30; ++u) {
      out << "u" << u;
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
  fails_with(train + " --max-len 0", 1, "config: MAX_ITEM_LIST_LENGTH must be >= 1, got 0");
  fails_with(train + " --max-len 1000000", 1, "config: MAX_ITEM_LIST_LENGTH 1000000 is more than 65536");
  fails_with(train + " --hidden 7", 1, "config: hidden_size must be even and >= 2, got 7");
  fails_with(train + " --hidden 8 --heads 16", 1, "config: n_heads 16 is more than hidden_size 8 (each head needs at least one channel)");
  fails_with(train + " --hidden 8 --heads 3", 1, "config: hidden_size 8 is not divisible by n_heads 3");
  fails_with(train + " --heads 0", 1, "config: n_heads must be >= 1, got 0");
  fails_with(train + " --layers 0", 1, "config: n_layers must be >= 1, got 0");
  fails_with(train + " --inner 0", 1, "config: inner_size must be >= 1, got 0");
  fails_with(train + " --dropout 1.5", 1, "config: hidden_dropout_prob must be in [0, 1), got 1.5");
  fails_with(train + " --attn-dropout -0.1", 1, "config: attn_dropout_prob must be in [0, 1)");
  fails_with(train + " --tep 0", 1, "config: tep must be > 0");
  fails_with(train + " --lamb -1", 1, "config: lamb must be >= 0");
  fails_with(train + " --weight-decay -1", 1, "weight_decay");
  fails_with(train + " --clip -1", 1, "clip_norm");
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
  std::ofstream(other) << "a 1 2 3\nb 2 3 4\n";
  fails_with("eval --checkpoint " + f.checkpoint + " --data " + other + " --format sequences --min-user 0 --min-item 0", 1,
             other + ": its items (after filtering) differ from those " + f.checkpoint + " was trained on");
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
  // The same checkpoint with finite values loads, in F32 and in F64.
  std::string log = temp_path("finite.log");
  for (std::string path : {with_table("finite.safetensors", 0.5f), with_table("finite64.safetensors", 0.25)}) {
    CAPTURE(path);
    CHECK(euler_test::run_cli("eval --checkpoint " + path + eval, log) == 0);
    CHECK(euler_test::run_cli("recommend --checkpoint " + path + " --history 3", log) == 0);
    CHECK(euler_test::run_cli("grad --weights " + path + " --batch " + batch + " --out " + temp_path("g.safetensors"), log) == 0);
  }
}
