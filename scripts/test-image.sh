#!/usr/bin/env bash
# Builds the container image from the real Dockerfile and runs fleetload inside it, without a Docker daemon and
# without pulling any public image (neither is possible on the CI machines):
#   1. a stand-in for node:20-bookworm-slim: `debootstrap --variant=minbase bookworm` + this machine's node and npm
#      in /usr/local + the CA bundle npm uses, committed with buildah (cached: CI pays for it once per machine);
#   2. `buildah bud --isolation chroot --build-arg BASE=<stand-in> -f Dockerfile .`;
#   3. `buildah from` + `buildah run --isolation chroot` (podman's runtime cannot start containers here): the image's
#      entrypoint with `--version`, /app holding production dependencies only, a hard fd limit too low for the fleet
#      refused with exit 2, a 10 s run on the embedded broker, and a run against a Mosquitto started on the host
#      (chroot isolation shares the host's network) under a low soft fd limit that fleetload raises itself, each
#      summary.json read from a bind-mounted results folder.
# Any failing step fails the script (non-zero, one line saying which). Containers it made are removed by name, the
# Mosquitto it started is stopped by PID, the image it built is removed (FLEETLOAD_IMAGE_KEEP=1 keeps it).
#
# Cache: $FLEETLOAD_IMAGE_CACHE, else $XDG_CACHE_HOME/fleetload-image, else /var/cache/fleetload-image (root) or
# ~/.cache/fleetload-image. It holds the debootstrapped root file system and buildah's own storage (vfs driver).
# Needs: root, buildah, debootstrap, mosquitto, node 20 + npm; network to deb.debian.org (first run) and the npm registry.
# Bounded: every step has a time limit (debootstrap 10 min, build 15 min, each run in the image 2 min).
# The stand-in is keyed by the Node and npm versions; delete the cache folder to refresh its Debian packages.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
started=$SECONDS

fail() {
  printf 'test-image: FAILED: %s\n' "$*" >&2
  exit 1
}
step() {
  printf '\n--- test-image: %s (t+%ss)\n' "$*" "$((SECONDS - started))"
}

# ---- prerequisites ------------------------------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || fail "needs root (buildah's chroot isolation and debootstrap); run it as root or with sudo"
for cmd in buildah debootstrap node npm timeout; do
  command -v "$cmd" >/dev/null || fail "$cmd not found; install it (Debian: apt-get install buildah debootstrap)"
done
mosquitto_bin=$(command -v mosquitto || true)
[ -n "$mosquitto_bin" ] || [ ! -x /usr/sbin/mosquitto ] || mosquitto_bin=/usr/sbin/mosquitto
[ -n "$mosquitto_bin" ] || fail "mosquitto not found; install it (Debian: apt-get install mosquitto)"

cache=${FLEETLOAD_IMAGE_CACHE:-}
if [ -z "$cache" ]; then
  if [ -n "${XDG_CACHE_HOME:-}" ]; then cache=$XDG_CACHE_HOME/fleetload-image; else cache=/var/cache/fleetload-image; fi
fi
mkdir -p "$cache"
cache=$(cd "$cache" && pwd -P)
case "$cache/" in
"$(pwd -P)/"*) fail "cache $cache is inside the repository; set FLEETLOAD_IMAGE_CACHE to a folder outside it" ;;
esac

# buildah with its own storage in the cache (vfs works on any file system and inside containers), chroot isolation.
storage=(--root "$cache/storage" --runroot "$cache/run" --storage-driver vfs)
bh() { buildah "${storage[@]}" "$@"; }

tag=$$
standin_ctr=fleetload-standin-$tag
test_ctr=fleetload-image-test-$tag
image=localhost/fleetload-image-test:$tag
work=$(mktemp -d "${TMPDIR:-/tmp}/fleetload-image.XXXXXX")
mosquitto_pid=

