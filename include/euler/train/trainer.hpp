// euler/train/trainer.hpp: train EulerFormer on a dataset, evaluate by full ranking, checkpoint, resume.
//
// One epoch: build the training examples of the objective, shuffle them with the run's Rng, and for
// each batch run forward, backward and an Adam step. After each epoch the model is evaluated on the
// validation targets (full ranking, NDCG@10 decides), the best weights are kept, and a checkpoint is
// written atomically. Training stops after `patience` epochs without improvement; the best weights
// are then evaluated on the test targets.
//
// Training examples (Split::train(u) is a user's sequence without its last two items):
//   SASRec, objective last  one example per prefix: history train[max(0, t-N) .. t), target train[t]
//   SASRec, objective all   one window per user: the last N+1 items give ids and next-item targets
//   BERT4Rec                one window per user: the last N items, a mask_ratio share of positions
//                           (at least one) replaced by the mask token and predicted
//
// Determinism: the same seed and thread count give the same metrics, bit for bit. Everything random
// (shuffles, dropout, BERT4Rec masks) draws from one counter-based Rng whose state is checkpointed
// with the weights and the Adam moments, so a resumed run continues exactly where it stopped.
//
//     euler::Trainer<float> trainer(model_config, train_options, dataset);
//     nlohmann::json final = trainer.run();        // {"test_ndcg@10": ..., "valid_ndcg@10": ..., ...}
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "euler/data/dataset.hpp"
#include "euler/io/safetensors.hpp"
#include "euler/model/weights.hpp"
#include "euler/train/metrics.hpp"
#include "euler/train/optimizer.hpp"

namespace euler {

struct TrainOptions {
  int epochs = 500;              // upper bound; early stopping usually ends sooner (authors: 500)
  int batch_size = 4096;         // authors' config
  double lr = 1e-3;
  double weight_decay = 0;
  bool adamw = false;            // decoupled weight decay (AdamW) instead of L2 (Adam)
  double clip_norm = 0;          // > 0: clip the global gradient norm
  int patience = 15;             // epochs without a better valid NDCG@10 before stopping
  uint64_t seed = 2024;
  int threads = 2;
  int eval_batch = 1024;         // users per scoring batch
  bool exclude_history = false;  // drop history items from the ranking (RecBole's default: keep)
  std::string out_dir;           // checkpoints and the log; empty: none
  bool progress = true;          // a progress bar when stderr is a terminal
  bool verbose = true;           // one line per epoch on stderr

