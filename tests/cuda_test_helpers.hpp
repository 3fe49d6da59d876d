// Helpers for the tests of the CUDA backend: the error measure they all use, random inputs, and the
// visible skip of a test that needs a GPU.
//
// rel_error(got, want) = max_i |got_i - want_i| / max_i |want_i|: the worst deviation relative to the
// size of the reference, so entries near zero (cancellations) do not blow it up. The bound for float
// is kFloatTolerance = 1e-4 (the acceptance criterion).
//
// A test that needs a GPU and finds none calls skip_test(reason): it prints a doctest MESSAGE that
// starts with "euler-skip:", which ctest's SKIP_REGULAR_EXPRESSION (tests/CMakeLists.txt) turns into
// a test reported as skipped, never as passed.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include <euler/core/random.hpp>

namespace euler_test {

inline constexpr double kFloatTolerance = 1e-4;

inline double rel_error(std::span<const float> got, std::span<const float> want) {
  REQUIRE(got.size() == want.size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double diff = std::abs(double(got[i]) - double(want[i]));
    if (!(diff == diff)) return INFINITY;  // a NaN anywhere fails
    worst = std::max(worst, diff);
    scale = std::max(scale, std::abs(double(want[i])));
  }
  return scale > 0 ? worst / scale : worst;
}
inline double rel_error(const std::vector<float>& got, const std::vector<float>& want) {
  return rel_error(std::span<const float>(got), std::span<const float>(want));
}

// |got - want| <= tolerance |want|, as a check that shows both numbers.
inline void check_close(double got, double want, const char* what, double tolerance = kFloatTolerance) {
  CHECK_MESSAGE(std::abs(got - want) <= tolerance * std::abs(want), what << ": got " << got << ", want " << want);
}

// n floats uniform in [lo, hi) from a seeded Rng.
inline std::vector<float> random_floats(euler::Rng& rng, size_t n, double lo = -1, double hi = 1) {
  std::vector<float> v(n);
  for (float& x : v) x = float(rng.uniform(lo, hi));
  return v;
}

// Marks the running test case as skipped (see the top of this file) and says why.
inline void skip_test(const std::string& reason) { MESSAGE("euler-skip: " << reason); }

}  // namespace euler_test
