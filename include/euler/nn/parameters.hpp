// euler/nn/parameters.hpp: every parameter of a model in one flat buffer, with named views.
//
// Modules declare their parameters (name and shape) while the model is built; allocate() then makes
// one contiguous buffer for all values and one for all gradients (llm.c's layout). Zeroing the
// gradients, an optimiser step, a checkpoint or a gradient-norm clip is then one loop over one array.
// Names follow the authors' PyTorch modules, so a checkpoint converts 1:1 (see docs/model.md).
//
//     euler::Parameters<float> params;
//     int w = params.declare("dense.weight", {64, 32});
//     params.allocate();
//     euler::Var<float> W = params.on(tape, w);   // a tape leaf whose gradient lands in params.grad(w)
#pragma once

#include <map>
#include <string>
#include <vector>

#include "euler/core/tape.hpp"

namespace euler {

template <class T = float>
class Parameters {
 public:
  struct Entry {
    std::string name;
    Shape shape;
    int64_t offset = 0;  // into the flat buffers
  };

  // Declare a parameter; returns its index. Only before allocate().
  int declare(const std::string& name, const Shape& shape) {
    if (allocated()) throw std::logic_error("Parameters::declare(" + name + ") after allocate()");
    if (index_.count(name)) throw std::logic_error("Parameters: duplicate parameter name " + name);
    entries_.push_back({name, shape, total_});
    total_ += shape.numel();
    index_[name] = int(entries_.size() - 1);
    return int(entries_.size() - 1);
  }
  // One buffer for all values, one for all gradients; both zero.
  void allocate() {
    values_ = Tensor<T>::zeros({std::max<int64_t>(total_, 1)});
    grads_ = Tensor<T>::zeros({std::max<int64_t>(total_, 1)});
  }
  bool allocated() const { return !values_.empty(); }

  int count() const { return int(entries_.size()); }
  int64_t numel() const { return total_; }
  const Entry& entry(int i) const { return entries_[size_t(i)]; }
  const std::vector<Entry>& entries() const { return entries_; }
  bool contains(const std::string& name) const { return index_.count(name) > 0; }
  int index(const std::string& name) const {
    auto it = index_.find(name);
    if (it == index_.end()) throw std::out_of_range("Parameters: no parameter named " + name);
    return it->second;
  }

  TensorView<T> value(int i) const { return {entries_[size_t(i)].shape, values_.data() + entries_[size_t(i)].offset}; }
  TensorView<T> grad(int i) const { return {entries_[size_t(i)].shape, grads_.data() + entries_[size_t(i)].offset}; }
  TensorView<T> value(const std::string& name) const { return value(index(name)); }
  TensorView<T> grad(const std::string& name) const { return grad(index(name)); }
  // The flat buffers, [numel].
  TensorView<T> values() const { return {Shape{total_}, values_.data()}; }
  TensorView<T> grads() const { return {Shape{total_}, grads_.data()}; }

  void zero_grad() { std::fill(grads_.begin(), grads_.begin() + total_, T(0)); }
  // Put parameter i on the tape as a leaf whose gradient accumulates into grad(i).
  Var<T> on(Tape<T>& tape, int i) const {
    const Entry& e = entries_[size_t(i)];
    return tape.param(value(i), grad(i), e.name.c_str());
  }

 private:
  std::vector<Entry> entries_;
  std::map<std::string, int> index_;
  int64_t total_ = 0;
  Tensor<T> values_, grads_;
};

}  // namespace euler
