// euler/core/buffer_pool.hpp: recycled, 64-byte aligned buffers for the tape.
//
// A training step allocates the same sequence of buffers every time. The pool keeps every buffer it
// ever made on a free list keyed by size: after the first step, acquire() pops a buffer and release()
// pushes it back, so a steady-state step makes no heap allocation at all. Tape::reset() gives back
// everything in use at once.
//
//     euler::BufferPool pool;
//     float* x = pool.acquire<float>(1024);  // uninitialised, aligned
//     pool.release_all();                    // x goes back to the free list, memory kept
#pragma once

#include <cstddef>
#include <cstdlib>
#include <unordered_map>
#include <utility>
#include <vector>

#include "euler/core/tensor.hpp"

namespace euler {

class BufferPool {
 public:
  BufferPool() = default;
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;
  ~BufferPool() {
    release_all();
    for (auto& [bytes, list] : free_)
      for (void* p : list) std::free(p);
  }

  template <class U>
  U* acquire(int64_t count) {
    size_t bytes = rounded(size_t(count) * sizeof(U));
    auto& list = free_[bytes];
    void* p;
    if (!list.empty()) {
      p = list.back();
      list.pop_back();
    } else {
      p = aligned_bytes(bytes);
      reserved_bytes_ += bytes;
      ++heap_allocations_;
    }
    in_use_.emplace_back(p, bytes);
    in_use_bytes_ += bytes;
    peak_in_use_bytes_ = std::max(peak_in_use_bytes_, in_use_bytes_);
    return static_cast<U*>(p);
  }

  // Give one buffer back before release_all (e.g. a gradient nobody will read again).
  void release(void* p) {
    for (size_t i = in_use_.size(); i-- > 0;) {
      if (in_use_[i].first == p) {
        free_[in_use_[i].second].push_back(p);
        in_use_bytes_ -= in_use_[i].second;
        in_use_[i] = in_use_.back();
        in_use_.pop_back();
        return;
      }
    }
  }

  void release_all() {
    for (auto& [p, bytes] : in_use_) free_[bytes].push_back(p);
    in_use_.clear();
    in_use_bytes_ = 0;
  }

  size_t reserved_bytes() const { return reserved_bytes_; }        // held from the OS
  size_t in_use_bytes() const { return in_use_bytes_; }
  size_t peak_in_use_bytes() const { return peak_in_use_bytes_; }
  size_t heap_allocations() const { return heap_allocations_; }    // buffers ever made

 private:
  static size_t rounded(size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

  std::unordered_map<size_t, std::vector<void*>> free_;
  std::vector<std::pair<void*, size_t>> in_use_;
  size_t reserved_bytes_ = 0, in_use_bytes_ = 0, peak_in_use_bytes_ = 0, heap_allocations_ = 0;
};

}  // namespace euler
