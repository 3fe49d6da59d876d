// euler/train/step_backend.hpp: the interface of a training step that runs outside the CPU trainer.
#pragma once

#include <array>

#include "euler/core/random.hpp"
#include "euler/model/model.hpp"
#include "euler/train/optimizer.hpp"

namespace euler {

// A training step that runs elsewhere (the CUDA backend: include/euler/cuda/trainer_backend.hpp). From
// begin_epoch to end_epoch it holds the parameters and Adam's state; end_epoch writes them back, so the
// trainer evaluates and checkpoints the CPU model as usual.
template <class T>
struct StepBackend {
  virtual ~StepBackend() = default;
  virtual void begin_epoch(const Parameters<T>& params, const Adam<T>& adam) = 0;
  // Forward, backward and an Adam step on one batch, drawing dropout from rng as the CPU step does;
  // returns the losses {total, ce, contrastive}.
  virtual std::array<double, 3> step(const Batch& batch, Rng& rng, const AdamConfig& adam) = 0;
  virtual void end_epoch(Parameters<T>& params, Adam<T>& adam) = 0;
};

}  // namespace euler
