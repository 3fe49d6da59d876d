// euler/train/trainer.hpp: train EulerFormer on a dataset, evaluate by full ranking, checkpoint, resume.
//
// One epoch: build the training examples of the objective, shuffle them with the run's Rng, and for
// each batch run forward, backward and an Adam step. After each epoch the model is evaluated on the
// validation targets (full ranking; the options' valid_metric, NDCG@10 by default, decides), the best
// weights are kept, and a checkpoint is written atomically. Training stops after `patience` epochs
// without improvement; the best weights are then evaluated on the test targets, beside the
// most-popular and Markov baselines. This file is the loop; each other concern has its own header:
//
//   train/examples.hpp       the training examples of each objective, and a batch's ids and targets
//   train/evaluate.hpp       full-ranking evaluation (evaluate, recommend, ranks_table)
//   train/baselines.hpp      the most-popular and Markov baselines
//   train/checkpoint.hpp     the checkpoint file: what it holds, how resume checks it
//   train/run_directory.hpp  --out: the lock, log.jsonl, atomic writes; at the end result.json (the
//                            final metrics with the model config, the training options, the data, the
//                            training time and the learned rotation) and ranks.tsv (each user's ranks)
//   train/progress.hpp       the progress bar and the line printed after each epoch
//   train/rotation_watch.hpp with pos euler, how the rotation learns: each layer's delta and b, their
//                            gradients' mean, spread and sign per epoch, the rotated phases' concentration
//   train/group.hpp          training over several processes (mpirun -np P)
//
// on_step and on_epoch let a program watch a run: a callback after every step's backward (the
// gradients readable) and after every epoch.
//
// Faults: a failed write stops the run with an IoError and leaves the previous file. A NaN or inf in a
// step's loss or gradients (or in the parameters after a step) is a NonFiniteError naming the step and
// the op that produced it (check/finite.hpp; the step is replayed to find it), raised before anything
// is written, so the last checkpoint is the last good one. With on_nonfinite = skip such a step is
// skipped instead (no update; it is counted in the epoch's "skipped_steps"); an epoch with no good
// step, or non-finite parameters, stops the run either way. Validation scores that hold NaN or +inf
// stop the run too (skip: those users rank their target last, counted in "valid_unusable_users").
//
// Determinism: the same seed and thread count give the same metrics, bit for bit. Everything random
// (shuffles, dropout, BERT4Rec masks) draws from one counter-based Rng whose state is checkpointed
// with the weights and the Adam moments, so a resumed run continues exactly where it stopped. With a
// process group every rank computes its share of each batch and the gradients are summed before each
// step; the run then depends on P only through the order of floating-point sums, and the same P gives
// the same bits.
//
//     euler::Trainer<float> trainer(model_config, train_options, dataset);
//     nlohmann::json final = trainer.run();        // {"test_ndcg@10": ..., "valid_ndcg@10": ..., ...}
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "euler/check/finite.hpp"
#include "euler/data/dataset.hpp"
#include "euler/data/rows.hpp"
#include "euler/io/safetensors.hpp"
#include "euler/model/weights.hpp"
#include "euler/train/baselines.hpp"
#include "euler/train/checkpoint.hpp"
#include "euler/train/evaluate.hpp"
#include "euler/train/examples.hpp"
#include "euler/train/group.hpp"
#include "euler/train/memory.hpp"
#include "euler/train/metrics.hpp"
#include "euler/train/optimizer.hpp"
#include "euler/train/options.hpp"
#include "euler/train/progress.hpp"
#include "euler/train/rotation_watch.hpp"
#include "euler/train/run_directory.hpp"
#include "euler/train/step_backend.hpp"

