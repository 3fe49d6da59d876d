// cuda/device_tape.hpp: device memory and the reverse-mode tape of the GPU path.
//
// The same design as the CPU tape (include/euler/core/tape.hpp): an append-only list of nodes in
// creation order, each with an op name, its value, a gradient allocated on first use and a backward
// closure recorded by the op that made the node (forward and backward in one function, cuda/
// device_ops.hpp); backward seeds d(loss) = 1 and runs one reverse loop. The difference is where the
// numbers live: values and gradients are device memory from a DevicePool, and closures launch kernels.
//
// Everything is a template over a Device, the few primitives the GPU path needs:
//   allocate / release / upload / download / copy / zero   memory, on the device or across
//   each(n, f)                                             f(i) for i in [0, n), in parallel (a kernel)
//   gemm(GemmCall)                                         cuBLAS's sgemmStridedBatched, column-major
// CudaDevice (cuda/euler_cuda.cu) implements them with the CUDA runtime and cuBLAS; HostDevice
// (cuda/host_device.hpp) with plain loops, so the whole GPU path, cuBLAS argument mapping included,
// runs and is tested on a CPU. Kernels are functor structs whose operator() is EULER_HD.
//
// Letters: B batch, N list length, D hidden, H heads, K items; shapes in comments as in the CPU code.
//
//     euler::gpu::DeviceTape<Device> tape(device);
//     auto x = tape.input(tape.upload(Shape{4, 8}, host_x));   // a leaf in device memory
//     auto y = euler::gpu::gelu(x);                             // one kernel, one node
//     tape.backward(euler::gpu::sum_all(y));
//     std::vector<float> dx = tape.download(tape.grad(x));
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "euler/core/no_grad.hpp"
#include "euler/core/pool.hpp"
#include "euler/core/shape.hpp"
#include "euler/cuda/device_math.hpp"

namespace euler::gpu {

// C = alpha op(A) op(B) + beta C for `batch` matrices, in cuBLAS's column-major convention
// (cublasSgemmStridedBatched): op(A) is m x k, op(B) k x n, C m x n; matrix i starts at
// a + i stride_a (and so on). beta == 0: C is not read.
struct GemmCall {
  bool trans_a = false, trans_b = false;
  int m = 0, n = 0, k = 0;
  float alpha = 1;
  const float* a = nullptr;
  int lda = 1;
  int64_t stride_a = 0;
  const float* b = nullptr;
  int ldb = 1;
  int64_t stride_b = 0;
  float beta = 0;
  float* c = nullptr;
  int ldc = 1;
  int64_t stride_c = 0;
  int batch = 1;
};

// A shape and a pointer to device memory; owns nothing (the pool or a DeviceBuffer does).
template <class T>
struct DeviceView {
  Shape shape;
  T* data = nullptr;
  int64_t numel() const { return shape.numel(); }
  template <class U>
    requires(std::is_same_v<U, T> && !std::is_const_v<T>)
  operator DeviceView<const U>() const {
    return {shape, data};
  }
};

// Device memory owned by one object, freed on the device it came from.
template <class Device>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Device& device, size_t bytes) : device_(&device), bytes_(bytes), data_(bytes ? device.allocate(bytes) : nullptr) {}
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept { *this = std::move(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    std::swap(device_, other.device_);
    std::swap(bytes_, other.bytes_);
    std::swap(data_, other.data_);
    return *this;
  }
  ~DeviceBuffer() {
    if (data_) device_->release(data_);
  }
  template <class T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  size_t bytes() const { return bytes_; }
  Device* device() const { return device_; }

 private:
  Device* device_ = nullptr;
  size_t bytes_ = 0;
  void* data_ = nullptr;
};

// The device's memory for Pool (core/pool.hpp), 256-byte aligned (cudaMalloc's own alignment).
template <class Device>
struct DeviceMemory {
  static constexpr size_t alignment = 256;
  DeviceMemory(Device& d) : device(&d) {}  // NOLINT: implicit, as in DevicePool<Device> pool(device)
  void* allocate(size_t bytes) { return device->allocate(bytes); }
  void release(void* p) { device->release(p); }
  Device* device;
};

// Recycled device buffers keyed by size, the CPU tape's pool over device memory: after the first step a
// training step makes no device allocation. release_all() gives everything back without freeing.
template <class Device>
using DevicePool = Pool<DeviceMemory<Device>>;

template <class Device>
class DeviceTape;

// A handle to one node of a device tape: valid until the tape is reset.
template <class Device>
struct DVar {
  DeviceTape<Device>* tape = nullptr;
  int32_t id = -1;

