#!/usr/bin/env bash
# scripts/install-deps.sh [--fuzz]: install what euler needs to build and test, if missing. With
# --fuzz, also clang and libFuzzer (for scripts/fuzz.sh only; the quick start needs neither).
#
# The system is read from /etc/os-release (or uname on macOS):
#   Debian, Ubuntu (apt)   checks each package with dpkg; apt-get update + install only what is missing
#   Fedora, RHEL (dnf)     checks with rpm -q; dnf install
#   Arch (pacman)          checks with pacman -Q; pacman -S --needed
#   macOS (Homebrew)       checks with brew list; brew install (no sudo)
#   anything else          looks for the compiler, cmake and the headers itself; when something is
#                          missing it names what to install and stops, otherwise it goes on.
# Non-interactive. Before running a command as root through sudo (only when not root) it says so.
# EULER_DEPS_OS=debian|fedora|arch|macos|other overrides the detection (the tests use 'other').
set -euo pipefail

fuzz=0
for arg in "$@"; do
  case "$arg" in
    --fuzz) fuzz=1 ;;
    *) echo "install-deps.sh: unknown argument '$arg' (expected --fuzz)" >&2; exit 2 ;;
  esac
done

detect_os() {
  if [ "$(uname -s)" = Darwin ]; then echo macos; return; fi
  local id="" like=""
  if [ -r /etc/os-release ]; then
    id=$(. /etc/os-release && echo "${ID:-}")
    like=$(. /etc/os-release && echo "${ID_LIKE:-}")
  fi
  case " $id $like " in
    *" debian "*|*" ubuntu "*) echo debian ;;
    *" fedora "*|*" rhel "*|*" centos "*) echo fedora ;;
    *" arch "*) echo arch ;;
    *) echo other ;;
  esac
}
os="${EULER_DEPS_OS:-$(detect_os)}"

# What euler needs, per system: a C++20 compiler and make, CMake >= 3.20, Eigen 3.4, doctest (tests),
# cxxopts (the command-line programs), nlohmann-json (configs, reports), yaml-cpp (RecBole's YAML
# configs for euler train --config), OpenMPI (mpirun -np P euler train; optional, found by EULER_MPI=AUTO,
# and the tests run it), rsvg-convert (the tests
# render every SVG euler writes to PNG), pkg-config (a test builds against the installed euler.pc); for --fuzz clang and its libFuzzer/sanitizer runtimes.
case "$os" in
  debian)
    packages=(build-essential cmake pkgconf libeigen3-dev doctest-dev libcxxopts-dev nlohmann-json3-dev libyaml-cpp-dev libopenmpi-dev openmpi-bin librsvg2-bin)
    [ $fuzz = 1 ] && packages+=(clang-14 libclang-rt-14-dev)
    installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; } ;;
  fedora)
    packages=(gcc-c++ make cmake pkgconf-pkg-config eigen3-devel doctest-devel cxxopts-devel json-devel yaml-cpp-devel openmpi-devel librsvg2-tools)
    [ $fuzz = 1 ] && packages+=(clang compiler-rt)
    installed() { rpm -q "$1" >/dev/null 2>&1; } ;;
  arch)
    packages=(base-devel cmake pkgconf eigen doctest cxxopts nlohmann-json yaml-cpp openmpi librsvg)
    [ $fuzz = 1 ] && packages+=(clang compiler-rt)
    installed() { pacman -Q "$1" >/dev/null 2>&1; } ;;
  macos)
    packages=(cmake pkgconf eigen doctest cxxopts nlohmann-json yaml-cpp open-mpi librsvg)
    [ $fuzz = 1 ] && packages+=(llvm)
    installed() { brew list --versions "$1" >/dev/null 2>&1; } ;;
  other)
    # No package manager we know: look for each piece where compilers look for them.
    include_dirs=(${EULER_DEPS_INCLUDE_DIRS:-/usr/include /usr/local/include /opt/homebrew/include /opt/local/include})
    header() {
      local d
      for d in "${include_dirs[@]}"; do [ -e "$d/$1" ] && return 0; done
      return 1
    }
    missing=()
    command -v c++ >/dev/null 2>&1 || missing+=("a C++20 compiler (c++: g++ >= 11 or clang++ >= 14)")
    command -v make >/dev/null 2>&1 || missing+=("make")
    command -v cmake >/dev/null 2>&1 || missing+=("cmake >= 3.20")
    header eigen3/Eigen/Core || header Eigen/Core || missing+=("Eigen 3.4 (eigen3/Eigen/Core)")
    header doctest/doctest.h || missing+=("doctest (doctest/doctest.h)")
    header cxxopts.hpp || missing+=("cxxopts (cxxopts.hpp)")
    header nlohmann/json.hpp || missing+=("nlohmann-json (nlohmann/json.hpp)")
    header yaml-cpp/yaml.h || missing+=("yaml-cpp (yaml-cpp/yaml.h)")
    command -v rsvg-convert >/dev/null 2>&1 || missing+=("rsvg-convert (librsvg)")
    command -v pkg-config >/dev/null 2>&1 || command -v pkgconf >/dev/null 2>&1 || missing+=("pkg-config (pkgconf)")
    if [ $fuzz = 1 ]; then command -v clang++ >/dev/null 2>&1 || missing+=("clang++ with libFuzzer"); fi
    if [ ${#missing[@]} -ne 0 ]; then
      echo "install-deps: this system is not one the script knows (Debian/Ubuntu, Fedora, Arch, macOS);" >&2
      echo "install-deps: please install, then run again:" >&2
      printf '  - %s\n' "${missing[@]}" >&2
      exit 1
    fi
    echo "install-deps: all present (compiler, make, cmake, Eigen, doctest, cxxopts, nlohmann-json, yaml-cpp, rsvg-convert)"
    exit 0 ;;
  *) echo "install-deps.sh: EULER_DEPS_OS must be debian, fedora, arch, macos or other, got '$os'" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all present (${packages[*]})"
  exit 0
fi

# as_root CMD...: run CMD as root, through sudo when not root (saying so first).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    echo "install-deps: running with sudo: $*"
    sudo -E "$@"
  else
    echo "install-deps: not root and no sudo; please install: ${missing[*]}" >&2
    exit 1
  fi
}

echo "install-deps: installing ${missing[*]} ($os)"
case "$os" in
  debian)
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -q
    as_root apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null ;;
  fedora) as_root dnf install -y "${missing[@]}" </dev/null ;;
  arch) as_root pacman -S --needed --noconfirm "${missing[@]}" </dev/null ;;
  macos) brew install "${missing[@]}" </dev/null ;;
esac
