// euler/train/checkpoint.hpp: the training checkpoint, one safetensors file from which a run continues
// exactly where it stopped.
//
// It holds every parameter under its name (the weights file's layout, model/weights.hpp, so
// `euler eval` reads a checkpoint too), the Adam moments ("optimizer.moment1", "optimizer.moment2"),
// the best weights so far ("best.values", flat), and as metadata the model config, the training
// options, the training state (epoch, early stopping, the Rng's counter), Adam's step count and the
// data's identity: the item ids in order, the user count and a hash of every user's sequence.
//
// read_checkpoint refuses a checkpoint of another run, naming what differs: other data (items, users
// or interactions), another model setting, another training option (except those that change no
// result, or only how long the run goes: epochs, patience, threads, eval_batch, on_nonfinite). Every
// tensor is checked (shapes, NaN, inf) and everything is read before the caller changes anything.
//
//     euler::write_checkpoint(path, model, data, options, state, adam, best.view());
//     euler::TrainCheckpoint<float> c = euler::read_checkpoint<float>(path, model.config(), data, options);
#pragma once

#include <algorithm>
#include <charconv>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "euler/data/dataset.hpp"
#include "euler/io/safetensors.hpp"
#include "euler/model/weights.hpp"
#include "euler/train/optimizer.hpp"
#include "euler/train/options.hpp"

