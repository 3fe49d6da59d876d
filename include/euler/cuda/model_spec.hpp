// euler/cuda/model_spec.hpp: describe a CPU EulerFormer to the CUDA backend (no CUDA needed).
//
// spec_of(model) reads the model's config and finds every parameter by its PyTorch name in the flat
// Parameters buffer, so the GPU works on exactly the CPU's layout: set_parameters / get_parameters copy
// that buffer as it is, and checkpoints stay the CPU format. It refuses, with a message naming the
// reason, what the backend does not run (the BERT4Rec backbone) and any parameter whose shape is not the
// one the backend expects. adam_settings_of maps an AdamConfig.
//
//     euler::EulerFormer<float> model(config, seed);
//     euler::cuda::ModelSpec spec = euler::cuda::spec_of(model);
//     euler::cuda::AdamSettings adam = euler::cuda::adam_settings_of(euler::AdamConfig{});
#pragma once

#include <stdexcept>
#include <string>

#include "euler/cuda/cuda.hpp"
#include "euler/model/model.hpp"
#include "euler/train/optimizer.hpp"

namespace euler::cuda {

inline ModelSpec spec_of(const EulerFormer<float>& model) {
  const EulerFormerConfig& c = model.config();
  if (c.backbone != Backbone::sasrec)
    throw std::invalid_argument("the CUDA backend runs the SASRec backbone only (this model is " + to_string(c.backbone) + ")");
  if (c.padding_idx)
    throw std::invalid_argument("the CUDA backend has no padding_idx (row 0 of the item table gets its true gradient there)");
  ModelSpec s;
  s.n_layers = c.n_layers;
  s.n_heads = c.n_heads;
  s.hidden_size = c.hidden_size;
  s.inner_size = c.inner_size;
  s.max_len = c.max_len;
  s.n_items = c.n_items;
  s.hidden_dropout = c.hidden_dropout_prob;
  s.attn_dropout = c.attn_dropout_prob;
  s.layer_norm_eps = c.layer_norm_eps;
  s.gelu = c.hidden_act == Activation::gelu;
  s.pos = Position(int(c.pos));
  s.delta_vector = c.delta_shape == DeltaShape::vector;
  s.objective_all = c.objective == Objective::all;
  s.contrastive_masked = c.contrastive_mode == ContrastiveMode::masked;
  s.differential_rotation = c.differential_rotation;
  s.tep = c.tep;
  s.lamb = c.lamb;

  const Parameters<float>& p = model.parameters();
  s.parameter_count = p.numel();
  // The offset of a parameter, after checking its shape; -1 when the model has none of that name.
  auto find = [&](const std::string& name, const Shape& shape, bool required) -> int64_t {
    if (!p.contains(name)) {
      if (required) throw std::invalid_argument("spec_of: the model has no parameter " + name);
      return -1;
    }
    const auto& e = p.entry(p.index(name));
    if (!(e.shape == shape))
      throw std::invalid_argument("spec_of: parameter " + name + " has shape " + e.shape.str() + ", expected " + shape.str());
    return e.offset;
  };
  const int64_t D = c.hidden_size, h = D / 2, I = c.inner_size;
  const Shape phase = s.delta_vector ? Shape{h} : Shape{};
  auto linear = [&](const std::string& name, int64_t in, int64_t out) {
    return ModelSpec::Linear{find(name + ".weight", Shape{out, in}, true), find(name + ".bias", Shape{out}, true)};
  };
  auto norm = [&](const std::string& name) {
    return ModelSpec::Norm{find(name + ".weight", Shape{D}, true), find(name + ".bias", Shape{D}, true)};
  };
  s.item_embedding = find("item_embedding.weight", Shape{c.item_rows(), D}, true);
  s.position_embedding = find("position_embedding.weight", Shape{c.max_len, D}, false);
  s.rotary_embedding = find("rotary_embedding.weight", Shape{c.max_len, h}, false);
  s.input_norm = norm("LayerNorm");
  for (int l = 0; l < c.n_layers; ++l) {
    std::string prefix = "trm_encoder.layer." + std::to_string(l), mha = prefix + ".multi_head_attention";
    ModelSpec::Layer layer;
    layer.query = linear(mha + ".query", D, D);
    layer.key = linear(mha + ".key", D, D);
    layer.value = linear(mha + ".value", D, D);
    layer.dense = linear(mha + ".dense", D, D);
    layer.attention_norm = norm(mha + ".LayerNorm");
    layer.delta = find(mha + ".euler.delta", phase, false);
    layer.bias = find(mha + ".euler.b", phase, false);
    layer.freq = find(mha + ".euler.freq", Shape{h}, false);
    layer.w = find(mha + ".w", Shape{h}, false);
    layer.dense_1 = linear(prefix + ".feed_forward.dense_1", D, I);
    layer.dense_2 = linear(prefix + ".feed_forward.dense_2", I, D);
    layer.feed_forward_norm = norm(prefix + ".feed_forward.LayerNorm");
    s.layers.push_back(layer);
  }
  s.validate();
  return s;
}

inline AdamSettings adam_settings_of(const AdamConfig& a) {
  return {a.lr, a.beta1, a.beta2, a.eps, a.weight_decay, a.decoupled, a.clip_norm};
}

}  // namespace euler::cuda
