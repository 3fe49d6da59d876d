#!/usr/bin/env bash
# scripts/install-deps.sh [--fuzz]: install the Debian 12 packages euler needs to build and test, if
# missing. With --fuzz, also clang and libFuzzer (for scripts/fuzz.sh only; the quick start needs
# neither). Checks each with dpkg first; runs apt-get (update + install) only when something is
# missing. Non-interactive; uses sudo only when not root.
set -euo pipefail

packages=(
  build-essential      # g++ 12 (libasan/libubsan for --sanitize), make
  cmake                # >= 3.20 (Debian 12: 3.25)
  libeigen3-dev        # Eigen 3.4
  doctest-dev          # tests (+ doctest_discover_tests)
  libcxxopts-dev       # command-line programs
  nlohmann-json3-dev   # JSON configs and reports
  librsvg2-bin         # rsvg-convert: the tests render every SVG euler writes to PNG
)
for arg in "$@"; do
  case "$arg" in
    --fuzz) packages+=(
      clang-14             # the fuzz targets' compiler (-fsanitize=fuzzer)
      libclang-rt-14-dev   # libFuzzer and clang's ASan/UBSan runtimes
    ) ;;
    *) echo "install-deps.sh: unknown argument '$arg' (expected --fuzz)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all present (${packages[*]})"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo -E)
  else
    echo "install-deps: not root and no sudo; please install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
