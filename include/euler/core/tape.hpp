// euler/core/tape.hpp: reverse-mode automatic differentiation on a flat tape.
//
// The tape is an append-only list of nodes in creation order (Stan Math's design). Every op computes
// its value, then records one node: an op name, the value, and a backward closure written in the same
// function as the forward. Tape::backward seeds d(loss) = 1 and runs one reverse loop over the nodes;
// there is no recursion and no topological sort, because creation order already is one.
//
//   - Gradients accumulate (+=): within a pass where a value is used twice, and across passes into
//     leaves and parameters (calling backward twice adds, as in PyTorch). Intermediate gradients
//     start from zero in every pass.
//   - A node whose inputs need no gradient records no closure and costs nothing in backward.
//   - NoGrad (a scope) turns recording off, for evaluation.
//   - Values and gradients live in the tape's BufferPool; reset() hands them back without freeing,
//     so a steady-state training step makes no heap allocation.
//   - Every intermediate gradient can be read after backward with grad(v), unless backward was asked
//     to drop them (BackwardOptions::keep_intermediate_grads = false) to save memory.
//
//     euler::Tape<double> tape;
//     auto x = tape.input(X);                  // leaf that wants a gradient
//     auto y = euler::sum(euler::exp(x) * x);  // records two nodes and a reduction
//     tape.backward(y);
//     std::cout << tape.grad(x).vec();         // (1 + x) exp(x)
#pragma once

#include <cstring>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "euler/core/buffer_pool.hpp"
#include "euler/core/no_grad.hpp"
#include "euler/core/parallel.hpp"
#include "euler/core/tensor.hpp"

namespace euler {

template <class T>
class Tape;

// A handle to one node of a tape: 16 bytes, trivially copyable, valid until the tape is reset.
template <class T = float>
struct Var {
  Tape<T>* tape = nullptr;
  int32_t id = -1;

  TensorView<T> value() const { return tape->node(id).value; }
  Shape shape() const { return tape->node(id).value.shape; }  // a copy: nodes move as the tape grows
  int64_t numel() const { return shape().numel(); }
  int64_t size(int axis) const { return shape()[normalize_axis("size", axis, shape().rank)]; }
  bool requires_grad() const { return tape->node(id).requires_grad; }
  const char* op() const { return tape->node(id).op; }
  // The gradient of the last backward with respect to this value (see Tape::grad).
  TensorView<T> grad() const { return tape->grad(*this); }
  // Accumulator for backward closures: this node's gradient buffer, zero-filled on first use.
  TensorView<T> grad_accumulator() const { return tape->grad_accumulator(*this); }
};

// Type-erased backward closure stored inline in the node (no heap allocation). Closures capture
// Vars, TensorViews, raw pointers and scalars only, which keeps them trivially copyable.
template <class T>
class BackwardFn {
 public:
  static constexpr size_t kCapacity = 192;
  using Signature = void (*)(const void* self, TensorView<const T> y, TensorView<const T> dy);

  BackwardFn() = default;
  template <class F>
  BackwardFn(const F& f) {  // NOLINT: implicit from any closure
    static_assert(std::is_trivially_copyable_v<F>,
                  "euler: a backward closure may capture only Vars, TensorViews, pointers and scalars");
    static_assert(sizeof(F) <= kCapacity, "euler: backward closure captures too much (over 192 bytes)");
    static_assert(alignof(F) <= 16, "euler: backward closure over-aligned");
    new (storage_) F(f);
    call_ = [](const void* self, TensorView<const T> y, TensorView<const T> dy) {
      (*static_cast<const F*>(self))(y, dy);
    };
  }
  explicit operator bool() const { return call_ != nullptr; }
  void operator()(TensorView<const T> y, TensorView<const T> dy) const { call_(storage_, y, dy); }

 private:
  alignas(16) unsigned char storage_[kCapacity];
  Signature call_ = nullptr;
};

template <class T>
struct Node {
  const char* op = "";          // op name, for dumps and error messages
  TensorView<T> value;          // forward value (pool memory, or the caller's for leaves)
  T* grad = nullptr;            // d(loss)/d(value), allocated on first accumulation
  bool requires_grad = false;   // does any gradient flow into this node?
  bool external_grad = false;   // grad points at the caller's buffer (parameters)
  BackwardFn<T> backward;       // empty for leaves and for nodes that need no gradient
};

struct BackwardOptions {
  // Keep every intermediate gradient readable after backward (default: yes, users study them).
  // Training loops turn this off: each gradient buffer is recycled as soon as it has been consumed.
  bool keep_intermediate_grads = true;
};

template <class T = float>
class Tape {
 public:
  using Scalar = T;

