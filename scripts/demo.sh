#!/usr/bin/env bash
# scripts/demo.sh [args...]: install deps, configure a Release build (build/, -march=native), build
# only what the main job needs, run it. The main job is the last line; args go to it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DEULER_SANITIZE=OFF

# job <cmake target> <program under build/> [args...]: build that target, then run the program.
job() {
  local target=$1 program=$2
  shift 2
  cmake --build build -j "$(nproc)" --target "$target"
  echo "+ build/$program $*"
  "./build/$program" "$@"
}

# The main job: train EulerFormer on the bundled synthetic data (data/README.md) and print the
# validation and test metrics of the best epoch (about a minute on 2 cores). Extra arguments are
# passed to `euler train` (e.g. --pos rope, --threads 1).
job euler_cli bin/euler train --data data/synthetic.txt --objective all --max-len 20 \
  --dropout 0.2 --attn-dropout 0.2 --batch-size 128 --lr 2e-3 --epochs 40 --patience 5 "$@"
