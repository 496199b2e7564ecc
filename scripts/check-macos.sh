#!/usr/bin/env bash
# `npm run lint:macos`: clippy with -D warnings of both crates, every target kind
# (lib, tests, benches, examples), for aarch64-apple-darwin and x86_64-apple-darwin.
# No macOS machine or linker here: Debian's rustc-web (1.96) with its std sources
# builds std for those targets (-Zbuild-std, check only). Installs the toolchain
# with apt when it is missing. Also checks x86_64-pc-windows-msvc the same way, the
# target the release builds for Windows (test:windows builds and runs windows-gnu).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/cargo ] || [ ! -x /usr/bin/cargo-clippy ] || [ ! -d /usr/lib/rustlib/src/rust/library ]; then
  echo "== installing rustc-web, cargo-web, rust-web-src, rust-web-clippy (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq rustc-web cargo-web rust-web-src rust-web-clippy >/dev/null
fi
# /usr/bin first, so that cargo runs Debian's cargo-clippy and clippy-driver (1.96,
# matching the std sources), not rustup's.
export PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
target_dir="${COLDPAGE_CROSS_TARGET_DIR:-${HOME}/.cache/coldpage-cross-target}"
sub=clippy
status=0
for target in aarch64-apple-darwin x86_64-apple-darwin x86_64-pc-windows-msvc; do
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
