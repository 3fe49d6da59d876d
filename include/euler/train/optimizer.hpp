// euler/train/optimizer.hpp: Adam and AdamW over the flat parameter buffer, with global-norm clipping.
//
// Parameters live in one flat value buffer and one flat gradient buffer (nn/parameters.hpp), so an
// optimiser step is one parallel, vectorised loop over four arrays of the same length: values,
// gradients, and the two moments. The arithmetic follows PyTorch's torch.optim.Adam / AdamW
// (single-tensor path) term by term, and clipping follows torch.nn.utils.clip_grad_norm_, so a run
// can be put beside the authors' PyTorch one:
//
//     clip_grad_norm_:  coef = min(1, clip_norm / (|g| + 1e-6));  g = coef * g     (when clip_norm > 0)
//     Adam (L2):        g = g + weight_decay * p
//     AdamW:            p = p * (1 - lr * weight_decay)
//     both:             m = m + (1 - beta1) * (g - m)          (PyTorch 2's m.lerp_(g, 1 - beta1))
//                       v = beta2 * v + (1 - beta2) * g * g
//                       p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//
// Differences from PyTorch, all deliberate:
//   - The gradient buffer is never written: the clip coefficient is folded into the update.
//   - The global norm is accumulated in double, in fixed blocks summed in a fixed order, so it (and
//     so every step) is bit-identical for any thread count. PyTorch sums per-tensor norms in float.
//   - A non-finite gradient norm (a NaN or inf anywhere in the gradients) skips the step: values,
//     moments and the step count stay as they were, and step() returns that NaN/inf so the caller
//     sees it (log it, stop, or lower the learning rate). PyTorch would write the NaN into every
//     parameter and both moments, which no later step can undo.
//
// Checkpointing: steps(), moment1() and moment2() are the whole state; set_state() restores it, and
// a resumed run then continues bit-exactly. Every step is bit-identical for any thread count.
//
//     euler::AdamConfig cfg;                 // lr 1e-3, betas (0.9, 0.999), eps 1e-8: the paper's
//     cfg.clip_norm = 5;                     // optional
//     euler::Adam<float> adam(cfg);
//     for (...) {
//       params.zero_grad();
//       ... forward, tape.backward(loss) ...
//       double grad_norm = adam.step(params);  // NaN or inf: the step was skipped
//     }
#pragma once

#include "euler/core/eigen.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "euler/core/parallel.hpp"
#include "euler/core/tensor.hpp"
#include "euler/nn/parameters.hpp"

namespace euler {

struct AdamConfig {
  double lr = 1e-3;            // learning rate; 1e-3 in the paper
  double beta1 = 0.9;          // first-moment decay
  double beta2 = 0.999;        // second-moment decay
  double eps = 1e-8;           // added to sqrt of the bias-corrected second moment
  double weight_decay = 0;     // 0 in the paper; its meaning depends on `decoupled`
  bool decoupled = false;      // false: Adam, L2 added to the gradient (torch.optim.Adam's weight_decay)
                               // true: AdamW, p -= lr * weight_decay * p before the update (torch.optim.AdamW)
  double clip_norm = 0;        // > 0: scale the gradients so their global L2 norm is at most this
                               // (torch.nn.utils.clip_grad_norm_); 0: no clipping. 1 or 5 are typical.
};

template <class T = float>
class Adam {
 public:
  explicit Adam(const AdamConfig& config = {}) : config_(config) { validate(config_); }

  // The configuration; change lr here for a schedule (checked again at the next step).
  AdamConfig& config() { return config_; }
  const AdamConfig& config() const { return config_; }

  // One update of `params.values()` from `params.grads()`. Returns the global gradient L2 norm before
  // clipping; when it is NaN or inf nothing was changed (see the top of this file).
  double step(Parameters<T>& params) { return step(params.values(), params.grads()); }

  // The same on any flat buffers: values [P] updated in place, grads [P] read only.
  double step(TensorView<T> values, TensorView<const T> grads) {
    validate(config_);
    const int64_t n = values.numel();
    require(grads.numel() == n, "Adam::step",
            std::to_string(n) + " values but " + std::to_string(grads.numel()) + " gradients");
    if (moment1_.empty()) allocate(n);
    require(moment1_.numel() == n, "Adam::step",
            "the optimiser holds moments for " + std::to_string(moment1_.numel()) + " values, got " +
                std::to_string(n));

    const double grad_norm = global_norm(grads);
    if (!std::isfinite(grad_norm)) return grad_norm;
    ++steps_;

    // Scalars in double, as PyTorch computes them from Python floats; the arrays then use them as T.
    double clip_coef = 1;
    if (config_.clip_norm > 0) clip_coef = std::min(1.0, config_.clip_norm / (grad_norm + 1e-6));
    const double bias_correction1 = 1 - std::pow(config_.beta1, double(steps_));
    const double bias_correction2 = 1 - std::pow(config_.beta2, double(steps_));
    const T step_size = T(config_.lr / bias_correction1);
    const T bias_correction2_sqrt = T(std::sqrt(bias_correction2));
    const T one_minus_beta1 = T(1 - config_.beta1);
    const T beta2 = T(config_.beta2), one_minus_beta2 = T(1 - config_.beta2);
    const T eps = T(config_.eps), coef = T(clip_coef);
    const bool l2 = !config_.decoupled && config_.weight_decay != 0;
    const bool decay = config_.decoupled && config_.weight_decay != 0;
    const T l2_weight = T(config_.weight_decay), decay_factor = T(1 - config_.lr * config_.weight_decay);

    T* p_data = values.data;
    const T* g_data = grads.data;
    T* m_data = moment1_.data();
    T* v_data = moment2_.data();
    // Fixed blocks, not one range per thread: Eigen does the unaligned head and the tail of a range
    // in scalar code (where the compiler may fuse a multiply-add) and the rest in packets, so the
    // rounding of a value depends on where its range starts. Blocks that do not depend on the thread
    // count keep every value's arithmetic, and so every run, identical.
    const int64_t blocks = (n + kBlock - 1) / kBlock;
    parallel_for(blocks, kGrainBlocks, [&](int64_t first_block, int64_t last_block) {
      for (int64_t block = first_block; block < last_block; ++block) {
        const int64_t begin = block * kBlock, len = std::min(n, begin + kBlock) - begin;
        ArrayMap p(p_data + begin, len), m(m_data + begin, len), v(v_data + begin, len);  // [len]
        ConstArrayMap g(g_data + begin, len);                                           // [len]
        // `grad` is the effective gradient as an Eigen expression; it reads p before p is written.
        auto update = [&](const auto& grad) {
          m += one_minus_beta1 * (grad - m);
          v = beta2 * v + one_minus_beta2 * grad * grad;
          p += -step_size * (m / (v.sqrt() / bias_correction2_sqrt + eps));
        };
        if (decay) p *= decay_factor;
        if (l2)
          update(coef * g + l2_weight * p);
        else
          update(coef * g);
      }
    });
    return grad_norm;
  }

