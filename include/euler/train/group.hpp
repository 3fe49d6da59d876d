// euler/train/group.hpp: the processes that train one model together (data parallelism).
//
// Every process (rank) holds the whole model and the whole dataset, builds every batch exactly as one
// process would (same shuffle, same BERT4Rec masks: they all draw from the same Rng), and computes
// only its share of the batch's rows: rows [B r / P, B (r + 1) / P) for rank r of P (batch_share),
// fixed by the batch's size, never by timing. Dropout masks are drawn for the whole batch and each rank
// uses its rows of them (Rng::reserve_rows), and each rank weights its mean losses by its share of the
// batch's targets, so the gradients summed over the ranks are the whole batch's. One sum of the flat
// gradient buffer per step, and every rank runs the same Adam update on the same sums: the replicas
// stay identical, and the run depends on P only through the order of floating-point sums.
//
// ProcessGroup is what the trainer needs from the ranks; euler/mpi/group.hpp implements it over MPI
// (the `euler` program, built with EULER_MPI), tests/test_group.cpp over threads in one process.
//
//     euler::MpiGroup group;                 // after MPI_Init
//     trainer.set_group(&group);             // before run() or resume()
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "euler/core/tensor.hpp"

namespace euler {

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // x[i] = the sum over the ranks of their x[i], in place, with the same bits on every rank.
  virtual void sum(float* x, int64_t n) = 0;
  virtual void sum(double* x, int64_t n) = 0;
  virtual void sum(uint64_t* x, int64_t n) = 0;
  // Every rank's `part`, concatenated in rank order, on every rank.
  virtual std::vector<int64_t> gather(std::span<const int64_t> part) = 0;
};

// The rows [first, end) of a batch of `rows` that rank `rank` of `size` computes: contiguous, in rank
// order, their sizes differ by at most one (a rank gets none when the batch has fewer rows than ranks).
inline std::pair<int64_t, int64_t> batch_share(int64_t rows, int rank, int size) {
  return {rows * rank / size, rows * (rank + 1) / size};
}

// A 64-bit FNV-1a hash of bytes: the trainer compares the replicas' parameters with it.
inline uint64_t fnv1a(const void* data, size_t bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  const unsigned char* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

// After training over several processes: every rank's parameters must be the same bits. Returns
// {"processes": P, "parameter_checksum": hash}, or throws naming the ranks that differ from rank 0.
template <class T>
nlohmann::json check_replicas(ProcessGroup& group, TensorView<const T> values) {
  const uint64_t mine = fnv1a(values.data, size_t(values.numel()) * sizeof(T));
  const int64_t as_signed = int64_t(mine);
  std::vector<int64_t> all = group.gather(std::span<const int64_t>(&as_signed, 1));
  std::string differ;
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0]) differ += (differ.empty() ? "" : ", ") + std::to_string(r);
  if (!differ.empty()) throw std::runtime_error("the model replicas differ after training: rank(s) " + differ + " against rank 0");
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(mine));
  return {{"processes", group.size()}, {"parameter_checksum", hex}};
}

}  // namespace euler
