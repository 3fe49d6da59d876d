#!/usr/bin/env bash
# tests/install_deps_test.sh: scripts/install-deps.sh on systems this machine is not, with stand-ins
# for the package tools (run by the ctest test install_deps_script).
#   1. an unknown system with everything present goes on (exit 0);
#   2. an unknown system missing headers names them and stops (exit 1);
#   3. Debian as a non-root user with one package missing: says it uses sudo, installs only that one;
#   4. Fedora the same through dnf.
set -uo pipefail
script="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/scripts/install-deps.sh"
fail() { echo "install_deps_test: $*" >&2; exit 1; }

out=$(EULER_DEPS_OS=other bash "$script" 2>&1) || fail "1: exit $? on this machine: $out"
[[ $out == *"all present"* ]] || fail "1: $out"

out=$(EULER_DEPS_OS=other EULER_DEPS_INCLUDE_DIRS=/nonexistent bash "$script" 2>&1)
[ $? -eq 1 ] || fail "2: expected exit 1: $out"
[[ $out == *"doctest (doctest/doctest.h)"* && $out == *"Eigen 3.4"* ]] || fail "2: $out"

stubs=$(mktemp -d)
trap 'rm -rf "$stubs"' EXIT
cat > "$stubs/id" <<'STUB'
#!/bin/sh
echo 1000
STUB
cat > "$stubs/sudo" <<'STUB'
#!/bin/sh
[ "$1" = -E ] && shift
exec "$@"
STUB
for tool in dpkg-query rpm; do  # every package installed except the doctest one
  printf '#!/bin/sh\ncase "$*" in *doctest*) exit 1 ;; esac\n%s\n' \
    "$([ $tool = dpkg-query ] && echo "echo 'install ok installed'")" > "$stubs/$tool"
done
for tool in apt-get dnf; do
  printf '#!/bin/sh\necho "%s $*" >> "%s/calls"\n' "$tool" "$stubs" > "$stubs/$tool"
done
chmod +x "$stubs"/*

out=$(PATH="$stubs:$PATH" EULER_DEPS_OS=debian bash "$script" 2>&1) || fail "3: exit $?: $out"
[[ $out == *"installing doctest-dev (debian)"* && $out == *"running with sudo: apt-get install"* ]] || fail "3: $out"
grep -q "^apt-get install -y -q --no-install-recommends doctest-dev$" "$stubs/calls" || fail "3: calls: $(cat "$stubs/calls")"

rm -f "$stubs/calls"
out=$(PATH="$stubs:$PATH" EULER_DEPS_OS=fedora bash "$script" 2>&1) || fail "4: exit $?: $out"
grep -q "^dnf install -y doctest-devel$" "$stubs/calls" || fail "4: $out; calls: $(cat "$stubs/calls" 2>/dev/null)"
echo "install_deps_test: ok"
