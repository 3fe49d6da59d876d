// euler/train/options.hpp: what a training run is told (TrainOptions) and where it stands
// (TrainState). Both go into every checkpoint as JSON (train/trainer.hpp), so a resumed run continues
// with the same settings from the same place.
//
//     euler::TrainOptions o;
//     o.epochs = 200;  o.batch_size = 128;  o.exclude_history = true;  o.out_dir = "runs/p2";
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "euler/core/random.hpp"
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

}  // namespace euler
