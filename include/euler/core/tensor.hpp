// euler/core/tensor.hpp: dense row-major tensors (rank 0..4) and Eigen maps over them.
//
// Two types:
//   Tensor<T>      owns its memory (shared, like a PyTorch tensor: copies share data; clone() copies).
//                  Parameters, inputs and results a user keeps are Tensors.
//   TensorView<T>  a shape plus a pointer, trivially copyable, owns nothing. The tape hands out views
//                  into its buffer pool; kernels take views.
// The scalar type is a template parameter so that gradients can be checked in double; float is the
// default. Math goes through Eigen maps (vec(), mat()), so no data is copied to use Eigen.
//
//     euler::Tensor<> x = euler::Tensor<>::zeros({2, 3});
//     x.mat().setRandom();              // Eigen::Map of shape [2, 3], row-major
//     float total = x.vec().sum();
#pragma once

#include "euler/core/eigen.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <random>

#include "euler/core/shape.hpp"

namespace euler {

template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using MatrixMap = Eigen::Map<RowMatrix<T>, Eigen::Unaligned>;
template <class T>
using VectorMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>, Eigen::Unaligned>;

inline constexpr size_t kAlignment = 64;  // one cache line, one AVX-512 register

inline void* aligned_bytes(size_t bytes) {
  size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded ? rounded : kAlignment);
  if (!p) throw std::bad_alloc();
  return p;
}

template <class T>
struct TensorView {
  Shape shape;
  T* data = nullptr;

  int rank() const { return shape.rank; }
  int64_t numel() const { return shape.numel(); }
  int64_t size(int axis) const { return shape[normalize_axis("size", axis, shape.rank)]; }
  T* begin() const { return data; }
  T* end() const { return data + numel(); }
  T& operator[](int64_t i) const { return data[i]; }

  // The whole tensor as a column vector, or as a [numel/last, last] row-major matrix.
  VectorMap<T> vec() const { return VectorMap<T>(data, numel()); }
  MatrixMap<T> mat() const { return MatrixMap<T>(data, shape.numel() / shape.last(), shape.last()); }
  MatrixMap<T> mat(int64_t rows, int64_t cols) const {
    require(rows * cols == numel(), "mat", "cannot view " + shape.str() + " as [" + std::to_string(rows) + ", " +
                                             std::to_string(cols) + "]");
    return MatrixMap<T>(data, rows, cols);
  }
  // Element access by multi-index (for tests and small code; kernels use raw pointers).
  T& at(std::initializer_list<int64_t> index) const {
    require(int(index.size()) == shape.rank, "at", "index rank does not match " + shape.str());
    int64_t offset = 0;
    int axis = 0;
    for (int64_t i : index) {
      require(i >= 0 && i < shape[axis], "at", "index out of range for " + shape.str());
      offset = offset * shape[axis++] + i;
    }
    return data[offset];
  }
  operator TensorView<const T>() const { return {shape, data}; }
};

template <class T = float>
class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(const Shape& shape) : shape_(shape) { allocate(); }

  static Tensor zeros(const Shape& shape) {
    Tensor t(shape);
    std::fill(t.data_, t.data_ + t.numel(), T(0));
    return t;
  }
  static Tensor full(const Shape& shape, T value) {
    Tensor t(shape);
    std::fill(t.data_, t.data_ + t.numel(), value);
    return t;
  }
  static Tensor from(const Shape& shape, std::initializer_list<T> values) {
    Tensor t(shape);
    require(int64_t(values.size()) == t.numel(), "Tensor::from",
          std::to_string(values.size()) + " values for shape " + shape.str());
    std::copy(values.begin(), values.end(), t.data_);
    return t;
  }
  // Deep copy of any view.
  static Tensor copy_of(TensorView<const T> v) {
    Tensor t(v.shape);
    std::copy(v.data, v.data + v.numel(), t.data_);
    return t;
  }
  // Uniform in [lo, hi) or normal(mean, stddev), from a seeded engine.
  template <class Rng>
  static Tensor uniform(const Shape& shape, Rng& rng, T lo = T(-1), T hi = T(1)) {
    Tensor t(shape);
    std::uniform_real_distribution<double> dist{double(lo), double(hi)};
    for (auto& x : t) x = T(dist(rng));
    return t;
  }
  template <class Rng>
  static Tensor normal(const Shape& shape, Rng& rng, T mean = T(0), T stddev = T(1)) {
    Tensor t(shape);
    std::normal_distribution<double> dist{double(mean), double(stddev)};
    for (auto& x : t) x = T(dist(rng));
    return t;
  }

  Tensor clone() const { return copy_of(view()); }

  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank; }
  int64_t numel() const { return shape_.numel(); }
  int64_t size(int axis) const { return shape_[normalize_axis("size", axis, shape_.rank)]; }
  bool empty() const { return data_ == nullptr; }
  T* data() const { return data_; }
  T* begin() const { return data_; }
  T* end() const { return data_ + numel(); }
  T& operator[](int64_t i) const { return data_[i]; }
  T& at(std::initializer_list<int64_t> index) const { return view().at(index); }

  TensorView<T> view() const { return {shape_, data_}; }
  operator TensorView<T>() const { return view(); }
  operator TensorView<const T>() const { return {shape_, data_}; }
  VectorMap<T> vec() const { return view().vec(); }
  MatrixMap<T> mat() const { return view().mat(); }
  MatrixMap<T> mat(int64_t rows, int64_t cols) const { return view().mat(rows, cols); }

  // Same data, new shape (numel must match).
  Tensor reshaped(const Shape& shape) const {
    require(shape.numel() == numel(), "reshape", "cannot reshape " + shape_.str() + " to " + shape.str());
    Tensor t = *this;
    t.shape_ = shape;
    return t;
  }

 private:
  void allocate() {
    size_t n = size_t(shape_.numel());
    owner_ = std::shared_ptr<T[]>(static_cast<T*>(aligned_bytes(n * sizeof(T))), [](T* p) { std::free(p); });
    data_ = owner_.get();
  }

  Shape shape_;
  T* data_ = nullptr;
  std::shared_ptr<T[]> owner_;
};

}  // namespace euler