namespace euler {

template <class T = float>
class Trainer {
 public:
  Trainer(const EulerFormerConfig& config, const TrainOptions& options, const Dataset& data)
      : options_(options), data_(data), split_(leave_one_out(data)), model_(with_items(config, data), options.seed),
        adam_(adam_config(options)), rng_(options.seed ^ 0x5eed5eed5eedULL), watch_(model_) {
    if (options.batch_size < 1) throw std::invalid_argument("batch size must be >= 1, got " + std::to_string(options.batch_size));
    if (options.eval_batch < 1) throw std::invalid_argument("eval batch must be >= 1");
    metric_cutoff(options.valid_metric);  // a bad name throws now, not after the first epoch
    if (split_.evaluated_users.empty())
      throw DataError(data.source + ": no user has the 3 interactions leave-one-out needs (validation and test targets)");
    for (int32_t u : split_.evaluated_users) {
      valid_histories_.push_back(split_.validation_history(u));
      valid_targets_.push_back(split_.validation_target(u));
      test_histories_.push_back(split_.test_history(u));
      test_targets_.push_back(split_.test_target(u));
    }
    for (size_t u = 0; u < data.sequences.size(); ++u) train_sequences_.push_back(split_.train(int32_t(u)));
    phase_sample_.assign(valid_histories_.begin(), valid_histories_.begin() + std::ptrdiff_t(std::min<size_t>(256, valid_histories_.size())));
    best_ = Tensor<T>::zeros({std::max<int64_t>(1, model_.parameters().numel())});
    model_.set_fused(true);  // each layer one fused node: the same values as the composed path, faster
  }

  // The trainer keeps a reference to the dataset: it must outlive the trainer.
  Trainer(const EulerFormerConfig& config, const TrainOptions& options, const Dataset&& data) = delete;

  EulerFormer<T>& model() { return model_; }
  // Run the training steps through `backend` (null: on the CPU); the caller keeps it alive.
  void set_step_backend(StepBackend<T>* backend) { backend_ = backend; }
  // Train together with the other ranks of `group` (train/group.hpp; null: alone); the caller keeps it
  // alive. Each rank computes its share of every batch and of the evaluation's users; only rank 0
  // prints and writes the output directory.
  void set_group(ProcessGroup* group) {
    group_ = group && group->size() > 1 ? group : nullptr;
    if (group_ && group_->rank() != 0) options_.verbose = false, options_.progress = false;
  }
  const Split& split() const { return split_; }
  const TrainState& state() const { return state_; }
  // One JSON record per epoch trained by this object (the lines it appends to log.jsonl).
  const std::vector<nlohmann::json>& history() const { return history_; }
  // Every epoch of the run: with an output directory, log.jsonl's records (also those of the epochs
  // before a resume()); without one, history().
  std::vector<nlohmann::json> epochs() const {
    return options_.out_dir.empty() ? history_ : read_json_lines(path("log.jsonl"));
  }
  int64_t examples_per_epoch() const { return int64_t(training_examples(model_.config(), train_sequences_, options_.all_windows).size()); }
  // The shapes the run's memory estimate is made from (train/memory.hpp): the batches there are, not
  // the flags' values.
  MemoryShape memory_shape() const {
    MemoryShape s;
    s.config = model_.config();
    s.parameters = model_.parameters().numel();
    s.batch = std::clamp<int64_t>(examples_per_epoch(), 1, options_.batch_size);
    s.eval_rows = std::clamp<int64_t>(int64_t(split_.evaluated_users.size()), 1, options_.eval_batch);
    s.threads = options_.threads;
    s.keep_bytes = model_.keep_bytes();
    s.fused = model_.fused();
    return s;
  }

