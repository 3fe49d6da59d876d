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
#                with a vector delta, RoPE + SASRec's absolute position table (all four off), and
#                EulerFormer without that table (--no-absolute-positions), under p2's settings and
#                seeds. About the same time per row as p2.
#   ml-100k-p2   p2's settings on ML-100K (../shared/data/ml-100k/u.data, rating >= 3, 10-core, the
#                defaults), patience 30 (939 validation users: noisier curves); about 5 min per seed
#                and model.
#   ml-100k-p2-ablation  p2-ablation's rows on ML-100K with ml-100k-p2's settings; about 5-10 min per
#                seed and row.
#   beauty-p2    p2's protocol on Amazon Beauty (../shared/data/s3rec/Beauty.txt, S3-Rec's 5-core file):
#                N = 50 and dropout 0.5 (SASRec's settings for this sparse data: 8.9 items per user),
#                the rest as p2; SASRec, RoPE and EulerFormer, seeds 1, 2, 3. About 10-20 min per seed
#                and model.
#   p1           the paper's protocol (RecBole): history kept in the ranking, N = 50, a loss per
#                prefix, the authors' model settings, patience 15 epochs; one seed (2024). Batch 256
#                instead of the authors' 4,096: an epoch costs the same, and after one epoch the
#                validation NDCG@10 is 0.083 against 0.045 (3,834 updates instead of 240), so a row
#                converges in far fewer epochs. An epoch is 4-6 minutes on 2 cores (about 15 times a
#                p2 epoch): several hours per row.
#
# The data must be at ../shared/data/ml-1m/ml-1m.std.txt and ../shared/data/ml-100k/u.data (see that
# directory's README: its terms forbid redistribution, so they are not in this repository), or set
# ML1M=, ML100K= and BEAUTY=path. Needs build/bin/euler (bash scripts/demo.sh builds it; EULER=path to use
# another); THREADS (default: every core) sets --threads.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ml1m="${ML1M:-../shared/data/ml-1m/ml-1m.std.txt}"
ml100k="${ML100K:-../shared/data/ml-100k/u.data}"
beauty="${BEAUTY:-../shared/data/s3rec/Beauty.txt}"
euler="${EULER:-./build/bin/euler}"
[ -x "$euler" ] || { echo "reproduce.sh: no $euler; build it first (bash scripts/demo.sh)" >&2; exit 1; }
threads="${THREADS:-$(nproc)}"

# row TABLE NAME DATA [euler train flags...]: train one row (all its seeds); a finished seed is read back.
row() {
  local table=$1 name=$2 data=$3
  shift 3
  [ -r "$data" ] || { echo "reproduce.sh: cannot read '$data' (set ML1M=, ML100K= or BEAUTY=)" >&2; exit 1; }
  echo "== $table/$name: $euler train --data $data $*" >&2
  "$euler" train --data "$data" --threads "$threads" --quiet --out "runs/$table/$name" "$@"
}

# ML-1M std is already 5-core: --min-user 5 --min-item 5 removes nothing (the default 10-core would).
# ML-100K keeps the defaults (rating >= 3, 10-core).
ml1m_p2=("$ml1m" --min-user 5 --min-item 5 --patience 15)
ml100k_p2=("$ml100k" --patience 30)
p2=(--objective all --max-len 200 --heads 1 --dropout 0.1 --attn-dropout 0.1 --batch-size 128 --lr 1e-3
    --epochs 200 --exclude-history --seeds 1,2,3)
# Beauty: S3-Rec's file is already 5-core (the filter removes nothing); N = 50, dropout 0.5.
beauty_p2=("$beauty" --min-user 5 --min-item 5 --patience 15 --objective all --max-len 50 --heads 1
    --dropout 0.5 --attn-dropout 0.5 --batch-size 128 --lr 1e-3 --epochs 200 --exclude-history --seeds 1,2,3)
p1=("$ml1m" --min-user 5 --min-item 5 --objective last --max-len 50 --batch-size 256 --epochs 500 --patience 15
    --seeds 2024)