  nlohmann::json to_json() const {
    return {{"epochs", epochs},   {"batch_size", batch_size},   {"lr", lr},
            {"weight_decay", weight_decay}, {"adamw", adamw}, {"clip_norm", clip_norm},
            {"patience", patience}, {"seed", seed}, {"threads", threads},
            {"eval_batch", eval_batch}, {"exclude_history", exclude_history}};
  }
};

// Where a run stands; checkpointed as JSON with the weights.
struct TrainState {
  int epoch = 0;             // epochs completed
  double best_metric = -1;   // best valid NDCG@10 so far
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

// Right-padded [B, N] ids of the last N items of each history (all-padding rows for empty ones).
inline void fill_histories(std::span<const std::span<const int32_t>> histories, int64_t N, int32_t* ids /*[B, N]*/) {
  for (size_t b = 0; b < histories.size(); ++b) {
    std::span<const int32_t> h = histories[b];
    size_t keep = std::min<size_t>(h.size(), size_t(N));
    int32_t* row = ids + int64_t(b) * N;
    std::fill(row, row + N, 0);
    std::copy(h.end() - std::ptrdiff_t(keep), h.end(), row);
  }
}

// Full-ranking metrics of a model on (history, target) pairs, batched, without recording gradients.
template <class T>
RankingMetrics evaluate(const EulerFormer<T>& model, std::span<const std::span<const int32_t>> histories,
                        std::span<const int32_t> targets, const RankingOptions& options, int batch = 1024) {
  RankingMetrics metrics(options);
  int64_t N = model.config().max_len;
  Tape<T> tape;
  Rng unused(0);
  Context<T> ctx{tape, model.parameters(), /*dropout_on=*/false, unused};
  Tensor<int32_t> ids = Tensor<int32_t>::zeros({batch, N});
  Tensor<float> scores;
  for (size_t first = 0; first < histories.size(); first += size_t(batch)) {
    size_t count = std::min(histories.size() - first, size_t(batch));
    tape.reset();
    NoGrad<T> no_grad(tape);
    fill_histories(histories.subspan(first, count), N, ids.data());
    TensorView<const int32_t> idv{Shape{int64_t(count), N}, ids.data()};
    TensorView<T> s = model.score(ctx, idv).value();  // [count, K]
    TensorView<const float> sf;
    if constexpr (std::is_same_v<T, float>) {
      sf = {s.shape, s.data};
    } else {
      scores = Tensor<float>(s.shape);
      for (int64_t i = 0; i < s.numel(); ++i) scores[i] = float(s[i]);
      sf = {scores.shape(), scores.data()};
    }
    auto excluded = options.exclude_history ? histories.subspan(first, count) : std::span<const std::span<const int32_t>>{};
    metrics.add_ranks(target_ranks(sf, targets.subspan(first, count), excluded));
  }
  return metrics;
}

template <class T = float>
class Trainer {
 public:
  Trainer(const EulerFormerConfig& config, const TrainOptions& options, const Dataset& data)
      : options_(options), data_(data), split_(leave_one_out(data)), model_(with_items(config, data), options.seed),
        adam_(adam_config(options)), rng_(options.seed ^ 0x5eed5eed5eedULL) {
    if (options.batch_size < 1) throw std::invalid_argument("batch size must be >= 1, got " + std::to_string(options.batch_size));
    if (options.eval_batch < 1) throw std::invalid_argument("eval batch must be >= 1");
    if (split_.evaluated_users.empty())
      throw DataError(data.source + ": no user has the 3 interactions leave-one-out needs (validation and test targets)");
    for (int32_t u : split_.evaluated_users) {
      valid_histories_.push_back(split_.validation_history(u));
      valid_targets_.push_back(split_.validation_target(u));
      test_histories_.push_back(split_.test_history(u));
      test_targets_.push_back(split_.test_target(u));
    }
    for (size_t u = 0; u < data.sequences.size(); ++u) train_sequences_.push_back(split_.train(int32_t(u)));
    best_ = Tensor<T>::zeros({std::max<int64_t>(1, model_.parameters().numel())});
  }

  EulerFormer<T>& model() { return model_; }
  const Split& split() const { return split_; }
  const TrainState& state() const { return state_; }
  // One JSON record per epoch trained by this object (the lines it appends to log.jsonl).
  const std::vector<nlohmann::json>& history() const { return history_; }
  int64_t examples_per_epoch() const { return int64_t(build_examples().size()); }

  // Train until early stopping or the epoch limit, then report valid and test metrics of the best
  // weights (and of the most-popular baseline) as one JSON object.
  nlohmann::json run() {
    set_num_threads(options_.threads);
    if (!options_.out_dir.empty()) std::filesystem::create_directories(options_.out_dir);
    if (state_.epoch == 0) copy_values(model_.parameters().values(), best_.view());
    while (state_.epoch < options_.epochs && (state_.epoch == 0 || state_.bad_epochs < options_.patience)) {
      nlohmann::json line = train_epoch();
      RankingMetrics valid = evaluate(model_, valid_histories_, valid_targets_, ranking_options(), options_.eval_batch);
      double ndcg = valid.value("ndcg@10");
      ++state_.epoch;
      bool improved = ndcg > state_.best_metric;
      if (improved) {
        state_.best_metric = ndcg;
        state_.best_epoch = state_.epoch;
        state_.bad_epochs = 0;
        copy_values(model_.parameters().values(), best_.view());
      } else {
        ++state_.bad_epochs;
      }
      line["epoch"] = state_.epoch;
      line.update(valid.to_json("valid"));
      line["best_epoch"] = state_.best_epoch;
      report_epoch(line);
      history_.push_back(line);
      if (!options_.out_dir.empty()) {
        if (improved) save_weights(path("best.safetensors"), model_, checkpoint_metadata());
        save_checkpoint(path("checkpoint.safetensors"));
        append_log(line);
      }
    }
    return final_report();
  }

