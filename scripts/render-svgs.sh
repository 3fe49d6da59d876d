#!/usr/bin/env bash
# scripts/render-svgs.sh DIR...: render every SVG under the directories to PNG (beside it) with
# rsvg-convert (Debian: librsvg2-bin), and check each picture. Useful by hand too:
#
#     bash scripts/render-svgs.sh run/plots gradient_study     # then open the .png files
#
# A file fails when rsvg-convert rejects it or prints any warning, when the PNG's size in pixels is not
# the SVG's width x height, or when the PNG is blank: a picture with axes, text and data compresses to
# several times the bytes of an empty white page of the same size, so a PNG under 3x that is called
# blank. A directory without any SVG fails too (its producer wrote nothing).
#
# Exit status: 0 all good, 1 a failure, 77 rsvg-convert is missing (ctest counts 77 as skipped; when
# CI=true a missing rsvg-convert is a failure instead, since scripts/install-deps.sh installs it).
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: render-svgs.sh DIR..." >&2
  exit 2
fi
if ! command -v rsvg-convert >/dev/null 2>&1; then
  if [ "${CI:-}" = true ]; then
    echo "render-svgs: rsvg-convert is not installed (apt-get install librsvg2-bin; scripts/install-deps.sh does)" >&2
    exit 1
  fi
  echo "render-svgs: rsvg-convert is not installed (librsvg2-bin); skipping"
  exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Bytes 16..23 of a PNG: width and height, big-endian (the IHDR chunk).
png_size() {
  local hex
  hex=$(od -An -tx1 -j16 -N8 "$1" | tr -d ' \n')
  echo "$((16#${hex:0:8}))x$((16#${hex:8:8}))"
}
# The PNG of an empty white page of the given size, rendered once per size.
blank_bytes() {
  local w=$1 h=$2 file="$tmp/blank_${1}x${2}"
  if [ ! -f "$file.png" ]; then
    printf '<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s"><rect width="%s" height="%s" fill="#ffffff"/></svg>\n' \
      "$w" "$h" "$w" "$h" >"$file.svg"
    rsvg-convert -o "$file.png" "$file.svg"
  fi
  stat -c %s "$file.png"
}

failed=0
checked=0
for dir in "$@"; do
  if [ ! -d "$dir" ]; then
    echo "render-svgs: FAIL $dir: no such directory"
    failed=$((failed + 1))
    continue
  fi
  mapfile -t files < <(find "$dir" -name '*.svg' -type f | sort)
  if [ ${#files[@]} -eq 0 ]; then
    echo "render-svgs: FAIL $dir: no SVG files"
    failed=$((failed + 1))
    continue
  fi
  for svg in "${files[@]}"; do
    png="${svg%.svg}.png"
    checked=$((checked + 1))
    if ! messages=$(rsvg-convert -o "$png" "$svg" 2>&1) || [ -n "$messages" ]; then
      echo "render-svgs: FAIL $svg: rsvg-convert: ${messages:-failed}"
      failed=$((failed + 1))
      continue
    fi
    # The root element's width and height (the first ones in the file; euler writes whole pixels).
    w=$(grep -o -m1 '<svg [^>]*' "$svg" | grep -o ' width="[0-9.]*"' | head -n1 | tr -dc '0-9.')
    h=$(grep -o -m1 '<svg [^>]*' "$svg" | grep -o ' height="[0-9.]*"' | head -n1 | tr -dc '0-9.')
    w=${w%.*}
    h=${h%.*}
    if [ "$(od -An -tx1 -N8 "$png" | tr -d ' \n')" != "89504e470d0a1a0a" ]; then
      echo "render-svgs: FAIL $svg: $png is not a PNG"
      failed=$((failed + 1))
      continue
    fi
    size=$(png_size "$png")
    if [ "$size" != "${w}x${h}" ]; then
      echo "render-svgs: FAIL $svg: PNG is $size pixels, the SVG says ${w}x${h}"
      failed=$((failed + 1))
      continue
    fi
    bytes=$(stat -c %s "$png")
    blank=$(blank_bytes "$w" "$h")
    if [ "$bytes" -lt $((3 * blank)) ]; then
      echo "render-svgs: FAIL $svg: the PNG looks blank ($bytes bytes; an empty page of this size is $blank)"
      failed=$((failed + 1))
      continue
    fi
    echo "render-svgs: ok $svg -> $size, $bytes bytes"
  done
done

echo "render-svgs: $checked SVG files, $failed failures"
[ "$failed" -eq 0 ]
