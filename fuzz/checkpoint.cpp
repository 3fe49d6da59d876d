// libFuzzer entry point for euler_fuzz::checkpoint (fuzz/harness.hpp); built and run by scripts/fuzz.sh.
#include "harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  euler_fuzz::checkpoint(data, size);
  return 0;
}