  // The metrics of the best weights on validation and test, plus the popularity baseline on test.
  nlohmann::json final_report() {
    copy_values(best_.view(), model_.parameters().values());
    nlohmann::json out;
    out.update(evaluate(model_, valid_histories_, valid_targets_, ranking_options(), options_.eval_batch).to_json("valid"));
    out.update(evaluate(model_, test_histories_, test_targets_, ranking_options(), options_.eval_batch).to_json("test"));
    out.update(popularity_baseline().to_json("pop_test"));
    out["best_epoch"] = state_.best_epoch;
    out["epochs"] = state_.epoch;
    out["users"] = int64_t(split_.evaluated_users.size());
    return out;
  }

  RankingMetrics popularity_baseline() const {
    std::vector<float> pop = popularity_scores(std::span<const std::span<const int32_t>>(train_sequences_), model_.config().n_items);
    RankingMetrics metrics(ranking_options());
    for (size_t first = 0; first < test_targets_.size(); first += 1024) {
      size_t count = std::min<size_t>(1024, test_targets_.size() - first);
      Tensor<float> scores({int64_t(count), int64_t(pop.size())});
      for (size_t r = 0; r < count; ++r) std::copy(pop.begin(), pop.end(), scores.data() + r * pop.size());
      auto excluded = options_.exclude_history ? std::span<const std::span<const int32_t>>(test_histories_).subspan(first, count)
                                               : std::span<const std::span<const int32_t>>{};
      metrics.add_ranks(target_ranks(scores.view(), std::span<const int32_t>(test_targets_).subspan(first, count), excluded));
    }
    return metrics;
  }

  // ---- checkpoints -------------------------------------------------------------------------------
  // One file: every parameter under its name, the Adam moments, the best weights so far, and the
  // state (epoch, Rng, early stopping) and configs as metadata. Written atomically.
  void save_checkpoint(const std::string& file) const {
    safetensors::Writer w = weights_writer(model_, checkpoint_metadata());
    w.metadata["train_state"] = state_with_rng().to_json().dump();
    w.metadata["train_options"] = options_.to_json().dump();
    w.metadata["adam_steps"] = std::to_string(adam_.steps());
    if (adam_.steps() > 0) {
      w.add("optimizer.moment1", adam_.moment1().view());
      w.add("optimizer.moment2", adam_.moment2().view());
    }
    w.add("best.values", TensorView<const T>{best_.shape(), best_.data()});
    w.write(file);
  }

  // Continue a run from save_checkpoint's file (the same data and options as the run that wrote it).
  void resume(const std::string& file) {
    safetensors::File f = safetensors::File::read(file);
    EulerFormerConfig stored = read_config(f);
    if (stored.to_json() != model_.config().to_json())
      throw safetensors::FormatError(file + ": the checkpoint's model config differs from this run's");
    const auto& meta = f.metadata();
    for (const char* key : {"train_state", "adam_steps"})
      if (!meta.count(key)) throw safetensors::FormatError(file + ": not a training checkpoint (no '" + key + "' metadata)");
    Parameters<T>& p = model_.parameters();
    for (int i = 0; i < p.count(); ++i) f.copy_to(p.entry(i).name, p.value(i));
    f.copy_to("best.values", best_.view());
    int64_t steps = std::stoll(meta.at("adam_steps"));
    if (steps > 0) {
      Tensor<T> m1(Shape{p.numel()}), m2(Shape{p.numel()});
      f.copy_to("optimizer.moment1", m1.view());
      f.copy_to("optimizer.moment2", m2.view());
      adam_.set_state(steps, m1.view(), m2.view());
    }
    state_ = TrainState::from_json(nlohmann::json::parse(meta.at("train_state")));
    rng_.set_state(state_.rng);
  }

 private:
  struct Example {
    int32_t user;
    int32_t end;  // objective last: the target's index in train(user)
  };

