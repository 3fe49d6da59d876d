// euler/cuda/cuda.hpp: the optional CUDA backend, as plain C++ declarations.
//
// The backend trains and scores EulerFormer (SASRec backbone, every positional scheme, objectives last
// and all, the phase contrastive loss) on an NVIDIA GPU: cuBLAS for the products, kernels for the rest,
// a device tape like the CPU one, Adam on the device. Parameters, gradients and Adam moments stay on the
// GPU across steps; they are copied from and to the CPU model's flat Parameters buffer, so checkpoints
// keep the CPU format. The CPU is the reference: every kernel mirrors a CPU op and the tests compare them.
//
// This header needs no CUDA header and no GPU; its functions are defined in cuda/euler_cuda.cu,
// built as the library euler::cuda when CMake finds nvcc (option EULER_CUDA). Code that links it gets
// EULER_WITH_CUDA=1. From a CPU model, include/euler/cuda/model_spec.hpp builds the ModelSpec:
//
//     #include <euler/cuda/model_spec.hpp>
//     if (euler::cuda::Status s = euler::cuda::status(); !s.usable()) throw std::runtime_error(s.reason);
//     euler::cuda::Model gpu(euler::cuda::spec_of(model));          // model: euler::EulerFormer<float>
//     gpu.set_parameters(model.parameters().values().data, model.parameters().numel());
//     euler::cuda::StepLosses l = gpu.forward_backward(ids, targets, B, N, /*dropout_on=*/true, rng_state);
//     gpu.adam_step(settings);                                      // on the GPU; values stay there
//     gpu.get_parameters(model.parameters().values().data, model.parameters().numel());
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "euler/core/random_bits.hpp"
#include "euler/core/shape.hpp"

namespace euler::cuda {

// Whether the backend can run here. `compiled`: this build has it; `devices`: CUDA devices found.
struct Status {
  bool compiled = false;
  int devices = 0;
  std::string device_name;  // of device 0, with its compute capability
  std::string reason;       // why it cannot run (empty when usable)
  bool usable() const { return compiled && devices > 0; }
};
// Asks the CUDA runtime (never throws; no GPU or no driver gives usable() == false and a reason).
Status status();

enum class Position { none, learned, sinusoidal, rope, euler };

// The model the backend runs: EulerFormerConfig's fields it needs, and where each parameter starts in the
// flat parameter buffer (offsets in floats; -1: the parameter is absent). Shapes follow from the config.
struct ModelSpec {
  struct Linear {
    int64_t weight = -1, bias = -1;  // [out, in], [out]
  };
  struct Norm {
    int64_t weight = -1, bias = -1;  // [D], [D]
  };
  struct Layer {
    Linear query, key, value, dense;
    Norm attention_norm;
    int64_t delta = -1, bias = -1, freq = -1, w = -1;  // EulerFormer: [] or [D/2], [] or [D/2], [D/2], [D/2]
    Linear dense_1, dense_2;                            // feed-forward [inner, D], [D, inner]
    Norm feed_forward_norm;
  };

  // ---- configuration (as EulerFormerConfig) ----
  int n_layers = 2, n_heads = 2, hidden_size = 64, inner_size = 256, max_len = 50;
  int n_items = 0;  // rows of the item table, padding row 0 included (SASRec)
  double hidden_dropout = 0.5, attn_dropout = 0.5, layer_norm_eps = 1e-12;
  bool gelu = true;  // false: ReLU
  Position pos = Position::euler;
  bool delta_vector = false;        // delta and b of shape [D/2] instead of []
  bool objective_all = false;       // loss on every position (targets [B, N]) instead of the last ([B])
  bool contrastive_masked = false;  // ContrastiveMode::masked
  bool differential_rotation = true;
  double tep = 1, lamb = 1e-5;
  // ---- parameters ----
  int64_t item_embedding = -1, position_embedding = -1, rotary_embedding = -1;
  Norm input_norm;
  std::vector<Layer> layers;
  int64_t parameter_count = 0;  // floats in the flat buffer

  bool uses_euler() const { return pos == Position::euler; }
  bool wants_contrastive() const { return uses_euler() && differential_rotation && lamb > 0; }
  // Throws std::invalid_argument naming the first thing that does not fit.
  void validate() const;
};

// Adam / AdamW settings, as euler::AdamConfig.
struct AdamSettings {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool decoupled = false;
  double clip_norm = 0;
};

struct StepLosses {
  double total = 0, ce = 0, contrastive = 0;
};

// A model on the GPU: its parameters, gradients and Adam state live in device memory between calls.
class Model {
 public:
  explicit Model(const ModelSpec& spec);  // throws std::runtime_error when no GPU is usable
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelSpec& spec() const;
  std::string device_name() const;

  // The flat buffers, host <-> device ([parameter_count] floats each).
  void set_parameters(const float* values, int64_t count);
  void get_parameters(float* values, int64_t count) const;
  void get_gradients(float* grads, int64_t count) const;
  // Adam's state (moments [parameter_count], null for none = zeros), as euler::Adam::set_state.
  void set_adam_state(int64_t steps, const float* moment1, const float* moment2, int64_t count);
  int64_t adam_steps() const;
  void get_adam_state(float* moment1, float* moment2, int64_t count) const;

