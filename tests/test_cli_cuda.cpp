// `euler train --device cuda`: on a machine without a usable GPU (or a build without the CUDA backend) it
// stops before reading any data, with a message that says why and a non-zero exit; with a GPU it trains.
#include <doctest/doctest.h>

#include "cli_helpers.hpp"

#include <euler/data/synthetic.hpp>
#include <euler/io/atomic_file.hpp>

#if EULER_WITH_CUDA
#include <euler/cuda/cuda.hpp>
#endif

#include <fstream>
#include <nlohmann/json.hpp>

namespace test_cli_cuda {  // this file's own names: see "unity build" in CMakeLists.txt

namespace {

bool gpu_usable() {
#if EULER_WITH_CUDA
  return euler::cuda::status().usable();
#else
  return false;
#endif
}

}  // namespace

TEST_CASE("euler train --device cuda: a clear error without a GPU, training with one") {
  std::string log = euler_test::temp_path("cli_cuda", "log"), data = euler_test::temp_path("cli_cuda", "small.txt");
  euler::SyntheticConfig s;
  s.users = 60;
  std::ofstream(data) << euler::to_s3rec_text(euler::generate_synthetic(s));
  std::string common = "train --data " + data + " --max-len 10 --hidden 8 --inner 16 --layers 1 --min-user 0 --min-item 0 --epochs 1";
  int code = euler_test::run_cli(common + " --device cuda", log);  // not --quiet: the data summary would show
  std::string output = euler::read_file(log);
  CAPTURE(output);
  if (gpu_usable()) {
    CHECK(code == 0);
    CHECK(output.find("test_ndcg@10") != std::string::npos);
  } else {
    CHECK(code == 1);
    CHECK(output.find("euler train: error: --device cuda: ") != std::string::npos);
#if EULER_WITH_CUDA
    CHECK(output.find("no usable CUDA device") != std::string::npos);
#else
    CHECK(output.find("built without the CUDA backend") != std::string::npos);
#endif
    CHECK(output.find("interactions") == std::string::npos);  // it stopped before reading the data
  }
  CHECK(euler_test::run_cli(common + " --quiet --device tpu", log) == 2);
  CHECK(euler::read_file(log).find("'tpu' is not one of cpu|cuda") != std::string::npos);
  CHECK(euler_test::run_cli(common + " --quiet --device cpu", log) == 0);
}

}  // namespace test_cli_cuda