  Tape() { nodes_.reserve(1024); }
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  // ---- leaves -------------------------------------------------------------------------------
  // A value that needs no gradient. The tape references the caller's memory; keep it alive until reset.
  Var<T> constant(TensorView<T> value, const char* name = "constant") { return push_leaf(name, value, false, nullptr); }
  // A leaf whose gradient the tape keeps (read it with grad()).
  Var<T> input(TensorView<T> value, bool requires_grad = true, const char* name = "input") {
    return push_leaf(name, value, requires_grad && grad_enabled_, nullptr);
  }
  // The same for a temporary Tensor (tape.input(Tensor<>::zeros({3}))): the tape shares its memory
  // until reset, so the leaf cannot outlive its data. No copy is made.
  Var<T> constant(Tensor<T>&& value, const char* name = "constant") { return constant(keep_alive(std::move(value)), name); }
  Var<T> input(Tensor<T>&& value, bool requires_grad = true, const char* name = "input") {
    return input(keep_alive(std::move(value)), requires_grad, name);
  }
  // A parameter: its gradient accumulates straight into the caller's `grad` buffer (same shape).
  Var<T> param(TensorView<T> value, TensorView<T> grad, const char* name = "param") {
    check_same("Tape::param", value.shape, grad.shape);
    return push_leaf(name, value, grad_enabled_, grad_enabled_ ? grad.data : nullptr);
  }
  // A copy of `value` owned by the tape (for temporaries the caller will not keep).
  Var<T> constant_copy(TensorView<const T> value, const char* name = "constant") {
    TensorView<T> v = alloc(value.shape);
    std::memcpy(v.data, value.data, sizeof(T) * size_t(value.numel()));
    return constant(v, name);
  }
  Var<T> scalar(T value, const char* name = "scalar") {
    TensorView<T> v = alloc(Shape{});
    v.data[0] = value;
    return constant(v, name);
  }

  // ---- memory -------------------------------------------------------------------------------
  TensorView<T> alloc(const Shape& shape) { return {shape, pool_.acquire<T>(shape.numel())}; }
  TensorView<T> zeros(const Shape& shape) {
    TensorView<T> v = alloc(shape);
    zero_fill(v.data, shape.numel());
    return v;
  }
  // Scratch of another element type (masks, indices), valid until reset.
  template <class U>
  TensorView<U> alloc_as(const Shape& shape) {
    return {shape, pool_.acquire<U>(shape.numel())};
  }
  // Copy of integer data the backward pass will need (ids, targets), valid until reset.
  template <class U>
  TensorView<const U> keep(TensorView<const U> v) {
    TensorView<U> copy = alloc_as<U>(v.shape);
    std::memcpy(copy.data, v.data, sizeof(U) * size_t(v.numel()));
    return {copy.shape, copy.data};
  }
  const BufferPool& pool() const { return pool_; }

  // ---- recording ----------------------------------------------------------------------------
  // Record an op's output. The node requires a gradient when recording is on and any input does;
  // only then is the backward closure kept.
  template <class F>
  Var<T> record(const char* op, TensorView<T> value, std::initializer_list<Var<T>> inputs, const F& backward) {
    return record_n(op, value, inputs.begin(), inputs.size(), backward);
  }
  // The same for ops with a variable number of inputs (concat).
  template <class F>
  Var<T> record_n(const char* op, TensorView<T> value, const Var<T>* inputs, size_t count, const F& backward) {
    bool needs = false;
    for (size_t i = 0; i < count; ++i) {
      if (inputs[i].tape != this) throw TapeError(std::string(op) + ": input from another tape (or an empty Var)");
      needs = needs || nodes_[size_t(inputs[i].id)].requires_grad;
    }
    needs = needs && grad_enabled_;
    Node<T>& n = nodes_.emplace_back();
    n.op = op;
    n.value = value;
    n.requires_grad = needs;
    if (needs) n.backward = BackwardFn<T>(backward);
    return {this, int32_t(nodes_.size() - 1)};
  }