  static EulerFormerConfig with_items(EulerFormerConfig c, const Dataset& data) {
    c.n_items = int(data.table_rows());
    return c;
  }
  static AdamConfig adam_config(const TrainOptions& o) {
    AdamConfig a;
    a.lr = o.lr;
    a.weight_decay = o.weight_decay;
    a.decoupled = o.adamw;
    a.clip_norm = o.clip_norm;
    return a;
  }
  RankingOptions ranking_options() const {
    RankingOptions r;
    r.exclude_history = options_.exclude_history;
    return r;
  }
  std::string path(const std::string& name) const { return (std::filesystem::path(options_.out_dir) / name).string(); }
  std::map<std::string, std::string> checkpoint_metadata() const {
    nlohmann::json tokens = data_.item_tokens;
    return {{"item_tokens", tokens.dump()}, {"data", data_.source}};
  }
  TrainState state_with_rng() const {
    TrainState s = state_;
    s.rng = rng_.state();
    return s;
  }
  static void copy_values(TensorView<const T> from, TensorView<T> to) { std::copy(from.data, from.data + from.numel(), to.data); }

  std::vector<Example> build_examples() const {
    std::vector<Example> examples;
    bool per_prefix = model_.config().backbone == Backbone::sasrec && model_.config().objective == Objective::last;
    for (size_t u = 0; u < train_sequences_.size(); ++u) {
      int32_t length = int32_t(train_sequences_[u].size());
      if (per_prefix) {
        for (int32_t end = 1; end < length; ++end) examples.push_back({int32_t(u), end});
      } else if (length >= 2) {
        examples.push_back({int32_t(u), length});
      }
    }
    return examples;
  }

  // Fill ids and targets of one batch; BERT4Rec masks positions with the run's Rng.
  void fill_batch(std::span<const Example> batch, TensorView<int32_t> ids, TensorView<int32_t> targets) {
    const EulerFormerConfig& c = model_.config();
    int64_t N = c.max_len;
    std::fill(ids.begin(), ids.end(), 0);
    std::fill(targets.begin(), targets.end(), 0);
    for (size_t b = 0; b < batch.size(); ++b) {
      std::span<const int32_t> seq = train_sequences_[size_t(batch[b].user)];
      int32_t* row = ids.data + int64_t(b) * N;
      if (c.backbone == Backbone::bert4rec) {
        size_t keep = std::min<size_t>(seq.size(), size_t(N));
        std::span<const int32_t> window = seq.last(keep);
        int32_t* target_row = targets.data + int64_t(b) * N;
        size_t masked = 0;
        for (size_t j = 0; j < keep; ++j) {
          row[j] = window[j];
          if (rng_.uniform() < c.mask_ratio) {
            target_row[j] = window[j];
            row[j] = c.mask_token();
            ++masked;
          }
        }
        if (masked == 0) {  // at least one prediction per list
          size_t j = size_t(rng_.below(keep));
          target_row[j] = window[j];
          row[j] = c.mask_token();
        }
      } else if (c.objective == Objective::all) {
        size_t keep = std::min<size_t>(seq.size(), size_t(N) + 1);
        std::span<const int32_t> window = seq.last(keep);
        int32_t* target_row = targets.data + int64_t(b) * N;
        for (size_t j = 0; j + 1 < keep; ++j) {
          row[j] = window[j];
          target_row[j] = window[j + 1];
        }
      } else {
        int32_t end = batch[b].end;
        int32_t start = std::max<int32_t>(0, end - int32_t(N));
        for (int32_t j = start; j < end; ++j) row[j - start] = seq[size_t(j)];
        targets.data[b] = seq[size_t(end)];
      }
    }
  }

