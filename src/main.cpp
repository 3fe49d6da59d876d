// euler: the command-line program. `euler <command> [options]`; `euler <command> --help` for each.
#include <cxxopts.hpp>

#include <cstdlib>
#include <iostream>
#include <string>

#include <euler/core/allocator.hpp>
#include <euler/version.hpp>

#include "grad_command.hpp"
#include "mpi_session.hpp"
#include "report_command.hpp"
#include "train_command.hpp"

namespace {
const char* kUsage =
    "euler: EulerFormer for sequential recommendation on the CPU\n"
    "\n"
    "usage: euler <command> [options]\n"
    "\n"
    "commands:\n"
    "  train      train EulerFormer (or a baseline) on an interaction file; prints test metrics\n"
    "  eval       evaluate a checkpoint by full ranking on a data file\n"
    "  recommend  top-K next items for a user or a given history\n"
    "  grad       one forward and backward of a checkpoint on a batch file; writes every gradient\n"
    "  report     markdown tables (or JSON) of run directories: mean ± sd over seeds, paired differences\n"
    "\n"
    "Run 'euler <command> --help' for the options of a command; 'euler --version' prints the version.\n";
}

int main(int argc, char** argv) {
  euler::keep_freed_memory();  // a step reuses the pages of the step before (euler/core/allocator.hpp)
  euler::cli::MpiSession session(argc, argv);  // joins MPI under mpirun (src/mpi_session.hpp)
  euler::cli::mpi_session() = &session;
  const bool first_rank = session.rank() == 0;  // prints usage errors, help and results
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" || std::string(argv[1]) == "help") {
    if (first_rank) std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  std::string command = argv[1];
  if (command == "--version" || command == "version") {
    if (first_rank) std::cout << "euler " << EULER_VERSION_STRING << "\n";
    return 0;
  }
  if (session.size() > 1 && command != "train") {
    if (first_rank) std::cerr << "euler " << command << ": runs in one process; only 'euler train' runs over MPI (start it without mpirun)\n";
    return 2;
  }
#if !EULER_WITH_MPI
  if (const char* ranks = std::getenv("OMPI_COMM_WORLD_SIZE"); ranks && std::atoi(ranks) > 1) {
    std::cerr << "euler: started by mpirun with " << ranks << " processes, but this euler was built without MPI "
                 "(install libopenmpi-dev and configure with -DEULER_MPI=ON)\n";
    return 2;
  }
#endif
  try {
    if (command == "train") return euler::cli::train_command(argc - 1, argv + 1);
    if (command == "eval") return euler::cli::eval_command(argc - 1, argv + 1);
    if (command == "recommend") return euler::cli::recommend_command(argc - 1, argv + 1);
    if (command == "grad") return euler::cli::grad_command(argc - 1, argv + 1);
    if (command == "report") return euler::cli::report_command(argc - 1, argv + 1);
    std::cerr << "euler: unknown command '" << command << "'\n\n" << kUsage;
    return 2;
  } catch (const cxxopts::exceptions::exception& e) {  // the flags: the same on every rank
    if (first_rank) std::cerr << "euler " << command << ": " << e.what() << " (see 'euler " << command << " --help')\n";
    return 2;
  } catch (const std::exception& e) {  // may be this rank's alone: it stops every rank
    return session.fail("euler " + command + ": error: " + e.what() + "\n", 1);
  }
}
