// euler/core/random_bits.hpp: the counter-based hash behind every random number euler draws.
//
// SplitMix64 keyed by (seed, stream): number `index` of a stream is a pure function of three integers.
// This is the dependency-free part of core/random.hpp (which adds the Rng, its state and bulk fills);
// it includes nothing but the standard library, so code that must not see Eigen (the CUDA translation
// unit) derives the same dropout keys from the same (seed, counter) as the CPU.
//
//     euler::RandomStream s(/*seed=*/1234, /*stream=*/0);
//     uint64_t word = s.bits(7);                // 64 random bits, number 7 of the stream
//     double u = euler::uniform_at(1234, 0, 7); // the same number as a double in [0, 1)
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>

namespace euler {

// The SplitMix64 finalizer: a bijection on 64-bit integers with good avalanche.
inline constexpr uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The top 53 bits of a random word as a double in [0, 1).
inline constexpr double unit_double(uint64_t bits) { return double(bits >> 11) * 0x1.0p-53; }

// One stream of one seed: number `index` of the stream is a pure function of (key, index).
struct RandomStream {
  static constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;  // 2^64 / golden ratio, odd
  uint64_t key = 0;

  RandomStream() = default;
  constexpr RandomStream(uint64_t seed, uint64_t stream)
      : key(mix64(mix64(seed) ^ mix64(stream * kGolden + 0x632BE59BD9B4E019ull))) {}

  // 64 random bits.
  constexpr uint64_t bits(uint64_t index) const { return mix64(key + (index + 1) * kGolden); }
  // Uniform in [0, 1).
  constexpr double uniform(uint64_t index) const { return unit_double(bits(index)); }
  // Standard normal, by Box-Muller from one index: the word gives the radius, a rehash of it the angle.
  double normal(uint64_t index) const {
    uint64_t word = bits(index);
    double radius_uniform = double((word >> 11) + 1) * 0x1.0p-53;  // (0, 1]: log is finite
    double angle_uniform = unit_double(mix64(word ^ 0xD1B54A32D192ED03ull));
    return std::sqrt(-2.0 * std::log(radius_uniform)) * std::cos(2.0 * std::numbers::pi * angle_uniform);
  }
};

// Pure functions of (seed, stream, index), for code that keeps a seed rather than an Rng.
inline constexpr uint64_t random_bits(uint64_t seed, uint64_t stream, uint64_t index) {
  return RandomStream(seed, stream).bits(index);
}
inline constexpr double uniform_at(uint64_t seed, uint64_t stream, uint64_t index) {
  return RandomStream(seed, stream).uniform(index);
}
inline double normal_at(uint64_t seed, uint64_t stream, uint64_t index) {
  return RandomStream(seed, stream).normal(index);
}

// Everything an Rng is: save it, restore it, compare it.
struct RngState {
  uint64_t seed = 0;
  uint64_t counter = 0;  // the next index of stream 0 to hand out
  friend bool operator==(const RngState&, const RngState&) = default;
};

}  // namespace euler
