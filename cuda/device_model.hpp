// cuda/device_model.hpp: EulerFormer (SASRec backbone) and Adam on a Device, op for op as the CPU.
//
// GpuModel<Device> keeps the flat parameter, gradient and Adam-moment buffers in device memory for its
// whole life and runs the training loss of include/euler/model/model.hpp on the device tape. The
// transformer is the CPU's own (model/forward.hpp, with Step below as its backend): the same ops in the
// same order (so the dropout calls take the same blocks of the Rng and draw the same masks), the same
// pruned last layer for objective `last`, the same phase contrastive terms. Adam is one kernel over
// the flat buffers after the gradient norm, whose block sums follow the CPU's order bit for bit.
// The .cu instantiates it with CudaDevice (the euler::cuda::Model of cuda.hpp); tests instantiate it with
// HostDevice and compare it with the CPU model on the CPU.
//
// Letters: B batch, N list length, D hidden, h = D/2, H heads, K items.
//
//     euler::gpu::GpuModel<Device> gpu(device, spec);           // spec: euler::cuda::ModelSpec
//     gpu.set_parameters(values, count);
//     auto losses = gpu.forward_backward(ids, targets, B, N, true, rng_state);
//     double norm = gpu.adam_step(settings);
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "device_phase_ops.hpp"
#include "euler/cuda/cuda.hpp"
#include "euler/model/forward.hpp"

namespace euler::gpu {

struct NormBlockKernel {  // partial[b] = sum of squares of block b of x (4096 values, the CPU's order)
  double* partial;
  const float* x;
  int64_t n;
  EULER_HD void operator()(int64_t b) const {
    int64_t begin = b * 4096, end = begin + 4096 < n ? begin + 4096 : n;
    partial[b] = device::squared_sum_block(x, begin, end);
  }
};
struct AdamKernel {
  float *p, *m, *v;
  const float* g;
  device::AdamCoefficients c;
  EULER_HD void operator()(int64_t i) const { device::adam_update(&p[i], g[i], &m[i], &v[i], c); }
};
struct PackLossesKernel {  // out = [total, ce, contrastive]
  float* out;
  const float *total, *ce, *contrastive;
  EULER_HD void operator()(int64_t) const {
    out[0] = total[0];
    out[1] = ce[0];
    out[2] = contrastive[0];
  }
};

template <class Device>
class GpuModel {
 public:
  using Var = DVar<Device>;
  using Spec = cuda::ModelSpec;

  GpuModel(Device& device, const Spec& spec) : device_(device), spec_(spec), tape_(device) {
    spec_.validate();
    settings_ = forward_settings(spec_);
    const size_t bytes = sizeof(float) * size_t(spec_.parameter_count > 0 ? spec_.parameter_count : 1);
    for (DeviceBuffer<Device>* b : {&values_, &grads_, &moment1_, &moment2_}) {
      *b = DeviceBuffer<Device>(device, bytes);
      device.zero(b->template as<float>(), bytes);
    }
    build_tables();
  }

  const Spec& spec() const { return spec_; }
  size_t reserved_bytes() const { return tape_.reserved_bytes(); }

  // ---- state, host <-> device -------------------------------------------------------------------
  void set_parameters(const float* values, int64_t count) {
    check_count(count, "set_parameters");
    device_.upload(values_.template as<float>(), values, sizeof(float) * size_t(count));
  }
  void get_parameters(float* values, int64_t count) const {
    check_count(count, "get_parameters");
    device_.download(values, values_.template as<float>(), sizeof(float) * size_t(count));
  }
  void get_gradients(float* grads, int64_t count) const {
    check_count(count, "get_gradients");
    device_.download(grads, grads_.template as<float>(), sizeof(float) * size_t(count));
  }
  void set_adam_state(int64_t steps, const float* moment1, const float* moment2, int64_t count) {
    check_count(count, "set_adam_state");
    if (steps < 0) throw std::invalid_argument("set_adam_state: negative step count " + std::to_string(steps));
    for (auto [buffer, host] : {std::pair{&moment1_, moment1}, std::pair{&moment2_, moment2}}) {
      if (host) device_.upload(buffer->template as<float>(), host, sizeof(float) * size_t(count));
      else device_.zero(buffer->template as<float>(), sizeof(float) * size_t(count));
    }
    adam_steps_ = steps;
  }
  int64_t adam_steps() const { return adam_steps_; }
  void get_adam_state(float* moment1, float* moment2, int64_t count) const {
    check_count(count, "get_adam_state");
    device_.download(moment1, moment1_.template as<float>(), sizeof(float) * size_t(count));
    device_.download(moment2, moment2_.template as<float>(), sizeof(float) * size_t(count));
  }