  // Train until early stopping or the epoch limit, then report valid and test metrics of the best
  // weights (and of the most-popular baseline) as one JSON object.
  nlohmann::json run() {
    set_num_threads(options_.threads);
    // Refused above the memory limit, unless recomputing the layers' intermediates fits (train/memory.hpp).
    const int64_t limit = options_.max_memory > 0 ? options_.max_memory : default_memory_limit();
    model_.set_keep_bytes(check_memory_or_recompute(memory_shape(), limit, "this run", options_.verbose).keep_bytes);
    std::optional<DirectoryLock> lock;  // held until run() returns or throws
    if (group_ && backend_) throw std::invalid_argument("training over several processes runs on the CPU only");
    if (writes()) lock.emplace(open_run_directory(options_.out_dir));
    if (state_.epoch == 0) copy_values(model_.parameters().values(), best_.view());
    while (state_.epoch < options_.epochs && (state_.epoch == 0 || state_.bad_epochs < options_.patience)) {
      nlohmann::json line = train_epoch();
      UnusableScores unusable;
      RankingMetrics valid = evaluate_users(valid_histories_, valid_targets_, &unusable);
      if (unusable.rows > 0) {
        std::string what = "epoch " + std::to_string(state_.epoch + 1) + ": the validation scores of " + std::to_string(unusable.rows) +
                           " of " + std::to_string(valid_targets_.size()) + " users hold NaN or inf; " + unusable.first.message();
        if (options_.on_nonfinite == NonFiniteAction::stop) throw NonFiniteError(what + stopped_note());
        if (options_.verbose) std::fprintf(stderr, "ranked last: %s\n", what.c_str());
        line["valid_unusable_users"] = unusable.rows;
      }
      double metric = valid.value(options_.valid_metric);
      ++state_.epoch;
      bool improved = metric > state_.best_metric;
      if (improved) {
        state_.best_metric = metric;
        state_.best_epoch = state_.epoch;
        state_.bad_epochs = 0;
        copy_values(model_.parameters().values(), best_.view());
      } else {
        ++state_.bad_epochs;
      }
      line["epoch"] = state_.epoch;
      line.update(valid.to_json("valid"));
      line["best_epoch"] = state_.best_epoch;
      if (watch_.active()) watch_.finish_epoch(model_, phase_sample_, line);
      if (options_.verbose) print_epoch(line);
      history_.push_back(line);
      for (const auto& callback : epoch_callbacks_) callback(line);
      if (writes()) write_outputs(improved, line);
    }
    std::vector<int64_t> valid_ranks, test_ranks;
    nlohmann::json report = final_report(&valid_ranks, &test_ranks);
    if (group_) report.update(check_replicas(*group_, TensorView<const T>(model_.parameters().values())));
    if (writes()) write_result(report, valid_ranks, test_ranks);
    return report;
  }

  // The metrics of the best weights on validation and test, plus the popularity and Markov baselines on test.
  // valid_ranks and test_ranks, when given, receive each evaluated user's target rank (split().evaluated_users order).
  nlohmann::json final_report(std::vector<int64_t>* valid_ranks = nullptr, std::vector<int64_t>* test_ranks = nullptr) {
    copy_values(best_.view(), model_.parameters().values());
    nlohmann::json out;
    out.update(evaluate_users(valid_histories_, valid_targets_, nullptr, valid_ranks).to_json("valid"));
    out.update(evaluate_users(test_histories_, test_targets_, nullptr, test_ranks).to_json("test"));
    out.update(popularity_baseline().to_json("pop_test"));
    out.update(markov_baseline().to_json("markov_test"));
    out["best_epoch"] = state_.best_epoch;
    out["epochs"] = state_.epoch;
    out["users"] = int64_t(split_.evaluated_users.size());
    out["memory_estimate_mb"] = std::round(estimate_memory(memory_shape()).total() / 1e6);
    return out;
  }

  // The learned rotation of each layer (pos euler): delta and b, averaged over their entries when they
  // are vectors (b: null without the phase bias). Empty for the other positional schemes.
  nlohmann::json learned_rotation() const {
    nlohmann::json layers = nlohmann::json::array();
    const Parameters<T>& p = model_.parameters();
    auto mean_of = [&](const std::string& name) -> nlohmann::json {
      if (!p.contains(name)) return nullptr;
      TensorView<T> v = p.value(name);
      double sum = 0;
      for (int64_t i = 0; i < v.numel(); ++i) sum += double(v[i]);
      return sum / double(std::max<int64_t>(1, v.numel()));
    };
    for (int l = 0; l < model_.config().n_layers; ++l) {
      std::string prefix = "trm_encoder.layer." + std::to_string(l) + ".multi_head_attention.euler.";
      if (!p.contains(prefix + "delta")) continue;
      layers.push_back({{"layer", l}, {"delta", mean_of(prefix + "delta")}, {"b", mean_of(prefix + "b")}});
    }
    return layers;
  }

  // ---- observing a run ---------------------------------------------------------------------------
  // What an on_step callback sees: a step just back-propagated, before the optimizer uses its
  // gradients. parameters.value(name) are the values the gradients were taken at, parameters.grad(name)
  // the gradients of the batch's total loss.
  struct StepView {
    int epoch;      // the epoch being trained, from 1
    int64_t step;   // the step within it, from 1
    double loss, ce, contrastive;
    const Parameters<T>& parameters;
  };
  // Called after every training step's backward pass, on the CPU (the CUDA backend keeps its
  // gradients on the device, and calls no step callback). A callback must not change the parameters.
  void on_step(std::function<void(const StepView&)> callback) { step_callbacks_.push_back(std::move(callback)); }
  // Called after every epoch with its record, the line log.jsonl gets: losses, validation metrics,
  // best_epoch, and with pos euler the rotation's fields (train/rotation_watch.hpp).
  void on_epoch(std::function<void(const nlohmann::json&)> callback) { epoch_callbacks_.push_back(std::move(callback)); }

