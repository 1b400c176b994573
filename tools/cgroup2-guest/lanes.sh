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

# A lane's share of the main suite; a guest that crashed (run.sh's status 3: TCG emulation has
# panicked a guest kernel on its own) is booted once more, and takes back the files it had
# claimed and not finished (shard.py).
# shellcheck disable=SC2086  # the suites are word lists
share() {
  local order=$1 status=0
  PYCONTAIN_VM_CLAIMS=$claims PYCONTAIN_VM_ORDER=$order bash "$here/run.sh" $main || status=$?
  if ((status == 3)); then
    echo "cgroup2-guest: the guest crashed; booting another for the files it had not finished"
    status=0
    PYCONTAIN_VM_CLAIMS=$claims PYCONTAIN_VM_ORDER=$order bash "$here/run.sh" $main || status=$?
  fi
  return "$status"
}
lane1() {
  share forward
}
# shellcheck disable=SC2086
lane2() {
  local status=0
  PYCONTAIN_VM_CGROUP=delegated bash "$here/run.sh" $delegated || status=$?
  share reverse || status=$?
  return "$status"
}
start=$SECONDS
( lane1 2>&1 | sed -u 's/^/[lane 1] /'; exit "${PIPESTATUS[0]}" ) & pids+=($!)
( lane2 2>&1 | sed -u 's/^/[lane 2] /'; exit "${PIPESTATUS[0]}" ) & pids+=($!)
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
pids=()
ran=$(find "$claims" -mindepth 1 -maxdepth 1 | wc -l)
unfinished=$(find "$claims" -mindepth 1 -maxdepth 1 -type d '!' -exec test -e '{}/done' ';' -print \
  | sed 's/.*\///; s/%/\//g')
if [[ -n $unfinished ]]; then  # claimed by a guest that crashed, and never finished
  echo "cgroup2-guest: files that never finished: $unfinished"
  status=1
fi
if compgen -G "$claims/*/failed" >/dev/null; then
  echo "cgroup2-guest: what failed, as each guest wrote it down:"
  cat "$claims"/*/failed | sed 's/^/  /'
fi
echo "cgroup2-guest: the slowest files, in seconds (where the guest's time goes):"
for claim in "$claims"/*/; do
  if [[ -e $claim/done ]]; then echo "$(cat "$claim/done") $(basename "$claim" | sed 's/%/\//g')"; fi
done | sort -rn | sed -n '1,15s/^/  /p'
echo "cgroup2-guest: two lanes done in $((SECONDS - start)) s, $ran files shared between them, status $status"
exit "$status"