  // ---- training ----------------------------------------------------------------------------------
  // EulerFormer::loss on a batch, then its backward into the (zeroed) gradient buffer.
  cuda::StepLosses forward_backward(const int32_t* ids, const int32_t* targets, int64_t B, int64_t N, bool dropout_on, RngState& rng) {
    check_batch(ids, B, N);
    const int64_t target_count = spec_.objective_all ? B * N : B;
    int64_t counted = 0;
    for (int64_t r = 0; r < target_count; ++r) {
      if (targets[r] < 0 || targets[r] >= spec_.n_items)
        throw std::invalid_argument("cuda forward_backward: target " + std::to_string(targets[r]) + " at row " + std::to_string(r) +
                                    " is outside [0, " + std::to_string(spec_.n_items) + ")");
      counted += targets[r] != 0;
    }
    tape_.reset();
    device_.zero(grads_.template as<float>(), sizeof(float) * size_t(spec_.parameter_count));
    Step s{*this, dropout_on, rng, tape_.upload(Shape{B, N}, ids), ids};
    Var contrastive = tape_.scalar(0.0f, "zero");
    const bool want_contrastive = spec_.wants_contrastive();
    Var* con = want_contrastive ? &contrastive : nullptr;
    Var ce;
    if (!spec_.objective_all) {
      std::vector<int32_t> rows = last_positions(ids, B, N);
      Var user = encode(s, con, tape_.upload(Shape{B}, rows.data()));  // [B, D]
      ce = cross_entropy(item_logits(user), tape_.upload(Shape{B}, targets), counted);
    } else {
      Var hidden = encode(s, con, {});
      Var logits = item_logits(reshape(hidden, Shape{B * N, spec_.hidden_size}));  // [B N, K]
      ce = cross_entropy(logits, tape_.upload(Shape{B * N}, targets), counted);
    }
    Var total = want_contrastive ? add(ce, contrastive) : ce;
    tape_.backward(total, /*keep_intermediate_grads=*/false);
    DeviceView<float> packed = tape_.alloc(Shape{3});
    device_.each(1, PackLossesKernel{packed.data, total.value().data, ce.value().data, contrastive.value().data});
    std::vector<float> host = tape_.download(DeviceView<const float>{packed.shape, packed.data});
    return {double(host[0]), double(host[1]), double(host[2])};
  }

  // Adam/AdamW from the current gradients (train/optimizer.hpp); returns the gradient norm.
  double adam_step(const cuda::AdamSettings& a) {
    if (!(a.lr >= 0) || !(a.beta1 >= 0 && a.beta1 < 1) || !(a.beta2 >= 0 && a.beta2 < 1) || !(a.eps >= 0) || !(a.weight_decay >= 0) ||
        !(a.clip_norm >= 0))
      throw std::invalid_argument("cuda adam_step: lr, eps, weight_decay, clip_norm must be >= 0 and betas in [0, 1)");
    const int64_t P = spec_.parameter_count, blocks = (P + 4095) / 4096;
    DeviceView<double> partial = tape_.template alloc_as<double>(Shape{blocks});
    device_.each(blocks, NormBlockKernel{partial.data, grads_.template as<float>(), P});
    double squares = 0;
    for (double block : tape_.download(DeviceView<const double>{partial.shape, partial.data})) squares += block;
    const double norm = std::sqrt(squares);
    if (!std::isfinite(norm)) return norm;
    ++adam_steps_;
    const double clip_coef = a.clip_norm > 0 ? std::min(1.0, a.clip_norm / (norm + 1e-6)) : 1.0;
    const device::AdamCoefficients c =
        device::adam_coefficients(a.lr, a.beta1, a.beta2, a.eps, a.weight_decay, a.decoupled, adam_steps_, clip_coef);
    device_.each(P, AdamKernel{values_.template as<float>(), moment1_.template as<float>(), moment2_.template as<float>(),
                               grads_.template as<float>(), c});
    return norm;
  }

  // EulerFormer::score for SASRec: the output at each list's last valid position against the item table.
  void score(const int32_t* ids, int64_t B, int64_t N, float* scores /*[B, K] host*/) {
    check_batch(ids, B, N);
    tape_.reset();
    DeviceNoGrad<Device> no_grad(tape_);
    RngState unused;
    Step s{*this, false, unused, tape_.upload(Shape{B, N}, ids), ids};
    std::vector<int32_t> rows = last_positions(ids, B, N);
    Var logits = item_logits(encode(s, nullptr, tape_.upload(Shape{B}, rows.data())));
    device_.download(scores, logits.value().data, sizeof(float) * size_t(B) * size_t(spec_.n_items));
  }

