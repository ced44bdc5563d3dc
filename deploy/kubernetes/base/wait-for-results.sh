#!/bin/sh
# Waits until every generator segment and the consumer have finished writing their results folders (summary.json
# is the last file fleetload writes), polling the shared results volume, for at most TIMEOUT seconds.
#   wait-for-results.sh RUN_DIR SEGMENTS TIMEOUT_SECONDS [POLL_SECONDS]
# RUN_DIR holds segments/<i>/<runId>/ and consumer/<runId>/. On time-out it still exits 0: fleetload merge, run
# next, then names the segment that is missing and exits 2 (or merges what is there with --allow-incomplete).
set -eu

if [ "$#" -lt 3 ]; then
  echo "usage: wait-for-results.sh RUN_DIR SEGMENTS TIMEOUT_SECONDS [POLL_SECONDS]" >&2
  exit 2
fi
dir=$1
segments=$2
timeout=$3
poll=${4:-2}
for n in "$segments" "$timeout" "$poll"; do
  case $n in
    '' | *[!0-9]*)
      echo "wait-for-results: '$n' is not a whole number (SEGMENTS, TIMEOUT_SECONDS, POLL_SECONDS)" >&2
      exit 2
      ;;
  esac
done
expected=$((segments + 1))

count() {
  found=0
  for f in "$dir"/segments/*/*/summary.json "$dir"/consumer/*/summary.json; do
    if [ -f "$f" ]; then
      found=$((found + 1))
    fi
  done
  echo "$found"
}

started=$(date +%s)
while :; do
  found=$(count)
  if [ "$found" -ge "$expected" ]; then
    echo "wait-for-results: $found of $expected results folders complete in $dir"
    exit 0
  fi
  now=$(date +%s)
  if [ $((now - started)) -ge "$timeout" ]; then
    echo "wait-for-results: only $found of $expected results folders complete in $dir after ${timeout}s; merging what is there" >&2
    exit 0
  fi
  sleep "$poll"
done
