// The GPU path of the CUDA backend (cuda/: device tape, ops, model, Adam) run on the CPU through
// HostDevice, against the CPU reference: every op, and whole training steps of EulerFormer (values,
// every parameter's gradient, the Rng, Adam) for every positional scheme, both objectives and the
// ablations, plus scoring. HostDevice follows cuBLAS's column-major definition, so the cuBLAS argument
// mapping is checked too. These always run; the same cases on a real GPU are in test_cuda_device.cpp.
#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include "cuda_model_cases.hpp"
#include "cuda_op_cases.hpp"

#include "../cuda/device_model.hpp"
#include "../cuda/host_device.hpp"
#include "../cuda/op_runner.hpp"

#include <euler/cuda/trainer_backend.hpp>
#include <euler/data/synthetic.hpp>

#include <filesystem>

namespace test_cuda_emulated {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;
using euler_test::kFloatTolerance;

namespace {

// The emulated backend behind the interface the model cases use (the one euler::cuda::Model has).
struct EmulatedModel {
  gpu::HostDevice device;
  gpu::GpuModel<gpu::HostDevice> model;
  explicit EmulatedModel(const cuda::ModelSpec& spec) : model(device, spec) {}
};

// The same as one object built from a spec, as euler::cuda::Model is (for DeviceStep).
struct EmulatedGpu : gpu::HostDevice, gpu::GpuModel<gpu::HostDevice> {
  explicit EmulatedGpu(const cuda::ModelSpec& spec) : gpu::GpuModel<gpu::HostDevice>(*this, spec) {}
};

// ||a - b|| / ||b|| over two equal-sized float buffers.
double relative_distance(const float* a, const float* b, int64_t n) {
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < n; ++i) {
    diff += (double(a[i]) - double(b[i])) * (double(a[i]) - double(b[i]));
    norm += double(b[i]) * double(b[i]);
  }
  return std::sqrt(diff / std::max(norm, 1e-300));
}

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

TEST_CASE("emulated CUDA backend: the Trainer through the device step (DeviceStep) follows the CPU trainer") {
  SyntheticConfig synthetic;
  synthetic.users = 60;
  DatasetOptions keep_all;
  keep_all.min_user_interactions = keep_all.min_item_interactions = 0;
  Dataset data = build_dataset(parse_interactions(to_s3rec_text(generate_synthetic(synthetic)), "synthetic-60", Format::sequences), keep_all);
  EulerFormerConfig c;
  c.hidden_size = 8;
  c.inner_size = 16;
  c.n_layers = 1;
  c.max_len = 10;
  c.hidden_dropout_prob = c.attn_dropout_prob = 0.2;
  TrainOptions t;
  t.epochs = 2;
  t.batch_size = 128;
  t.seed = 3;
  t.verbose = t.progress = false;
  std::filesystem::path dir = euler_test::scratch_dir("cuda_trainer");
  Trainer<float> cpu(c, t, data), device(c, t, data);
  cuda::DeviceStep<EmulatedGpu> step(device.model());
  device.set_step_backend(&step);
  nlohmann::json cpu_result = cpu.run(), device_result = device.run();
  CHECK(device_result["epochs"] == cpu_result["epochs"]);
  CHECK(std::abs(device_result["valid_ndcg@10"].get<double>() - cpu_result["valid_ndcg@10"].get<double>()) <= 0.02);

  // The state written back after each epoch: the same Adam step count and Rng position, parameters and
  // moments within float rounding (the few Adam updates of near-zero gradients differ; hence a norm).
  std::string cpu_file = (dir / "cpu.safetensors").string(), device_file = (dir / "device.safetensors").string();
  cpu.save_checkpoint(cpu_file);
  device.save_checkpoint(device_file);
  safetensors::File a = safetensors::File::read(cpu_file), b = safetensors::File::read(device_file);
  CHECK(a.metadata().at("adam_steps") == b.metadata().at("adam_steps"));
  CHECK(std::stoll(a.metadata().at("adam_steps")) == 2 * ((int64_t(cpu.examples_per_epoch()) + 127) / 128));
  TrainState sa = TrainState::from_json(nlohmann::json::parse(a.metadata().at("train_state")));
  TrainState sb = TrainState::from_json(nlohmann::json::parse(b.metadata().at("train_state")));
  CHECK(sb.epoch == sa.epoch);
  CHECK(sb.rng == sa.rng);  // every step moved the trainer's Rng exactly as a CPU step does
  const Parameters<float>& p = cpu.model().parameters();
  CHECK(relative_distance(device.model().parameters().values().data, p.values().data, p.numel()) <= 1e-3);
  for (const char* moment : {"optimizer.moment1", "optimizer.moment2"}) {
    CAPTURE(moment);
    Tensor<float> ma({p.numel()}), mb({p.numel()});
    a.copy_to(moment, ma.view());
    b.copy_to(moment, mb.view());
    CHECK(relative_distance(mb.data(), ma.data(), p.numel()) <= 1e-3);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace test_cuda_emulated
