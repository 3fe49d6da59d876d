// euler/cuda/trainer_backend.hpp: the Trainer's training step on the GPU (needs the library euler::cuda).
//
// DeviceStep is a StepBackend (train/step_backend.hpp): at the start of an epoch it copies the CPU model's flat
// parameters and Adam's state to the GPU, runs every step of the epoch there (forward, backward, Adam;
// dropout from the trainer's Rng, which moves on exactly as a CPU step would move it), and at the end copies
// parameters and Adam's state back, so evaluation, early stopping and checkpoints work on the CPU model
// unchanged and checkpoints keep the CPU format. `euler train --device cuda` uses it.
//
//     euler::Trainer<float> trainer(config, options, data);
//     euler::cuda::CudaStep gpu(trainer.model());   // throws when no GPU is usable
//     trainer.set_step_backend(&gpu);                // gpu.gpu() is the euler::cuda::Model
//     nlohmann::json result = trainer.run();
#pragma once

#include <array>
#include <stdexcept>
#include <string>

#include "euler/cuda/cuda.hpp"
#include "euler/cuda/model_spec.hpp"
#include "euler/train/trainer.hpp"

namespace euler::cuda {

// The step on any model with euler::cuda::Model's interface (the tests also run it on the emulated
// device); Gpu is constructed from the ModelSpec.
template <class Gpu>
class DeviceStep final : public StepBackend<float> {
 public:
  explicit DeviceStep(const EulerFormer<float>& model) : gpu_(spec_of(model)) {}

  Gpu& gpu() { return gpu_; }

  void begin_epoch(const Parameters<float>& params, const Adam<float>& adam) override {
    gpu_.set_parameters(params.values().data, params.numel());
    const bool fresh = adam.moment1().empty();
    gpu_.set_adam_state(adam.steps(), fresh ? nullptr : adam.moment1().data(), fresh ? nullptr : adam.moment2().data(), params.numel());
  }

  std::array<double, 3> step(const Batch& batch, Rng& rng, const AdamConfig& adam) override {
    RngState state = rng.state();
    StepLosses l = gpu_.forward_backward(batch.ids.data, batch.targets.data, batch.ids.shape[0], batch.ids.shape[1],
                                         /*dropout_on=*/true, state);
    rng.set_state(state);
    gpu_.adam_step(adam_settings_of(adam));
    return {l.total, l.ce, l.contrastive};
  }

  void end_epoch(Parameters<float>& params, Adam<float>& adam) override {
    gpu_.get_parameters(params.values().data, params.numel());
    Tensor<float> moment1({params.numel()}), moment2({params.numel()});
    gpu_.get_adam_state(moment1.data(), moment2.data(), params.numel());
    adam.set_state(gpu_.adam_steps(), moment1.view(), moment2.view());
  }

 private:
  Gpu gpu_;
};

using CudaStep = DeviceStep<Model>;

}  // namespace euler::cuda
