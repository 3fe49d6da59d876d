// euler/train/options.hpp: what a training run is told (TrainOptions), where it stands (TrainState)
// and what it was trained on (data_json, data_fingerprint). All go into every checkpoint as JSON
// (train/trainer.hpp), so a resumed run continues with the same settings, on the same data, from the
// same place.
//
//     euler::TrainOptions o;
//     o.epochs = 200;  o.batch_size = 128;  o.exclude_history = true;  o.out_dir = "runs/p2";
#pragma once

#include <array>
#include <cstdio>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "euler/core/random.hpp"
#include "euler/data/dataset.hpp"
#include "euler/model/config.hpp"

namespace euler {

// What a step with a NaN or inf loss or gradient does: stop the run (the default) or skip the step.
enum class NonFiniteAction { stop, skip };
template <> constexpr auto enum_names<NonFiniteAction>() { return std::array<std::string_view, 2>{"stop", "skip"}; }

struct TrainOptions {
  int epochs = 500;              // upper bound; early stopping usually ends sooner (authors: 500)
  int batch_size = 4096;         // authors' config
  double lr = 1e-3;
  double weight_decay = 0;
  bool adamw = false;            // decoupled weight decay (AdamW) instead of L2 (Adam)
  double clip_norm = 0;          // > 0: clip the global gradient norm
  int patience = 15;             // epochs without a better valid_metric before stopping
  std::string valid_metric = "ndcg@10";  // picks the best epoch: hr|recall|ndcg|mrr @ k, k in 1..100
  uint64_t seed = 2024;
  int threads = 2;
  int eval_batch = 1024;         // users per scoring batch
  bool exclude_history = false;  // drop history items from the ranking (RecBole's default: keep)
  bool all_windows = false;      // objective all: every window of N + 1 items of a long user, not only the last
  int64_t max_memory = 0;        // bytes a run may take by its estimate (train/memory.hpp); 0: default_memory_limit()
  std::string out_dir;           // checkpoints and the log; empty: none
  bool progress = true;          // a progress bar when stderr is a terminal; otherwise plain lines:
  double progress_every = 30;    // seconds between them (train/progress.hpp); 0: none
  bool verbose = true;           // one line per epoch on stderr
  NonFiniteAction on_nonfinite = NonFiniteAction::stop;  // a NaN/inf step: stop, or skip it

  nlohmann::json to_json() const {
    return {{"epochs", epochs},   {"batch_size", batch_size},   {"lr", lr},
            {"weight_decay", weight_decay}, {"adamw", adamw}, {"clip_norm", clip_norm},
            {"patience", patience}, {"seed", seed}, {"threads", threads},
            {"eval_batch", eval_batch}, {"exclude_history", exclude_history}, {"all_windows", all_windows},
            {"on_nonfinite", to_string(on_nonfinite)}, {"valid_metric", valid_metric}};
  }
};

// Where a run stands; checkpointed as JSON with the weights.
struct TrainState {
  int epoch = 0;             // epochs completed
  double best_metric = -1;   // best valid_metric so far
  int best_epoch = 0;
  int bad_epochs = 0;        // epochs since the best
  RngState rng;

  nlohmann::json to_json() const {
    return {{"epoch", epoch}, {"best_metric", best_metric}, {"best_epoch", best_epoch}, {"bad_epochs", bad_epochs},
            {"rng_seed", rng.seed}, {"rng_counter", rng.counter}};
  }
  static TrainState from_json(const nlohmann::json& j) {
    TrainState s;
    s.epoch = j.at("epoch").get<int>();
    s.best_metric = j.at("best_metric").get<double>();
    s.best_epoch = j.at("best_epoch").get<int>();
    s.bad_epochs = j.at("bad_epochs").get<int>();
    s.rng.seed = j.at("rng_seed").get<uint64_t>();
    s.rng.counter = j.at("rng_counter").get<uint64_t>();
    return s;
  }
};

// What a run was trained on, for its JSON line and result.json: the file, the format it was read as
// (and whether that was detected), and what the dedup and the filters kept of its rows.
inline nlohmann::json data_json(const Dataset& data) {
  const FilterReport& f = data.filters;
  return {{"source", data.source},
          {"format", std::string(format_name(data.format))},
          {"format_detected", data.options.format == Format::auto_detect},
          {"rows_read", f.rows_read},
          {"rows_kept", f.rows_kept()},
          {"removed_duplicates", f.removed_duplicates},
          {"removed_by_rating", f.removed_by_rating},
          {"removed_by_core", f.removed_by_core},
          {"users", data.n_users},
          {"items", data.n_items},
          {"interactions", data.n_interactions}};
}

// A hash of every user's token and item sequence: a checkpoint stores it, and resuming on other data
// is refused.
inline std::string data_fingerprint(const Dataset& data) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a, 64 bits
  auto mix = [&](const void* bytes, size_t n) {
    for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<const unsigned char*>(bytes)[i]) * 0x100000001b3ULL;
  };
  for (size_t u = 0; u < data.sequences.size(); ++u) {
    mix(data.user_tokens[u].data(), data.user_tokens[u].size() + 1);  // with its terminating 0
    uint64_t length = data.sequences[u].size();
    mix(&length, sizeof length);
    mix(data.sequences[u].data(), data.sequences[u].size() * sizeof(int32_t));
  }
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", (unsigned long long)h);
  return text;
}

}  // namespace euler