cleanup() {
  local rc=$?
  set +e
  if [ -n "$mosquitto_pid" ]; then kill "$mosquitto_pid" 2>/dev/null && wait "$mosquitto_pid" 2>/dev/null; fi
  for ctr in "$test_ctr" "$standin_ctr"; do
    if bh inspect --type container "$ctr" >/dev/null 2>&1; then bh rm "$ctr" >/dev/null; fi
  done
  if [ "${FLEETLOAD_IMAGE_KEEP:-0}" != 1 ] && bh inspect --type image "$image" >/dev/null 2>&1; then
    bh rmi "$image" >/dev/null
  fi
  # dangling stage images a failed build may leave behind
  bh rmi --prune >/dev/null 2>&1
  rm -rf "$work" "$cache/rootfs-bookworm-minbase.tmp.$tag"
  if [ "$rc" -eq 0 ]; then
    printf '\ntest-image: PASSED in %ss\n' "$((SECONDS - started))"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a step with a time limit; its output goes to a log that is printed only when it fails.
run_logged() {
  local what=$1 limit=$2
  shift 2
  local log="$work/step.log"
  local rc=0
  timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    tail -n 60 "$log" >&2
    [ "$rc" -eq 124 ] && fail "$what: timed out after ${limit}s (last lines of its log above)"
    fail "$what: exit $rc (last lines of its log above)"
  fi
}

# ---- 1. the stand-in Node base ------------------------------------------------------------------------------------
node_bin=$(readlink -f "$(command -v node)")
npm_dir=$(readlink -f "$(command -v npm)")
npm_dir=${npm_dir%/bin/npm-cli.js}
[ -f "$npm_dir/package.json" ] || fail "cannot find npm's folder (looked at $npm_dir)"
cafile=$(npm config get cafile 2>/dev/null || true)
[ "$cafile" = null ] || [ "$cafile" = undefined ] && cafile=
[ -n "$cafile" ] || cafile=/etc/ssl/certs/ca-certificates.crt
[ -f "$cafile" ] || fail "CA bundle $cafile (npm config get cafile) not found"
node_version=$("$node_bin" --version)
npm_version=$(npm --version)
case "$node_version" in v20.*) ;; *) fail "the stand-in needs Node 20 on this machine (found $node_version)" ;; esac
standin=localhost/fleetload-node-standin:${node_version#v}-npm$npm_version-bookworm

rootfs=$cache/rootfs-bookworm-minbase
if bh inspect --type image "$standin" >/dev/null 2>&1; then
  step "stand-in base $standin (cached)"
else
  if [ ! -f "$rootfs/.complete" ]; then
    step "debootstrap --variant=minbase bookworm → $rootfs (once per machine)"
    tmp=$cache/rootfs-bookworm-minbase.tmp.$tag
    rm -rf "$tmp"
    run_logged "debootstrap" 600 debootstrap --variant=minbase bookworm "$tmp" "${FLEETLOAD_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
    rm -rf "$tmp/var/cache/apt/archives/"*.deb "$tmp/var/lib/apt/lists/"* 2>/dev/null || true
    rm -rf "$rootfs"
    mv "$tmp" "$rootfs"
    touch "$rootfs/.complete"
  fi
  step "stand-in base $standin: rootfs + node $node_version + npm $npm_version + CA bundle"
  bh from --name "$standin_ctr" scratch >/dev/null
  mnt=$(bh mount "$standin_ctr")
  tar -C "$rootfs" --exclude=./.complete -cf - . | tar -C "$mnt" -xf -
  install -D -m 755 "$node_bin" "$mnt/usr/local/bin/node"
  mkdir -p "$mnt/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$mnt/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$mnt/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$mnt/usr/local/bin/npx"
  install -D -m 644 "$cafile" "$mnt$cafile"
  chroot "$mnt" /usr/local/bin/node --version >/dev/null || fail "this machine's node does not start in the bookworm root file system"
  bh umount "$standin_ctr" >/dev/null
  bh config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_VERSION="${node_version#v}" \
    --env NPM_CONFIG_CAFILE="$cafile" \
    --cmd node \
    "$standin_ctr"
  bh commit --quiet "$standin_ctr" "$standin" >/dev/null
  bh rm "$standin_ctr" >/dev/null
fi

# ---- 2. the image, from the real Dockerfile -----------------------------------------------------------------------
version=$(node -p 'require("./package.json").version')
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
step "buildah bud -f Dockerfile (BASE=$standin, VERSION=$version)"
run_logged "image build (buildah bud -f Dockerfile)" 900 \
  buildah "${storage[@]}" bud --isolation chroot --layers=false \
  --build-arg BASE="$standin" --build-arg VERSION="$version" --build-arg REVISION="$revision" \
  -t "$image" -f Dockerfile .

image_field() {
  bh inspect --type image --format "$1" "$image" || fail "buildah inspect --format '$1' $image failed"
}
label_version=$(image_field '{{index .OCIv1.Config.Labels "org.opencontainers.image.version"}}')
[ "$label_version" = "$version" ] || fail "label org.opencontainers.image.version is '$label_version', expected $version"
label_source=$(image_field '{{index .OCIv1.Config.Labels "org.opencontainers.image.source"}}')
[ -n "$label_source" ] || fail "label org.opencontainers.image.source is empty"
entrypoint=$(image_field '{{range .OCIv1.Config.Entrypoint}}<{{.}}>{{end}}')
[ "$entrypoint" = '<fleetload>' ] || fail "ENTRYPOINT is $entrypoint, expected [\"fleetload\"]"
user=$(image_field '{{.OCIv1.Config.User}}')
uid=${user%%:*}
case "$uid" in '' | 0 | root) fail "the image runs as root (USER '$user'); it must set a non-root user" ;; esac
size=$(bh inspect --type image --format '{{.Size}}' "$image" 2>/dev/null || true)
echo "image $image: version $label_version, source $label_source, user $user${size:+, $((size / 1024 / 1024)) MiB}"

