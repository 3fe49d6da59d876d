// euler/train/rotation_watch.hpp: watch EulerFormer's rotation learn, epoch by epoch.
//
// EulerFormer rotates each layer's queries and keys by theta~ = delta theta + b + alpha (model/model.hpp):
// delta (init_factor at the start) scales the semantic phase, b shifts the queries' phase. RoPE is
// delta = 1, b = 0. Whether training moves them away from RoPE, and how steadily, is what this records.
// Per epoch and per layer with a learned delta, the trainer adds to its log.jsonl line:
//   l<k>_delta, l<k>_b                  the values after the epoch (vector delta or b: their mean)
//   l<k>_delta_grad_mean, _grad_sd      mean and standard deviation over the epoch's steps of the
//   l<k>_b_grad_mean, _grad_sd          gradient of the loss with respect to delta (b) at each step
//                                       (vector: the mean over its entries), before the optimizer used it
//   l<k>_delta_grad_positive, l<k>_b_grad_positive
//                                       the share of steps whose gradient was positive (0.5: a coin)
//   l<k>_query_phase_concentration, l<k>_key_phase_concentration
//                                       |mean of e^{i theta~}| over the rotated queries' (keys') phases
//                                       of every channel at the real positions of a fixed sample of
//                                       users' histories: 0 for phases spread evenly round the
//                                       circle, 1 when all are equal (the phase contrastive loss acts on these)
// A gradient whose standard deviation is many times its mean, positive at about half the steps, is
// mostly noise from batch to batch: Adam's steps then wander, and delta and b move little.
// `euler train --plot` draws these fields (plot/training_curves.hpp). Steps on the CUDA backend keep
// their gradients on the device: the gradient fields are left out there, the values and phases not.
//
//     euler::RotationWatch<float> watch(model);        // nothing to watch unless pos is euler
//     ... after each step's backward:  watch.add_step(model.parameters());
//     ... after each epoch:            watch.finish_epoch(model, sample_histories, line);
#pragma once

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "euler/model/model.hpp"
#include "euler/train/evaluate.hpp"

namespace euler {

// |mean of e^{i theta}| of the phases [B, N, P] at the positions whose id is not padding (ids [B, N]).
template <class T>
double phase_concentration(TensorView<const T> phases, TensorView<const int32_t> ids) {
  const int64_t rows = ids.numel(), P = phases.numel() / std::max<int64_t>(1, rows);
  double c = 0, s = 0;
  int64_t n = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (ids[r] == 0) continue;
    for (int64_t t = 0; t < P; ++t) {
      double theta = double(phases[r * P + t]);
      c += std::cos(theta);
      s += std::sin(theta);
    }
    n += P;
  }
  return n == 0 ? 0.0 : std::hypot(c, s) / double(n);
}

template <class T>
class RotationWatch {
 public:
  explicit RotationWatch(const EulerFormer<T>& model) {
    const Parameters<T>& p = model.parameters();
    for (int l = 0; l < model.config().n_layers; ++l) {
      std::string prefix = "trm_encoder.layer." + std::to_string(l) + ".multi_head_attention.euler.";
      if (!p.contains(prefix + "delta")) continue;
      Layer layer;
      layer.index = l;
      layer.delta.name = prefix + "delta";
      if (p.contains(prefix + "b")) layer.b.name = prefix + "b";
      layers_.push_back(layer);
    }
  }

  // Whether the model has anything to watch (pos euler).
  bool active() const { return !layers_.empty(); }

  // One step's gradients (in p.grad, before the optimizer step).
  void add_step(const Parameters<T>& p) {
    for (Layer& layer : layers_) {
      layer.delta.add(p);
      layer.b.add(p);
    }
  }

  // Add the epoch's fields to `line` and start the next epoch. `sample` are the histories whose
  // rotated phases are measured (the same ones every epoch, so the figures compare).
  void finish_epoch(const EulerFormer<T>& model, std::span<const std::span<const int32_t>> sample, nlohmann::json& line) {
    const Parameters<T>& p = model.parameters();
    std::vector<std::pair<double, double>> concentration = phase_concentrations(model, sample);
    for (size_t i = 0; i < layers_.size(); ++i) {
      Layer& layer = layers_[i];
      std::string key = "l" + std::to_string(layer.index) + "_";
      for (Gradients* g : {&layer.delta, &layer.b}) {
        if (g->name.empty()) continue;
        std::string name = key + (g == &layer.delta ? "delta" : "b");
        line[name] = mean_of(p.value(g->name));
        if (g->steps > 0) {
          double mean = g->sum / double(g->steps);
          double variance = g->steps > 1 ? std::max(0.0, (g->sum_squares - double(g->steps) * mean * mean) / double(g->steps - 1)) : 0.0;
          line[name + "_grad_mean"] = mean;
          line[name + "_grad_sd"] = std::sqrt(variance);
          line[name + "_grad_positive"] = double(g->positive) / double(g->steps);
        }
        *g = Gradients{g->name};
      }
      if (i < concentration.size()) {
        line[key + "query_phase_concentration"] = concentration[i].first;
        line[key + "key_phase_concentration"] = concentration[i].second;
      }
    }
  }

 private:
  struct Gradients {  // one parameter's gradients over an epoch's steps
    std::string name;  // "" when the layer has no such parameter
    double sum = 0, sum_squares = 0;
    int64_t steps = 0, positive = 0;
    void add(const Parameters<T>& p) {
      if (name.empty()) return;
      double g = mean_of(p.grad(name));
      if (!std::isfinite(g)) return;  // a step the trainer skips or stops at
      sum += g;
      sum_squares += g * g;
      positive += g > 0;
      ++steps;
    }
  };
  struct Layer {
    int index = 0;
    Gradients delta, b;
  };

  static double mean_of(TensorView<const T> v) {
    double sum = 0;
    for (int64_t i = 0; i < v.numel(); ++i) sum += double(v[i]);
    return sum / double(std::max<int64_t>(1, v.numel()));
  }

  // (query, key) phase concentration of each watched layer, from one forward pass over `sample`
  // without dropout or gradients.
  std::vector<std::pair<double, double>> phase_concentrations(const EulerFormer<T>& model,
                                                              std::span<const std::span<const int32_t>> sample) const {
    std::vector<std::pair<double, double>> out;
    if (sample.empty()) return out;
    const int64_t N = model.config().max_len;
    Tensor<int32_t> ids({int64_t(sample.size()), N});
    fill_histories(sample, N, ids.data());
    Tape<T> tape;
    NoGrad<T> no_grad(tape);
    Rng unused(0);
    Context<T> ctx{tape, model.parameters(), /*dropout_on=*/false, unused};
    Trace<T> trace;
    model.encode(ctx, ids.view(), nullptr, &trace);
    for (const Layer& layer : layers_) {
      size_t l = size_t(layer.index);
      if (l >= trace.query_phase.size() || !trace.query_phase[l].tape) continue;
      out.emplace_back(phase_concentration<T>(trace.query_phase[l].value(), ids.view()),
                       phase_concentration<T>(trace.key_phase[l].value(), ids.view()));
    }
    return out;
  }

  std::vector<Layer> layers_;
};

}  // namespace euler
