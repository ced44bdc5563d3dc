#!/usr/bin/env bash
# The cluster side of one test run, for the aks-load-test workflow and for people (kubectl's current context):
#   cluster.sh secrets NAMESPACE            the Secret fleetload-secrets from the FLEETLOAD_* secret variables
#                                           that are set (FLEETLOAD_PASSWORD, FLEETLOAD_DEVICE_KEY,
#                                           FLEETLOAD_CONSUMER_PASSWORD, FLEETLOAD_EVENTHUB_CONNECTION_STRING,
#                                           FLEETLOAD_STORAGE_CONNECTION_STRING); values never on a command line
#   cluster.sh apply NAMESPACE MANIFESTS    kubectl apply the rendered manifests (render.sh) in NAMESPACE
#   cluster.sh wait NAMESPACE TIMEOUT_S     wait for the merge Job; print every pod's end; exit with merge's code
#   cluster.sh fetch NAMESPACE RUN_ID DEST  copy /results/RUN_ID (segments, consumer, merged) from the volume
#   cluster.sh cleanup NAMESPACE MANIFESTS  delete what apply created, the reader pod and the Secret
# POLL_SECONDS (default 10) sets how often wait asks. test/deploy/workflows.test.ts runs this script with a fake
# kubectl.
set -euo pipefail

usage() {
  sed -n '2,11p' "${BASH_SOURCE[0]}" >&2
  exit 2
}
[ "$#" -ge 2 ] || usage
command=$1
ns=$2
shift 2
poll=${POLL_SECONDS:-10}
reader=fleetload-results-reader

secrets() {
  local dir
  dir=$(mktemp -d)
  chmod 700 "$dir"
  : >"$dir/env"
  local name
  for name in FLEETLOAD_PASSWORD FLEETLOAD_DEVICE_KEY FLEETLOAD_CONSUMER_PASSWORD \
    FLEETLOAD_EVENTHUB_CONNECTION_STRING FLEETLOAD_STORAGE_CONNECTION_STRING; do
    if [ -n "${!name:-}" ]; then
      printf '%s=%s\n' "$name" "${!name}" >>"$dir/env"
    fi
  done
  kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
  kubectl -n "$ns" create secret generic fleetload-secrets --from-env-file="$dir/env" \
    --dry-run=client -o yaml | kubectl -n "$ns" apply -f -
  rm -rf "$dir"
}

apply() {
  if [ "$#" -ne 1 ] || [ ! -f "$1" ]; then
    echo "cluster.sh apply: give the rendered manifests file" >&2
    exit 2
  fi
  kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
  kubectl -n "$ns" apply -f "$1"
}

wait_merge() {
  if [ "$#" -ne 1 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
    echo "cluster.sh wait: give TIMEOUT_SECONDS" >&2
    exit 2
  fi
  local deadline=$((SECONDS + $1)) status
  while :; do
    status=$(kubectl -n "$ns" get job fleetload-merge -o 'jsonpath={.status.succeeded}/{.status.failed}')
    case $status in
      1/* | */1) break ;;
    esac
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "cluster.sh: the merge Job did not finish within $1 s" >&2
      kubectl -n "$ns" get jobs,pods -l app.kubernetes.io/name=fleetload -o wide >&2
      exit 1
    fi
    sleep "$poll"
  done
  echo "--- pods ---"
  kubectl -n "$ns" get pods -l app.kubernetes.io/name=fleetload \
    -o 'custom-columns=POD:.metadata.name,NODE:.spec.nodeName,EXIT:.status.containerStatuses[0].state.terminated.exitCode'
  echo "--- merge ---"
  kubectl -n "$ns" logs job/fleetload-merge -c fleetload
  local code
  code=$(kubectl -n "$ns" get pods -l batch.kubernetes.io/job-name=fleetload-merge \
    -o 'jsonpath={.items[0].status.containerStatuses[0].state.terminated.exitCode}')
  if ! [[ $code =~ ^[0-9]+$ ]]; then
    echo "cluster.sh: the merge pod has no exit code (it never ran; see the pods above)" >&2
    exit 1
  fi
  echo "fleetload merge exited with $code"
  exit "$code"
}

fetch() {
  if [ "$#" -ne 2 ]; then
    echo "cluster.sh fetch: give RUN_ID DEST" >&2
    exit 2
  fi
  local run_id=$1 dest=$2 image
  image=$(kubectl -n "$ns" get job fleetload-merge -o 'jsonpath={.spec.template.spec.containers[0].image}')
  # a pod that mounts the results volume and sleeps, so kubectl cp (tar in the image) can read it
  kubectl -n "$ns" apply -f - <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $reader
  labels:
    app.kubernetes.io/name: fleetload
    app.kubernetes.io/component: results-reader
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  securityContext:
    runAsNonRoot: true
    runAsUser: 10001
  containers:
    - name: reader
      image: $image
      command: [sleep, "3600"]
      resources:
        requests: {cpu: 10m, memory: 32Mi}
      volumeMounts:
        - {name: results, mountPath: /results, readOnly: true}
  volumes:
    - name: results
      persistentVolumeClaim: {claimName: fleetload-results}
YAML
  kubectl -n "$ns" wait --for=condition=Ready "pod/$reader" --timeout=300s
  mkdir -p "$dest"
  kubectl -n "$ns" cp "$reader:/results/$run_id" "$dest"
  echo "results of $run_id in $dest"
}

cleanup() {
  if [ "$#" -ne 1 ]; then
    echo "cluster.sh cleanup: give the rendered manifests file" >&2
    exit 2
  fi
  local failed=0
  kubectl -n "$ns" delete pod "$reader" --ignore-not-found --wait=false || failed=1
  if [ -f "$1" ]; then
    kubectl -n "$ns" delete -f "$1" --ignore-not-found --wait=false || failed=1
  fi
  kubectl -n "$ns" delete secret fleetload-secrets --ignore-not-found || failed=1
  return "$failed"
}

case $command in
  secrets) secrets ;;
  apply) apply "$@" ;;
  wait) wait_merge "$@" ;;
  fetch) fetch "$@" ;;
  cleanup) cleanup "$@" ;;
  *) usage ;;
esac
