#!/usr/bin/env bash
# bench/mpi_scaling.sh: data parallelism over MPI against threads, side by side in one run.
#
# Trains the same model for one epoch as 1 process x 2 threads and as 2 processes x 1 thread (mpirun),
# alternating, REPS times each, on the same global batch, and prints each run's epoch time (training
# steps only, from log.jsonl), the median of each, their ratio, and the share of the 2-process epoch
# spent in the sums over the ranks (sum_seconds: the all-reduce, waiting for the slower rank included).
# Also prints the model's parameter count (the bytes each step reduces: 4 per parameter), which
# docs/scaling.md's model of larger runs starts from.
#
#   bash bench/mpi_scaling.sh                       # ML-1M std, P2's model (N 200, batch 128, all positions)
#   bash bench/mpi_scaling.sh DATA "FLAGS" REPS     # another file, other model flags
#
# Needs build/bin/euler built with MPI (libopenmpi-dev; EULER_MPI=AUTO finds it). Never fails on timing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

data="${1:-../shared/data/ml-1m/ml-1m.std.txt}"
flags="${2:---min-user 5 --min-item 5 --objective all --max-len 200 --heads 1 --dropout 0.1 --attn-dropout 0.1 --batch-size 128 --lr 1e-3 --exclude-history}"
reps="${3:-3}"
euler=./build/bin/euler
[ -x "$euler" ] || { echo "mpi_scaling: build $euler first" >&2; exit 2; }
[ -f "$data" ] || { echo "mpi_scaling: no data file $data" >&2; exit 2; }
root=(); [ "$(id -u)" = 0 ] && root=(--allow-run-as-root)
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

field() { python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).readline()).get(sys.argv[2], 0))" "$1" "$2"; }
one=() two=() sums=()
for rep in $(seq 1 "$reps"); do
  rm -rf "$scratch/one" "$scratch/two"
  # shellcheck disable=SC2086
  "$euler" train --data "$data" $flags --epochs 1 --threads 2 --quiet --out "$scratch/one" > /dev/null
  # shellcheck disable=SC2086
  mpirun "${root[@]}" --oversubscribe --bind-to none -np 2 "$euler" train --data "$data" $flags --epochs 1 --threads 1 --quiet \
    --out "$scratch/two" > /dev/null
  one+=("$(field "$scratch/one/log.jsonl" seconds)")
  two+=("$(field "$scratch/two/log.jsonl" seconds)")
  sums+=("$(field "$scratch/two/log.jsonl" sum_seconds)")
  echo "rep $rep: 1 process x 2 threads ${one[-1]} s, 2 processes x 1 thread ${two[-1]} s (sums ${sums[-1]} s)"
done
params="$(python3 - "$scratch/one/best.safetensors" <<'EOF'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
total = 0
for name, t in header.items():
    if name == "__metadata__" or not name.startswith(("item_", "position_", "rotary_", "LayerNorm", "trm_")) or name.endswith(".alpha"):
        continue
    n = 1
    for d in t["shape"]:
        n *= d
    total += n
print(total)
EOF
)"
python3 - "$params" "${one[*]}" "${two[*]}" "${sums[*]}" <<'EOF'
import statistics, sys
params = int(sys.argv[1])
one, two, sums = ([float(x) for x in a.split()] for a in sys.argv[2:5])
m1, m2, ms = statistics.median(one), statistics.median(two), statistics.median(sums)
print(f"parameters {params:,} ({params * 4 / 1e6:.2f} MB reduced per step)")
print(f"median epoch: 1 process x 2 threads {m1:.2f} s, 2 processes x 1 thread {m2:.2f} s; "
      f"ratio (2x1 time / 1x2 time) {m2 / m1:.3f}; sums {ms:.2f} s = {100 * ms / m2:.1f}% of the 2-process epoch")
EOF
