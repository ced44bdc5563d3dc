#!/usr/bin/env bash
# One fleetload test on Azure Container Instances: a container group per segment plus one consumer, results on an
# Azure Files share, one merge at the end. For the aci-load-test workflow and for people (az logged in).
#   aci.sh start   the consumer and N generator groups (scenario uploaded to the share first)
#   aci.sh wait    until every group has finished (TIMEOUT_SECONDS)
#   aci.sh merge   a merge group over the share; prints its log; exits with fleetload merge's code
#   aci.sh fetch   download RUN_ID/ from the share into DEST
#   aci.sh cleanup delete every group of the run (those that exist)
# Settings (environment): RESOURCE_GROUP, PREFIX (group names PREFIX-consumer, PREFIX-seg-<i>, PREFIX-merge),
# IMAGE, SEGMENTS, SCENARIO (start), RUN_ID, START_AT (start: RFC 3339 or +SECONDS), BROKER_URL (start),
# CONSUMER_RUN_TIME (start, default 20m), STORAGE_ACCOUNT, SHARE, LOCATION (optional), CPU (default 1),
# MEMORY_GB (default 2), TIMEOUT_SECONDS (wait, default 3600), DEST (fetch), POLL_SECONDS (default 15).
# Secrets, passed as secure variables when set: FLEETLOAD_PASSWORD, FLEETLOAD_DEVICE_KEY (generators),
# FLEETLOAD_CONSUMER_PASSWORD, FLEETLOAD_EVENTHUB_CONNECTION_STRING, FLEETLOAD_STORAGE_CONNECTION_STRING
# (consumer); REGISTRY_USERNAME + REGISTRY_PASSWORD for a private image.
# test/deploy/workflows.test.ts runs this script with a fake az.
set -euo pipefail

fail() {
  echo "aci.sh: $*" >&2
  exit 2
}
need() {
  local name
  for name in "$@"; do
    [ -n "${!name:-}" ] || fail "set $name (see the top of deploy/azure/aci.sh)"
  done
}
[ "$#" -eq 1 ] || fail "give one of start, wait, merge, fetch, cleanup"
need RESOURCE_GROUP PREFIX SEGMENTS RUN_ID
[[ $SEGMENTS =~ ^[1-9][0-9]*$ ]] || fail "SEGMENTS must be a whole number ≥ 1, not '$SEGMENTS'"
[[ $RUN_ID =~ ^[A-Za-z0-9._-]+$ ]] || fail "RUN_ID may hold letters, digits, . _ - only, not '$RUN_ID'"
poll=${POLL_SECONDS:-15}

groups() {
  echo "$PREFIX-consumer"
  local i
  for ((i = 0; i < SEGMENTS; i++)); do echo "$PREFIX-seg-$i"; done
}

storage_key() {
  az storage account keys list --resource-group "$RESOURCE_GROUP" --account-name "$STORAGE_ACCOUNT" \
    --query '[0].value' --output tsv
}

# create NAME COMMAND_LINE [secure NAME=VALUE…]: a container group that runs once, the share at /results
create() {
  local name=$1 command_line=$2
  shift 2
  local args=(--resource-group "$RESOURCE_GROUP" --name "$name" --image "$IMAGE" --os-type Linux
    --restart-policy Never --cpu "${CPU:-1}" --memory "${MEMORY_GB:-2}"
    --azure-file-volume-account-name "$STORAGE_ACCOUNT" --azure-file-volume-account-key "$key"
    --azure-file-volume-share-name "$SHARE" --azure-file-volume-mount-path /results
    --command-line "$command_line" --no-wait --output none)
  if [ -n "${LOCATION:-}" ]; then args+=(--location "$LOCATION"); fi
  if [ -n "${REGISTRY_USERNAME:-}" ]; then
    args+=(--registry-login-server "${IMAGE%%/*}" --registry-username "$REGISTRY_USERNAME"
      --registry-password "${REGISTRY_PASSWORD:?REGISTRY_PASSWORD goes with REGISTRY_USERNAME}")
  fi
  if [ "$#" -gt 0 ]; then args+=(--secure-environment-variables "$@"); fi
  az container create "${args[@]}"
}

secure() {
  local name
  for name in "$@"; do
    if [ -n "${!name:-}" ]; then printf '%s=%s\n' "$name" "${!name}"; fi
  done
}

