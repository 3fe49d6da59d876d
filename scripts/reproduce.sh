#!/usr/bin/env bash
# scripts/reproduce.sh [TABLE...]: train every row of the ML-1M tables of docs/results.md from scratch,
# then print the tables (`euler report`). Each row is one `euler train --seeds ...` into runs/TABLE/ROW;
# run the script again after an interruption and every seed continues from its last checkpoint (a
# finished seed is read from its result.json). Tables (default: p2):
#
#   p2           the literature's protocol: history excluded from the ranking, N = 200, cross-entropy
#                over all items at every position; SASRec, RoPE and EulerFormer, seeds 1, 2, 3.
#                About 30-40 min per seed and model on 2 cores (16-25 s per epoch, 60-100 epochs).
#   p2-ablation  EulerFormer without the contrastive loss, without the phase bias b, without the
#                adaptation (delta fixed at its initial 1, no b), without the input rotary table, and
#                with a vector delta, under p2's settings and seeds. About the same time per row as p2.
#   p1           the paper's protocol (RecBole): history kept in the ranking, N = 50, a loss per
#                prefix, the authors' model settings and batch 4,096, patience 15; one seed. About 40
#                times p2's compute per epoch: several hours per row on 2 cores.
#
# The data must be at ../shared/data/ml-1m/ml-1m.std.txt (see that directory's README: its terms
# forbid redistribution, so it is not in this repository), or set ML1M=path. Needs build/bin/euler
# (bash scripts/demo.sh builds it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

data="${ML1M:-../shared/data/ml-1m/ml-1m.std.txt}"
euler=./build/bin/euler
[ -r "$data" ] || { echo "reproduce.sh: cannot read the ML-1M file '$data' (set ML1M=path)" >&2; exit 1; }
[ -x "$euler" ] || { echo "reproduce.sh: no $euler; build it first (bash scripts/demo.sh)" >&2; exit 1; }
threads="${THREADS:-$(nproc)}"

# row TABLE NAME [euler train flags...]: train one row (all its seeds), unless it is finished.
row() {
  local table=$1 name=$2
  shift 2
  echo "== $table/$name: $euler train $*" >&2
  "$euler" train --data "$data" --min-user 5 --min-item 5 --threads "$threads" --quiet --out "runs/$table/$name" "$@"
}

p2=(--objective all --max-len 200 --heads 1 --dropout 0.1 --attn-dropout 0.1 --batch-size 128 --lr 1e-3
    --epochs 200 --patience 15 --exclude-history --seeds 1,2,3)
p1=(--objective last --max-len 50 --batch-size 4096 --epochs 500 --patience 15 --seeds 2024)

for table in "${@:-p2}"; do
  case "$table" in
    p2)
      row p2 sasrec "${p2[@]}" --pos learned
      row p2 rope "${p2[@]}" --pos rope
      row p2 eulerformer "${p2[@]}" --pos euler
      "$euler" report runs/p2/sasrec runs/p2/rope runs/p2/eulerformer --labels "SASRec,RoPE,EulerFormer" --paired ;;
    p2-ablation)
      row p2 eulerformer "${p2[@]}" --pos euler
      row p2-ablation no-contrastive "${p2[@]}" --pos euler --lamb 0
      row p2-ablation no-bias "${p2[@]}" --pos euler --no-euler-bias
      row p2-ablation no-adaptation "${p2[@]}" --pos euler --no-adaptation
      row p2-ablation no-input-rotary "${p2[@]}" --pos euler --no-input-rotary
      row p2-ablation vector-delta "${p2[@]}" --pos euler --delta-shape vector
      "$euler" report runs/p2/eulerformer runs/p2-ablation/no-contrastive runs/p2-ablation/no-bias \
        runs/p2-ablation/no-adaptation runs/p2-ablation/no-input-rotary runs/p2-ablation/vector-delta \
        --labels "EulerFormer,no contrastive loss,no phase bias b,delta fixed at 1 and no b,no input rotary,vector delta" \
        --paired ;;
    p1)
      row p1 sasrec "${p1[@]}" --pos learned
      row p1 rope "${p1[@]}" --pos rope
      row p1 eulerformer "${p1[@]}" --pos euler
      "$euler" report runs/p1/sasrec runs/p1/rope runs/p1/eulerformer --labels "SASRec,RoPE,EulerFormer" --paired ;;
    *) echo "reproduce.sh: unknown table '$table' (expected p2, p2-ablation or p1)" >&2; exit 2 ;;
  esac
done
