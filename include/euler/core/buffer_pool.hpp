// euler/core/buffer_pool.hpp: the tape's memory, recycled 64-byte aligned host buffers (core/pool.hpp):
// after the first step, a steady-state training step makes no heap allocation at all.
//
//     euler::BufferPool pool;
//     float* x = pool.acquire<float>(1024);  // uninitialised, aligned
//     pool.release_all();                    // x goes back to the free list, memory kept
#pragma once

#include <cstddef>
#include <cstdlib>

#include "euler/core/pool.hpp"
#include "euler/core/tensor.hpp"

namespace euler {

// The host's memory for Pool: 64-byte aligned (kAlignment: a cache line, an AVX-512 register).
struct HostMemory {
  static constexpr size_t alignment = kAlignment;
  void* allocate(size_t bytes) { return aligned_bytes(bytes); }
  void release(void* p) { std::free(p); }
};

using BufferPool = Pool<HostMemory>;

}  // namespace euler
