// euler/core/parallel.hpp: the one place euler touches OpenMP.
//
// parallel_for splits [0, n) into one contiguous chunk per thread (static, so results do not depend
// on scheduling) and runs small ranges inline. Inside an OpenMP region it runs serially, so nested
// loops never oversubscribe, and Eigen's own GEMM threading (also OpenMP) does the same.
//
//     euler::parallel_for(n, 4096, [&](int64_t begin, int64_t end) {
//       for (int64_t i = begin; i < end; ++i) y[i] = 2 * x[i];
//     });
#pragma once

#include "euler/core/eigen.hpp"

#include <algorithm>
#include <cstdint>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace euler {

// Threads euler and Eigen use from now on (both go through OpenMP).
inline void set_num_threads(int threads) {
  threads = std::max(1, threads);
#if defined(_OPENMP)
  omp_set_num_threads(threads);
#endif
  Eigen::setNbThreads(threads);
}

inline int num_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

inline bool in_parallel_region() {
#if defined(_OPENMP)
  return omp_in_parallel();
#else
  return false;
#endif
}

// Call f(begin, end) on disjoint chunks covering [0, n). `grain` is the smallest chunk worth a thread.
template <class F>
void parallel_for(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  int64_t max_chunks = std::max<int64_t>(1, n / std::max<int64_t>(1, grain));
  int threads = int(std::min<int64_t>(num_threads(), max_chunks));
  if (threads <= 1 || in_parallel_region()) {
    f(int64_t(0), n);
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads)
  {
    int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    int64_t begin = n * t / nt, end = n * (t + 1) / nt;
    if (begin < end) f(begin, end);
  }
#else
  f(int64_t(0), n);
#endif
}

}  // namespace euler
