// libFuzzer entry point for euler_fuzz::batch_file (fuzz/harness.hpp); built and run by scripts/fuzz.sh.
#include "harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  euler_fuzz::batch_file(data, size);
  return 0;
}
