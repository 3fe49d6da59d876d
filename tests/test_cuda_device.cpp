// The CUDA backend on a real GPU (euler::cuda, cuda/euler_cuda.cu) against the CPU reference: every
// kernel (values and gradients, fresh random inputs), whole training steps for every positional scheme and
// objective, scoring, and a step of realistic size. Where no GPU is usable, or the build has no CUDA
// backend, each test says why and is reported as skipped (tests/cuda_test_helpers.hpp), never as passed.
// The same cases run on the CPU through the emulated device in test_cuda_emulated.cpp.
#include <doctest/doctest.h>

#include "cuda_model_cases.hpp"
#include "cuda_op_cases.hpp"

#include <euler/cuda/cuda.hpp>

namespace test_cuda_device {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;
using euler_test::skip_test;

namespace {

// Why the GPU tests cannot run here ("" when they can).
std::string gpu_unavailable() {
#if EULER_WITH_CUDA
  cuda::Status s = cuda::status();
  return s.usable() ? std::string() : s.reason;
#else
  return "this build has no CUDA backend (EULER_CUDA=OFF, no nvcc at configure time, or the sanitizer build)";
#endif
}

}  // namespace

#if EULER_WITH_CUDA

TEST_CASE("CUDA backend on the GPU: every kernel against its CPU op (values and gradients)") {
  if (std::string why = gpu_unavailable(); !why.empty()) return skip_test("GPU test not run: " + why);
  MESSAGE("GPU: " << cuda::status().device_name);
  euler_test::check_every_op([](const cuda::OpCase& c) { return cuda::run_op(c); });
}

TEST_CASE("CUDA backend on the GPU: whole training steps equal the CPU model's (every scheme, both objectives)") {
  if (std::string why = gpu_unavailable(); !why.empty()) return skip_test("GPU test not run: " + why);
  for (euler_test::ModelCase mc : euler_test::model_cases()) {
    CAPTURE(mc.name);
    EulerFormer<float> cpu(mc.config, 17);
    cuda::Model gpu(cuda::spec_of(cpu));
    euler_test::check_training_steps(cpu, gpu);
  }
}

TEST_CASE("CUDA backend on the GPU: scores equal EulerFormer::score") {
  if (std::string why = gpu_unavailable(); !why.empty()) return skip_test("GPU test not run: " + why);
  EulerFormer<float> cpu(euler_test::model_cases().front().config, 3);
  cuda::Model gpu(cuda::spec_of(cpu));
  euler_test::check_scores(cpu, gpu);
}

TEST_CASE("CUDA backend on the GPU: a step of realistic size (B 256, N 50, d 64, 3416 items) equals the CPU's") {
  if (std::string why = gpu_unavailable(); !why.empty()) return skip_test("GPU test not run: " + why);
  for (Objective objective : {Objective::last, Objective::all}) {
    CAPTURE(to_string(objective));
    EulerFormerConfig c;
    c.n_items = 3416;
    c.objective = objective;
    c.lamb = 0.1;
    EulerFormer<float> cpu(c, 5);
    cuda::Model gpu(cuda::spec_of(cpu));
    gpu.set_parameters(cpu.parameters().values().data, cpu.parameters().numel());
    const int64_t B = 256, N = 50;
    Rng data(9);
    std::vector<int32_t> ids(size_t(B * N)), targets(size_t(objective == Objective::all ? B * N : B));
    for (int64_t b = 0; b < B; ++b) {
      int64_t length = 1 + int64_t(data.below(uint64_t(N)));  // right-padded lists of every length
      for (int64_t j = 0; j < length; ++j) ids[size_t(b * N + j)] = int32_t(1 + data.below(3415));
    }
    for (size_t i = 0; i < targets.size(); ++i) targets[i] = objective == Objective::last || ids[i] ? int32_t(1 + data.below(3415)) : 0;
    Tape<float> tape;
    Rng cpu_rng(4);
    RngState gpu_rng = cpu_rng.state();
    Context<float> ctx{tape, cpu.parameters(), true, cpu_rng};
    Batch batch{{Shape{B, N}, ids.data()}, {objective == Objective::all ? Shape{B, N} : Shape{B}, targets.data()}};
    Losses<float> losses = cpu.loss(ctx, batch);
    tape.backward(losses.total);
    cuda::StepLosses l = gpu.forward_backward(ids.data(), targets.data(), B, N, true, gpu_rng);
    CHECK(gpu_rng == cpu_rng.state());
    euler_test::check_close(l.total, losses.total.value()[0], "total loss");
    std::vector<float> grads(size_t(cpu.parameters().numel()));
    gpu.get_gradients(grads.data(), cpu.parameters().numel());
    euler_test::check_per_parameter(cpu.parameters(), grads, cpu.parameters().grads().data, "gradient");
  }
}

TEST_CASE("CUDA backend without a GPU: status says why, and a model refuses to start with that reason") {
  cuda::Status s = cuda::status();
  CHECK(s.compiled);
  if (s.usable()) return skip_test("this machine has a GPU (" + s.device_name + "); the no-GPU error path is not reachable");
  CHECK(s.devices == 0);
  CHECK(!s.reason.empty());
  EulerFormer<float> cpu(euler_test::model_cases().front().config, 3);
  std::string message = euler_test::error_of<std::runtime_error>([&] { cuda::Model gpu(cuda::spec_of(cpu)); });
  CHECK(message.find(s.reason) != std::string::npos);
  message = euler_test::error_of<std::runtime_error>([] { cuda::run_op(cuda::OpCase{}); });
  CHECK(message.find(s.reason) != std::string::npos);
}

#else

TEST_CASE("CUDA backend on the GPU: not built") { skip_test("GPU tests not run: " + gpu_unavailable()); }

#endif

}  // namespace test_cuda_device
