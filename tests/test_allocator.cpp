// euler::keep_freed_memory (euler/core/allocator.hpp): glibc takes both settings; a sanitizer's
// allocator, which ignores mallopt, and other C libraries report that nothing was set.
#include <doctest/doctest.h>

#include <euler/core/allocator.hpp>

namespace test_allocator {  // this file's own names: see "unity build" in CMakeLists.txt

#if defined(__SANITIZE_ADDRESS__)
#define EULER_TEST_SANITIZED_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EULER_TEST_SANITIZED_MALLOC 1
#endif
#endif

TEST_CASE("keep_freed_memory: glibc's malloc takes both settings; a sanitizer's allocator reports none") {
#if defined(__GLIBC__) && !defined(EULER_TEST_SANITIZED_MALLOC)
  CHECK(euler::keep_freed_memory());  // false if glibc refused a threshold
#else
  CHECK_FALSE(euler::keep_freed_memory());
#endif
}

// This file's macros end here (several test files are compiled as one unit).
#undef EULER_TEST_SANITIZED_MALLOC

}  // namespace test_allocator
