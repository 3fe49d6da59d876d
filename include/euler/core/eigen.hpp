// euler/core/eigen.hpp: the one place euler includes Eigen, with the warnings of Eigen's own headers off.
//
// Eigen 3.4 built by GCC 12 for AVX-512 warns inside its headers (unused variables in PacketMath.h, and
// GCC bug 105593: "__Y may be used uninitialized" in _mm512_undefined_*). Those are not ours to fix, and
// they would bury the warnings of euler code, so they are silenced here and only here.
#pragma once

// Eigen runs single-threaded inside euler: euler's own thread pool splits the work (euler/core/parallel.hpp),
// so Eigen's OpenMP threading would only oversubscribe the cores.
#ifndef EIGEN_DONT_PARALLELIZE
#define EIGEN_DONT_PARALLELIZE
#endif

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-variable"
#pragma GCC diagnostic ignored "-Wuninitialized"
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>
#pragma GCC diagnostic pop