  // ---- backward -----------------------------------------------------------------------------
  // d(loss)/d(everything) for a scalar (one-element) loss.
  void backward(Var<T> loss, BackwardOptions options = {}) {
    check_own(loss, "backward");
    if (loss.numel() != 1)
      throw TapeError("backward: loss must have one element, got shape " + loss.shape().str() +
                      " (pass a seed gradient for non-scalar outputs)");
    T one = T(1);
    backward(loss, TensorView<const T>{loss.shape(), &one}, options);
  }
  // Vector-Jacobian product: seeds d(output) = seed and runs the reverse loop.
  void backward(Var<T> output, TensorView<const T> seed, BackwardOptions options = {}) {
    check_own(output, "backward");
    check_same("backward (seed)", output.shape(), seed.shape);
    if (!nodes_[size_t(output.id)].requires_grad) return;  // nothing depends on a parameter
    // Intermediate gradients belong to one backward pass; only leaves accumulate across passes.
    for (int32_t i = 0; i <= output.id; ++i) {
      Node<T>& n = nodes_[size_t(i)];
      if (n.backward && n.grad) zero_fill(n.grad, n.value.numel());
    }
    T* g = grad_accumulator(output).data;
    parallel_for(seed.numel(), kFillGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) g[i] += seed.data[i];
    });
    for (int32_t i = output.id; i >= 0; --i) {
      Node<T>& n = nodes_[size_t(i)];
      if (!n.backward || n.grad == nullptr) continue;
      n.backward(TensorView<const T>{n.value.shape, n.value.data}, TensorView<const T>{n.value.shape, n.grad});
      if (!options.keep_intermediate_grads && !n.external_grad) {
        pool_.release(n.grad);
        n.grad = nullptr;
      }
    }
  }

  // The gradient of the last backward with respect to v (zeros when nothing flowed into it).
  TensorView<T> grad(Var<T> v) {
    check_own(v, "grad");
    Node<T>& n = nodes_[size_t(v.id)];
    if (!n.requires_grad)
      throw TapeError(std::string("grad: node '") + n.op + "' does not require a gradient");
    return grad_accumulator(v);
  }
  // Used by backward closures: the node's gradient buffer, zero-filled when first touched.
  TensorView<T> grad_accumulator(Var<T> v) {
    Node<T>& n = nodes_[size_t(v.id)];
    if (n.grad == nullptr) {
      n.grad = pool_.acquire<T>(n.value.numel());
      zero_fill(n.grad, n.value.numel());
    }
    return {n.value.shape, n.grad};
  }

  // ---- state --------------------------------------------------------------------------------
  // Forget every node and hand all buffers back to the pool (memory is kept for the next step).
  void reset() {
    nodes_.clear();
    kept_.clear();
    pool_.release_all();
  }
  size_t size() const { return nodes_.size(); }
  const Node<T>& node(int32_t id) const { return nodes_[size_t(id)]; }
  bool grad_enabled() const { return grad_enabled_; }
  void set_grad_enabled(bool on) { grad_enabled_ = on; }

 private:
  static constexpr int64_t kFillGrain = int64_t(1) << 16;  // elements per thread worth splitting
  static void zero_fill(T* data, int64_t n) {
    parallel_for(n, kFillGrain, [&](int64_t i0, int64_t i1) { std::memset(data + i0, 0, sizeof(T) * size_t(i1 - i0)); });
  }

  TensorView<T> keep_alive(Tensor<T>&& value) {
    kept_.push_back(std::move(value));
    return kept_.back().view();
  }
  Var<T> push_leaf(const char* name, TensorView<T> value, bool requires_grad, T* external) {
    Node<T>& n = nodes_.emplace_back();
    n.op = name;
    n.value = value;
    n.requires_grad = requires_grad;
    n.grad = external;
    n.external_grad = external != nullptr;
    return {this, int32_t(nodes_.size() - 1)};
  }
  void check_own(Var<T> v, const char* what) const {
    if (v.tape != this || v.id < 0 || size_t(v.id) >= nodes_.size())
      throw TapeError(std::string(what) + ": Var does not belong to this tape (reset since?)");
  }

  std::vector<Node<T>> nodes_;
  std::vector<Tensor<T>> kept_;  // temporaries handed to constant() or input(), alive until reset
  BufferPool pool_;
  bool grad_enabled_ = true;
};

// Turns recording off for its lifetime (evaluation), restoring the previous state after.
template <class T>
using NoGrad = NoGradScope<Tape<T>>;

}  // namespace euler