  // ---- state, for checkpoints ----
  int64_t steps() const { return steps_; }
  // The moments [P]; empty tensors before the first step or set_state().
  const Tensor<T>& moment1() const { return moment1_; }
  const Tensor<T>& moment2() const { return moment2_; }
  // Restore a saved state (copies both moments). The next step() is then step number steps + 1.
  void set_state(int64_t steps, TensorView<const T> moment1, TensorView<const T> moment2) {
    require(steps >= 0, "Adam::set_state", "negative step count " + std::to_string(steps));
    require(moment1.numel() == moment2.numel(), "Adam::set_state",
            "moments of " + std::to_string(moment1.numel()) + " and " + std::to_string(moment2.numel()) +
                " values");
    allocate(moment1.numel());
    std::copy(moment1.data, moment1.data + moment1.numel(), moment1_.data());
    std::copy(moment2.data, moment2.data + moment2.numel(), moment2_.data());
    steps_ = steps;
  }
  // Forget everything: the next step is step 1 with zero moments.
  void reset() {
    steps_ = 0;
    moment1_ = Tensor<T>();
    moment2_ = Tensor<T>();
  }

  // L2 norm of a flat buffer, in double, bit-identical for any thread count: fixed blocks of
  // kNormBlock values (the partition does not depend on the threads), each summed the same way, then
  // the block sums added in order.
  static double global_norm(TensorView<const T> x) {
    const int64_t n = x.numel();
    const int64_t blocks = (n + kNormBlock - 1) / kNormBlock;
    std::vector<double> block_sums(size_t(blocks), 0.0);
    parallel_for(blocks, 4, [&](int64_t first, int64_t last) {
      for (int64_t b = first; b < last; ++b) {
        const int64_t begin = b * kNormBlock, end = std::min(n, begin + kNormBlock);
        // Eight interleaved sums (the compiler keeps them in vector registers), then a fixed tree.
        double sums[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t i = begin;
        for (; i + 8 <= end; i += 8)
          for (int lane = 0; lane < 8; ++lane) sums[lane] += double(x.data[i + lane]) * double(x.data[i + lane]);
        for (; i < end; ++i) sums[0] += double(x.data[i]) * double(x.data[i]);
        block_sums[size_t(b)] = ((sums[0] + sums[1]) + (sums[2] + sums[3])) + ((sums[4] + sums[5]) + (sums[6] + sums[7]));
      }
    });
    double total = 0;
    for (double s : block_sums) total += s;
    return std::sqrt(total);
  }

 private:
  using ArrayMap = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>, Eigen::Unaligned>;
  using ConstArrayMap = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>, Eigen::Unaligned>;
  static constexpr int64_t kBlock = 1 << 12;      // values per block of the update
  static constexpr int64_t kGrainBlocks = 4;      // blocks per thread at least
  static constexpr int64_t kNormBlock = 1 << 12;  // values per partial sum of the norm

  static void validate(const AdamConfig& c) {
    auto fail = [](const std::string& what) { throw std::invalid_argument("AdamConfig: " + what); };
    if (!(c.lr >= 0)) fail("lr must be >= 0, got " + std::to_string(c.lr));
    if (!(c.beta1 >= 0 && c.beta1 < 1)) fail("beta1 must be in [0, 1), got " + std::to_string(c.beta1));
    if (!(c.beta2 >= 0 && c.beta2 < 1)) fail("beta2 must be in [0, 1), got " + std::to_string(c.beta2));
    if (!(c.eps >= 0)) fail("eps must be >= 0, got " + std::to_string(c.eps));
    if (!(c.weight_decay >= 0)) fail("weight_decay must be >= 0, got " + std::to_string(c.weight_decay));
    if (!(c.clip_norm >= 0)) fail("clip_norm must be >= 0 (0: no clipping), got " + std::to_string(c.clip_norm));
  }
  void allocate(int64_t n) {
    moment1_ = Tensor<T>::zeros({n});
    moment2_ = Tensor<T>::zeros({n});
  }

  AdamConfig config_;
  int64_t steps_ = 0;
  Tensor<T> moment1_, moment2_;  // [P] first and second moments (PyTorch's exp_avg, exp_avg_sq)
};

}  // namespace euler
