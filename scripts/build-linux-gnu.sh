#!/usr/bin/env bash
# Builds the release binary for a Linux gnu target against the glibc floor, the
# way the release job in .github/workflows/CI.yml does (it runs this script):
# cargo-zigbuild with zig, both from PyPI (`cargo-zigbuild`, `ziglang`), with the
# target pinned to glibc $GLIBC_FLOOR (`x86_64-unknown-linux-gnu.2.17`), so the
# addon loads on every glibc from 2.17 on (RHEL 7, Debian 9, Amazon Linux 2, ...).
# napi-rs's own template does the same with `napi build --use-napi-cross`; that
# path is not used because `@napi-rs/cross-toolchain` 1.0.5 downloads
# `@napi-rs/cross-toolchain-x64-target-x86_64@1.0.5`, a version the npm registry
# does not have (it has 0.0.16 and 1.0.0), so that build fails before compiling.
#
# The tools are installed once into a virtualenv under
# ${XDG_CACHE_HOME:-~/.cache}/coldpage-zigbuild (idempotent; versions pinned below).
#
# Usage: scripts/build-linux-gnu.sh <rust-target> [--target-dir DIR] [--out DIR]
#   <rust-target>   x86_64-unknown-linux-gnu or aarch64-unknown-linux-gnu
#   --target-dir    cargo's target dir (default: target/)
#   --out           where coldpage.<platform>.node goes (default: the repo root)
# Env: GLIBC_FLOOR (default 2.17).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GLIBC_FLOOR=${GLIBC_FLOOR:-2.17}
CARGO_ZIGBUILD_VERSION=0.24.1
ZIGLANG_VERSION=0.14.1
CACHE=${COLDPAGE_ZIGBUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coldpage-zigbuild}

target=${1:?usage: scripts/build-linux-gnu.sh <rust-target> [--target-dir DIR] [--out DIR]}
shift
target_dir=$ROOT/target
out=$ROOT
while [ $# -gt 0 ]; do
  case "$1" in
    --target-dir) shift; target_dir=${1:?--target-dir needs a directory} ;;
    --out) shift; out=${1:?--out needs a directory} ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
case "$target" in
  x86_64-unknown-linux-gnu) platform=linux-x64-gnu ;;
  aarch64-unknown-linux-gnu) platform=linux-arm64-gnu ;;
  *) echo "build-linux-gnu.sh: $target is not a Linux gnu target this script builds" >&2; exit 2 ;;
esac

# The tools: one virtualenv per pinned version pair, reused while it is complete.
venv=$CACHE/venv-$CARGO_ZIGBUILD_VERSION-zig$ZIGLANG_VERSION
if [ ! -x "$venv/bin/cargo-zigbuild" ] || ! "$venv/bin/python" -m ziglang version >/dev/null 2>&1; then
  echo "== installing cargo-zigbuild $CARGO_ZIGBUILD_VERSION and ziglang $ZIGLANG_VERSION (PyPI) into $venv"
  rm -rf "$venv"
  mkdir -p "$CACHE"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check \
    "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION" "ziglang==$ZIGLANG_VERSION"
fi
# cargo-zigbuild finds zig as `python -m ziglang` of the python first on PATH.
export PATH="$venv/bin:$PATH"
echo "== $(cargo-zigbuild --version), zig $(python -m ziglang version), $(cargo --version)"

echo "== cargo zigbuild --release -p coldpage-node --target $target.$GLIBC_FLOOR --target-dir $target_dir"
cargo-zigbuild zigbuild --release --locked -p coldpage-node --target "$target.$GLIBC_FLOOR" --target-dir "$target_dir"
mkdir -p "$out"
cp "$target_dir/$target/release/libcoldpage_node.so" "$out/coldpage.$platform.node"
echo "== wrote $out/coldpage.$platform.node"
