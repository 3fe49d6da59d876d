#!/usr/bin/env bash
# scripts/test.sh [--sanitize]: install deps, configure, build, run every test (ctest).
#
#   bash scripts/test.sh              # build/       Release, -march=native
#   bash scripts/test.sh --sanitize   # build-asan/  ASan + UBSan, -Og -g1, no bench, no examples
#
# Extra cmake arguments: EULER_CMAKE_ARGS="-DEULER_NATIVE=OFF" bash scripts/test.sh
# Tests run as many at a time as there are cores; one at a time: CTEST_PARALLEL_LEVEL=1 bash scripts/test.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

sanitize=0
for arg in "$@"; do
  case "$arg" in
    --sanitize) sanitize=1 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown argument '$arg' (expected --sanitize)" >&2; exit 2 ;;
  esac
done

bash scripts/install-deps.sh

jobs="$(nproc)"
if [ "$sanitize" = 1 ]; then
  dir=build-asan
  # -Og -g1: compiles ~2.5x faster than -O1 under ASan+UBSan, still runs fast enough; line tables
  # for the sanitizers' stack traces; no NDEBUG, so Eigen's own asserts are on too.
  # No examples: they are the library's own code again (the plain run builds and runs them), and they
  # take a sixth of the compile time.
  cfg=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-Og -g1"
       -DEULER_SANITIZE=ON -DEULER_BUILD_BENCH=OFF -DEULER_BUILD_EXAMPLES=OFF
       -DEULER_MPI=OFF)  # OpenMPI's own allocations trip LeakSanitizer; the trainer's share of a batch is
                         # checked under ASan by tests/test_group.cpp (ranks as threads), mpirun by the plain run
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:check_initialization_order=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
else
  dir=build
  cfg=(-DCMAKE_BUILD_TYPE=Release -DEULER_SANITIZE=OFF)
fi
# shellcheck disable=SC2206
extra=(${EULER_CMAKE_ARGS:-})

set -x
cmake -S . -B "$dir" "${cfg[@]}" "${extra[@]}"
cmake --build "$dir" -j "$jobs"
cd "$dir"
# Each of the ~350 test cases is its own process: run as many side by side as there are cores (each
# test keeps its files in its own process's directory, tests/cli_helpers.hpp).
ctest --output-on-failure -j "${CTEST_PARALLEL_LEVEL:-$jobs}"
