// Links the installed euler::cuda and asks it whether it can run here. Needs no GPU: without one
// status() says why; the program fails only when the library it linked was not the CUDA backend.
#include <euler/cuda/cuda.hpp>

#include <cstdio>

int main() {
#if !defined(EULER_WITH_CUDA) || EULER_WITH_CUDA != 1
  std::fprintf(stderr, "euler_cuda_consumer: euler::cuda did not define EULER_WITH_CUDA=1\n");
  return 1;
#else
  euler::cuda::Status s = euler::cuda::status();
  if (!s.compiled) {
    std::fprintf(stderr, "euler_cuda_consumer: the linked euler::cuda says it was not compiled with CUDA\n");
    return 1;
  }
  if (s.usable())
    std::printf("euler_cuda_consumer: %d device(s), device 0 %s\n", s.devices, s.device_name.c_str());
  else
    std::printf("euler_cuda_consumer: backend linked; it cannot run here: %s\n", s.reason.c_str());
  return 0;
#endif
}
