// cuda/euler_cuda.cu: the CUDA backend's one translation unit (the library euler::cuda).
//
// CudaDevice implements the Device primitives of cuda/device_tape.hpp with the CUDA runtime and
// cuBLAS: cudaMalloc'd memory, each(n, f) as a grid-stride kernel over a functor, gemm as
// cublasSgemm(StridedBatched) in full fp32 (no TF32). Everything above it, the device tape, every op and
// its backward (device_ops.hpp, device_phase_ops.hpp), the model and Adam (device_model.hpp), is the
// device-independent code that the tests also run on the CPU through HostDevice; this file instantiates it
// for the GPU and defines the functions declared in include/euler/cuda/cuda.hpp.
//
// All work goes to the default stream, in order; the only host synchronisations are the copies back to
// the host (the step's three losses, Adam's gradient-norm block sums, scores, state).
//
//     nvcc -std=c++20 -arch=sm_90 -Iinclude -c cuda/euler_cuda.cu      (CMake does this: EULER_CUDA)
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "device_model.hpp"
#include "euler/cuda/cuda.hpp"
#include "op_runner.hpp"

namespace euler::gpu {

inline void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw std::runtime_error(std::string("CUDA: ") + what + " failed: " + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
}

inline void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuBLAS: ") + what + " failed: " + cublasGetStatusName(status) + " (" +
                             cublasGetStatusString(status) + ")");
}

// f(i) for every i in [0, n), a grid-stride loop: any n fits in any grid.
template <class F>
__global__ void each_kernel(F f, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) f(i);
}

class CudaDevice {
 public:
  static constexpr const char* kName = "CUDA";

  explicit CudaDevice(int ordinal = 0) {
    check_cuda(cudaSetDevice(ordinal), "cudaSetDevice");
    check_cublas(cublasCreate(&handle_), "cublasCreate");
    check_cublas(cublasSetMathMode(handle_, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");  // fp32, no TF32
  }
  CudaDevice(const CudaDevice&) = delete;
  CudaDevice& operator=(const CudaDevice&) = delete;
  ~CudaDevice() { cublasDestroy(handle_); }

  void* allocate(size_t bytes) {
    void* p = nullptr;
    check_cuda(cudaMalloc(&p, bytes ? bytes : 1), "cudaMalloc");
    return p;
  }
  void release(void* p) { cudaFree(p); }  // in a destructor: errors cannot be reported
  void upload(void* dst, const void* src, size_t bytes) { check_cuda(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "copy to the GPU"); }
  void download(void* dst, const void* src, size_t bytes) {
    check_cuda(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "copy from the GPU (or an earlier kernel)");
  }
  void copy(void* dst, const void* src, size_t bytes) { check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice), "device copy"); }
  void zero(void* dst, size_t bytes) { check_cuda(cudaMemsetAsync(dst, 0, bytes), "cudaMemsetAsync"); }
  void synchronize() { check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

  // Small launches (row kernels: one thread per row) use 64-thread blocks so that they spread over the SMs.
  template <class F>
  void each(int64_t n, const F& f) {
    if (n <= 0) return;
    const int threads = n >= (int64_t(1) << 16) ? 256 : 64;
    const int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, int64_t(1) << 20);
    each_kernel<F><<<unsigned(blocks), unsigned(threads)>>>(f, n);
    check_cuda(cudaGetLastError(), "kernel launch");
  }

  void gemm(const GemmCall& g) {
    const cublasOperation_t ta = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, tb = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (g.batch == 1)
      check_cublas(cublasSgemm(handle_, ta, tb, g.m, g.n, g.k, &g.alpha, g.a, g.lda, g.b, g.ldb, &g.beta, g.c, g.ldc), "cublasSgemm");
    else
      check_cublas(cublasSgemmStridedBatched(handle_, ta, tb, g.m, g.n, g.k, &g.alpha, g.a, g.lda, g.stride_a, g.b, g.ldb, g.stride_b,
                                             &g.beta, g.c, g.ldc, g.stride_c, g.batch),
                   "cublasSgemmStridedBatched");
  }

 private:
  cublasHandle_t handle_ = nullptr;
};

}  // namespace euler::gpu

namespace euler::cuda {

Status status() {
  Status s;
  s.compiled = true;
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear it
    s.reason = std::string("no usable CUDA device (cudaGetDeviceCount: ") + cudaGetErrorName(e) + ", " + cudaGetErrorString(e) +
               "; is an NVIDIA GPU and a driver for CUDA 13 installed?)";
    return s;
  }
  if (count == 0) {
    s.reason = "no CUDA device found";
    return s;
  }
  cudaDeviceProp props{};
  if (cudaGetDeviceProperties(&props, 0) == cudaSuccess)
    s.device_name = std::string(props.name) + " (compute capability " + std::to_string(props.major) + "." + std::to_string(props.minor) + ")";
  // A probe kernel: a device this build has no code for (CMAKE_CUDA_ARCHITECTURES) fails here, not mid-step.
  float* probe = nullptr;
  e = cudaMalloc(&probe, sizeof(float));
  if (e == cudaSuccess) {
    gpu::each_kernel<gpu::FillKernel><<<1, 1>>>(gpu::FillKernel{probe, 1.0f}, 1);
    e = cudaGetLastError();
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    cudaFree(probe);
  }
  if (e != cudaSuccess) {
    cudaGetLastError();
    s.reason = "CUDA device " + s.device_name + " cannot run this build's kernels: " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) +
               "; rebuild with its architecture in CMAKE_CUDA_ARCHITECTURES)";
    return s;
  }
  s.devices = count;
  return s;
}

namespace {
void require_device() {
  Status s = status();
  if (!s.usable()) throw std::runtime_error("euler::cuda: " + s.reason);
}
}  // namespace

struct Model::Impl {
  gpu::CudaDevice device;
  gpu::GpuModel<gpu::CudaDevice> model;
  std::string name;
  explicit Impl(const ModelSpec& spec) : device(0), model(device, spec), name(status().device_name) {}
};

Model::Model(const ModelSpec& spec) {
  require_device();
  impl_ = std::make_unique<Impl>(spec);
}
Model::~Model() = default;
const ModelSpec& Model::spec() const { return impl_->model.spec(); }
std::string Model::device_name() const { return impl_->name; }
void Model::set_parameters(const float* values, int64_t count) { impl_->model.set_parameters(values, count); }
void Model::get_parameters(float* values, int64_t count) const { impl_->model.get_parameters(values, count); }
void Model::get_gradients(float* grads, int64_t count) const { impl_->model.get_gradients(grads, count); }
void Model::set_adam_state(int64_t steps, const float* moment1, const float* moment2, int64_t count) {
  impl_->model.set_adam_state(steps, moment1, moment2, count);
}
int64_t Model::adam_steps() const { return impl_->model.adam_steps(); }
void Model::get_adam_state(float* moment1, float* moment2, int64_t count) const { impl_->model.get_adam_state(moment1, moment2, count); }
StepLosses Model::forward_backward(const int32_t* ids, const int32_t* targets, int64_t B, int64_t N, bool dropout_on, RngState& rng) {
  return impl_->model.forward_backward(ids, targets, B, N, dropout_on, rng);
}
double Model::adam_step(const AdamSettings& settings) { return impl_->model.adam_step(settings); }
void Model::score(const int32_t* ids, int64_t B, int64_t N, float* scores) { impl_->model.score(ids, B, N, scores); }

OpResult run_op(const OpCase& op_case) {
  require_device();
  gpu::CudaDevice device(0);
  return gpu::run_op(device, op_case);
}

}  // namespace euler::cuda