 private:
  void check_count(int64_t count, const char* what) const {
    if (count != spec_.parameter_count)
      throw std::invalid_argument(std::string("cuda ") + what + ": " + std::to_string(count) + " floats for a model of " +
                                  std::to_string(spec_.parameter_count) + " parameters");
  }
  void check_batch(const int32_t* ids, int64_t B, int64_t N) const {
    if (B < 1 || N < 1 || N > spec_.max_len)
      throw std::invalid_argument("cuda: batch [" + std::to_string(B) + ", " + std::to_string(N) + "] needs B >= 1 and N in 1.." +
                                  std::to_string(spec_.max_len) + " (MAX_ITEM_LIST_LENGTH)");
    for (int64_t i = 0; i < B * N; ++i)
      if (ids[i] < 0 || ids[i] >= spec_.n_items)
        throw std::invalid_argument("cuda: id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                                    " is outside the item table [0, " + std::to_string(spec_.n_items) + ")");
  }
  // Index of each list's last valid position (0 for an all-padding list), as EulerFormer::last_positions.
  static std::vector<int32_t> last_positions(const int32_t* ids, int64_t B, int64_t N) {
    std::vector<int32_t> last(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) {
      int64_t length = 0;
      while (length < N && ids[b * N + length] != 0) ++length;
      last[size_t(b)] = int32_t(length > 0 ? length - 1 : 0);
    }
    return last;
  }

  // alpha[j, t] = j g_t and PE[j, 2t] = sin(j g_t), PE[j, 2t + 1] = cos(j g_t), g_t = 10000^(-2t/D), in
  // double then rounded to float, as EulerFormer::build_tables.
  void build_tables() {
    const int N = spec_.max_len, D = spec_.hidden_size, half = D / 2;
    std::vector<float> alpha(size_t(N * half)), sinusoid(size_t(N * D));
    for (int j = 0; j < N; ++j)
      for (int t = 0; t < half; ++t) {
        double angle = j * std::pow(10000.0, -2.0 * t / D);
        alpha[size_t(j * half + t)] = float(angle);
        sinusoid[size_t(j * D + 2 * t)] = float(std::sin(angle));
        sinusoid[size_t(j * D + 2 * t + 1)] = float(std::cos(angle));
      }
    alpha_ = DeviceBuffer<Device>(device_, sizeof(float) * alpha.size());
    sinusoid_ = DeviceBuffer<Device>(device_, sizeof(float) * sinusoid.size());
    device_.upload(alpha_.template as<float>(), alpha.data(), sizeof(float) * alpha.size());
    device_.upload(sinusoid_.template as<float>(), sinusoid.data(), sizeof(float) * sinusoid.size());
  }

  // A parameter on the tape: its value and gradient are slices of the flat device buffers.
  Var param(int64_t offset, const Shape& shape, const char* name) {
    return tape_.param(DeviceView<float>{shape, values_.template as<float>() + offset}, grads_.template as<float>() + offset, name);
  }

  // What model/forward.hpp reads of the spec.
  static ForwardSettings forward_settings(const Spec& c) {
    ForwardSettings s;
    s.layers = c.n_layers, s.heads = c.n_heads, s.hidden = c.hidden_size, s.inner = c.inner_size;
    s.hidden_dropout = c.hidden_dropout, s.attn_dropout = c.attn_dropout;
    s.position_table = c.position_embedding >= 0;
    s.sinusoid = c.pos == cuda::Position::sinusoidal;
    s.rotary_table = c.rotary_embedding >= 0;
    s.rope = c.pos == cuda::Position::rope;
    s.euler_rotation = c.uses_euler() && c.differential_rotation;
    return s;
  }

  // The device tape as the backend of model/forward.hpp for one step: this model's parameters (slices of
  // the flat device buffers), the step's ids and its dropout stream. No fused layer and no trace here.
  struct Step {
    using Var = DVar<Device>;
    using Ids = DeviceView<const int32_t>;
    using Rows = DeviceView<const int32_t>;
    using Mask = DeviceView<const float>;
    using Layer = Spec::Layer;
    GpuModel& m;
    bool dropout_on;
    RngState& rng;
    Ids ids;                  // [B, N] on the device
    const int32_t* host_ids;  // the same on the host

    const ForwardSettings& settings() const { return m.settings_; }
    const Layer& layer(int l) const { return m.spec_.layers[size_t(l)]; }
    int64_t D() const { return m.spec_.hidden_size; }
    Var item_embedding(Ids list) const { return embedding(m.item_table(), list); }
    Var position_rows(int64_t N) const {
      return first_rows(m.param(m.spec_.position_embedding, Shape{m.spec_.max_len, D()}, "position_embedding.weight"), N);
    }
    Var sinusoid_rows(int64_t N) const {
      return m.tape_.constant(DeviceView<float>{Shape{N, D()}, m.sinusoid_.template as<float>()}, "sinusoid");
    }
    Var rotary_rows(int64_t N) const {
      return first_rows(m.param(m.spec_.rotary_embedding, Shape{m.spec_.max_len, D() / 2}, "rotary_embedding.weight"), N);
    }
    Var input_norm(Var x) const { return norm(m.spec_.input_norm, x); }
    Var linear(const Spec::Linear& l, Var x, int64_t out) const {
      const int64_t in = x.size(-1);
      return gpu::linear(x, m.param(l.weight, Shape{out, in}, "linear.weight"), m.param(l.bias, Shape{out}, "linear.bias"));
    }
    Var norm(const Spec::Norm& n, Var x) const {
      return layer_norm(x, m.param(n.weight, Shape{D()}, "LayerNorm.weight"), m.param(n.bias, Shape{D()}, "LayerNorm.bias"),
                        float(m.spec_.layer_norm_eps));
    }
    Var activation(Var x) const { return gpu::activation(x, m.spec_.gelu); }
    Var dropout(Var x, double p) const { return dropout_on && p > 0 ? gpu::dropout(x, float(p), rng) : x; }
    Var phase_param(int64_t offset, const char* name) const {
      return m.param(offset, m.spec_.delta_vector ? Shape{D() / 2} : Shape{}, name);
    }
    Var param_w(int64_t offset) const { return m.param(offset, Shape{D() / 2}, "w"); }
    // The positional angle [N, D/2]: alpha, or j g_t with the layer's learnable frequencies g.
    Var angles(const Layer& a, int64_t N) const {
      if (a.freq >= 0) return position_angles(m.param(a.freq, Shape{D() / 2}, "euler.freq"), N);
      return m.tape_.constant(DeviceView<float>{Shape{N, D() / 2}, m.alpha_.template as<float>()}, "alpha");
    }
    Var scaled_scores(Var qh, Var kh, double scale) const { return matmul(qh, kh, false, true, float(scale)); }
    Var phase_contrastive(Var phase, Var w, Ids list) const {
      const int64_t count = contrastive_count(list.shape[0], list.shape[1]);
      return phase_contrastive_loss(phase, w, list, count, m.spec_.tep, m.spec_.lamb, m.spec_.contrastive_masked, dropout_on, rng);
    }
    Mask attention_mask(Ids list) const { return gpu::attention_mask(m.tape_, list, /*causal=*/true); }
    Mask mask_rows(Mask mask, Rows rows) const { return gpu::mask_rows(m.tape_, mask, rows); }
    bool fused_layer(int, Var&, Ids, Var*, Rows) const { return false; }
    void trace_phases(Var, Var) const {}
    void trace_attention(Var, Var) const {}

    // Queries the contrastive mean counts: all B N (the authors' mode) or the non-padding ones (masked).
    int64_t contrastive_count(int64_t B, int64_t N) const {
      if (!m.spec_.contrastive_masked) return B * N;
      int64_t count = 0;
      for (int64_t i = 0; i < B * N; ++i) count += host_ids[i] != 0;
      return count;
    }
  };

  // ids [B, N] -> hidden [B, N, D] (model/forward.hpp); with `rows` ([B]) the last layer works on that
  // one row per list and the result is [B, D]. Adds the layers' contrastive terms to *contrastive when given.
  Var encode(Step& s, Var* contrastive, DeviceView<const int32_t> rows) {
    Var x = forward::encode(s, s.ids, contrastive, rows);
    return rows.data ? reshape(x, Shape{s.ids.shape[0], spec_.hidden_size}) : x;
  }

  Var item_table() { return param(spec_.item_embedding, Shape{spec_.n_items, spec_.hidden_size}, "item_embedding.weight"); }

  // Scores against the item table: [M, D] -> [M, K].
  Var item_logits(Var hidden) { return matmul(hidden, item_table(), false, true); }

  Device& device_;
  Spec spec_;
  DeviceTape<Device> tape_;
  DeviceBuffer<Device> values_, grads_, moment1_, moment2_;  // [P] each
  DeviceBuffer<Device> alpha_, sinusoid_;                    // [max_len, h], [max_len, D]
  ForwardSettings settings_;
  int64_t adam_steps_ = 0;
};

}  // namespace euler::gpu
