// `mpirun -np P euler train ...`: the program's side of training over MPI (include/euler/mpi/group.hpp).
//
// Built with EULER_WITH_MPI (CMake finds MPI; EULER_MPI=AUTO|ON|OFF), the program joins MPI when a
// launcher started it (mpirun and srun set OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK) and runs alone
// otherwise, exactly as without MPI. Only `euler train` runs on several processes; every rank reads the
// data and computes its share, and only rank 0 prints and writes files. An error on one rank (a file it
// cannot read, a NaN) is printed by that rank, which then aborts every rank (MPI_Abort) instead of
// leaving them waiting in a sum; a usage error is the same on every rank and is printed once.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <euler/train/group.hpp>

#if EULER_WITH_MPI
#include <euler/mpi/group.hpp>
#endif

namespace euler::cli {

class MpiSession {
 public:
  MpiSession(int& argc, char**& argv) {
#if EULER_WITH_MPI
    if (!launched_by_mpi()) return;
    int provided = 0;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
      std::fprintf(stderr, "euler: MPI_Init_thread failed\n");
      std::exit(1);
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);  // errors become exceptions (MpiGroup)
    group_ = std::make_unique<MpiGroup>(MPI_COMM_WORLD);
#else
    (void)argc, (void)argv;
#endif
  }
  ~MpiSession() {
#if EULER_WITH_MPI
    if (group_) {
      group_.reset();
      MPI_Finalize();
    }
#endif
  }
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  // The ranks of this run (null: alone).
  ProcessGroup* group() const { return group_ && group_->size() > 1 ? group_.get() : nullptr; }
  int rank() const { return group() ? group_->rank() : 0; }
  int size() const { return group() ? group_->size() : 1; }

  // A failure on this rank: print it (prefixed with the rank when there are several) and stop every
  // rank. Returns `code` when running alone.
  [[nodiscard]] int fail(const std::string& message, int code) const {
    if (!group()) {
      std::fputs(message.c_str(), stderr);
      return code;
    }
    std::fprintf(stderr, "[rank %d of %d] %s", rank(), size(), message.c_str());
    std::fflush(stderr);
#if EULER_WITH_MPI
    MPI_Abort(MPI_COMM_WORLD, code);
#endif
    return code;
  }

  // Processes this machine runs for this job (mpirun's OMPI_COMM_WORLD_LOCAL_SIZE; 1 when unknown):
  // the default thread count divides the cores among them.
  static int local_processes() {
    for (const char* name : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"})
      if (const char* value = std::getenv(name))
        if (int n = std::atoi(value); n > 0) return n;
    return 1;
  }

  static bool launched_by_mpi() {
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
      if (std::getenv(name)) return true;
    return false;
  }

 private:
  std::unique_ptr<ProcessGroup> group_;
};

// The session of this process (set by main before any command runs).
inline const MpiSession*& mpi_session() {
  static const MpiSession* session = nullptr;
  return session;
}
inline ProcessGroup* process_group() { return mpi_session() ? mpi_session()->group() : nullptr; }
inline int process_rank() { return mpi_session() ? mpi_session()->rank() : 0; }

}  // namespace euler::cli
