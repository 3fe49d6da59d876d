// euler/mpi/group.hpp: ProcessGroup (train/group.hpp) over MPI, for training one model on several
// processes or machines. Needs <mpi.h> (Debian: libopenmpi-dev); the rest of euler does not.
//
// A sum is a reduce-scatter followed by an all-gather (the two halves of a ring all-reduce, and its
// cost: about 2 (P - 1) / P times the buffer per rank): each block of the buffer is added up on one
// rank and then copied to all, so every rank gets the same bits, which keeps the model replicas
// identical without trusting MPI_Allreduce to give every rank the same rounding.
//
//     MPI_Init(&argc, &argv);
//     {
//       euler::MpiGroup group(MPI_COMM_WORLD);
//       euler::Trainer<float> trainer(config, options, data);
//       trainer.set_group(&group);
//       trainer.run();
//     }
//     MPI_Finalize();
#pragma once

#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "euler/train/group.hpp"

namespace euler {

class MpiGroup : public ProcessGroup {
 public:
  explicit MpiGroup(MPI_Comm comm) : comm_(comm) {
    check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void sum(float* x, int64_t n) override { sum_blocks(x, n, MPI_FLOAT); }
  void sum(double* x, int64_t n) override { sum_blocks(x, n, MPI_DOUBLE); }
  void sum(uint64_t* x, int64_t n) override { sum_blocks(x, n, MPI_UINT64_T); }

  std::vector<int64_t> gather(std::span<const int64_t> part) override {
    const int mine = int(part.size());
    std::vector<int> counts(size_t(size_), 0), offsets(size_t(size_), 0);
    check(MPI_Allgather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, comm_), "MPI_Allgather");
    for (int r = 1; r < size_; ++r) offsets[size_t(r)] = offsets[size_t(r - 1)] + counts[size_t(r - 1)];
    std::vector<int64_t> all(size_t(offsets.back() + counts.back()));
    check(MPI_Allgatherv(part.data(), mine, MPI_INT64_T, all.data(), counts.data(), offsets.data(), MPI_INT64_T, comm_),
          "MPI_Allgatherv");
    return all;
  }

 private:
  static void check(int code, const char* call) {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    throw std::runtime_error(std::string(call) + " failed: " + std::string(text, size_t(length)));
  }

  // x (n elements of `type`, `bytes` each) summed over the ranks: blocks of ceil(n / P) elements,
  // block r added up on rank r (MPI_Reduce_scatter_block) and then sent to every rank (MPI_Allgather).
  template <class V>
  void sum_blocks(V* x, int64_t n, MPI_Datatype type) {
    if (n <= 0 || size_ == 1) return;
    const int64_t block = (n + size_ - 1) / size_;
    if (block > int64_t(1) << 30) throw std::runtime_error("MpiGroup::sum: a buffer of " + std::to_string(n) + " elements is too large");
    padded_.resize(size_t(block * size_) * sizeof(V));
    mine_.resize(size_t(block) * sizeof(V));
    V* all = reinterpret_cast<V*>(padded_.data());
    std::copy(x, x + n, all);
    std::fill(all + n, all + block * size_, V(0));
    check(MPI_Reduce_scatter_block(all, mine_.data(), int(block), type, MPI_SUM, comm_), "MPI_Reduce_scatter_block");
    check(MPI_Allgather(mine_.data(), int(block), type, all, int(block), type, comm_), "MPI_Allgather");
    std::copy(all, all + n, x);
  }

  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  std::vector<unsigned char> padded_, mine_;  // reused by every sum
};

}  // namespace euler
