// fuzz/harness.hpp: what each fuzz target does with one input. Shared by the libFuzzer entry points
// (fuzz/<target>.cpp, built by scripts/fuzz.sh) and by tests/test_fuzz_inputs.cpp, which runs every
// committed seed and every crasher ever found (fuzz/corpus/<target>/, fuzz/regressions/<target>/)
// through the same code in the normal and the sanitizer test builds.
//
// A reader may refuse an input only with its documented error (DataError, safetensors::FormatError,
// ConfigError); anything else escaping, a crash, a sanitizer report, or a broken invariant of what it
// returned (Broken, thrown here) is a bug.
//
//     euler_fuzz::interactions(bytes, size);   // byte 0 picks the format and the options, the rest is the file
#pragma once

#include <euler/data/batch_file.hpp>
#include <euler/data/dataset.hpp>
#include <euler/data/interactions.hpp>
#include <euler/io/safetensors.hpp>
#include <euler/model/weights.hpp>
#include <euler/train/memory.hpp>
#include <euler/train/trainer.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace euler_fuzz {

// An invariant of a reader's result does not hold.
struct Broken : std::logic_error {
  using std::logic_error::logic_error;
};
inline void expect(bool holds, const char* what) {
  if (!holds) throw Broken(std::string("fuzz invariant broken: ") + what);
}

// Byte 0: the format (mod 7: auto, ml-1m, ml-100k, pairs, sequences, inter, csv), the file name the
// auto-detection sees (next 2 bits: .txt, .inter, .csv, .dat), a rating threshold (bit 7) and a
// k-core (bit 6). The rest is the file. A parsed log is built into a dataset and split.
inline void interactions(const uint8_t* data, size_t size) {
  if (size < 1) return;
  using namespace euler;
  const uint8_t selector = data[0];
  static const char* const names[4] = {"fuzz.txt", "fuzz.inter", "fuzz.csv", "fuzz.dat"};
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  Format format = Format(selector % 7);
  try {
    InteractionLog log = parse_interactions(text, names[(selector / 7) % 4], format);
    expect(log.format != Format::auto_detect && !log.rows.empty(), "a parsed log has a format and rows");
    for (const Interaction& row : log.rows) {
      expect(row.user >= 0 && size_t(row.user) < log.user_tokens.size(), "row user indexes user_tokens");
      expect(row.item >= 0 && size_t(row.item) < log.item_tokens.size(), "row item indexes item_tokens");
      expect(!log.user_token(row).empty() && !log.item_token(row).empty(), "tokens are non-empty");
      expect(!log.has_ratings || std::isfinite(row.rating), "ratings are finite");
      expect(!log.has_timestamps || std::isfinite(row.timestamp), "timestamps are finite");
      expect(row.line >= 1, "lines are 1-based");
    }
    DatasetOptions options;
    options.min_rating = selector & 0x80 ? 3 : -1;
    options.min_user_interactions = options.min_item_interactions = selector & 0x40 ? 2 : 0;
    Dataset dataset = build_dataset(log, options);
    int64_t total = 0;
    for (const auto& sequence : dataset.sequences) {
      expect(!sequence.empty(), "every user keeps an interaction");
      for (int32_t item : sequence) expect(item >= 1 && item <= dataset.n_items, "dense item ids are 1..K");
      total += int64_t(sequence.size());
    }
    expect(total == dataset.n_interactions && dataset.n_users == int64_t(dataset.sequences.size()), "counts add up");
    for (int32_t item = 1; item <= dataset.n_items; ++item)
      expect(dataset.item_id(dataset.item_token(item)) == item, "item tokens round-trip");
    Split split = leave_one_out(dataset);
    for (int32_t user : split.evaluated_users)
      expect(split.test_history(user).size() >= 2 && split.validation_target(user) >= 1, "evaluated users have 3 items");
    (void)dataset.summary();
  } catch (const DataError&) {
  }
}

// Byte 0: the largest id (1 + byte mod 64); byte 1: N (1 + mod 8), the backbone and objective
// (bits 3, 4) and the minimum list length (bit 5). The rest is the batch file.
inline void batch_file(const uint8_t* data, size_t size) {
  if (size < 2) return;
  using namespace euler;
  int64_t max_id = 1 + data[0] % 64;
  EulerFormerConfig c;
  c.n_items = int(max_id + 1);
  c.max_len = 1 + data[1] % 8;
  c.backbone = data[1] & 8 ? Backbone::bert4rec : Backbone::sasrec;
  c.objective = data[1] & 16 ? Objective::all : Objective::last;
  size_t min_length = data[1] & 32 ? 2 : 1;
  std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);
  try {
    auto lists = parse_id_lists(text, "fuzz.batch", max_id, min_length);
    for (const auto& list : lists) {
      expect(list.size() >= min_length, "lists are long enough");
      for (int32_t id : list) expect(id >= 1 && id <= max_id, "ids are 1..max");
    }
    GradBatch batch = make_grad_batch(lists, c, "fuzz.batch");
    for (int64_t i = 0; i < batch.ids.numel(); ++i) expect(batch.ids[i] >= 0 && batch.ids[i] <= c.mask_token(), "batch ids in range");
    for (int64_t i = 0; i < batch.targets.numel(); ++i) expect(batch.targets[i] >= 0 && batch.targets[i] <= max_id, "targets in range");
  } catch (const DataError&) {
  }
}