start() {
  need IMAGE SCENARIO START_AT BROKER_URL STORAGE_ACCOUNT SHARE
  [ -f "$SCENARIO" ] || fail "scenario file $SCENARIO not found"
  [[ $BROKER_URL =~ ^[a-z]+://[^[:space:]]+$ ]] || fail "BROKER_URL must be a URL such as mqtts://host:8883"
  local start_at=${START_AT:?}
  if [[ $start_at =~ ^\+([0-9]+)s?$ ]]; then
    start_at=$(date -u -d "@$(($(date +%s) + BASH_REMATCH[1]))" +%Y-%m-%dT%H:%M:%SZ)
  elif ! [[ $start_at =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9]{2}:[0-9]{2})$ ]]; then
    fail "START_AT must be RFC 3339 or +SECONDS, not '$start_at'"
  fi
  key=$(storage_key)
  az storage directory create --account-name "$STORAGE_ACCOUNT" --account-key "$key" --share-name "$SHARE" \
    --name "$RUN_ID" --output none
  az storage file upload --account-name "$STORAGE_ACCOUNT" --account-key "$key" --share-name "$SHARE" \
    --source "$SCENARIO" --path "$RUN_ID/scenario.yaml" --output none
  local consumer_secrets generator_secrets
  mapfile -t consumer_secrets < <(secure FLEETLOAD_CONSUMER_PASSWORD FLEETLOAD_EVENTHUB_CONNECTION_STRING \
    FLEETLOAD_STORAGE_CONNECTION_STRING)
  mapfile -t generator_secrets < <(secure FLEETLOAD_PASSWORD FLEETLOAD_DEVICE_KEY)
  # the consumer first: it must be subscribed before the fleet starts
  create "$PREFIX-consumer" "fleetload consume --host $BROKER_URL --run-id $RUN_ID --run-time ${CONSUMER_RUN_TIME:-20m} --out /results/$RUN_ID/consumer" \
    ${consumer_secrets[@]+"${consumer_secrets[@]}"}
  local i
  for ((i = 0; i < SEGMENTS; i++)); do
    create "$PREFIX-seg-$i" "fleetload run /results/$RUN_ID/scenario.yaml --host $BROKER_URL --run-id $RUN_ID --consumer none --headless --segment $i/$SEGMENTS --start-at $start_at --out /results/$RUN_ID/segments/$i" \
      ${generator_secrets[@]+"${generator_secrets[@]}"}
  done
  echo "started $RUN_ID: 1 consumer and $SEGMENTS segments, the fleet starts at $start_at"
}

state() {
  az container show --resource-group "$RESOURCE_GROUP" --name "$1" --query 'instanceView.state' --output tsv
}

wait_all() {
  local timeout=${TIMEOUT_SECONDS:-3600} deadline name s pending
  deadline=$((SECONDS + timeout))
  while :; do
    pending=0
    for name in $(groups); do
      s=$(state "$name")
      case $s in
        Succeeded | Failed | Stopped) ;;
        *) pending=$((pending + 1)) ;;
      esac
    done
    if [ "$pending" -eq 0 ]; then
      break
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "aci.sh: $pending container groups still running after $timeout s" >&2
      exit 1
    fi
    sleep "$poll"
  done
  for name in $(groups); do echo "$name: $(state "$name")"; done
}

merge() {
  need IMAGE STORAGE_ACCOUNT SHARE
  key=$(storage_key)
  local name="$PREFIX-merge" s code
  create "$name" "/bin/sh -c 'exec fleetload merge /results/$RUN_ID/segments/*/$RUN_ID /results/$RUN_ID/consumer/$RUN_ID --out /results/$RUN_ID/merged'"
  while :; do
    s=$(state "$name")
    case $s in
      Succeeded | Failed | Stopped) break ;;
    esac
    sleep "$poll"
  done
  az container logs --resource-group "$RESOURCE_GROUP" --name "$name"
  code=$(az container show --resource-group "$RESOURCE_GROUP" --name "$name" \
    --query 'containers[0].instanceView.currentState.exitCode' --output tsv)
  if ! [[ $code =~ ^[0-9]+$ ]]; then
    echo "aci.sh: the merge group has no exit code (state $s)" >&2
    exit 1
  fi
  echo "fleetload merge exited with $code"
  exit "$code"
}

fetch() {
  need STORAGE_ACCOUNT SHARE DEST
  key=$(storage_key)
  mkdir -p "$DEST"
  az storage file download-batch --account-name "$STORAGE_ACCOUNT" --account-key "$key" --source "$SHARE" \
    --pattern "$RUN_ID/*" --destination "$DEST" --output none
  echo "results of $RUN_ID in $DEST/$RUN_ID"
}

cleanup() {
  local name failed=0
  for name in $(groups) "$PREFIX-merge"; do
    if az container show --resource-group "$RESOURCE_GROUP" --name "$name" --output none 2>/dev/null; then
      az container delete --resource-group "$RESOURCE_GROUP" --name "$name" --yes --output none || failed=1
    fi
  done
  return "$failed"
}

case $1 in
  start) start ;;
  wait) wait_all ;;
  merge) merge ;;
  fetch) fetch ;;
  cleanup) cleanup ;;
  *) fail "give one of start, wait, merge, fetch, cleanup, not '$1'" ;;
esac
