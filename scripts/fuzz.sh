#!/usr/bin/env bash
# scripts/fuzz.sh [seconds]: build the libFuzzer targets of fuzz/ (clang, ASan + UBSan) in build-fuzz/
# and run each for `seconds` (default 60, or $EULER_FUZZ_SECONDS) from its seed corpus
# fuzz/corpus/<target>/, two at a time. Fails when any target finds a crash, a leak, a timeout or
# an out-of-memory input; each such input is kept under build-fuzz/artifacts/<target>/.
#
#   bash scripts/fuzz.sh            # what .ci/run does
#   bash scripts/fuzz.sh 600        # longer
#
# A crasher becomes a regression test: copy it into fuzz/regressions/<target>/ (tests/test_fuzz_inputs.cpp
# runs every file there, and every seed, through the same harness in the normal test build), fix the
# reader, and commit both. Reproduce one with ./build-fuzz/fuzz_<target> <file>.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${1:-${EULER_FUZZ_SECONDS:-60}}"
targets=(interactions batch_file safetensors config checkpoint)

bash scripts/install-deps.sh --fuzz

cxx="$(command -v clang++-14 || command -v clang++ || true)"
if [ -z "$cxx" ]; then
  echo "fuzz.sh: no clang++ (install clang-14 and libclang-rt-14-dev)" >&2
  exit 1
fi

set -x
cmake -S fuzz -B build-fuzz -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]/#/fuzz_}"
set +x

# Each run starts from a copy of the committed seeds (libFuzzer adds what it finds to its first
# corpus folder; the committed one stays small and reviewed).
run_one() {
  local target=$1 work=build-fuzz/work/$1 artifacts=build-fuzz/artifacts/$1/
  rm -rf "$work" "$artifacts"
  mkdir -p "$work" "$artifacts"
  cp fuzz/corpus/"$target"/* "$work"/
  [ -d fuzz/regressions/"$target" ] && cp fuzz/regressions/"$target"/* "$work"/ 2>/dev/null || true
  # -rss_limit_mb: a reader must not need gigabytes for a few kilobytes of input.
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    ./build-fuzz/fuzz_"$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$artifacts" "$work" > build-fuzz/"$target".log 2>&1
}

status=0
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  pids=()
  for target in "${targets[@]:i:2}"; do
    echo "fuzz.sh: fuzz_$target for ${seconds} s"
    run_one "$target" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
done

printf '%-14s %14s %10s %10s %s\n' target runs execs/s corpus result
for target in "${targets[@]}"; do
  log=build-fuzz/$target.log
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
  corpus=$(find build-fuzz/work/"$target" -type f | wc -l)
  found=$(find build-fuzz/artifacts/"$target" -type f | wc -l)
  result=ok
  if [ "$found" -ne 0 ] || grep -q -E '^==[0-9]+==ERROR|^SUMMARY: ' "$log"; then
    result="FAILED: $(find build-fuzz/artifacts/"$target" -type f | tr '\n' ' ')"
    status=1
  fi
  printf '%-14s %14s %10s %10s %s\n' "$target" "${runs:-?}" "${rate:-?}" "$corpus" "$result"
done
if [ "$status" -ne 0 ]; then
  for target in "${targets[@]}"; do
    if grep -q -E '^==[0-9]+==ERROR|^SUMMARY: |deadly signal|Broken' build-fuzz/"$target".log; then
      echo "---- build-fuzz/$target.log (tail) ----"
      tail -n 60 build-fuzz/"$target".log
    fi
  done
  echo "fuzz.sh: FAILED (inputs under build-fuzz/artifacts/; see the top of this script for what to do)" >&2
  exit 1
fi
echo "fuzz.sh: all ${#targets[@]} targets ran ${seconds} s each without a finding"