# ---- 3. run it -----------------------------------------------------------------------------------------------------
results=$work/results
mkdir -p "$results"
chown "$user" "$results"
bh from --name "$test_ctr" "$image" >/dev/null

# Runs the image's entrypoint with the given arguments, as `docker run IMAGE ARGS…` would (buildah run does not apply
# ENTRYPOINT by itself), with the results folder mounted at /results.
in_image() {
  timeout --kill-after=10 120 buildah "${storage[@]}" run --isolation chroot -v "$results:/results:rw" "$test_ctr" -- fleetload "$@"
}

# The same through the image's /bin/sh: `in_image_sh SCRIPT ARGS…` runs `sh -c SCRIPT sh ARGS…`.
in_image_sh() {
  local script=$1
  shift
  timeout --kill-after=10 120 buildah "${storage[@]}" run --isolation chroot -v "$results:/results:rw" "$test_ctr" -- sh -c "$script" sh "$@"
}

step "fleetload --version in the image"
got=$(in_image --version) || fail "fleetload --version exited non-zero in the image"
[ "$got" = "$version" ] || fail "fleetload --version printed '$got', expected $version"
whoami_uid=$(timeout 60 buildah "${storage[@]}" run --isolation chroot "$test_ctr" -- id -u) || fail "id -u in the image failed"
[ "$whoami_uid" = "$uid" ] || fail "the container runs as uid $whoami_uid, expected $uid"
echo "fleetload $got, running as uid $whoami_uid"

step "production dependencies only; a hard fd limit too low for the fleet is exit 2"
in_image_sh 'test -d /app/node_modules/mqtt && test ! -e /app/node_modules/typescript && test ! -e /app/src' ||
  fail "the image's /app is not dist/ + production node_modules (mqtt missing, or typescript or src/ present)"
