# Bookkeeping shared by the cross-platform test scripts (test-windows.sh,
# test-arm64.sh): named phases with their timings, one result line per thing
# tested, and the closing summary. Source it after setting SCRIPT_NAME.
PHASES=()     # "name<TAB>seconds"
RESULTS=()    # "what<TAB>result"
FAILED=0
PHASE_NAME=""
PHASE_START=0
SCRIPT_START=$(date +%s)
phase() {
  phase_end
  PHASE_NAME=$1
  PHASE_START=$(date +%s)
  echo
  echo "== $1"
}
phase_end() {
  if [ -n "$PHASE_NAME" ]; then
    PHASES+=("$PHASE_NAME"$'\t'"$(($(date +%s) - PHASE_START))")
    PHASE_NAME=""
  fi
}
result() { RESULTS+=("$1"$'\t'"$2"); }
die() {
  echo "$SCRIPT_NAME: $*" >&2
  result "setup" "FAIL: $*"
  FAILED=1
  exit 1
}
summary() {
  phase_end
  echo
  echo "== summary ($SCRIPT_NAME)"
  local line
  for line in "${RESULTS[@]}"; do printf '  %-30s %s\n' "${line%%$'\t'*}" "${line#*$'\t'}"; done
  echo "  timings:"
  for line in "${PHASES[@]}"; do printf '    %-56s %5s s\n' "${line%%$'\t'*}" "${line#*$'\t'}"; done
  printf '    %-56s %5s s\n' "total" "$(($(date +%s) - SCRIPT_START))"
  if [ "$FAILED" = 0 ]; then echo "$SCRIPT_NAME: PASS"; else echo "$SCRIPT_NAME: FAIL"; fi
}
