// euler/core/shape.hpp: tensor shapes (rank 0..4) and the library's error type.
//
// A Shape is a small value type: up to four extents, row-major. Every op checks the shapes it
// is given and throws euler::ShapeError with a message naming the op and the shapes involved:
//
//     euler::Shape a{2, 3}, b{4};
//     euler::check_same("add", a, b);   // throws "add: shapes [2, 3] and [4] do not match"
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string>

namespace euler {

inline constexpr int kMaxRank = 4;

// Thrown for any misuse of an op: wrong shapes, bad axis, bad argument.
class ShapeError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Thrown for misuse of the tape (backward on a non-scalar, mixing tapes, ...).
class TapeError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

struct Shape {
  std::array<int64_t, kMaxRank> dims{};  // unused trailing entries are 0
  int rank = 0;                          // 0 = scalar

  Shape() = default;
  Shape(std::initializer_list<int64_t> extents) {
    if (extents.size() > kMaxRank) throw ShapeError("Shape: rank " + std::to_string(extents.size()) + " exceeds 4");
    for (int64_t e : extents) {
      if (e < 0) throw ShapeError("Shape: negative extent " + std::to_string(e));
      dims[rank++] = e;
    }
  }
  static Shape of_rank(int r) {
    if (r < 0 || r > kMaxRank) throw ShapeError("Shape: rank " + std::to_string(r) + " out of range 0..4");
    Shape s;
    s.rank = r;
    return s;
  }

  int64_t operator[](int axis) const { return dims[axis]; }
  int64_t& operator[](int axis) { return dims[axis]; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= dims[i];
    return n;
  }
  int64_t last() const { return rank ? dims[rank - 1] : 1; }
  // Product of the extents before `axis` / after `axis`.
  int64_t outer(int axis) const {
    int64_t n = 1;
    for (int i = 0; i < axis; ++i) n *= dims[i];
    return n;
  }
  int64_t inner(int axis) const {
    int64_t n = 1;
    for (int i = axis + 1; i < rank; ++i) n *= dims[i];
    return n;
  }
  // Copy with the last extent replaced, or with one axis removed / replaced.
  Shape with_last(int64_t extent) const {
    Shape s = *this;
    s.dims[rank - 1] = extent;
    return s;
  }
  Shape with(int axis, int64_t extent) const {
    Shape s = *this;
    s.dims[axis] = extent;
    return s;
  }
  Shape without(int axis) const {
    Shape s;
    for (int i = 0; i < rank; ++i)
      if (i != axis) s.dims[s.rank++] = dims[i];
    return s;
  }
  // True when `suffix` equals the trailing extents of this shape (a scalar is a suffix of all).
  bool ends_with(const Shape& suffix) const {
    if (suffix.rank > rank) return false;
    for (int i = 0; i < suffix.rank; ++i)
      if (dims[rank - suffix.rank + i] != suffix.dims[i]) return false;
    return true;
  }
  friend bool operator==(const Shape& a, const Shape& b) {
    if (a.rank != b.rank) return false;
    for (int i = 0; i < a.rank; ++i)
      if (a.dims[i] != b.dims[i]) return false;
    return true;
  }
  std::string str() const {
    std::ostringstream os;
    os << '[';
    for (int i = 0; i < rank; ++i) os << (i ? ", " : "") << dims[i];
    os << ']';
    return os.str();
  }
};

// Resolve a possibly negative axis (-1 = last) against a rank, or throw naming the op.
inline int normalize_axis(const char* op, int axis, int rank) {
  int a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank)
    throw ShapeError(std::string(op) + ": axis " + std::to_string(axis) + " out of range for rank " +
                     std::to_string(rank));
  return a;
}

inline void check_same(const char* op, const Shape& a, const Shape& b) {
  if (!(a == b)) throw ShapeError(std::string(op) + ": shapes " + a.str() + " and " + b.str() + " do not match");
}

inline void require(bool ok, const char* op, const std::string& what) {
  if (!ok) throw ShapeError(std::string(op) + ": " + what);
}

}  // namespace euler