rc=0
in_image_sh 'ulimit -n 100 && exec fleetload "$@"' run --headless --devices 20 --run-time 2s --run-id image-nofile \
  >"$work/nofile.log" 2>&1 || rc=$?
if [ "$rc" -ne 2 ] || ! grep -q 'ulimit -Hn' "$work/nofile.log"; then
  cat "$work/nofile.log" >&2
  fail "with ulimit -n 100, 20 devices should exit 2 naming ulimit -Hn; got exit $rc (output above)"
fi
[ ! -e "$results/image-nofile" ] || fail "the refused run (exit 2) wrote $results/image-nofile"
echo "ok: $(grep -m1 'ulimit -Hn' "$work/nofile.log" | cut -c1-110)…"

# Checks a run's summary.json on the host: passed, messages sent and received, nothing lost, the image's version.
check_summary() {
  local run_id=$1 file="$results/$1/summary.json"
  [ -f "$file" ] || fail "$run_id: no summary.json in the results folder (expected $file; folder holds: $(cd "$results" && echo *))"
  node - "$file" "$version" <<'EOF' || fail "$run_id: summary.json does not show a passing run (above)"
const [file, version] = process.argv.slice(2);
const s = JSON.parse(require('node:fs').readFileSync(file, 'utf8'));
const m = s.messages ?? {};
const problems = [];
if (s.passed !== true) problems.push('passed is not true');
if (s.fleetloadVersion !== version) problems.push(`fleetloadVersion ${s.fleetloadVersion}, expected ${version}`);
if (!(m.sent > 0)) problems.push('no message sent');
if (!(m.received > 0)) problems.push('no message received');
if (m.lost !== 0) problems.push(`${m.lost} lost`);
if (!(s.devices?.connectedPeak > 0)) problems.push('no device connected');
console.log(`${s.runId}: ${s.scenario?.host} devices ${s.devices?.connectedPeak}, sent ${m.sent}, received ${m.received}, lost ${m.lost}, e2e p99 ${s.latency?.e2e?.p99} ms, passed ${s.passed}`);
if (problems.length) { console.error(`${s.runId}: ${problems.join('; ')}`); process.exit(1); }
EOF
}

step "10 s run on the embedded broker, in the image"
in_image run --headless --devices 20 --spawn-rate 20 --run-time 10s --interval 500ms --run-id image-embedded \
  --threshold 'loss<0.1%' >"$work/embedded.log" 2>&1 || {
  rc=$?
  tail -n 40 "$work/embedded.log" >&2
  fail "run on the embedded broker exited $rc in the image (log above)"
}
check_summary image-embedded

step "run against a Mosquitto on the host"
port=$(node -e 'const s=require("node:net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n' "$port" >"$work/mosquitto.conf"
"$mosquitto_bin" -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
mosquitto_pid=$!
for _ in $(seq 50); do
  node -e 'const c=require("node:net").connect(+process.argv[1],"127.0.0.1",()=>process.exit(0));c.on("error",()=>process.exit(1))' "$port" && break
  kill -0 "$mosquitto_pid" 2>/dev/null || { cat "$work/mosquitto.log" >&2; fail "mosquitto did not start (log above)"; }
  sleep 0.1
done
# Under a soft fd limit of 100 (20 devices need 148): fleetload re-executes itself under `ulimit -n` through the
# image's /bin/sh, as it does in a container started with a low soft limit.
in_image_sh 'ulimit -Sn 100 && exec fleetload "$@"' run --headless --host "mqtt://127.0.0.1:$port" --devices 20 \
  --spawn-rate 20 --run-time 8s --interval 500ms --run-id image-mosquitto --threshold 'loss<0.1%' >"$work/mosquitto-run.log" 2>&1 || {
  rc=$?
  tail -n 40 "$work/mosquitto-run.log" >&2
  fail "run against the host's Mosquitto (127.0.0.1:$port) exited $rc in the image (log above)"
}
check_summary image-mosquitto
