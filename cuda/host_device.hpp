// cuda/host_device.hpp: the GPU path's Device primitives on the CPU, for testing without a GPU.
//
// HostDevice implements what CudaDevice (cuda/euler_cuda.cu) implements with the CUDA runtime and
// cuBLAS, with plain loops: memory is malloc'd, each(n, f) calls f(0) ... f(n - 1), and gemm follows
// cublasSgemmStridedBatched's column-major definition literally (op, leading dimensions, strides, and
// beta == 0 not reading C). The tape, the ops and the model of the GPU path then run unchanged on the
// CPU, and the tests compare them with the CPU reference: everything but the CUDA runtime calls and the
// kernels' thread layout is verified here. It counts what it was asked to do, so tests can see that a
// steady-state step allocates nothing.
//
//     euler::gpu::HostDevice device;
//     euler::gpu::DeviceTape<euler::gpu::HostDevice> tape(device);
#pragma once

#include <cstdlib>
#include <cstring>
#include <new>

#include "device_tape.hpp"

namespace euler::gpu {

class HostDevice {
 public:
  static constexpr const char* kName = "host emulation of the CUDA backend";

  void* allocate(size_t bytes) {
    void* p = std::malloc(bytes ? bytes : 1);
    if (!p) throw std::bad_alloc();
    ++allocations_;
    return p;
  }
  void release(void* p) { std::free(p); }
  void upload(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
  void download(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
  void copy(void* dst, const void* src, size_t bytes) { std::memmove(dst, src, bytes); }
  void zero(void* dst, size_t bytes) { std::memset(dst, 0, bytes); }
  void synchronize() {}

  template <class F>
  void each(int64_t n, const F& f) {
    for (int64_t i = 0; i < n; ++i) f(i);
    ++launches_;
  }

  // C = alpha op(A) op(B) + beta C, column-major: element (i, j) of C is c[i + j ldc]; op(A)(i, l) is
  // a[i + l lda], or a[l + i lda] when transposed.
  void gemm(const GemmCall& g) {
    for (int batch = 0; batch < g.batch; ++batch) {
      const float* a = g.a + batch * g.stride_a;
      const float* b = g.b + batch * g.stride_b;
      float* c = g.c + batch * g.stride_c;
      for (int j = 0; j < g.n; ++j)
        for (int i = 0; i < g.m; ++i) {
          float total = 0.0f;
          for (int l = 0; l < g.k; ++l) {
            float av = g.trans_a ? a[l + int64_t(i) * g.lda] : a[i + int64_t(l) * g.lda];
            float bv = g.trans_b ? b[j + int64_t(l) * g.ldb] : b[l + int64_t(j) * g.ldb];
            total += av * bv;
          }
          float& out = c[i + int64_t(j) * g.ldc];
          out = g.beta == 0.0f ? g.alpha * total : g.alpha * total + g.beta * out;
        }
    }
    ++gemms_;
  }

  int64_t allocations() const { return allocations_; }
  int64_t launches() const { return launches_; }
  int64_t gemms() const { return gemms_; }

 private:
  int64_t allocations_ = 0, launches_ = 0, gemms_ = 0;
};

}  // namespace euler::gpu