  bool defined() const { return tape != nullptr; }
  DeviceView<float> value() const { return tape->node(id).value; }
  Shape shape() const { return tape->node(id).value.shape; }
  int64_t numel() const { return shape().numel(); }
  int64_t size(int axis) const { return shape()[normalize_axis("size", axis, shape().rank)]; }
  bool requires_grad() const { return tape->node(id).requires_grad; }
  const char* op() const { return tape->node(id).op; }
  float* grad_accumulator() const { return tape->grad_accumulator(*this).data; }
};

template <class Device>
struct DeviceNode {
  using Backward = std::function<void(DeviceView<const float> y, DeviceView<const float> dy)>;
  const char* op = "";
  DeviceView<float> value;     // device memory (pool, or the caller's for leaves)
  float* grad = nullptr;       // device memory, allocated and zeroed on first accumulation
  bool requires_grad = false;
  bool external_grad = false;  // grad is the caller's (parameters)
  Backward backward;           // empty for leaves and for nodes that need no gradient
};

// ---- the element functors every op uses ------------------------------------------------------------

// *p += v, atomically on the device (concurrent threads may add into the same element).
EULER_HD inline void atomic_add(float* p, float v) {
#if defined(__CUDA_ARCH__)
  atomicAdd(p, v);
#else
  *p += v;
#endif
}

struct FillKernel {  // x[i] = value
  float* x;
  float value;
  EULER_HD void operator()(int64_t i) const { x[i] = value; }
};
struct AddIntoKernel {  // to[i] += scale * from[i]
  float* to;
  const float* from;
  float scale;
  EULER_HD void operator()(int64_t i) const { to[i] += scale * from[i]; }
};

template <class Device>
class DeviceTape {
 public:
  explicit DeviceTape(Device& device) : device_(device), pool_(device) { nodes_.reserve(512); }
  DeviceTape(const DeviceTape&) = delete;
  DeviceTape& operator=(const DeviceTape&) = delete;

  Device& device() const { return device_; }

  // ---- leaves -------------------------------------------------------------------------------
  DVar<Device> constant(DeviceView<float> value, const char* name = "constant") { return push_leaf(name, value, false, nullptr); }
  DVar<Device> input(DeviceView<float> value, bool requires_grad = true, const char* name = "input") {
    return push_leaf(name, value, requires_grad && grad_enabled_, nullptr);
  }
  // A parameter: its gradient accumulates into the caller's device buffer `grad` (same shape).
  DVar<Device> param(DeviceView<float> value, float* grad, const char* name = "param") {
    return push_leaf(name, value, grad_enabled_, grad_enabled_ ? grad : nullptr);
  }
  DVar<Device> scalar(float value, const char* name = "scalar") {
    DeviceView<float> v = alloc(Shape{});
    device_.each(1, FillKernel{v.data, value});
    return constant(v, name);
  }

  // ---- memory -------------------------------------------------------------------------------
  DeviceView<float> alloc(const Shape& shape) { return {shape, pool_.template acquire<float>(shape.numel())}; }
  DeviceView<float> zeros(const Shape& shape) {
    DeviceView<float> v = alloc(shape);
    device_.zero(v.data, sizeof(float) * size_t(shape.numel()));
    return v;
  }
  template <class U>
  DeviceView<U> alloc_as(const Shape& shape) {
    return {shape, pool_.template acquire<U>(shape.numel())};
  }
  // A device copy of host data, valid until reset.
  template <class U>
  DeviceView<U> upload(const Shape& shape, const U* host) {
    DeviceView<U> v = alloc_as<U>(shape);
    device_.upload(v.data, host, sizeof(U) * size_t(shape.numel()));
    return v;
  }
  template <class U>
  std::vector<std::remove_const_t<U>> download(DeviceView<U> v) const {
    std::vector<std::remove_const_t<U>> host(size_t(v.numel()));
    device_.download(host.data(), v.data, sizeof(U) * host.size());
    return host;
  }
  // n ones (for column sums as products with a ones vector); kept across resets.
  const float* ones(int64_t n) {
    if (ones_count_ < n) {
      ones_ = DeviceBuffer<Device>(device_, sizeof(float) * size_t(n));
      device_.each(n, FillKernel{ones_.template as<float>(), 1.0f});
      ones_count_ = n;
    }
    return ones_.template as<float>();
  }
  size_t reserved_bytes() const { return pool_.reserved_bytes() + ones_.bytes(); }

