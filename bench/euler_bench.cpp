// bench/euler_bench.cpp (euler-bench): the EulerFormer training step and full-ranking inference,
// timed on generated batches, one JSON line per configuration.
//
// A training step is what the trainer does per batch: zero the gradients, forward (cross-entropy over
// all items plus the phase contrastive loss), backward, Adam. Batches are generated once per
// configuration (full-length lists of uniformly random items, random targets), so that the timing
// measures the model and not the data pipeline; bench/pytorch_reference.py generates the same kind of
// batch for the PyTorch side. Inference scores every item for --infer-batch users (no gradient).
//
// GFLOP/s come from an explicit count of matmul FLOPs (2 m n k per matmul, backward = 2 x forward),
// the same count pytorch_reference.py uses, divided by the median step time. The same run measures
// this machine's fp32 GEMM ceiling with Eigen at the same thread count, so efficiency is a ratio.
//
//   ./build/bench/euler-bench --batch 256,4096 --len 50 --threads 2
//   ./build/bench/euler-bench --batch 256 --len 50,100,200 --dim 64 --steps 10
//   ./build/bench/euler-bench --batch 256,4096 --device cuda      # + the CUDA backend's gpu_* figures
//
// Lists (comma-separated) in --batch, --len and --dim run every combination in turn. Never fails on
// timing; exits non-zero only on bad flags.
#include <euler/core/allocator.hpp>
#include <euler/eulerformer.hpp>
#include <euler/train/optimizer.hpp>
#if EULER_WITH_CUDA
#include <euler/cuda/bench.hpp>
#endif

#include <cxxopts.hpp>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using euler::Tensor;
using euler::TensorView;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The process's peak resident memory since the last reset_peak_rss() (VmHWM; getrusage's ru_maxrss
// where /proc is missing, which cannot be reset).
double peak_rss_mb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // "VmHWM:  1234 kB"
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;  // Linux: kilobytes
}

// Start a new peak (Linux: writing 5 to clear_refs resets VmHWM to the current RSS), so that each
// configuration's peak is its own and not the GEMM ceiling's matrices or an earlier configuration's.
void reset_peak_rss() {
  std::ofstream clear("/proc/self/clear_refs");
  if (clear) clear << "5";
}

