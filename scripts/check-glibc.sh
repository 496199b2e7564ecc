#!/usr/bin/env bash
# `npm run check:glibc`: builds the linux-x64-gnu binary exactly as the release job
# does (scripts/build-linux-gnu.sh: cargo-zigbuild, glibc pinned to the floor), into
# its own target dir (target/glibc-floor) and a temp output dir, so the normal
# build and the root coldpage.linux-x64-gnu.node are left alone. Then lists the
# glibc symbol versions the binary needs (objdump -T), prints the highest, and
# fails when it is above the floor (2.17, the one napi-rs's template builds for).
#
# Usage: scripts/check-glibc.sh [rust-target]   (default x86_64-unknown-linux-gnu)
#        scripts/check-glibc.sh --addon FILE   check a binary built otherwise (no build),
#                                              e.g. the root one `npm run build` makes
# Env: GLIBC_FLOOR (default 2.17).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export GLIBC_FLOOR=${GLIBC_FLOOR:-2.17}
target=${1:-x86_64-unknown-linux-gnu}
addon=
if [ "$target" = --addon ]; then
  addon=${2:?--addon needs a file}
  target="$(basename "$addon")"
fi
start=$(date +%s)

if ! command -v objdump >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "== installing binutils (apt) for objdump"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binutils >/dev/null
  else
    echo "check:glibc needs objdump (binutils)" >&2
    exit 1
  fi
fi

if [ -z "$addon" ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
  bash "$ROOT/scripts/build-linux-gnu.sh" "$target" --target-dir "$ROOT/target/glibc-floor" --out "$out"
  addon=$(ls "$out"/coldpage.*.node)
fi

echo "== objdump -T $(basename "$addon") | grep -o 'GLIBC_[0-9.]*' | sort -uV"
versions=$(objdump -T "$addon" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/^GLIBC_//' | sort -uV)
echo "$versions" | sed 's/^/   GLIBC_/' | tr '\n' ' '
echo
highest=$(echo "$versions" | tail -1)
above=$(printf '%s\n%s\n' "$GLIBC_FLOOR" "$highest" | sort -V | tail -1)
elapsed=$(( $(date +%s) - start ))
if [ -z "$highest" ]; then
  echo "check:glibc: no GLIBC_ symbol versions in $(basename "$addon"): not a glibc binary?" >&2
  exit 1
elif [ "$above" != "$GLIBC_FLOOR" ]; then
  echo "check:glibc FAILED: $(basename "$addon") needs GLIBC_$highest, above the floor GLIBC_$GLIBC_FLOOR ($elapsed s)" >&2
  objdump -T "$addon" | grep "GLIBC_$highest" >&2
  exit 1
fi
echo "check:glibc: highest symbol version GLIBC_$highest, floor GLIBC_$GLIBC_FLOOR: ok ($target, $elapsed s)"
