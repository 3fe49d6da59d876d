// Whole EulerFormer training steps of the CUDA backend against the CPU model, shared by the emulated
// tests (GpuModel<HostDevice>) and the GPU tests (euler::cuda::Model): the same batch, the same Rng state,
// dropout on; then the losses, every parameter's gradient, the Rng after the step, and the parameters
// after Adam must agree within rel_error 1e-4 (per parameter tensor), three steps in a row.
#pragma once

#include <doctest/doctest.h>

#include "cuda_test_helpers.hpp"
#include "test_helpers.hpp"

#include <euler/cuda/model_spec.hpp>
#include <euler/eulerformer.hpp>

#include <string>
#include <vector>

namespace euler_test {

struct ModelCase {
  std::string name;
  euler::EulerFormerConfig config;
};

// Tiny SASRec models: every positional scheme, both objectives, and EulerFormer's ablations.
inline std::vector<ModelCase> model_cases() {
  using namespace euler;
  auto tiny = [](PosScheme pos, Objective objective) {
    EulerFormerConfig c;
    c.hidden_size = 8;
    c.inner_size = 16;
    c.n_layers = 2;
    c.n_heads = 2;
    c.max_len = 6;
    c.n_items = 13;
    c.pos = pos;
    c.objective = objective;
    c.hidden_dropout_prob = 0.2;
    c.attn_dropout_prob = 0.3;
    c.lamb = 0.5;  // large, so that a wrong contrastive term would show
    c.tep = 0.8;
    c.init_factor = 0.7;
    c.initializer_range = 0.3;
    return c;
  };
  std::vector<ModelCase> cases;
  for (PosScheme pos : {PosScheme::euler, PosScheme::none, PosScheme::learned, PosScheme::sinusoidal, PosScheme::rope})
    for (Objective objective : {Objective::last, Objective::all})
      cases.push_back({to_string(pos) + ", objective " + to_string(objective), tiny(pos, objective)});
  auto variant = [&](const std::string& name, auto change) {
    EulerFormerConfig c = tiny(PosScheme::euler, Objective::last);
    change(c);
    cases.push_back({"euler, " + name, c});
  };
  variant("delta and b vectors", [](EulerFormerConfig& c) { c.delta_shape = DeltaShape::vector; });
  variant("no phase bias, masked contrastive", [](EulerFormerConfig& c) {
    c.euler_bias = false;
    c.contrastive_mode = ContrastiveMode::masked;
  });
  variant("learnable frequencies, no adaptation", [](EulerFormerConfig& c) {
    c.learnable_freq = true;
    c.adaptation = false;
  });
  variant("no input rotary, ReLU, 1 head", [](EulerFormerConfig& c) {
    c.input_rotary = false;
    c.hidden_act = Activation::relu;
    c.n_heads = 1;
  });
  variant("no differential rotation", [](EulerFormerConfig& c) { c.differential_rotation = false; });
  variant("no absolute positions", [](EulerFormerConfig& c) { c.absolute_positions = false; });
  variant("no contrastive loss, no dropout", [](EulerFormerConfig& c) {
    c.lamb = 0;
    c.hidden_dropout_prob = c.attn_dropout_prob = 0;
  });
  return cases;
}

// Three right-padded lists (one full, one empty but for one item) and targets for the objective.
struct TinyData {
  int64_t B = 3, N = 6;
  std::vector<int32_t> ids, targets;
  euler::Batch batch() const {
    bool all = int64_t(targets.size()) == B * N;
    return {{euler::Shape{B, N}, ids.data()}, {all ? euler::Shape{B, N} : euler::Shape{B}, targets.data()}};
  }
};
inline TinyData tiny_data(const euler::EulerFormerConfig& c) {
  TinyData d;
  d.ids = {1, 2, 3, 0, 0, 0, 4, 5, 6, 7, 8, 9, 12, 0, 0, 0, 0, 0};
  if (c.objective == euler::Objective::all) d.targets = {2, 3, 4, 0, 0, 0, 5, 6, 7, 8, 9, 10, 11, 0, 0, 0, 0, 0};
  else d.targets = {4, 10, 11};
  return d;
}

// The per-parameter comparison of a flat buffer: each parameter's slice within the tolerance. A slice that
// is zero up to rounding on the CPU (below 1e-6 of the buffer's largest entry; e.g. the key bias of a layer
// that does not rotate k, which softmax cannot see) must be so on the GPU too; relative error means
// nothing there.
inline void check_per_parameter(const euler::Parameters<float>& p, const std::vector<float>& got, const float* want, const char* what) {
  auto largest = [](std::span<const float> v) {
    double m = 0;
    for (float x : v) m = std::max(m, double(std::abs(x)));
    return m;
  };
  const double zero_level = 1e-6 * largest(std::span<const float>(want, size_t(p.numel())));
  for (const auto& e : p.entries()) {
    CAPTURE(what);
    CAPTURE(e.name);
    std::span<const float> g(got.data() + e.offset, size_t(e.shape.numel())), w(want + e.offset, size_t(e.shape.numel()));
    if (largest(w) <= zero_level) CHECK(largest(g) <= zero_level);
    else CHECK(rel_error(g, w) <= kFloatTolerance);
  }
}

template <class Gpu>
void check_training_steps(euler::EulerFormer<float>& cpu, Gpu& gpu) {
  using namespace euler;
  Parameters<float>& p = cpu.parameters();
  gpu.set_parameters(p.values().data, p.numel());
  AdamConfig adam_config;
  adam_config.lr = 1e-2;
  adam_config.clip_norm = 5;
  Adam<float> adam(adam_config);
  const cuda::AdamSettings settings = cuda::adam_settings_of(adam_config);
  TinyData data = tiny_data(cpu.config());
  Rng cpu_rng(77);
  RngState gpu_rng = cpu_rng.state();
  Tape<float> tape;
  std::vector<float> host(size_t(p.numel()));
  for (int step = 0; step < 3; ++step) {
    CAPTURE(step);
    tape.reset();
    p.zero_grad();
    Context<float> ctx{tape, p, /*dropout_on=*/true, cpu_rng};
    Losses<float> losses = cpu.loss(ctx, data.batch());
    tape.backward(losses.total, BackwardOptions{.keep_intermediate_grads = false});
    cuda::StepLosses l = gpu.forward_backward(data.ids.data(), data.targets.data(), data.B, data.N, true, gpu_rng);
    CHECK(gpu_rng == cpu_rng.state());
    check_close(l.ce, losses.ce.value()[0], "cross-entropy");
    check_close(l.contrastive, losses.contrastive.value()[0], "contrastive loss");
    check_close(l.total, losses.total.value()[0], "total loss");
    gpu.get_gradients(host.data(), p.numel());
    check_per_parameter(p, host, p.grads().data, "gradient");
    // Adam from the same gradients on both sides (a near-zero gradient's rounding would otherwise flip the
    // sign of its first, sign-like update): the GPU's gradients go into the CPU buffer first.
    std::copy(host.begin(), host.end(), p.grads().data);
    double cpu_norm = adam.step(p), gpu_norm = gpu.adam_step(settings);
    CHECK(gpu_norm == cpu_norm);  // the norm's block sums follow the CPU's order: bit for bit
    gpu.get_parameters(host.data(), p.numel());
    check_per_parameter(p, host, p.values().data, "value after Adam");
    gpu.set_parameters(p.values().data, p.numel());  // the next step starts from the CPU's values exactly
  }
}

template <class Gpu>
void check_scores(euler::EulerFormer<float>& cpu, Gpu& gpu) {
  using namespace euler;
  gpu.set_parameters(cpu.parameters().values().data, cpu.parameters().numel());
  TinyData data = tiny_data(cpu.config());
  Tape<float> tape;
  NoGrad<float> no_grad(tape);
  Rng unused(0);
  Context<float> ctx{tape, cpu.parameters(), false, unused};
  TensorView<float> want = cpu.score(ctx, TensorView<const int32_t>{Shape{data.B, data.N}, data.ids.data()}).value();
  std::vector<float> got(size_t(want.numel()));
  gpu.score(data.ids.data(), data.B, data.N, got.data());
  CHECK(rel_error(got, std::vector<float>(want.begin(), want.end())) <= kFloatTolerance);
}

}  // namespace euler_test