  // The command line that started the run, recorded in result.json (empty: not recorded).
  void set_command(std::string command) { command_ = std::move(command); }

  // The most-popular and the count-based Markov baselines (train/baselines.hpp: the last 10 items vote
  // by how often each item followed them in the training sequences) on the test targets: what a model
  // must beat to have learned more than popularity and item-to-item transitions.
  RankingMetrics popularity_baseline() const {
    return popularity_metrics(train_sequences_, model_.config().n_items, test_histories_, test_targets_, ranking_options());
  }
  RankingMetrics markov_baseline() const {
    return markov_metrics(train_sequences_, model_.config().n_items, test_histories_, test_targets_, ranking_options());
  }

  // ---- checkpoints (train/checkpoint.hpp) ----------------------------------------------------------
  // One file: the weights, the Adam moments, the best weights so far, the state and the configs.
  void save_checkpoint(const std::string& file) const {
    write_checkpoint(file, model_, data_, options_, state_with_rng(), adam_, TensorView<const T>(best_.view()));
  }

  // Continue a run from save_checkpoint's file. The checkpoint's data (items, users, interactions),
  // model config and training options must be this run's, or it is refused naming what differs;
  // --epochs and --patience may change (train longer), which is printed; threads and the eval batch
  // change no result.
  void resume(const std::string& file) {
    TrainCheckpoint<T> c = read_checkpoint<T>(file, model_.config(), data_, options_);
    copy_values(c.values.view(), model_.parameters().values());
    copy_values(c.best.view(), best_.view());
    if (c.adam_steps > 0) adam_.set_state(c.adam_steps, c.moment1.view(), c.moment2.view());
    state_ = c.state;
    rng_.set_state(state_.rng);
    resumed_from_ = file;
    if (c.options.is_object())
      for (const char* key : {"epochs", "patience"})
        if (c.options.contains(key) && c.options[key] != options_.to_json()[key])
          std::fprintf(stderr, "resuming %s with %s %s (the run so far had %s)\n", file.c_str(), key, options_.to_json()[key].dump().c_str(),
                       c.options[key].dump().c_str());
  }

 private:
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
    r.cutoffs.push_back(metric_cutoff(options_.valid_metric));  // reported too (RankingMetrics drops a repeat)
    return r;
  }
  std::string path(const std::string& name) const { return (std::filesystem::path(options_.out_dir) / name).string(); }
  TrainState state_with_rng() const {
    TrainState s = state_;
    s.rng = rng_.state();
    return s;
  }
  // best (when improved), the log, then the checkpoint: each atomically. A failed write says what
  // the checkpoint still holds.
  void write_outputs(bool improved, const nlohmann::json& line) {
    try {
      if (improved) save_weights(path("best.safetensors"), model_, checkpoint_metadata(data_));
      append_epoch_log(path("log.jsonl"), line, state_.epoch);
      save_checkpoint(path("checkpoint.safetensors"));
      saved_epoch_ = state_.epoch;
    } catch (const IoError& e) {
      std::string held = saved_epoch_ > 0 ? path("checkpoint.safetensors") + " still holds epoch " + std::to_string(saved_epoch_)
                         : !resumed_from_.empty() ? resumed_from_ + " (epoch " + std::to_string(state_.epoch - 1) + ") is unchanged"
                                                  : "no checkpoint was written yet";
      throw IoError(std::string(e.what()) + " (epoch " + std::to_string(state_.epoch) + " not saved; the file it was replacing is "
                    "unchanged, and " + held + ")");
    }
  }

  // The end of a run with --out: result.json (the final report with everything needed to reproduce and
  // compare it: model config, training options, data, training time, the learned rotation) and
  // ranks.tsv (every evaluated user's validation and test rank, the format of `euler eval --ranks`).
  void write_result(const nlohmann::json& report, std::span<const int64_t> valid_ranks, std::span<const int64_t> test_ranks) const {
    double training_seconds = 0;
    for (const nlohmann::json& epoch : epochs()) training_seconds += epoch.value("seconds", 0.0);
    nlohmann::json result = {
        {"result", report},
        {"config", model_.config().to_json()},
        {"train", options_.to_json()},
        {"data", data_json(data_)},
        {"training_seconds", training_seconds}};
    if (!command_.empty()) result["command"] = command_;
    if (nlohmann::json rotation = learned_rotation(); !rotation.empty()) result["rotation"] = rotation;
    write_file_atomically(path("ranks.tsv"), ranks_table(data_, split_.evaluated_users, valid_ranks, test_ranks));
    write_file_atomically(path("result.json"), json_text(result, 2) + "\n");
  }

