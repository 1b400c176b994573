#!/usr/bin/env bash
# `make test-cgroup2`: the kernel tests and every lesson in cgroup-v2 guests, two at a time.
#
# One guest under TCG emulation keeps about one host core busy (its tests run one after another),
# so two guests run side by side: lane 1 takes the main suite from its first file, lane 2 first
# runs the cgroup suite from a delegated service cgroup (as the lab VM's Jupyter runs), then the
# main suite from its last file; each claims a file before running it (shard.py), so they meet in
# the middle and every file runs once. The guests' output is prefixed with their lane.
#
# Usage: tools/cgroup2-guest/lanes.sh "MAIN SUITE ARGS" "DELEGATED SUITE ARGS"
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
main=$1
delegated=$2
cache=${PYCONTAIN_VM_CACHE:-/var/cache/pycontain/cgroup2-guest}

bash "$here/run.sh" --image
mkdir -p "$cache/runs"
claims=$(mktemp -d "$cache/runs/claims.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -- "$pid" 2>/dev/null || true; done
  rm -rf "$claims"
}
trap cleanup EXIT INT TERM

# shellcheck disable=SC2086  # the suites are word lists
lane1() {
  PYCONTAIN_VM_CLAIMS=$claims PYCONTAIN_VM_ORDER=forward bash "$here/run.sh" $main
}
# shellcheck disable=SC2086
lane2() {
  local status=0
  PYCONTAIN_VM_CGROUP=delegated bash "$here/run.sh" $delegated || status=$?
  PYCONTAIN_VM_CLAIMS=$claims PYCONTAIN_VM_ORDER=reverse bash "$here/run.sh" $main || status=$?
  return "$status"
}
start=$SECONDS
( lane1 2>&1 | sed -u 's/^/[lane 1] /'; exit "${PIPESTATUS[0]}" ) & pids+=($!)
( lane2 2>&1 | sed -u 's/^/[lane 2] /'; exit "${PIPESTATUS[0]}" ) & pids+=($!)
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
pids=()
ran=$(find "$claims" -mindepth 1 -maxdepth 1 | wc -l)
echo "cgroup2-guest: two lanes done in $((SECONDS - start)) s, $ran files shared between them, status $status"
exit "$status"