std::vector<int> parse_list(const std::string& flag, const std::string& text) {
  std::vector<int> values;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    try {
      size_t used = 0;
      int v = std::stoi(item, &used);
      if (used != item.size() || v <= 0) throw std::invalid_argument(item);
      values.push_back(v);
    } catch (const std::exception&) {
      throw std::runtime_error("--" + flag + ": expected positive integers separated by commas, got '" + text + "'");
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return values;
}

// Matmul FLOPs of one forward pass (2 m n k each), as the model computes them.
struct FlopCount {
  double encoder = 0;      // projections, attention, feed-forward, contrastive similarities
  double logits_per_row = 0;
};

FlopCount forward_flops(const euler::EulerFormerConfig& c, int64_t B, int64_t N) {
  double D = c.hidden_size, I = c.inner_size, K = c.item_rows();
  double rows = double(B) * double(N);
  double per_layer = 2 * rows * D * D * 4      // query, key, value, dense
                     + 2 * rows * D * I * 2    // dense_1, dense_2
                     + 2 * double(B) * double(N) * double(N) * D * 2;  // q k^T and attention v (all heads)
  if (c.uses_euler() && c.differential_rotation && c.lamb > 0)  // 2 matmuls [N, D/2] x [D/2, N], for q and k
    per_layer += 2 * 2 * 2 * double(B) * double(N) * double(N) * (D / 2);
  return {per_layer * c.n_layers, 2 * D * K};
}

struct Measured {
  double median_ms = 0, min_ms = 0, max_ms = 0;
};

template <class F>
Measured time_steps(int warmup, int steps, F&& step) {
  for (int i = 0; i < warmup; ++i) step();
  std::vector<double> ms;
  for (int i = 0; i < steps; ++i) {
    auto t0 = Clock::now();
    step();
    ms.push_back(1e3 * seconds_since(t0));
  }
  return {median(ms), *std::min_element(ms.begin(), ms.end()), *std::max_element(ms.begin(), ms.end())};
}

// This machine's fp32 GEMM ceiling at the current thread count, GFLOP/s: the better of two ways
// of keeping every thread busy with Eigen's single-threaded kernel (the one every product of the
// model runs, in pieces): one 2048^3 product through euler::gemm (row pieces on the pool), and one
// 1024^3 product per thread, all at once. Median of 5 runs each, after a warm-up run.
double gemm_ceiling() {
  const int threads = euler::num_threads();
  auto rate = [](double flops, auto&& run) {
    std::vector<double> rates;
    for (int i = 0; i < 6; ++i) {
      auto t0 = Clock::now();
      run();
      double s = seconds_since(t0);
      if (i > 0) rates.push_back(flops / s / 1e9);
    }
    return median(rates);
  };
  const int64_t big = 2048, small = 1024;
  Eigen::MatrixXf a = Eigen::MatrixXf::Random(big, big), b = Eigen::MatrixXf::Random(big, big), c(big, big);
  double split = rate(2.0 * big * big * big, [&] { euler::gemm(a.data(), big, big, false, b.data(), big, big, false, c.data(), false); });
  std::vector<Eigen::MatrixXf> as, bs, cs;
  for (int t = 0; t < threads; ++t) {
    as.push_back(Eigen::MatrixXf::Random(small, small));
    bs.push_back(Eigen::MatrixXf::Random(small, small));
    cs.emplace_back(small, small);
  }
  double independent = rate(2.0 * threads * small * small * small, [&] {
    euler::parallel_for(threads, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) cs[t].noalias() = as[t] * bs[t];
    });
  });
  volatile float sink = c(0, 0) + cs[0](0, 0);
  (void)sink;
  return std::max(split, independent);
}

struct Options {
  int layers = 2, heads = 2, items = 3416, threads = 2, steps = 20, warmup = 3, infer_batch = 1024;
  double dropout = 0.5, lamb = 1e-5, keep_mb = -1;
  std::string pos = "euler", objective = "last", device = "cpu";
  bool infer = true, gemm = true;
  uint64_t seed = 2024;
};

