#!/bin/sh
# Installs coldpage@VERSION from the npm registry into a fresh project, as a user
# would, and runs it: `npx coldpage doctor`, then a round trip through the pager
# (pageout, readAt of a slice, dispose). The after-publish jobs of CI.yml run it on
# every platform, in Debian 11 (old glibc) and Alpine (musl) containers too.
# POSIX sh: Alpine has no bash.
#
# Usage: sh scripts/verify-published.sh VERSION
set -eu
version=${1:?usage: verify-published.sh VERSION}
echo "== $(uname -sm), node $(node --version), npm $(npm --version)"
(ldd --version 2>&1 || true) | head -1

# The registry may take a minute to serve a version it has just accepted.
tries=0
until npm view "coldpage@$version" version >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 30 ]; then
    echo "coldpage@$version is not on the registry after $tries tries" >&2
    exit 1
  fi
  sleep 10
done

app=$(mktemp -d)
cd "$app"
npm init -y >/dev/null
npm install --no-audit --no-fund "coldpage@$version"
npm ls coldpage
npx --no-install coldpage doctor
node -e '
const assert = require("node:assert")
const coldpage = require("coldpage")
const bytes = Buffer.alloc(3 << 20)
for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) & 0xff
const handle = coldpage.pageout(bytes)
const slice = handle.readAt(1 << 20, 4096)
assert.deepStrictEqual(slice, bytes.subarray(1 << 20, (1 << 20) + 4096))
handle[Symbol.dispose]()
console.log("round trip: pageout 3 MiB, readAt 4096 bytes at 1 MiB: equal")
'
