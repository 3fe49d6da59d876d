// `--device cpu|cuda` of `euler train`: where the training step runs.
//
// check_device fails early (before any data is read) with a clear message when cuda is asked for and this
// build has no CUDA backend, no GPU is usable, or the model is one the backend does not run;
// step_backend then makes the GPU step for the trainer (null for cpu).
#pragma once

#include <cxxopts.hpp>

#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

#include <euler/train/trainer.hpp>

#if EULER_WITH_CUDA
#include <euler/cuda/trainer_backend.hpp>
#endif

namespace euler::cli {

inline void check_device(const std::string& device, const EulerFormerConfig& config) {
  if (device == "cpu") return;
  if (device != "cuda") throw cxxopts::exceptions::exception("--device: '" + device + "' is not one of cpu|cuda");
#if EULER_WITH_CUDA
  cuda::Status s = cuda::status();
  if (!s.usable()) throw std::runtime_error("--device cuda: " + s.reason);
  if (config.backbone != Backbone::sasrec) throw std::runtime_error("--device cuda: the CUDA backend runs the SASRec backbone only");
  if (config.padding_idx) throw std::runtime_error("--device cuda: the CUDA backend has no padding_idx; train on the CPU");
#else
  (void)config;
  throw std::runtime_error("--device cuda: this euler was built without the CUDA backend (it is built when CMake finds nvcc; "
                           "configure with -DEULER_CUDA=ON to require it)");
#endif
}

inline std::unique_ptr<StepBackend<float>> step_backend(const std::string& device, const EulerFormer<float>& model, bool verbose) {
  if (device == "cpu") return nullptr;
#if EULER_WITH_CUDA
  auto gpu = std::make_unique<cuda::CudaStep>(model);
  if (verbose) std::cerr << "training on the GPU: " << gpu->gpu().device_name() << "\n";
  return gpu;
#else
  (void)model, (void)verbose;
  throw std::runtime_error("--device cuda: this euler was built without the CUDA backend");
#endif
}

}  // namespace euler::cli
