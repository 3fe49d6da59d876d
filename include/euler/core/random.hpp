// euler/core/random.hpp: a seeded, counter-based random number generator that checkpoints exactly.
//
// Every random number euler draws is a pure function of three integers, (seed, stream, index):
// the index is run through a SplitMix64 mixer keyed by (seed, stream). Nothing else is hidden, so
//   - an Rng's whole state is two uint64, its seed and its counter (the next index to use); a trainer
//     saves state() in a checkpoint and set_state() resumes the exact same sequence;
//   - a block of n numbers can be made in parallel: reserve(n) hands out the indices
//     [base, base + n) and element i takes number base + i, whatever thread computes it. The result
//     does not depend on the thread count, and equals what n sequential draws would have given.
// An Rng draws from stream 0 of its seed. Code that has a seed but no Rng (say, one stream per data
// loader worker) can take numbers from other streams with RandomStream(seed, stream) or uniform_at.
//
//     euler::Rng rng(1234);
//     double u = rng.uniform();                 // [0, 1)
//     float z = rng.normal<float>();            // N(0, 1)
//     uint64_t k = rng.below(10);               // 0..9, unbiased
//     rng.shuffle(order);                       // any random-access range (std::vector, std::span)
//     euler::RngState saved = rng.state();      // {seed, counter}: put it in the checkpoint
//
//     // Bulk, in parallel, independent of the thread count:
//     euler::RandomStream stream = rng.stream();
//     uint64_t base = rng.reserve(n);           // the counter moves on by n
//     parallel_for(n, 4096, [&](int64_t i0, int64_t i1) {
//       for (int64_t i = i0; i < i1; ++i) out[i] = stream.uniform(base + i);
//     });
//     // or simply: euler::fill_uniform(view, rng), euler::fill_normal(view, rng)
//
// Rng also models std::uniform_random_bit_generator, so Tensor<>::uniform(shape, rng) works.
// Quality: SplitMix64 passes BigCrush; keys are hashed from (seed, stream) so that nearby seeds and
// streams give unrelated sequences. This is not a cryptographic generator.
#pragma once

#include <cmath>
#include <cstdint>
#include <iterator>
#include <numbers>
#include <ranges>
#include <string>
#include <type_traits>
#include <utility>

#include "euler/core/parallel.hpp"
#include "euler/core/random_bits.hpp"
#include "euler/core/tensor.hpp"

namespace euler {

class Rng {
 public:
  static constexpr uint64_t kStream = 0;  // the stream an Rng draws from

  explicit Rng(uint64_t seed = 0) : state_{seed, 0} {}
  explicit Rng(RngState state) : state_(state) {}

  RngState state() const { return state_; }
  void set_state(RngState state) { state_ = state; }
  uint64_t seed() const { return state_.seed; }
  uint64_t counter() const { return state_.counter; }
  // The stream this Rng reads: number i of it is what the draw with counter i returns.
  RandomStream stream() const { return RandomStream(state_.seed, kStream); }

  // ---- sequential draws (each uses one counter value) ------------------------------------------
  uint64_t next_u64() { return stream().bits(state_.counter++); }
  double uniform() { return stream().uniform(state_.counter++); }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  template <class T = double>
  T normal(T mean = T(0), T stddev = T(1)) {
    return T(double(mean) + double(stddev) * stream().normal(state_.counter++));
  }
  // Uniform integer in [0, n), without modulo bias (rejects the few words that would cause it).
  uint64_t below(uint64_t n) {
    if (n == 0) throw ShapeError("Rng::below: n must be positive, got 0");
    uint64_t threshold = (0 - n) % n;  // 2^64 mod n: words below it are rejected
    uint64_t word;
    do word = next_u64();
    while (word < threshold);
    return word % n;
  }
  // Fisher-Yates shuffle of any random-access range (std::vector, std::span, array).
  template <std::ranges::random_access_range Range>
  void shuffle(Range&& items) {
    auto first = std::ranges::begin(items);
    auto n = uint64_t(std::ranges::distance(items));
    for (uint64_t i = n; i > 1; --i) {
      uint64_t j = below(i);
      using std::swap;
      swap(first[std::ptrdiff_t(i - 1)], first[std::ptrdiff_t(j)]);
    }
  }

  // ---- bulk draws --------------------------------------------------------------------------------
  // Hand out the indices [base, base + n) of stream() and move the counter past them; returns base.
  uint64_t reserve(uint64_t n) {
    uint64_t base = state_.counter;
    state_.counter += n;
    return base;
  }

  // ---- a share of a batch (data parallelism, train/group.hpp) ------------------------------------
  // A process that computes only rows [first, first + rows) of a batch of `total` rows sets its share
  // here. reserve_rows(n), for n numbers over a tensor whose leading dimension is its rows, then
  // reserves the numbers of the whole batch and hands back where this share's start, so every process
  // draws exactly what one process computing the whole batch would (the dropout masks do this).
  struct RowShare {
    int64_t first = 0, rows = 0, total = 0;  // total 0: no share, this process has the whole batch
  };
  struct Reserved {
    uint64_t base;    // what reserve() returned: the block of the whole batch
    uint64_t offset;  // this share's first number within it
  };
  void set_row_share(RowShare share) { share_ = share; }
  const RowShare& row_share() const { return share_; }
  Reserved reserve_rows(uint64_t n) {
    if (share_.total == 0) return {reserve(n), 0};
    if (share_.rows < 1 || n % uint64_t(share_.rows) != 0)
      throw ShapeError("Rng::reserve_rows: " + std::to_string(n) + " numbers do not split into " + std::to_string(share_.rows) +
                       " rows");
    const uint64_t per_row = n / uint64_t(share_.rows);
    return {reserve(per_row * uint64_t(share_.total)), per_row * uint64_t(share_.first)};
  }

  // ---- std::uniform_random_bit_generator -----------------------------------------------------------
  using result_type = uint64_t;
  static constexpr uint64_t min() { return 0; }
  static constexpr uint64_t max() { return ~uint64_t(0); }
  uint64_t operator()() { return next_u64(); }

 private:
  RngState state_;
  RowShare share_;
};

inline constexpr int64_t kRandomFillGrain = 1 << 14;  // elements per thread worth splitting

// out[i] = lo + (hi - lo) * u_i, u uniform in [0, 1); in parallel, independent of the thread count.
template <class T>
void fill_uniform(TensorView<T> out, Rng& rng, std::type_identity_t<T> lo = T(0), std::type_identity_t<T> hi = T(1)) {
  RandomStream stream = rng.stream();
  uint64_t base = rng.reserve(uint64_t(out.numel()));
  parallel_for(out.numel(), kRandomFillGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      out[i] = T(double(lo) + double(hi - lo) * stream.uniform(base + uint64_t(i)));
  });
}

// out[i] = mean + stddev * z_i, z standard normal; in parallel, independent of the thread count.
template <class T>
void fill_normal(TensorView<T> out, Rng& rng, std::type_identity_t<T> mean = T(0),
                 std::type_identity_t<T> stddev = T(1)) {
  RandomStream stream = rng.stream();
  uint64_t base = rng.reserve(uint64_t(out.numel()));
  parallel_for(out.numel(), kRandomFillGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      out[i] = T(double(mean) + double(stddev) * stream.normal(base + uint64_t(i)));
  });
}

}  // namespace euler