  static void copy_values(TensorView<const T> from, TensorView<T> to) { std::copy(from.data, from.data + from.numel(), to.data); }

  nlohmann::json train_epoch() {
    const EulerFormerConfig& c = model_.config();
    std::vector<Example> examples = training_examples(c, train_sequences_, options_.all_windows);
    rng_.shuffle(examples);
    // Buffers for the batches there are: --batch-size 2147483647 on 6,040 examples allocates 6,040 rows.
    int64_t B = std::clamp<int64_t>(int64_t(examples.size()), 1, options_.batch_size), N = c.max_len;
    bool per_position = c.backbone == Backbone::bert4rec || c.objective == Objective::all;
    double loss_sum = 0, ce_sum = 0, con_sum = 0;
    int64_t steps = 0, done = 0, total = int64_t(examples.size());
    auto start = std::chrono::steady_clock::now();
    EpochProgress progress(state_.epoch + 1, total, options_.progress_every, options_.progress);
    Tape<T> tape;
    Context<T> ctx{tape, model_.parameters(), /*dropout_on=*/true, rng_};
    Tensor<int32_t> ids_buffer({B, N});  // reused by every batch (the last may use fewer rows)
    Tensor<int32_t> targets_buffer = per_position ? Tensor<int32_t>({B, N}) : Tensor<int32_t>({B});
    int64_t skipped = 0;
    if (backend_) backend_->begin_epoch(model_.parameters(), adam_);
    for (int64_t first = 0; first < total; first += B) {
      int64_t count = std::min(B, total - first);
      TensorView<int32_t> ids{Shape{count, N}, ids_buffer.data()};
      TensorView<int32_t> targets{per_position ? Shape{count, N} : Shape{count}, targets_buffer.data()};
      fill_batch(c, train_sequences_, std::span<const Example>(examples).subspan(size_t(first), size_t(count)), rng_, ids, targets);
      if (backend_) {  // the step on another device (CUDA); a non-finite loss stops the run there
        std::array<double, 3> l = backend_->step({ids, targets}, rng_, adam_.config());
        if (!std::isfinite(l[0]))
          throw NonFiniteError("epoch " + std::to_string(state_.epoch + 1) + ", step " + std::to_string(steps + 1) +
                               ": the device step gave a non-finite loss" + stopped_note());
        loss_sum += l[0];
        ce_sum += l[1];
        con_sum += l[2];
        ++steps;
        done += count;
        progress.update(done);
        continue;
      }
      RngState before = rng_.state();
      const std::array<double, 3> losses = forward_backward(tape, ctx, {ids, targets});
      const double loss = losses[0];
      if (std::isfinite(loss)) {
        watch_.add_step(model_.parameters());
        for (const auto& callback : step_callbacks_)
          callback({state_.epoch + 1, steps + skipped + 1, loss, losses[1], losses[2], model_.parameters()});
      }
      double norm = std::isfinite(loss) ? adam_.step(model_.parameters()) : loss;  // Adam skips a non-finite step
      if (!std::isfinite(norm)) {
        std::string where = nonfinite_step(tape, ctx, {ids, targets}, before, steps + skipped + 1, loss);
        if (options_.on_nonfinite == NonFiniteAction::stop) throw NonFiniteError(where + stopped_note());
        if (options_.verbose && skipped < 3) std::fprintf(stderr, "skipped: %s\n", where.c_str());
        if (++skipped == (total + B - 1) / B)
          throw NonFiniteError("every step of epoch " + std::to_string(state_.epoch + 1) + " was non-finite; the last: " +
                               where + stopped_note());
        done += count;
        continue;
      }
      if (NonFinite bad = first_nonfinite_parameter(model_.parameters())) {
        char text[160];
        std::snprintf(text, sizeof text, ": the optimizer step (lr %g, gradient norm %g) made a parameter non-finite: ", options_.lr, norm);
        throw NonFiniteError("epoch " + std::to_string(state_.epoch + 1) + ", step " + std::to_string(steps + skipped + 1) + text +
                             bad.message() + stopped_note());
      }
      loss_sum += loss;
      ce_sum += losses[1];
      con_sum += losses[2];
      ++steps;
      done += count;
      progress.update(done);
    }
    if (backend_) backend_->end_epoch(model_.parameters(), adam_);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    progress.finish();
    double n = double(std::max<int64_t>(1, steps));
    nlohmann::json line = {{"loss", loss_sum / n}, {"loss_ce", ce_sum / n}, {"loss_con", con_sum / n}, {"seconds", seconds},
                           {"seq_per_s", double(total) / std::max(seconds, 1e-9)}, {"examples", total}};
    if (skipped > 0) line["skipped_steps"] = skipped;
    if (group_) {  // the epoch's time in the sums over the ranks (waiting for the slowest rank included)
      line["processes"] = group_->size();
      line["sum_seconds"] = sum_seconds_;
      sum_seconds_ = 0;
    }
    return line;
  }

