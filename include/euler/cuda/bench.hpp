// euler/cuda/bench.hpp: GPU figures for euler-bench (`--device cuda`), beside the CPU's of the same run.
//
// gpu_bench times, on the CUDA backend, what bench/euler_bench.cpp times on the CPU for one configuration:
// the training step (zeroed gradients, forward with cross-entropy and the phase contrastive loss, backward,
// Adam) on the given batch, and full-ranking inference for a batch of users. Every step ends with the copy
// of its losses to the host (and inference with the copy of the scores), which waits for the GPU, so wall
// time is GPU time. Needs the library euler::cuda.
//
//     nlohmann::json figures = euler::cuda::gpu_bench(model, ids, targets, users, /*warmup=*/3, /*steps=*/20, seed);
//     // {"gpu": "NVIDIA H200 (compute capability 9.0)", "gpu_median_ms": ..., "gpu_seq_per_s": ..., ...}
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <vector>

#include "euler/cuda/cuda.hpp"
#include "euler/cuda/model_spec.hpp"

namespace euler::cuda {

inline nlohmann::json gpu_bench(const EulerFormer<float>& model, TensorView<const int32_t> ids /*[B, N]*/,
                                TensorView<const int32_t> targets /*[B] or [B, N]*/, TensorView<const int32_t> users /*[U, N]*/,
                                int warmup, int steps, uint64_t seed) {
  using Clock = std::chrono::steady_clock;
  Model gpu(spec_of(model));
  const Parameters<float>& p = model.parameters();
  gpu.set_parameters(p.values().data, p.numel());
  const int64_t B = ids.shape[0], N = ids.shape[1], U = users.shape[0];
  RngState rng{seed, 0};
  const AdamSettings adam;
  StepLosses losses;
  auto timed = [](int warm, int runs, auto&& f) {
    for (int i = 0; i < warm; ++i) f();
    std::vector<double> ms;
    for (int i = 0; i < runs; ++i) {
      auto t0 = Clock::now();
      f();
      ms.push_back(1e3 * std::chrono::duration<double>(Clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    return ms;
  };
  std::vector<double> train = timed(warmup, steps, [&] {
    losses = gpu.forward_backward(ids.data, targets.data, B, N, /*dropout_on=*/true, rng);
    gpu.adam_step(adam);
  });
  std::vector<float> scores(size_t(U) * size_t(model.config().n_items));
  std::vector<double> infer = timed(1, std::max(3, steps / 4), [&] { gpu.score(users.data, U, N, scores.data()); });
  auto median = [](const std::vector<double>& v) { return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]); };
  return {{"gpu", gpu.device_name()},
          {"gpu_median_ms", median(train)},
          {"gpu_min_ms", train.front()},
          {"gpu_max_ms", train.back()},
          {"gpu_seq_per_s", double(B) / (median(train) / 1e3)},
          {"gpu_loss", losses.total},
          {"gpu_infer_median_ms", median(infer)},
          {"gpu_users_per_s", double(U) / (median(infer) / 1e3)}};
}

}  // namespace euler::cuda
