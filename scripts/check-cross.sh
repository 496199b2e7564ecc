#!/usr/bin/env bash
# `npm run lint:cross`: clippy with -D warnings of both crates, every target kind
# (lib, tests, benches, examples), for each release target this machine cannot
# build and run itself: aarch64-apple-darwin and x86_64-apple-darwin (no macOS
# machine or linker here), x86_64-pc-windows-msvc and aarch64-pc-windows-msvc (the
# targets the release builds for Windows; test:windows builds and runs windows-gnu),
# and aarch64-unknown-linux-musl (Alpine on arm64). rustup cannot download targets
# here, so Debian's rustc-web (1.96) builds std for them from its std sources
# (-Zbuild-std, check only). Installs the toolchain with apt when it is missing.
#
# Usage: scripts/check-cross.sh [target ...]   (default: all five)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/cargo ] || [ ! -x /usr/bin/cargo-clippy ] || [ ! -d /usr/lib/rustlib/src/rust/library ]; then
  echo "== installing rustc-web, cargo-web, rust-web-src, rust-web-clippy (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq rustc-web cargo-web rust-web-src rust-web-clippy >/dev/null
fi
# ring (the Linux AEADs) runs its C/assembly build even for clippy: for arm64 musl
# Debian's aarch64 gcc compiles those objects (a check links nothing, so its glibc
# headers do no harm; the release links with zig's musl).
if ! command -v aarch64-linux-gnu-gcc >/dev/null; then
  echo "== installing gcc-aarch64-linux-gnu (apt)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-aarch64-linux-gnu >/dev/null
fi
export CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc AR_aarch64_unknown_linux_musl=aarch64-linux-gnu-ar
# /usr/bin first, so that cargo runs Debian's cargo-clippy and clippy-driver (1.96,
# matching the std sources), not rustup's.
export PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
target_dir="${COLDPAGE_CROSS_TARGET_DIR:-${HOME}/.cache/coldpage-cross-target}"
sub=clippy
status=0
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(aarch64-apple-darwin x86_64-apple-darwin x86_64-pc-windows-msvc aarch64-pc-windows-msvc aarch64-unknown-linux-musl)
fi
for target in "${targets[@]}"; do
  start=$(date +%s)
  if /usr/bin/cargo "$sub" -q -Zbuild-std=std,panic_abort --target "$target" --target-dir "$target_dir" \
      --workspace --all-targets -- -D warnings; then
    echo "== $target: cargo $sub clean ($(( $(date +%s) - start )) s)"
  else
    echo "== $target: cargo $sub FAILED"
    status=1
  fi
done
exit $status
