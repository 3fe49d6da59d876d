// euler/core/pool.hpp: recycled buffers, keyed by size, over any memory: the host's (BufferPool,
// core/buffer_pool.hpp) and a GPU's (cuda/device_tape.hpp). Free of Eigen, so the CUDA unit includes it.
//
// A training step allocates the same sequence of buffers every time. The pool keeps every buffer it
// ever made on a free list keyed by its rounded size: after the first step, acquire() pops a buffer and
// release() pushes it back, so a steady-state step allocates nothing. release_all() (Tape::reset)
// gives back everything in use at once; memory returns to its source only when the pool is destroyed.
//
// Memory is what the buffers come from: `void* allocate(size_t bytes)`, `void release(void*)` and
// `static constexpr size_t alignment` (every size is rounded up to it).
//
//     euler::Pool<euler::HostMemory> pool;   // = euler::BufferPool
//     float* x = pool.acquire<float>(1024);  // uninitialised, aligned
//     pool.release_all();                    // x goes back to the free list, memory kept
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

namespace euler {

template <class Memory>
class Pool {
 public:
  explicit Pool(Memory memory = Memory()) : memory_(std::move(memory)) {}
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  ~Pool() {
    release_all();
    for (auto& [bytes, list] : free_)
      for (void* p : list) memory_.release(p);
  }

  template <class U>
  U* acquire(int64_t count) {
    constexpr size_t a = Memory::alignment;
    const size_t bytes = std::max(a, (size_t(count) * sizeof(U) + a - 1) / a * a);
    auto& list = free_[bytes];
    void* p;
    if (!list.empty()) {
      p = list.back();
      list.pop_back();
    } else {
      p = memory_.allocate(bytes);
      reserved_bytes_ += bytes;
      ++allocations_;
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

  size_t reserved_bytes() const { return reserved_bytes_; }  // held from the memory's source
  size_t in_use_bytes() const { return in_use_bytes_; }
  size_t peak_in_use_bytes() const { return peak_in_use_bytes_; }
  size_t heap_allocations() const { return allocations_; }  // buffers ever made

 private:
  Memory memory_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  std::vector<std::pair<void*, size_t>> in_use_;
  size_t reserved_bytes_ = 0, in_use_bytes_ = 0, peak_in_use_bytes_ = 0, allocations_ = 0;
};

}  // namespace euler