namespace euler {

// What read_checkpoint gives back, checked.
template <class T>
struct TrainCheckpoint {
  TrainState state;              // epoch, early stopping and the Rng's state
  int64_t adam_steps = 0;
  Tensor<T> moment1, moment2;    // Adam's moments, flat (empty when adam_steps is 0)
  Tensor<T> values;              // the weights, flat in the model's parameter order
  Tensor<T> best;                // the best weights so far, flat
  nlohmann::json options;        // the run's training options (null: a checkpoint written before they were stored)
};

// The data's identity, stored with every checkpoint and best.safetensors: the item ids in order, the
// user count, and a hash of every user's id and sequence (another file, other filters or another --dedup
// change it).
inline std::map<std::string, std::string> checkpoint_metadata(const Dataset& data) {
  std::map<std::string, std::string> metadata = {
      {"data", data.source}, {"data_users", std::to_string(data.n_users)}, {"data_fingerprint", data_fingerprint(data)}};
  put_item_tokens(metadata, data.item_tokens);
  return metadata;
}

// The checkpoint's items, users and interactions against this run's data (each check skipped for a
// checkpoint written before it existed).
inline void check_same_data(const safetensors::File& f, const std::string& file, const Dataset& data) {
  const auto& meta = f.metadata();
  const std::string differ = ": cannot resume on " + data.source + ", whose ";
  if (std::vector<std::string> tokens = get_item_tokens(f, file); !tokens.empty()) {
    if (tokens.size() != data.item_tokens.size())
      throw DataError(file + differ + "n_items differs: " + std::to_string(data.n_items) + " items, the checkpoint's run had " +
                      std::to_string(int64_t(tokens.size()) - 1) + " (another file, or other filter flags)");
    for (size_t i = 1; i < tokens.size(); ++i)
      if (tokens[i] != data.item_tokens[i])
        throw DataError(file + differ + "items differ: item " + std::to_string(i) + " is '" + data.item_tokens[i] + "' there and '" +
                        tokens[i] + "' in the checkpoint's run (as many items, other ids)");
  }
  if (auto it = meta.find("data_users"); it != meta.end() && it->second != std::to_string(data.n_users))
    throw DataError(file + differ + "users differ: " + std::to_string(data.n_users) + " users, the checkpoint's run had " + it->second);
  if (auto it = meta.find("data_fingerprint"); it != meta.end() && it->second != data_fingerprint(data))
    throw DataError(file + differ + "interactions differ from the checkpoint's run (the same items and as many users: another "
                    "file, other filters or another --dedup)");
}

// Every setting of `stored` (from the checkpoint) against `now`, except those in `free`.
inline void check_same_settings(const std::string& what, const nlohmann::json& stored, const nlohmann::json& now, const std::string& file,
                                std::initializer_list<std::string_view> free) {
  for (const auto& [key, value] : now.items()) {
    if (std::find(free.begin(), free.end(), key) != free.end() || !stored.contains(key) || stored[key] == value) continue;
    throw DataError(file + ": cannot resume with another " + what + ": " + key + " is " + value.dump() + " in this run and " +
                    stored[key].dump() + " in the checkpoint's; give the checkpoint's value, or start afresh in another --out");
  }
}

// The checkpoint of a run at `state` (its Rng's state included), written atomically.
template <class T>
void write_checkpoint(const std::string& file, const EulerFormer<T>& model, const Dataset& data, const TrainOptions& options,
                      const TrainState& state, const Adam<T>& adam, TensorView<const T> best) {
  safetensors::Writer w = weights_writer(model, checkpoint_metadata(data));
  w.metadata["train_state"] = state.to_json().dump();
  w.metadata["train_options"] = options.to_json().dump();
  w.metadata["adam_steps"] = std::to_string(adam.steps());
  if (adam.steps() > 0) {
    w.add("optimizer.moment1", adam.moment1().view());
    w.add("optimizer.moment2", adam.moment2().view());
  }
  w.add("best.values", best);
  w.write(file);
}

// write_checkpoint's file, checked against the run that continues it (the file comment).
template <class T>
TrainCheckpoint<T> read_checkpoint(const std::string& file, const EulerFormerConfig& config, const Dataset& data,
                                   const TrainOptions& options) {
  safetensors::File f = safetensors::File::read(file);
  EulerFormerConfig stored = read_config(f);
  const auto& meta = f.metadata();
  check_same_data(f, file, data);
  check_same_settings("model setting", stored.to_json(), config.to_json(), file, {});
  TrainCheckpoint<T> c;
  if (meta.count("train_options")) {
    try {
      c.options = nlohmann::json::parse(meta.at("train_options"));
    } catch (const nlohmann::json::exception& e) {
      throw safetensors::FormatError(file + ": damaged 'train_options' metadata: " + e.what());
    }
    check_same_settings("training option", c.options, options.to_json(), file, {"epochs", "patience", "threads", "eval_batch", "on_nonfinite"});
  }
  for (const char* key : {"train_state", "adam_steps"})
    if (!meta.count(key)) throw safetensors::FormatError(file + ": not a training checkpoint (no '" + key + "' metadata)");
  try {
    c.state = TrainState::from_json(nlohmann::json::parse(meta.at("train_state")));
    const std::string& text = meta.at("adam_steps");
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), c.adam_steps);
    if (ec != std::errc() || end != text.data() + text.size() || c.adam_steps < 0) throw std::invalid_argument("adam_steps '" + text + "'");
  } catch (const std::exception& e) {
    throw safetensors::FormatError(file + ": damaged training state in the metadata: " + e.what());
  }
  const TrainState& s = c.state;
  if (s.epoch < 0 || s.bad_epochs < 0 || s.best_epoch < 0 || s.best_epoch > s.epoch)
    throw safetensors::FormatError(file + ": damaged training state in the metadata: " + meta.at("train_state"));
  // The weights go into a model of their own, through the checks of every loader (missing tensors,
  // shapes, NaN and inf); so do the Adam moments and the best weights.
  EulerFormer<T> loaded(stored);
  load_weights(f, loaded, /*allow_unexpected=*/true);
  const TensorView<const T> values = loaded.parameters().values();
  const int64_t numel = values.numel();
  c.values = Tensor<T>(Shape{numel});
  std::copy(values.data, values.data + numel, c.values.data());
  if (c.adam_steps > 0) {
    c.moment1 = Tensor<T>(Shape{numel});
    c.moment2 = Tensor<T>(Shape{numel});
    copy_finite(f, "optimizer.moment1", c.moment1.view());
    copy_finite(f, "optimizer.moment2", c.moment2.view());
  }
  c.best = Tensor<T>(Shape{std::max<int64_t>(1, numel)});
  copy_finite(f, "best.values", c.best.view());
  return c;
}

}  // namespace euler