  // ---- recording ----------------------------------------------------------------------------
  template <class F>
  DVar<Device> record(const char* op, DeviceView<float> value, std::initializer_list<DVar<Device>> inputs, F&& backward) {
    bool needs = false;
    for (DVar<Device> in : inputs) {
      if (!in.defined()) continue;  // optional inputs (an absent delta or bias)
      if (in.tape != this) throw TapeError(std::string(op) + ": input from another device tape");
      needs = needs || nodes_[size_t(in.id)].requires_grad;
    }
    needs = needs && grad_enabled_;
    DeviceNode<Device>& n = nodes_.emplace_back();
    n.op = op;
    n.value = value;
    n.requires_grad = needs;
    if (needs) n.backward = std::forward<F>(backward);
    return {this, int32_t(nodes_.size() - 1)};
  }

  // ---- backward -----------------------------------------------------------------------------
  // d(loss)/d(everything) for a one-element loss. keep_intermediate_grads = false recycles every
  // gradient buffer as soon as its node's backward has run (the training setting).
  void backward(DVar<Device> loss, bool keep_intermediate_grads = true) {
    if (loss.numel() != 1) throw TapeError("device backward: loss must have one element, got " + loss.shape().str());
    DeviceView<float> seed = alloc(loss.shape());
    device_.each(1, FillKernel{seed.data, 1.0f});
    backward(loss, seed, keep_intermediate_grads);
  }
  // Vector-Jacobian product: d(output) = seed (device memory of output's shape).
  void backward(DVar<Device> output, DeviceView<const float> seed, bool keep_intermediate_grads = true) {
    check_same("device backward (seed)", output.shape(), seed.shape);
    if (!nodes_[size_t(output.id)].requires_grad) return;
    for (int32_t i = 0; i <= output.id; ++i) {
      DeviceNode<Device>& n = nodes_[size_t(i)];
      if (n.backward && n.grad) device_.zero(n.grad, sizeof(float) * size_t(n.value.numel()));
    }
    float* g = grad_accumulator(output).data;
    device_.each(seed.numel(), AddIntoKernel{g, seed.data, 1.0f});
    for (int32_t i = output.id; i >= 0; --i) {
      DeviceNode<Device>& n = nodes_[size_t(i)];
      if (!n.backward || n.grad == nullptr) continue;
      n.backward(DeviceView<const float>{n.value.shape, n.value.data}, DeviceView<const float>{n.value.shape, n.grad});
      if (!keep_intermediate_grads && !n.external_grad) {
        pool_.release(n.grad);
        n.grad = nullptr;
      }
    }
  }

  DeviceView<float> grad(DVar<Device> v) {
    DeviceNode<Device>& n = nodes_[size_t(v.id)];
    if (!n.requires_grad) throw TapeError(std::string("device grad: node '") + n.op + "' does not require a gradient");
    return grad_accumulator(v);
  }
  DeviceView<float> grad_accumulator(DVar<Device> v) {
    DeviceNode<Device>& n = nodes_[size_t(v.id)];
    if (n.grad == nullptr) {
      n.grad = pool_.template acquire<float>(n.value.numel());
      device_.zero(n.grad, sizeof(float) * size_t(n.value.numel()));
    }
    return {n.value.shape, n.grad};
  }

  // ---- state --------------------------------------------------------------------------------
  void reset() {
    nodes_.clear();
    pool_.release_all();
  }
  size_t size() const { return nodes_.size(); }
  const DeviceNode<Device>& node(int32_t id) const { return nodes_[size_t(id)]; }
  bool grad_enabled() const { return grad_enabled_; }
  void set_grad_enabled(bool on) { grad_enabled_ = on; }

 private:
  DVar<Device> push_leaf(const char* name, DeviceView<float> value, bool requires_grad, float* external) {
    DeviceNode<Device>& n = nodes_.emplace_back();
    n.op = name;
    n.value = value;
    n.requires_grad = requires_grad;
    n.grad = external;
    n.external_grad = external != nullptr;
    return {this, int32_t(nodes_.size() - 1)};
  }

  Device& device_;
  DevicePool<Device> pool_;
  std::vector<DeviceNode<Device>> nodes_;
  DeviceBuffer<Device> ones_;
  int64_t ones_count_ = 0;
  bool grad_enabled_ = true;
};

// Turns recording off for its lifetime (inference), as NoGrad does for the CPU tape.
template <class Device>
using DeviceNoGrad = NoGradScope<DeviceTape<Device>>;

}  // namespace euler::gpu
