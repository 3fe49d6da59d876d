// euler/core/host_device.hpp: what the CPU library and the CUDA kernels share, defined once.
//
// `EULER_HD inline` is `__host__ __device__ inline` when nvcc compiles the CUDA backend (cuda/) and a plain
// inline function everywhere else. The scalar rules below are the ones whose bits both sides must agree
// on: the float atan2 of the Euler transform (ops/complex.hpp's atan2_vec, the GPU's euler_phase) and the
// dropout hash (ops/nn.hpp's DropoutMask, the GPU's dropout_keep). The attention-mask rule, the other
// shared one, is model/forward.hpp's key_visible. Plain arithmetic only: no allocation, no throw.
#pragma once

#include <math.h>

#include <cstdint>

#if defined(__CUDACC__)
#define EULER_HD __host__ __device__
#else
#define EULER_HD
#endif

namespace euler {

// atan2(y, x) for float in a form the compiler vectorises (glibc's atan2f is a scalar call, and was the
// largest single cost of the EulerFormer step): fold to a in [0, 1] = min/max of |x|, |y|, fold again
// around tan(pi/8), Cephes' degree-9 odd polynomial for atan (error ~1e-7), then unfold by octant with
// selects; within 2 ulp of pi (4.8e-7) of std::atan2. Signed zeros as std::atan2: (+0, -0) -> pi,
// (-0, +0) -> -0. The comparisons are std::max's and std::min's, so a NaN gives the same bits everywhere.
EULER_HD inline float atan2_poly(float y, float x) {
  float ax = fabsf(x), ay = fabsf(y);
  float hi = ax < ay ? ay : ax, lo = ay < ax ? ay : ax;
  float a = hi > 0.0f ? lo / hi : 0.0f;
  bool fold = a > 0.41421356237f;  // tan(pi/8)
  float z = fold ? (a - 1.0f) / (a + 1.0f) : a;
  float z2 = z * z;
  float r = (((8.05374449538e-2f * z2 - 1.38776856032e-1f) * z2 + 1.99777106478e-1f) * z2 - 3.33329491539e-1f) * z2 * z + z;
  r = fold ? r + 0.78539816340f : r;
  r = ay > ax ? 1.57079632679f - r : r;
  r = copysignf(1.0f, x) < 0.0f ? 3.14159265359f - r : r;  // signbit(x), -0 included
  return copysignf(r, y);
}

// Wellons' lowbias32: a 32-bit integer hash with low bias.
EULER_HD constexpr uint32_t lowbias32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7FEB352Du;
  x ^= x >> 15;
  x *= 0x846CA68Bu;
  return x ^ (x >> 16);
}

// Whether element i of a dropout block keyed by (key0, key1) is kept: its 24-bit number (two rounds of
// lowbias32) is >= threshold = ceil(p 2^24). 32-bit integer arithmetic only, so loops over i vectorise.
EULER_HD constexpr bool dropout_kept(uint32_t key0, uint32_t key1, uint32_t threshold, uint32_t i) {
  return (lowbias32(lowbias32(i ^ key0) + key1) >> 8) >= threshold;
}

}  // namespace euler
