#!/usr/bin/env bash
# Runs the Rust core's test binaries under valgrind memcheck; any error fails the run.
# Usage: scripts/valgrind-core.sh   (PROPTEST_CASES defaults to 100 here: valgrind is ~50x slower)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
export PROPTEST_CASES="${PROPTEST_CASES:-100}"
bins=$(cargo test -p coldpage --features failpoints --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    # Test harnesses only: not examples (merge) or the criterion bench (pager).
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"] and m["target"]["name"] != "pager":
        print(m["executable"])')
for bin in $bins; do
  echo "== $(basename "$bin")"
  valgrind --tool=memcheck --error-exitcode=99 --leak-check=no -q "$bin" --test-threads=2 -q
done
echo "valgrind memcheck: all core test binaries ran with 0 errors"
