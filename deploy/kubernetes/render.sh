#!/usr/bin/env bash
# Renders the manifests of ONE test run: an overlay plus this run's settings, on stdout.
#   render.sh OVERLAY_DIR SEGMENTS SCENARIO_FILE RUN_ID START_AT IMAGE [CONSUMER_RUN_TIME] [MERGE_WAIT_SECONDS]
# START_AT: RFC 3339 (2026-12-01T10:00:00Z) or +SECONDS from now (computed here, once, for every segment).
# IMAGE: registry/name:tag (or @sha256:…). Needs kubectl (kustomize is built in). The aks-load-test workflow and
# test/deploy/kubernetes.test.ts run this same script.
set -euo pipefail

if [ "$#" -lt 6 ]; then
  echo "usage: render.sh OVERLAY_DIR SEGMENTS SCENARIO_FILE RUN_ID START_AT IMAGE [CONSUMER_RUN_TIME] [MERGE_WAIT_SECONDS]" >&2
  exit 2
fi
overlay=$1
segments=$2
scenario=$3
run_id=$4
start_at=$5
image=$6
consumer_run_time=${7:-}
merge_wait=${8:-}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

fail() {
  echo "render.sh: $*" >&2
  exit 2
}
[ -f "$overlay/kustomization.yaml" ] || fail "$overlay has no kustomization.yaml (give deploy/kubernetes/overlays/local or aks)"
[[ $segments =~ ^[1-9][0-9]*$ ]] || fail "SEGMENTS must be a whole number ≥ 1, not '$segments'"
[ -f "$scenario" ] || fail "scenario file $scenario not found"
[[ $run_id =~ ^[A-Za-z0-9._-]+$ ]] || fail "RUN_ID may hold letters, digits, . _ - only, not '$run_id'"
if [[ $start_at =~ ^\+([0-9]+)s?$ ]]; then
  start_at=$(date -u -d "@$(($(date +%s) + BASH_REMATCH[1]))" +%Y-%m-%dT%H:%M:%SZ)
elif ! [[ $start_at =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9]{2}:[0-9]{2})$ ]]; then
  fail "START_AT must be RFC 3339 (2026-12-01T10:00:00Z) or +SECONDS, not '$start_at'"
fi
# registry/name:tag → name and tag; a registry port (host:5000/name) is not a tag
case $image in
  *@*) image_name=${image%%@*} image_digest=${image#*@} image_tag= ;;
  *) image_digest=
    last=${image##*/}
    if [[ $last == *:* ]]; then
      image_name=${image%:*} image_tag=${image##*:}
    else
      image_name=$image image_tag=latest
    fi ;;
esac
[ -n "$image_name" ] || fail "IMAGE is empty"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$scenario" "$work/scenario.yaml"
{
  echo "apiVersion: kustomize.config.k8s.io/v1beta1"
  echo "kind: Kustomization"
  echo "resources:"
  # kustomize takes only relative paths to other kustomizations
  echo "  - $(realpath --relative-to="$work" "$overlay")"
  echo "components:"
  echo "  - $(realpath --relative-to="$work" "$here/components/segments")"
  echo "configMapGenerator:"
  echo "  - name: fleetload-run"
  echo "    behavior: merge"
  echo "    literals:"
  echo "      - SEGMENTS=$segments"
  echo "      - RUN_ID=$run_id"
  echo "      - START_AT=$start_at"
  if [ -n "$consumer_run_time" ]; then echo "      - CONSUMER_RUN_TIME=$consumer_run_time"; fi
  if [ -n "$merge_wait" ]; then echo "      - MERGE_WAIT_SECONDS=$merge_wait"; fi
  echo "  - name: fleetload-scenario"
  echo "    behavior: replace"
  echo "    files:"
  echo "      - scenario.yaml"
  echo "images:"
  echo "  - name: ghcr.io/OWNER/fleetload"
  echo "    newName: $image_name"
  if [ -n "$image_tag" ]; then echo "    newTag: \"$image_tag\""; fi
  if [ -n "$image_digest" ]; then echo "    digest: $image_digest"; fi
} >"$work/kustomization.yaml"
kubectl kustomize "$work"