for table in "${@:-p2}"; do
  case "$table" in
    p2)
      row p2 sasrec "${ml1m_p2[@]}" "${p2[@]}" --pos learned
      row p2 rope "${ml1m_p2[@]}" "${p2[@]}" --pos rope
      row p2 eulerformer "${ml1m_p2[@]}" "${p2[@]}" --pos euler
      "$euler" report runs/p2/sasrec runs/p2/rope runs/p2/eulerformer --labels "SASRec,RoPE,EulerFormer" --paired ;;
    p2-ablation)
      row p2 eulerformer "${ml1m_p2[@]}" "${p2[@]}" --pos euler
      row p2-ablation no-contrastive "${ml1m_p2[@]}" "${p2[@]}" --pos euler --lamb 0
      row p2-ablation no-bias "${ml1m_p2[@]}" "${p2[@]}" --pos euler --no-euler-bias
      row p2-ablation no-adaptation "${ml1m_p2[@]}" "${p2[@]}" --pos euler --no-adaptation
      row p2-ablation no-input-rotary "${ml1m_p2[@]}" "${p2[@]}" --pos euler --no-input-rotary
      row p2-ablation vector-delta "${ml1m_p2[@]}" "${p2[@]}" --pos euler --delta-shape vector
      row p2-ablation rope-plus-absolute "${ml1m_p2[@]}" "${p2[@]}" --pos euler --no-adaptation --no-input-rotary --lamb 0
      row p2-ablation no-absolute-positions "${ml1m_p2[@]}" "${p2[@]}" --pos euler --no-absolute-positions
      row p2 rope "${ml1m_p2[@]}" "${p2[@]}" --pos rope
      "$euler" report runs/p2/eulerformer runs/p2-ablation/no-contrastive runs/p2-ablation/no-bias \
        runs/p2-ablation/no-adaptation runs/p2-ablation/no-input-rotary runs/p2-ablation/vector-delta \
        runs/p2-ablation/rope-plus-absolute runs/p2-ablation/no-absolute-positions runs/p2/rope \
        --labels "EulerFormer,no contrastive loss,no phase bias b,delta fixed at 1 and no b,no input rotary,vector delta,RoPE + absolute positions,EulerFormer without absolute positions,RoPE" \
        --paired ;;
    ml-100k-p2)
      row ml-100k-p2 sasrec "${ml100k_p2[@]}" "${p2[@]}" --pos learned
      row ml-100k-p2 rope "${ml100k_p2[@]}" "${p2[@]}" --pos rope
      row ml-100k-p2 eulerformer "${ml100k_p2[@]}" "${p2[@]}" --pos euler
      "$euler" report runs/ml-100k-p2/sasrec runs/ml-100k-p2/rope runs/ml-100k-p2/eulerformer \
        --labels "SASRec,RoPE,EulerFormer" --paired ;;
    ml-100k-p2-ablation)
      row ml-100k-p2 eulerformer "${ml100k_p2[@]}" "${p2[@]}" --pos euler
      row ml-100k-p2-ablation no-contrastive "${ml100k_p2[@]}" "${p2[@]}" --pos euler --lamb 0
      row ml-100k-p2-ablation no-bias "${ml100k_p2[@]}" "${p2[@]}" --pos euler --no-euler-bias
      row ml-100k-p2-ablation no-adaptation "${ml100k_p2[@]}" "${p2[@]}" --pos euler --no-adaptation
      row ml-100k-p2-ablation no-input-rotary "${ml100k_p2[@]}" "${p2[@]}" --pos euler --no-input-rotary
      row ml-100k-p2-ablation vector-delta "${ml100k_p2[@]}" "${p2[@]}" --pos euler --delta-shape vector
      # All four off: RoPE's rotation plus SASRec's absolute position table, which EulerFormer keeps.
      row ml-100k-p2-ablation rope-plus-absolute "${ml100k_p2[@]}" "${p2[@]}" --pos euler --no-adaptation \
        --no-input-rotary --lamb 0
      # EulerFormer without that table: positions only through the rotations, as in RoPE.
      row ml-100k-p2-ablation no-absolute-positions "${ml100k_p2[@]}" "${p2[@]}" --pos euler --no-absolute-positions
      row ml-100k-p2 rope "${ml100k_p2[@]}" "${p2[@]}" --pos rope
      "$euler" report runs/ml-100k-p2/eulerformer runs/ml-100k-p2-ablation/no-contrastive \
        runs/ml-100k-p2-ablation/no-bias runs/ml-100k-p2-ablation/no-adaptation \
        runs/ml-100k-p2-ablation/no-input-rotary runs/ml-100k-p2-ablation/vector-delta \
        runs/ml-100k-p2-ablation/rope-plus-absolute runs/ml-100k-p2-ablation/no-absolute-positions runs/ml-100k-p2/rope \
        --labels "EulerFormer,no contrastive loss,no phase bias b,delta fixed at 1 and no b,no input rotary,vector delta,RoPE + absolute positions,EulerFormer without absolute positions,RoPE" \
        --paired ;;
    beauty-p2)
      row beauty-p2 sasrec "${beauty_p2[@]}" --pos learned
      row beauty-p2 rope "${beauty_p2[@]}" --pos rope
      row beauty-p2 eulerformer "${beauty_p2[@]}" --pos euler
      "$euler" report runs/beauty-p2/sasrec runs/beauty-p2/rope runs/beauty-p2/eulerformer \
        --labels "SASRec,RoPE,EulerFormer" --paired ;;
    p1)
      row p1 sasrec "${p1[@]}" --pos learned
      row p1 rope "${p1[@]}" --pos rope
      row p1 eulerformer "${p1[@]}" --pos euler
      "$euler" report runs/p1/sasrec runs/p1/rope runs/p1/eulerformer --labels "SASRec,RoPE,EulerFormer" --paired ;;
    *) echo "reproduce.sh: unknown table '$table' (expected p2, p2-ablation, ml-100k-p2, ml-100k-p2-ablation, beauty-p2 or p1)" >&2; exit 2 ;;
  esac
done