  // Forward and backward of one batch: the gradients of its total loss in the parameters' grads, and
  // its losses {total, ce, contrastive}. With a process group this rank computes its share of the rows
  // (train/group.hpp): its mean losses weighted by its share of the batch's targets (and, for the
  // contrastive term, of the positions it averages over), then one sum of the gradients over the ranks.
  std::array<double, 3> forward_backward(Tape<T>& tape, const Context<T>& ctx, const Batch& batch) {
    tape.reset();
    model_.parameters().zero_grad();
    if (!group_) {
      Losses<T> l = model_.loss(ctx, batch);
      tape.backward(l.total, BackwardOptions{.keep_intermediate_grads = false});
      return {double(l.total.value()[0]), double(l.ce.value()[0]), double(l.contrastive.value()[0])};
    }
    const EulerFormerConfig& c = model_.config();
    const int64_t rows = batch.ids.shape[0], N = batch.ids.shape[1];
    const bool per_position = batch.targets.shape.rank == 2;  // targets [B, N], or [B] (objective last)
    const int64_t per_row = per_position ? N : 1;
    const auto [first, end] = batch_share(rows, group_->rank(), group_->size());
    auto nonzero = [](const int32_t* x, int64_t n) { return int64_t(std::count_if(x, x + n, [](int32_t v) { return v != 0; })); };
    double sums[3] = {0, 0, 0};  // weighted total, ce and contrastive of this rank's rows
    uint64_t counter[1] = {0};   // the Rng's counter after the step, from the ranks that computed rows
    if (end > first) {
      const Batch mine{{Shape{end - first, N}, batch.ids.data + first * N},
                       {per_position ? Shape{end - first, N} : Shape{end - first}, batch.targets.data + first * per_row}};
      const double ce_share = double(nonzero(mine.targets.data, mine.targets.numel())) /
                              double(std::max<int64_t>(1, nonzero(batch.targets.data, batch.targets.numel())));
      const double con_share = double(contrastive_count(mine.ids.data, end - first, N, c.contrastive_mode)) /
                               double(std::max<int64_t>(1, contrastive_count(batch.ids.data, rows, N, c.contrastive_mode)));
      rng_.set_row_share({first, end - first, rows});
      Losses<T> l = model_.loss(ctx, mine);
      rng_.set_row_share({});
      Var<T> total = l.ce * T(ce_share) + l.contrastive * T(con_share);
      tape.backward(total, BackwardOptions{.keep_intermediate_grads = false});
      sums[0] = double(total.value()[0]);
      sums[1] = double(l.ce.value()[0]) * ce_share;
      sums[2] = double(l.contrastive.value()[0]) * con_share;
      counter[0] = rng_.counter();
    }
    const auto sum_start = std::chrono::steady_clock::now();
    group_->sum(model_.parameters().grads().data, model_.parameters().numel());
    group_->sum(sums, 3);
    group_->sum(counter, 1);  // every rank with rows drew the whole batch's numbers: the same counter
    sum_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - sum_start).count();
    rng_.set_state({rng_.seed(), counter[0] / uint64_t(std::min<int64_t>(rows, group_->size()))});
    return {sums[0], sums[1], sums[2]};
  }

  // Full-ranking metrics of the current weights on (history, target) pairs; with a process group each
  // rank ranks its share of the users and the ranks are gathered, so every rank gets the same metrics.
  RankingMetrics evaluate_users(std::span<const std::span<const int32_t>> histories, std::span<const int32_t> targets,
                                UnusableScores* unusable = nullptr, std::vector<int64_t>* ranks = nullptr) const {
    if (!group_) return evaluate(model_, histories, targets, ranking_options(), options_.eval_batch, unusable, ranks);
    const auto [first, end] = batch_share(int64_t(targets.size()), group_->rank(), group_->size());
    std::vector<int64_t> mine;
    UnusableScores local;
    if (end > first)
      evaluate(model_, histories.subspan(size_t(first), size_t(end - first)), targets.subspan(size_t(first), size_t(end - first)),
               ranking_options(), options_.eval_batch, &local, &mine);
    std::vector<int64_t> all = group_->gather(mine);
    uint64_t bad[1] = {uint64_t(local.rows)};
    group_->sum(bad, 1);
    if (unusable) {
      unusable->rows = int64_t(bad[0]);
      unusable->first = local.first;  // this rank's first (the message may lack it on other ranks)
    }
    RankingMetrics metrics(ranking_options());
    metrics.add_ranks(all);
    if (ranks) *ranks = std::move(all);
    return metrics;
  }

  bool writes() const { return !options_.out_dir.empty() && (!group_ || group_->rank() == 0); }

  // A step's loss or gradients are not finite: replay it (same batch, same Rng draws) keeping every
  // gradient, and name the op that produced the first NaN or inf. The Rng ends where it was.
  std::string nonfinite_step(Tape<T>& tape, const Context<T>& ctx, const Batch& batch, RngState before, int64_t step,
                             double loss) {
    RngState after = rng_.state();
    rng_.set_state(before);
    tape.reset();
    model_.parameters().zero_grad();
    Losses<T> again = model_.loss(ctx, batch);
    if (again.total.requires_grad()) tape.backward(again.total, BackwardOptions{.keep_intermediate_grads = true});
    NonFinite bad = find_nonfinite(tape);
    tape.reset();
    model_.parameters().zero_grad();
    rng_.set_state(after);
    char number[64];
    std::snprintf(number, sizeof number, "%g", loss);
    return "epoch " + std::to_string(state_.epoch + 1) + ", step " + std::to_string(step) + ": " +
           (std::isfinite(loss) ? std::string("non-finite gradients (loss ") + number + ")" : std::string("loss is ") + number) +
           "; " + bad.message();
  }

  std::string stopped_note() const {
    std::string advice = options_.on_nonfinite == NonFiniteAction::stop ? " (lower --lr, set --clip, or pass --on-nonfinite skip)"
                                                                         : " (lower --lr or set --clip)";
    if (saved_epoch_ > 0)
      return ". Training stopped; " + path("checkpoint.safetensors") + " holds epoch " + std::to_string(saved_epoch_) +
             ", the last good one" + advice;
    if (!resumed_from_.empty())
      return ". Training stopped; " + resumed_from_ + " (epoch " + std::to_string(state_.epoch) + ") is unchanged" + advice;
    return ". Training stopped" + std::string(options_.out_dir.empty() ? "" : " before the first checkpoint") + advice;
  }

  TrainOptions options_;
  const Dataset& data_;
  Split split_;
  EulerFormer<T> model_;
  Adam<T> adam_;
  Rng rng_;
  RotationWatch<T> watch_;  // pos euler: delta, b, their gradients and the phases, per epoch
  TrainState state_;
  int saved_epoch_ = 0;       // the epoch of the last checkpoint this run wrote (0: none)
  std::string resumed_from_;  // the checkpoint resume() read
  std::string command_;       // recorded in result.json
  Tensor<T> best_;
  StepBackend<T>* backend_ = nullptr;
  ProcessGroup* group_ = nullptr;
  double sum_seconds_ = 0;  // this epoch's time in group_->sum
  std::vector<std::span<const int32_t>> train_sequences_, valid_histories_, test_histories_;
  std::vector<std::span<const int32_t>> phase_sample_;  // the validation histories RotationWatch measures
  std::vector<int32_t> valid_targets_, test_targets_;
  std::vector<nlohmann::json> history_;
  std::vector<std::function<void(const StepView&)>> step_callbacks_;
  std::vector<std::function<void(const nlohmann::json&)>> epoch_callbacks_;
};

}  // namespace euler
