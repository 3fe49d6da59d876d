// Every committed fuzz input, through the fuzz harness (fuzz/harness.hpp) in the normal and the
// sanitizer test builds: the seeds of fuzz/corpus/<target>/ and the crashers ever found, kept in
// fuzz/regressions/<target>/ as regression tests. scripts/fuzz.sh runs the fuzzers themselves.
#include <doctest/doctest.h>

#include "../fuzz/harness.hpp"

#include <euler/io/atomic_file.hpp>

#include <filesystem>
#include <map>

namespace test_fuzz_inputs {  // this file's own names: see "unity build" in CMakeLists.txt

namespace fs = std::filesystem;

namespace {

// Runs `harness` on every file of fuzz/corpus/<target>/ and fuzz/regressions/<target>/; returns how
// many seeds it ran.
int run_inputs(const std::string& target, void (*harness)(const uint8_t*, size_t)) {
  fs::path fuzz = fs::path(__FILE__).parent_path().parent_path() / "fuzz";
  int seeds = 0;
  for (const char* kind : {"corpus", "regressions"}) {
    fs::path dir = fuzz / kind / target;
    if (!fs::is_directory(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir)) {
      CAPTURE(entry.path().string());
      std::string bytes = euler::read_file(entry.path().string());
      CHECK_NOTHROW(harness(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
      seeds += std::string(kind) == "corpus";
    }
  }
  return seeds;
}

}  // namespace

TEST_CASE("fuzz inputs: every seed and regression input of each target is handled") {
  const std::map<std::string, void (*)(const uint8_t*, size_t)> targets = {{"interactions", euler_fuzz::interactions},
                                                                          {"batch_file", euler_fuzz::batch_file},
                                                                          {"safetensors", euler_fuzz::safetensors_file},
                                                                          {"config", euler_fuzz::config_json},
                                                                          {"checkpoint", euler_fuzz::checkpoint}};
  for (const auto& [target, harness] : targets) {
    CAPTURE(target);
    CHECK(run_inputs(target, harness) >= 4);  // the seed corpus is there
  }
}

TEST_CASE("fuzz inputs: the harness accepts the seeds it is given, and flags a broken invariant") {
  std::string ml1m = std::string("\x01") + "1::2::5::100\n1::3::4::101\n1::4::3::102\n";
  CHECK_NOTHROW(euler_fuzz::interactions(reinterpret_cast<const uint8_t*>(ml1m.data()), ml1m.size()));
  CHECK_THROWS_AS(euler_fuzz::expect(false, "a test"), euler_fuzz::Broken);
  // An input a reader refuses is no finding: the harness swallows the documented error only.
  std::string garbage = std::string("\x01") + "1::2\n";
  CHECK_NOTHROW(euler_fuzz::interactions(reinterpret_cast<const uint8_t*>(garbage.data()), garbage.size()));
}

}  // namespace test_fuzz_inputs