nlohmann::json run_one(const Options& o, int B, int N, int D, double ceiling) {
  euler::EulerFormerConfig c;
  c.n_items = o.items;
  c.hidden_size = D;
  c.inner_size = 4 * D;
  c.n_layers = o.layers;
  c.n_heads = o.heads;
  c.max_len = N;
  c.hidden_dropout_prob = c.attn_dropout_prob = o.dropout;
  c.lamb = o.lamb;
  c.pos = euler::parse_enum<euler::PosScheme>("--pos", o.pos);
  c.objective = euler::parse_enum<euler::Objective>("--objective", o.objective);
  c.validate();
  euler::EulerFormer<float> model(c, o.seed);
  model.set_fused(true);  // the path euler train runs (the library's default is the composed one)
  if (o.keep_mb >= 0) model.set_keep_bytes(int64_t(o.keep_mb * 1048576.0));
  euler::Adam adam(euler::AdamConfig{.lr = 1e-3});

  // One generated batch: full-length lists of random items, random targets.
  euler::Rng data_rng(o.seed + 1);
  bool per_position = c.objective == euler::Objective::all;
  Tensor<int32_t> ids({B, N});
  Tensor<int32_t> targets = per_position ? Tensor<int32_t>({B, N}) : Tensor<int32_t>({B});
  auto random_item = [&] { return int32_t(1 + data_rng.below(uint64_t(o.items - 1))); };
  for (int64_t i = 0; i < ids.numel(); ++i) ids[i] = random_item();
  for (int64_t i = 0; i < targets.numel(); ++i) targets[i] = random_item();

  euler::Tape<float> tape;
  euler::Rng rng(o.seed + 2);
  euler::Context<float> train_ctx{tape, model.parameters(), /*dropout_on=*/true, rng};
  double loss = 0;
  Measured train = time_steps(o.warmup, o.steps, [&] {
    tape.reset();
    model.parameters().zero_grad();
    euler::Losses<float> losses = model.loss(train_ctx, {ids.view(), targets.view()});
    tape.backward(losses.total, euler::BackwardOptions{.keep_intermediate_grads = false});
    adam.step(model.parameters());
    loss = double(losses.total.value()[0]);
  });

  FlopCount f = forward_flops(c, B, N);
  double rows_scored = per_position ? double(B) * N : double(B);
  double step_flops = 3 * (f.encoder + f.logits_per_row * rows_scored);
  nlohmann::json out = {{"system", "euler"},     {"batch", B},          {"len", N},
                        {"dim", D},              {"layers", o.layers},  {"heads", o.heads},
                        {"items", o.items},      {"pos", o.pos},        {"objective", o.objective},
                        {"dropout", o.dropout},  {"threads", o.threads}, {"steps", o.steps},
                        {"keep_mb", double(model.keep_bytes()) / 1048576.0},
                        {"median_ms", train.median_ms}, {"min_ms", train.min_ms}, {"max_ms", train.max_ms},
                        {"seq_per_s", B / (train.median_ms / 1e3)},
                        {"gflop_per_step", step_flops / 1e9},
                        {"loss", loss}};
  out["gflops"] = step_flops / (train.median_ms / 1e3) / 1e9;
  if (ceiling > 0) {
    out["gemm_gflops"] = ceiling;
    out["gemm_efficiency"] = double(out["gflops"]) / ceiling;
  }

  if (o.infer) {
    int U = o.infer_batch;
    Tensor<int32_t> users({U, N});
    for (int64_t i = 0; i < users.numel(); ++i) users[i] = random_item();
    euler::Context<float> eval_ctx{tape, model.parameters(), /*dropout_on=*/false, rng};
    Measured infer = time_steps(1, std::max(3, o.steps / 4), [&] {
      tape.reset();
      euler::NoGrad<float> no_grad(tape);
      euler::Var<float> scores = model.score(eval_ctx, users.view());
      volatile float sink = scores.value()[0];
      (void)sink;
    });
    FlopCount fi = forward_flops(c, U, N);
    out["infer_batch"] = U;
    out["infer_median_ms"] = infer.median_ms;
    out["users_per_s"] = U / (infer.median_ms / 1e3);
    out["infer_gflops"] = (fi.encoder + fi.logits_per_row * U) / (infer.median_ms / 1e3) / 1e9;
  }
#if EULER_WITH_CUDA
  if (o.device == "cuda") {  // the same configuration on the GPU, beside the CPU figures
    Tensor<int32_t> gpu_users({o.infer_batch, N});
    for (int64_t i = 0; i < gpu_users.numel(); ++i) gpu_users[i] = random_item();
    out.update(euler::cuda::gpu_bench(model, ids.view(), targets.view(), gpu_users.view(), o.warmup, o.steps, o.seed + 2));
    out["gpu_speedup"] = train.median_ms / out["gpu_median_ms"].get<double>();
  }
#endif
  tape.reset();
  out["peak_rss_mb"] = peak_rss_mb();
  out["pool_mb"] = double(tape.pool().reserved_bytes()) / (1024.0 * 1024.0);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  euler::keep_freed_memory();  // as the CLI does (euler/core/allocator.hpp)
  cxxopts::Options cli("euler-bench", "Time the EulerFormer training step and full-ranking inference");
  Options o;
  // clang-format off
  cli.add_options()
    ("batch", "batch sizes B (comma-separated list)", cxxopts::value<std::string>()->default_value("256"))
    ("len", "list lengths N (list)", cxxopts::value<std::string>()->default_value("50"))
    ("dim", "hidden sizes d (list); the feed-forward is 4d wide", cxxopts::value<std::string>()->default_value("64"))
    ("layers", "transformer layers", cxxopts::value<int>(o.layers)->default_value("2"))
    ("heads", "attention heads", cxxopts::value<int>(o.heads)->default_value("2"))
    ("items", "rows of the item table (padding included)", cxxopts::value<int>(o.items)->default_value("3416"))
    ("pos", "none|learned|sinusoidal|rope|euler", cxxopts::value<std::string>(o.pos)->default_value("euler"))
    ("objective", "last (authors': loss on the last position) | all", cxxopts::value<std::string>(o.objective)->default_value("last"))
    ("dropout", "hidden and attention dropout", cxxopts::value<double>(o.dropout)->default_value("0.5"))
    ("lamb", "weight of the phase contrastive loss (0: off)", cxxopts::value<double>(o.lamb)->default_value("1e-5"))
    ("threads", "threads of euler's pool (Eigen itself runs single-threaded)", cxxopts::value<int>(o.threads)->default_value("2"))
    ("steps", "timed training steps per configuration", cxxopts::value<int>(o.steps)->default_value("20"))
    ("warmup", "untimed steps first", cxxopts::value<int>(o.warmup)->default_value("3"))
    ("infer", "also time full-ranking inference", cxxopts::value<bool>(o.infer)->default_value("true"))
    ("infer-batch", "users per inference batch", cxxopts::value<int>(o.infer_batch)->default_value("1024"))
    ("gemm", "measure the GEMM ceiling first (2048^3 through euler::gemm, or 1024^3 per thread)", cxxopts::value<bool>(o.gemm)->default_value("true"))
    ("keep-mb", "the fused layer keeps its intermediates for backward up to this many MB per layer, else recomputes them (-1: the library's default)", cxxopts::value<double>(o.keep_mb)->default_value("-1"))
    ("seed", "seed of the generated batches and the model", cxxopts::value<uint64_t>(o.seed)->default_value("2024"))
    ("device", "cpu | cuda: also time the CUDA backend (gpu_* figures beside the CPU's)", cxxopts::value<std::string>(o.device)->default_value("cpu"))
    ("h,help", "this help");
  // clang-format on
  try {
    auto args = cli.parse(argc, argv);
    if (args.count("help")) {
      std::cout << cli.help() << "\n";
      return 0;
    }
    if (!args.unmatched().empty()) throw std::runtime_error("unexpected argument '" + args.unmatched()[0] + "'");
    std::vector<int> batches = parse_list("batch", args["batch"].as<std::string>());
    std::vector<int> lens = parse_list("len", args["len"].as<std::string>());
    std::vector<int> dims = parse_list("dim", args["dim"].as<std::string>());
    if (o.threads < 1 || o.steps < 1 || o.warmup < 0 || o.items < 2 || o.infer_batch < 1)
      throw std::runtime_error("--threads, --steps, --infer-batch must be >= 1, --items >= 2, --warmup >= 0");
    if (o.device != "cpu" && o.device != "cuda") throw std::runtime_error("--device: '" + o.device + "' is not one of cpu|cuda");
#if EULER_WITH_CUDA
    if (euler::cuda::Status s = euler::cuda::status(); o.device == "cuda" && !s.usable()) throw std::runtime_error("--device cuda: " + s.reason);
#else
    if (o.device == "cuda") throw std::runtime_error("--device cuda: this euler-bench was built without the CUDA backend (needs nvcc)");
#endif
    euler::set_num_threads(o.threads);
    double ceiling = o.gemm ? gemm_ceiling() : 0;
    for (int D : dims)
      for (int N : lens)
        for (int B : batches) {
          reset_peak_rss();
          std::cout << run_one(o, B, N, D, ceiling).dump() << std::endl;
        }
  } catch (const std::exception& e) {
    std::cerr << "euler-bench: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