// The whole input is a safetensors file: parse it, read every tensor, and when its metadata holds a
// model config small enough to build quickly, build the model and load the weights.
inline void safetensors_file(const uint8_t* data, size_t size) {
  using namespace euler;
  try {
    safetensors::File file = safetensors::File::parse(std::string(reinterpret_cast<const char*>(data), size), "fuzz.safetensors");
    for (const auto& info : file.tensors()) {
      expect(info.begin <= info.end && info.end - info.begin == uint64_t(info.numel()) * safetensors::dtype_size(info.dtype),
             "byte ranges match shapes");
      if (info.shape.size() > 4) continue;
      bool integers = info.dtype == safetensors::DType::I32 || info.dtype == safetensors::DType::I64;
      int64_t numel = integers ? file.tensor<int64_t>(info.name).numel() : file.tensor<double>(info.name).numel();
      expect(numel == info.numel(), "a tensor has its shape's size");
    }
    if (!file.metadata().count("config")) return;
    EulerFormerConfig config = read_config(file);
    if (minimum_parameter_count(config) > (1u << 16) || int64_t(config.max_len) * config.hidden_size > (1 << 16)) return;
    EulerFormer<float> model(config);
    load_weights(file, model);
  } catch (const safetensors::FormatError&) {
  }
}

// The whole input is a checkpoint as `euler eval` and `euler recommend` load it (the config, every
// weight checked, the item ids), under a run's memory limit (64 MB here, against the estimate of
// train/memory.hpp). A model that loads is evaluated on two fixed histories and asked for its top 3,
// so NaN weights and absurd configs are fuzzed end to end. Refusals with the documented errors are
// fine; ranks must be in 1..K-1, metrics in [0, 1], and the top 3 in order.
inline void checkpoint(const uint8_t* data, size_t size) {
  using namespace euler;
  try {
    const std::string name = "fuzz.safetensors";
    safetensors::File file = safetensors::File::parse(std::string(reinterpret_cast<const char*>(data), size), name);
    EulerFormerConfig config = read_config(file);
    (void)get_item_tokens(file, name);
    MemoryShape shape;
    shape.config = config;
    shape.parameters = int64_t(minimum_parameter_count(config));
    shape.eval_rows = 2;
    check_memory(shape, int64_t(64) << 20, "fuzz");
    EulerFormer<float> model(config);
    load_weights(file, model, /*allow_unexpected=*/true);
    const int32_t last = config.n_items - 1;  // items are 1..last
    std::vector<int32_t> one = {1}, two = {1, last};
    std::vector<std::span<const int32_t>> histories = {one, two};
    std::vector<int32_t> targets = {last, 1};
    std::vector<int64_t> ranks;
    UnusableScores unusable;
    RankingMetrics metrics = evaluate(model, histories, targets, RankingOptions{}, 2, &unusable, &ranks);
    expect(ranks.size() == 2, "a rank per history");
    for (int64_t rank : ranks) expect(rank >= 1 && rank <= last, "ranks are 1..K-1");
    const nlohmann::json reported = metrics.to_json("m");
    for (const auto& [key, value] : reported.items())
      if (value.is_number_float()) expect(value.get<double>() >= 0 && value.get<double>() <= 1, "metrics are in [0, 1]");
    auto top = recommend(model, two, 3, false);
    expect(top.size() == std::min<size_t>(3, size_t(last)), "recommend returns min(k, items) items");
    for (size_t i = 1; i < top.size(); ++i) expect(top[i - 1].second >= top[i].second, "the top items are in order");
  } catch (const safetensors::FormatError&) {
  } catch (const MemoryLimitError&) {
  } catch (const NonFiniteError&) {
  }
}

// The whole input is JSON for EulerFormerConfig::from_json; a valid config round-trips.
inline void config_json(const uint8_t* data, size_t size) {
  using namespace euler;
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return;
  try {
    EulerFormerConfig c = EulerFormerConfig::from_json(j);
    c.validate();
    expect(EulerFormerConfig::from_json(c.to_json()).to_json() == c.to_json(), "configs round-trip through JSON");
  } catch (const ConfigError&) {
  }
}

}  // namespace euler_fuzz