  // Zero the gradients, run the training loss on a batch and its backward. ids [B, N] (0 = padding),
  // targets [B] (objective last) or [B, N] (all), 0 = no loss. Dropout draws from `rng` exactly as the CPU
  // model does (the same masks for the same state), and rng moves on as it would on the CPU.
  StepLosses forward_backward(const int32_t* ids, const int32_t* targets, int64_t B, int64_t N, bool dropout_on, RngState& rng);
  // One Adam step from the current gradients; returns the gradient norm (NaN or inf: skipped, as the CPU).
  double adam_step(const AdamSettings& settings);
  // Scores of every item as the next one for each list, scores [B, n_items] (host memory), no gradient.
  void score(const int32_t* ids, int64_t B, int64_t N, float* scores);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One op of the backend on given inputs, forward and backward, for the op-by-op tests
// (cuda/op_runner.hpp lists the ops and what each reads).
struct OpCase {
  std::string op;
  std::vector<Shape> shapes;               // one per float input
  std::vector<std::vector<float>> inputs;  // the float inputs
  std::vector<int32_t> ints;               // ids, targets or rows
  Shape ints_shape;
  std::vector<double> settings;            // the op's numbers (p, eps, heads, tep, ...)
  RngState rng;                            // for the ops that draw
  std::vector<float> seed;                 // d(output), the output's size
};
struct OpResult {
  Shape shape;
  std::vector<float> output;
  std::vector<std::vector<float>> grads;  // one per float input
  RngState rng;                           // after the op's draws
};
OpResult run_op(const OpCase& op_case);  // on the GPU; throws std::runtime_error without one

inline void ModelSpec::validate() const {
  auto fail = [](const std::string& what) { throw std::invalid_argument("euler::cuda::ModelSpec: " + what); };
  if (n_layers < 1 || n_heads < 1 || inner_size < 1 || max_len < 1) fail("n_layers, n_heads, inner_size and max_len must be >= 1");
  if (hidden_size < 2 || hidden_size % 2 || hidden_size % n_heads)
    fail("hidden_size " + std::to_string(hidden_size) + " must be even and divisible by n_heads " + std::to_string(n_heads));
  if (n_items < 2) fail("n_items must be >= 2, got " + std::to_string(n_items));
  if (int(layers.size()) != n_layers) fail(std::to_string(layers.size()) + " layer offsets for " + std::to_string(n_layers) + " layers");
  if (!(hidden_dropout >= 0 && hidden_dropout < 1 && attn_dropout >= 0 && attn_dropout < 1)) fail("dropout must be in [0, 1)");
  if (!(layer_norm_eps > 0) || !(tep > 0) || !(lamb >= 0)) fail("layer_norm_eps and tep must be > 0, lamb >= 0");
  const int64_t D = hidden_size, h = D / 2, I = inner_size, phase = delta_vector ? h : 1;
  auto need = [&](int64_t offset, int64_t size, const std::string& name) {
    if (offset < 0 || offset + size > parameter_count)
      fail(name + " at offset " + std::to_string(offset) + " (" + std::to_string(size) + " floats) is outside the " +
           std::to_string(parameter_count) + " parameters");
  };
  auto optional = [&](int64_t offset, int64_t size, const std::string& name) {
    if (offset >= 0) need(offset, size, name);
  };
  need(item_embedding, int64_t(n_items) * D, "item_embedding");
  optional(position_embedding, int64_t(max_len) * D, "position_embedding");
  optional(rotary_embedding, int64_t(max_len) * h, "rotary_embedding");
  if (pos == Position::learned && position_embedding < 0) fail("position_embedding is missing for pos learned");
  if (pos != Position::learned && pos != Position::euler && position_embedding >= 0)
    fail("position_embedding is present, but only pos learned and euler have one");
  need(input_norm.weight, D, "LayerNorm.weight");
  need(input_norm.bias, D, "LayerNorm.bias");
  for (size_t l = 0; l < layers.size(); ++l) {
    const Layer& a = layers[l];
    std::string p = "layer " + std::to_string(l) + " ";
    for (const Linear* lin : {&a.query, &a.key, &a.value, &a.dense}) {
      need(lin->weight, D * D, p + "attention weight");
      need(lin->bias, D, p + "attention bias");
    }
    need(a.attention_norm.weight, D, p + "attention LayerNorm.weight");
    need(a.attention_norm.bias, D, p + "attention LayerNorm.bias");
    need(a.dense_1.weight, I * D, p + "dense_1.weight");
    need(a.dense_1.bias, I, p + "dense_1.bias");
    need(a.dense_2.weight, D * I, p + "dense_2.weight");
    need(a.dense_2.bias, D, p + "dense_2.bias");
    need(a.feed_forward_norm.weight, D, p + "feed_forward LayerNorm.weight");
    need(a.feed_forward_norm.bias, D, p + "feed_forward LayerNorm.bias");
    optional(a.delta, phase, p + "delta");
    optional(a.bias, phase, p + "b");
    optional(a.freq, h, p + "freq");
    optional(a.w, h, p + "w");
    bool euler_rotation = uses_euler() && differential_rotation;
    if (!euler_rotation && (a.delta >= 0 || a.bias >= 0 || a.freq >= 0 || a.w >= 0))
      fail(p + "has EulerFormer parameters but the model does not rotate by them");
    if (euler_rotation && a.w < 0) fail(p + "needs w");
  }
}

}  // namespace euler::cuda