  nlohmann::json train_epoch() {
    const EulerFormerConfig& c = model_.config();
    std::vector<Example> examples = build_examples();
    rng_.shuffle(examples);
    int64_t B = options_.batch_size, N = c.max_len;
    bool per_position = c.backbone == Backbone::bert4rec || c.objective == Objective::all;
    double loss_sum = 0, ce_sum = 0, con_sum = 0;
    int64_t steps = 0, done = 0, total = int64_t(examples.size());
    auto start = std::chrono::steady_clock::now();
    Tape<T> tape;
    Context<T> ctx{tape, model_.parameters(), /*dropout_on=*/true, rng_};
    Tensor<int32_t> ids_buffer({B, N});  // reused by every batch (the last may use fewer rows)
    Tensor<int32_t> targets_buffer = per_position ? Tensor<int32_t>({B, N}) : Tensor<int32_t>({B});
    for (int64_t first = 0; first < total; first += B) {
      int64_t count = std::min(B, total - first);
      TensorView<int32_t> ids{Shape{count, N}, ids_buffer.data()};
      TensorView<int32_t> targets{per_position ? Shape{count, N} : Shape{count}, targets_buffer.data()};
      fill_batch(std::span<const Example>(examples).subspan(size_t(first), size_t(count)), ids, targets);
      tape.reset();
      model_.parameters().zero_grad();
      Losses<T> losses = model_.loss(ctx, {ids, targets});
      tape.backward(losses.total, BackwardOptions{.keep_intermediate_grads = false});
      adam_.step(model_.parameters());
      loss_sum += double(losses.total.value()[0]);
      ce_sum += double(losses.ce.value()[0]);
      con_sum += double(losses.contrastive.value()[0]);
      ++steps;
      done += count;
      progress(done, total, start);
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (options_.progress && isatty(2)) std::fprintf(stderr, "\r%80s\r", "");
    double n = double(std::max<int64_t>(1, steps));
    return {{"loss", loss_sum / n}, {"loss_ce", ce_sum / n}, {"loss_con", con_sum / n}, {"seconds", seconds},
            {"seq_per_s", double(total) / std::max(seconds, 1e-9)}, {"examples", total}};
  }

  void progress(int64_t done, int64_t total, std::chrono::steady_clock::time_point start) const {
    if (!options_.progress || !isatty(2)) return;
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double rate = double(done) / std::max(elapsed, 1e-9);
    double eta = double(total - done) / std::max(rate, 1e-9);
    int width = 30, filled = int(double(width) * double(done) / double(std::max<int64_t>(1, total)));
    std::fprintf(stderr, "\repoch %d [%.*s%*s] %3d%% %8.0f seq/s ETA %5.1fs", state_.epoch + 1, filled,
                 "==============================", width - filled, "", int(100 * done / std::max<int64_t>(1, total)), rate, eta);
    std::fflush(stderr);
  }

  void report_epoch(const nlohmann::json& line) const {
    if (!options_.verbose) return;
    std::fprintf(stderr, "epoch %3d  loss %.4f (ce %.4f, con %.3g)  valid ndcg@10 %.4f hr@10 %.4f  %.1f s, %.0f seq/s%s\n",
                 line["epoch"].get<int>(), line["loss"].get<double>(), line["loss_ce"].get<double>(),
                 line["loss_con"].get<double>(), line["valid_ndcg@10"].get<double>(), line["valid_hr@10"].get<double>(),
                 line["seconds"].get<double>(), line["seq_per_s"].get<double>(),
                 line["best_epoch"].get<int>() == line["epoch"].get<int>() ? "  *" : "");
  }

  void append_log(const nlohmann::json& line) const {
    // The log is rewritten whole each epoch (atomically), so a crash never leaves a torn line.
    std::string text;
    try {
      text = read_file(path("log.jsonl"));
    } catch (const IoError&) {
    }
    if (state_.epoch == 1) text.clear();
    write_file_atomically(path("log.jsonl"), text + line.dump() + "\n");
  }

  TrainOptions options_;
  const Dataset& data_;
  Split split_;
  EulerFormer<T> model_;
  Adam<T> adam_;
  Rng rng_;
  TrainState state_;
  Tensor<T> best_;
  std::vector<std::span<const int32_t>> train_sequences_, valid_histories_, test_histories_;
  std::vector<int32_t> valid_targets_, test_targets_;
  std::vector<nlohmann::json> history_;
};

}  // namespace euler
