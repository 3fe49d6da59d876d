// The GPU path of the CUDA backend (src/cuda/: device tape, ops, model, Adam) run on the CPU through
// HostDevice, against the CPU reference: every op, and whole training steps of EulerFormer (values,
// every parameter's gradient, the Rng, Adam) for every positional scheme, both objectives and the
// ablations, plus scoring. HostDevice follows cuBLAS's column-major definition, so the cuBLAS argument
// mapping is checked too. These always run; the same cases on a real GPU are in test_cuda_device.cpp.
#include <doctest/doctest.h>

#include "cuda_model_cases.hpp"
#include "cuda_op_cases.hpp"

#include "../src/cuda/device_model.hpp"
#include "../src/cuda/host_device.hpp"
#include "../src/cuda/op_runner.hpp"

using namespace euler;
using euler_test::kFloatTolerance;

namespace {

// The emulated backend behind the interface the model cases use (the one euler::cuda::Model has).
struct EmulatedModel {
  gpu::HostDevice device;
  gpu::GpuModel<gpu::HostDevice> model;
  explicit EmulatedModel(const cuda::ModelSpec& spec) : model(device, spec) {}
};

}  // namespace

TEST_CASE("emulated CUDA backend: every op against its CPU op (values and gradients)") {
  gpu::HostDevice device;
  euler_test::check_every_op([&](const cuda::OpCase& c) { return gpu::run_op(device, c); });
}

TEST_CASE("emulated CUDA backend: whole training steps equal the CPU model's (every scheme, both objectives)") {
  for (euler_test::ModelCase mc : euler_test::model_cases()) {
    CAPTURE(mc.name);
    EulerFormer<float> cpu(mc.config, 17);
    EmulatedModel gpu(cuda::spec_of(cpu));
    euler_test::check_training_steps(cpu, gpu.model);
  }
}

TEST_CASE("emulated CUDA backend: scores equal EulerFormer::score") {
  EulerFormer<float> cpu(euler_test::model_cases().front().config, 3);
  EmulatedModel gpu(cuda::spec_of(cpu));
  euler_test::check_scores(cpu, gpu.model);
}

TEST_CASE("emulated CUDA backend: a steady-state step allocates no device memory") {
  EulerFormer<float> cpu(euler_test::model_cases().front().config, 3);
  EmulatedModel gpu(cuda::spec_of(cpu));
  gpu.model.set_parameters(cpu.parameters().values().data, cpu.parameters().numel());
  euler_test::TinyData data = euler_test::tiny_data(cpu.config());
  RngState rng{5, 0};
  cuda::AdamSettings adam;
  for (int step = 0; step < 3; ++step) {
    int64_t before = gpu.device.allocations();
    gpu.model.forward_backward(data.ids.data(), data.targets.data(), data.B, data.N, true, rng);
    gpu.model.adam_step(adam);
    if (step > 0) CHECK(gpu.device.allocations() == before);
  }
}

TEST_CASE("emulated CUDA backend: bad batches and models are refused with a clear message") {
  EulerFormer<float> cpu(euler_test::model_cases().front().config, 3);
  EmulatedModel gpu(cuda::spec_of(cpu));
  std::vector<int32_t> ids(12, 1), targets(2, 1);
  RngState rng;
  auto message = [&](auto&& f) { return euler_test::error_of<std::invalid_argument>(f); };
  ids[5] = 10000;
  CHECK(message([&] { gpu.model.forward_backward(ids.data(), targets.data(), 2, 6, true, rng); }).find("id 10000") != std::string::npos);
  ids[5] = 1;
  targets[1] = -3;
  CHECK(message([&] { gpu.model.forward_backward(ids.data(), targets.data(), 2, 6, true, rng); }).find("target -3") != std::string::npos);
  CHECK(message([&] { gpu.model.set_parameters(cpu.parameters().values().data, 7); }).find("7 floats") != std::string::npos);
  std::vector<int32_t> long_ids(2 * 99, 1);
  std::vector<float> scores(2 * 13);
  CHECK(message([&] { gpu.model.score(long_ids.data(), 2, 99, scores.data()); }).find("MAX_ITEM_LIST_LENGTH") != std::string::npos);

  EulerFormerConfig bert = cpu.config();
  bert.backbone = Backbone::bert4rec;
  EulerFormer<float> bert_model(bert, 1);
  CHECK(message([&] { cuda::spec_of(bert_model); }).find("SASRec backbone only") != std::string::npos);
  cuda::ModelSpec broken = cuda::spec_of(cpu);
  broken.layers[0].dense_1.weight = broken.parameter_count - 3;
  CHECK(message([&] { broken.validate(); }).find("dense_1.weight") != std::string::npos);
}
