#!/usr/bin/env bash
# bench/compare.sh: euler against PyTorch on the same EulerFormer training step and full-ranking
# inference, both sides on the same threads, alternating in one run, with the ratios printed.
#
#   bash bench/compare.sh                                   # B = 256 and 4096, N = 50, d = 64, 2 threads
#   bash bench/compare.sh --batch 256 --len 50,100,200      # the scaling table's rows (any euler-bench list)
#   ROUNDS=5 bash bench/compare.sh --batch 256              # more alternations (default 3)
#
# Installs what is missing (python3-torch, OpenBLAS with OpenMP, jemalloc) and builds euler-bench in
# build/. PyTorch is run at its best on this machine: Debian's python3-torch with OpenBLAS instead of
# the reference BLAS, on AVX-512 CPUs OPENBLAS_CORETYPE=SkylakeX (OpenBLAS 0.3.21 does not know Zen 4
# and 5, and falls back to its AVX2 kernels there; elsewhere its own detection picks the kernels),
# jemalloc (glibc malloc costs it 10-20% at B = 4096) keeping the pages it frees (its default decay
# cost it up to 3x where page faults are slow), and the same thread count (its default is 1).
# Each round runs euler, then PyTorch with the authors' dropout, then PyTorch with its cheapest masks
# (--dropout-masks pool), every configuration once; a ratio is euler's median over rounds against
# PyTorch's. The raw JSON lines go to bench/compare-<date>.jsonl (git-ignored). Never part of CI.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

threads=2 batches=256,4096 lens=50 dims=64
args=()  # passed to both sides as they are
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --batch) batches=$2; shift 2 ;;
    --len) lens=$2; shift 2 ;;
    --dim) dims=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
rounds=${ROUNDS:-3}

need=()
for p in python3-torch libopenblas0-openmp libjemalloc2; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "compare.sh: installing ${need[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo -E)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${need[@]}" </dev/null
fi
bash scripts/install-deps.sh >/dev/null
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target euler-bench >/dev/null

blas_dir=$(dirname "$(find /usr/lib -path '*openblas-openmp*' -name 'libblas.so.3' | head -n 1)")
jemalloc=$(find /usr/lib -name 'libjemalloc.so.2' | head -n 1)
export OMP_NUM_THREADS=$threads OMP_WAIT_POLICY=passive
# SkylakeX's kernels need AVX-512 (on an AVX2 CPU they would stop with an illegal instruction).
coretype=()
grep -qw avx512f /proc/cpuinfo 2>/dev/null && coretype=(OPENBLAS_CORETYPE=SkylakeX)
# jemalloc keeps the pages it frees (no decay): its default gives large blocks back to the system at
# once, and each step then faults in fresh pages, which on CPU type B cost PyTorch 3x at B = 256 and 7x
# at inference (docs/performance.md). euler reuses its own buffers, so this is PyTorch's best too.
torch_env=(env LD_LIBRARY_PATH="$blas_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "${coretype[@]}"
           LD_PRELOAD="$jemalloc" MALLOC_CONF="dirty_decay_ms:-1,muzzy_decay_ms:-1" OPENBLAS_NUM_THREADS="$threads")
log="bench/compare-$(date +%Y%m%d-%H%M%S).jsonl"
echo "compare.sh: $(nproc) cores, $threads threads, $rounds rounds, B=$batches N=$lens d=$dims ${args[*]}; JSON lines in $log"
echo "compare.sh: PyTorch $("${torch_env[@]}" /usr/bin/python3 -c 'import torch; print(torch.__version__)'), BLAS $blas_dir ${coretype[*]:-(OpenBLAS detects the CPU)}"

# One process per configuration and side, so that each peak RSS is that configuration's own.
for ((r = 1; r <= rounds; ++r)); do
  for D in ${dims//,/ }; do
    for N in ${lens//,/ }; do
      for B in ${batches//,/ }; do
        echo "compare.sh: round $r of $rounds, B=$B N=$N d=$D" >&2
        one=(--batch "$B" --len "$N" --dim "$D" --threads "$threads" "${args[@]}")
        ./build/bench/euler-bench "${one[@]}" >>"$log"
        "${torch_env[@]}" /usr/bin/python3 bench/pytorch_reference.py "${one[@]}" >>"$log"
        "${torch_env[@]}" /usr/bin/python3 bench/pytorch_reference.py "${one[@]}" --dropout-masks pool --gemm 0 --infer 0 >>"$log"
      done
    done
  done
done

/usr/bin/python3 - "$log" <<'EOF'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    side = d["system"] if d["system"] == "euler" else "torch-" + d.get("dropout_masks", "torch")
    runs.setdefault((d["batch"], d["len"], d["dim"]), {}).setdefault(side, []).append(d)
med = lambda rows, key: statistics.median(r[key] for r in rows if key in r) if any(key in r for r in rows) else float("nan")
print()
print("| B | N | d | euler seq/s | PyTorch seq/s | ratio | PyTorch (pool masks) seq/s | ratio | euler users/s | PyTorch users/s | ratio | euler GFLOP/s (of GEMM ceiling) | PyTorch GFLOP/s | euler / PyTorch peak RSS MB |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for (B, N, D), sides in sorted(runs.items()):
    e, t, p = sides.get("euler", []), sides.get("torch-torch", []), sides.get("torch-pool", [])
    es, ts, ps = med(e, "seq_per_s"), med(t, "seq_per_s"), med(p, "seq_per_s")
    eu, tu = med(e, "users_per_s"), med(t, "users_per_s")
    print(f"| {B} | {N} | {D} | {es:.0f} | {ts:.0f} | {es/ts:.2f}x | {ps:.0f} | {es/ps:.2f}x | {eu:.0f} | {tu:.0f} | {eu/tu:.2f}x | "
          f"{med(e, 'gflops'):.1f} ({100*med(e, 'gemm_efficiency'):.0f}% of {med(e, 'gemm_gflops'):.0f}) | {med(t, 'gflops'):.1f} | "
          f"{med(e, 'peak_rss_mb'):.0f} / {med(t, 'peak_rss_mb'):.0f} |")
EOF
