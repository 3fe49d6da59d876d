// euler/core/allocator.hpp: keep the memory a training run frees inside the process.
//
// A training step allocates and frees the same large blocks every step (Eigen's GEMM takes its packing
// buffers from the heap above 128 KB, per product). glibc's malloc gives large freed blocks back to the
// system (mmap'd ones at once, the heap's top above a trim threshold), and the next step faults their
// pages in again: on CPU type B of docs/performance.md, about 8 us per 4 KB page and a fifth of an
// all-positions training step. keep_freed_memory() asks glibc to serve blocks up to 32 MB (the most its
// own sliding threshold would reach) from its heaps and never to trim them, so that a step reuses the
// pages of the step before.
// The setting is process-wide: euler's own programs (the CLI, euler-bench) call it first thing, and a
// program embedding euler may do the same. Peak memory stays what it was; what is freed is kept.
//
//     int main(int argc, char** argv) {
//       euler::keep_freed_memory();
//       ...
//     }
#pragma once

#include <climits>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace euler {

// True when the allocator took both settings (glibc); false where there is nothing to set (another C
// library, or a sanitizer's allocator, which ignores mallopt).
inline bool keep_freed_memory() {
#if defined(__GLIBC__)
  const bool mmap_threshold = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;  // blocks up to 32 MB from the heap
  const bool trim_threshold = mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1;   // never shrink the heap
  return mmap_threshold && trim_threshold;
#else
  return false;
#endif
}

}  // namespace euler
