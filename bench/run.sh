#!/usr/bin/env bash
# fleetload's benchmark, side by side with its peers, ratios from one run (never absolute times across runs).
#   1. peers on Mosquitto: seed-style Locust+paho, naive MQTT.js, fleetload — 1000 devices × 10 msg/s, 20 s,
#      QoS 0 and QoS 1: CPU µs per delivered message (whole process) and peak RSS.
#   2. throughput ceiling: 1000 devices × 150 msg/s QoS 0 against Mosquitto and against a minimal sink broker.
#   3. idle fleet: N idle connected devices (several source addresses): RSS per device and connects per second.
#   4. consumer hot path: decode + ledger over recorded messages, and ledger memory per device.
#   5. wall clock: ns per now() call of each way to read sub-ms wall time, and how far each is from realtime.
#   6. TLS: section 1 over TLS (peer bench -T), TLS handshakes/s and client CPU per handshake with and without
#      session resumption (bench/tls-connects.ts), idle memory per TLS device and TLS connects/s (fleetload).
# Writes bench/RESULTS.md. Needs: mosquitto, mosquitto-clients, python3-locust, python3-paho-mqtt, /usr/bin/time.
# usage: bench/run.sh [--quick]   (--quick: 10 s runs, fewer idle devices; for a smoke test, not for figures)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
cd "$ROOT" # node --import tsx resolves tsx from here
QUICK=${1:-}
SECS=20; IDLE=19000; TLS_IDLE=5000; TLS_CONN=2000
[[ $QUICK == --quick ]] && { SECS=10; IDLE=2000; TLS_IDLE=1000; TLS_CONN=500; }
CLI="node $ROOT/dist/cli/main.js"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"; [[ -n ${SINK:-} ]] && kill "$SINK" 2>/dev/null; [[ -n ${TMOSQ:-} ]] && kill "$TMOSQ" 2>/dev/null || true' EXIT
[[ -f $ROOT/dist/cli/main.js ]] || (cd "$ROOT" && npm run build >/dev/null)
RESULTS=$HERE/RESULTS.md
log() { printf '%s\n' "$*" >&2; }

fl_cmd="$CLI run -H {url} -u {devices} -r {spawn} -t {seconds}s -i {interval_ms}ms --qos {qos} --headless --consumer none --out $OUT --json"

peer_table() { # qos
  FLEETLOAD_CMD="$fl_cmd" "$HERE/peer-bench.sh" -d 1000 -r 10 -s "$SECS" -q "$1" -p 500 -t locust,mqttjs,fleetload,floor
}

log "1/6 peers, QoS 0 and QoS 1 (${SECS}s each)…"
Q0=$(peer_table 0); log "$Q0"
Q1=$(peer_table 1); log "$Q1"

field() { # line key → value
  sed -n "s/.*$2= *\([0-9.]*\).*/\1/p" <<<"$1"
}
row() { # tool table
  grep "^$1 " <<<"$2" || true
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b>0 && a>0) printf "%.1f×", b/a; else print "–" }'; }
above() { awk -v a="$1" -v f="$2" 'BEGIN{ printf "%.2f", a - f }'; } # tool floor → tool − floor

log "2/6 throughput ceiling (1000 devices × 150 msg/s, QoS 0)…"
ceiling() { # url label [more run flags...]
  local url=$1 label=$2; shift 2
  /usr/bin/time -f '%U %S %M' -o "$OUT/time" $CLI run -H "$url" -u 1000 -r 2000 -t "${SECS}s" -i 6.667ms --qos 0 \
    --headless --consumer none --out "$OUT" --json "$@" > "$OUT/s.json" 2>/dev/null || true
  node -e '
    const fs = require("fs"), path = require("path");
    const s = require(process.argv[1]); // GNU time puts "Command exited with non-zero status N" first when fleetload exits non-zero (a saturated
    // generator makes the run invalid: exit 5): the figures are the last line
    const [u, y, m] = fs.readFileSync(process.argv[2], "utf8").trim().split("\n").pop().split(/\s+/).map(Number);
    // sustained rate: the whole seconds with the full fleet connected (not the 0.5 s ramp, not the last partial second)
    const rows = fs.readFileSync(path.join(process.argv[4], s.runId, "intervals.jsonl"), "utf8").trim().split("\n").map(JSON.parse);
    const first = rows.findIndex((r) => r.devicesConnected >= s.scenario.devices);
    const steady = rows.slice(first + 1, -1);
    const sent = steady.reduce((a, r) => a + r.counters.sent, 0), ms = steady.reduce((a, r) => a + r.durationMs, 0);
    const rate = (sent * 1000) / ms;
    const target = s.scenario.devices * 1000 / s.scenario.intervalMs;
    console.log(`| ${process.argv[3]} | ${Math.round(rate).toLocaleString("en")} | ${(100 * rate / target).toFixed(1)}% | ${s.rates.sentPerSec.toLocaleString("en")} | ${s.latency.scheduleLag.p99} ms | ${((u + y) * 1e6 / Math.max(1, s.messages.sent)).toFixed(2)} | ${(m / 1024).toFixed(0)} MB | ${s.generator.saturated} |`);
  ' "$OUT/s.json" "$OUT/time" "$label" "$OUT"
}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\nmax_connections -1\n' "$PORT" > "$OUT/m.conf"
mosquitto -c "$OUT/m.conf" > /dev/null 2>&1 & MOSQ=$!
sleep 0.5
C_MOSQ=$(ceiling "mqtt://127.0.0.1:$PORT" "Mosquitto 2.0")
kill $MOSQ; wait $MOSQ 2>/dev/null || true
node --import tsx "$HERE/sink-broker.ts" 0 > "$OUT/sink.out" & SINK=$!
for _ in $(seq 50); do grep -q ready "$OUT/sink.out" 2>/dev/null && break; sleep 0.1; done
SPORT=$(sed -n 's/ready //p' "$OUT/sink.out")
C_SINK=$(ceiling "mqtt://127.0.0.1:$SPORT" "sink broker (bench/sink-broker.ts)")
C_SINK2=$(ceiling "mqtt://127.0.0.1:$SPORT" "sink broker, --workers 2" --workers 2)
log "$C_MOSQ"; log "$C_SINK"; log "$C_SINK2"

log "3/6 idle fleet: $IDLE devices…"
idle() { # devices → "rss_kb connects_per_s connected"
  local n=$1
  /usr/bin/time -f '%M' -o "$OUT/itime" $CLI run -H "mqtt://127.0.0.1:$SPORT" -u "$n" -r 100000 -t 15s -i 1h --qos 0 \
    --headless --consumer none --source-ip 127.0.0.2,127.0.0.3,127.0.0.4 --out "$OUT" --json > "$OUT/i.json" 2>/dev/null || true
  node -e '
    const s = require(process.argv[1]); const rss = Number(require("fs").readFileSync(process.argv[2], "utf8").trim().split("\n").pop());
    const dir = require("path").join(process.argv[3], s.runId);
    const rows = require("fs").readFileSync(require("path").join(dir, "intervals.jsonl"), "utf8").trim().split("\n").map(JSON.parse);
    const full = rows.find((r) => r.devicesConnected >= s.devices.target);
    const secs = full ? full.elapsedMs / 1000 : NaN;
    console.log(`${rss} ${(s.devices.connectedPeak / secs).toFixed(0)} ${s.devices.connectedPeak}`);
  ' "$OUT/i.json" "$OUT/itime" "$OUT"
}
read -r RSS1 _ _ < <(idle 1)
read -r RSSN CPS CONN < <(idle "$IDLE")
PER_DEV=$(awk -v a="$RSS1" -v b="$RSSN" -v n="$IDLE" 'BEGIN{printf "%.2f", (b-a)/n}')
log "idle: baseline ${RSS1} KB, ${IDLE} devices ${RSSN} KB → ${PER_DEV} KB/device, ${CPS} connects/s (connected ${CONN})"

log "4/6 consumer hot path over recorded messages…"
CONS=$(node --import tsx "$HERE/consumer.ts" $([[ $QUICK == --quick ]] && echo "300000 30000" || echo "2000000 100000"))
log "$CONS"
log "5/6 wall clock options (ns per call)…"
CLOCK_ROWS=$(node --import tsx "$HERE/clock.ts" | node -e '
  const lines = require("fs").readFileSync(0, "utf8").trim().split("\n").map(JSON.parse);
  for (const c of lines) console.log(`| ${c.option} | ${c.nsPerCall} | ${c.vsBefore.toFixed(2)} | ${c.offFromRealtimeMs} |`);')
log "$CLOCK_ROWS"
log "6/6 TLS: peers over TLS (QoS 0 and 1), handshakes with and without resumption, idle TLS fleet…"
tls_table() { # qos
  FLEETLOAD_CMD="$fl_cmd --ca {ca}" "$HERE/peer-bench.sh" -T -d 1000 -r 10 -s "$SECS" -q "$1" -p 500 -t locust,mqttjs,fleetload
}
T0=$(tls_table 0); log "$T0"
T1=$(tls_table 1); log "$T1"
# one TLS Mosquitto (self-signed P-256 certificate for 127.0.0.1) for the handshake and idle rows
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$OUT/server.key" -out "$OUT/ca.pem" \
  -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1,DNS:localhost >/dev/null 2>&1
chmod 755 "$OUT"; chmod 644 "$OUT/server.key" # Mosquitto started as root reads them as user mosquitto
TPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_connections -1\ncertfile %s\nkeyfile %s\n' "$TPORT" "$OUT/ca.pem" "$OUT/server.key" > "$OUT/t.conf"
(ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; exec mosquitto -c "$OUT/t.conf" > /dev/null 2>&1) & TMOSQ=$!
sleep 0.5
HS_ROWS=$(timeout 120 node --import tsx "$HERE/tls-connects.ts" "mqtts://127.0.0.1:$TPORT" "$OUT/ca.pem" "$TLS_CONN" 200 | node -e '
  const lines = require("fs").readFileSync(0, "utf8").trim().split("\n").map(JSON.parse);
  for (const w of lines) console.log(`| ${w.wave} | ${w.devices.toLocaleString("en")} | ${w.full.toLocaleString("en")} | ${w.resumed.toLocaleString("en")} | ${w.failed} | ${w.perSec.toLocaleString("en")} | ${w.cpuUsPerHandshake} |`);')
log "$HS_ROWS"
tls_idle() { # devices → "rss_kb connects_per_s connected"
  /usr/bin/time -f '%M' -o "$OUT/ttime" $CLI run -H "mqtts://127.0.0.1:$TPORT" --ca "$OUT/ca.pem" -u "$1" -r 100000 -t 15s -i 1h \
    --qos 0 --headless --consumer none --out "$OUT" --json > "$OUT/t.json" 2>/dev/null || true
  node -e '
    const fs = require("fs"), path = require("path");
    const s = require(process.argv[1]); const rss = Number(fs.readFileSync(process.argv[2], "utf8").trim().split("\n").pop());
    const rows = fs.readFileSync(path.join(process.argv[3], s.runId, "intervals.jsonl"), "utf8").trim().split("\n").map(JSON.parse);
    const full = rows.find((r) => r.devicesConnected >= s.devices.target);
    console.log(`${rss} ${(s.devices.connectedPeak / (full ? full.elapsedMs / 1000 : NaN)).toFixed(0)} ${s.devices.connectedPeak}`);
  ' "$OUT/t.json" "$OUT/ttime" "$OUT"
}
read -r TRSS1 _ _ < <(tls_idle 1)
read -r TRSSN TCPS TCONN < <(tls_idle "$TLS_IDLE")
kill $TMOSQ; wait $TMOSQ 2>/dev/null || true; TMOSQ=
TPER_DEV=$(awk -v a="$TRSS1" -v b="$TRSSN" -v n="$TLS_IDLE" 'BEGIN{printf "%.2f", (b-a)/n}')
log "TLS idle: baseline ${TRSS1} KB, ${TLS_IDLE} devices ${TRSSN} KB → ${TPER_DEV} KB/device, ${TCPS} connects/s (connected ${TCONN})"

CONS_ROW=$(node -e 'const c = JSON.parse(process.argv[1]); console.log(`| ${c.messages.toLocaleString("en")} msgs, ${c.devices.toLocaleString("en")} devices | ${c.msgsPerSec.toLocaleString("en")} | ${(c.cpuMsPerMillion / 1000).toFixed(2)} | ${c.ledgerBytesPerDevice1M} |`)' "$CONS")

{
  echo "# Benchmark results"
  echo
  echo "Produced by \`npm run bench\` (bench/run.sh) on $(date -u +%Y-%m-%d), $(nproc) cores, node $(node --version), Mosquitto $(mosquitto -h 2>/dev/null | head -1 | sed 's/mosquitto version //')."
  echo "Machines are noisy: compare ratios within one run. Reproduce with \`npm run bench\`."
  echo
  echo "## 1. Cost per delivered message: 1000 devices × 10 msg/s, ${SECS} s, on Mosquitto"
  echo
  echo "| generator | QoS | delivered msg/s | µs CPU / msg | user µs | system µs | peak RSS MB | fleetload is cheaper by | above the floor, µs | above the floor, fleetload is cheaper by |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  for q in 0 1; do
    T=$Q0; [[ $q == 1 ]] && T=$Q1
    F=$(field "$(row fleetload "$T")" cpu_us_per_msg)
    FL=$(field "$(row floor "$T")" cpu_us_per_msg)
    FA=$(above "$F" "$FL")
    for tool in locust mqttjs fleetload floor; do
      L=$(row $tool "$T"); [[ -z $L ]] && continue
      U=$(field "$L" cpu_us_per_msg)
      A=$(above "$U" "$FL"); R=""; RA=""
      if [[ $tool == locust || $tool == mqttjs ]]; then R=$(ratio "$F" "$U"); RA=$(ratio "$FA" "$A"); fi
      [[ $tool == floor ]] && A="(the floor)"
      echo "| $tool | $q | $(field "$L" delivered) | $U | $(field "$L" user_us_per_msg) | $(field "$L" sys_us_per_msg) | $(field "$L" peak_rss_mb) | $R | $A | $RA |"
    done
  done
  echo
  echo "Targets (issue 3): fleetload ≤ 1/5 of mqttjs and ≤ 1/25 of locust per message."
  echo
  echo "\`floor\` (bench/peers/floor/floor.py) is no MQTT client at all: pre-encoded bytes, one \`write(2)\` per message per"
  echo "device socket, PUBACKs drained with one read per readable socket, 1 ms wake-ups. It is what the kernel charges"
  echo "the sender for loopback TCP and for waking the broker; every generator with one connection per device pays it, so"
  echo "no generator's ratio to another can beat (their cost) / (floor). \"Above the floor\" is each generator's own cost."
  echo
  echo "## 2. Throughput ceiling: 1000 devices × 150 msg/s (150k msg/s scheduled), QoS 0, one process"
  echo
  echo "| broker | sustained msg/s (full fleet) | sustained / target | whole run msg/s (with ramp) | schedule lag p99 | µs CPU / msg | peak RSS | saturated |"
  echo "|---|---|---|---|---|---|---|---|"
  echo "$C_MOSQ"
  echo "$C_SINK"
  echo "$C_SINK2"
  echo
  echo "\`--workers K\` runs K generator processes, each a segment of the fleet, merged live (µs CPU / msg counts the"
  echo "workers, which the parent reaps; peak RSS is the largest single process). On this 2-core machine the sink broker and the"
  echo "workers share the cores, so two workers cannot double the ceiling here; with K cores free for the generator, K"
  echo "workers should sustain about K times the one-process ceiling (each worker is the same engine)."
  echo
  echo "## 3. Idle fleet: ${IDLE} connected devices in one process (3 source addresses), sink broker"
  echo
  echo "| devices | peak RSS | baseline RSS (1 device) | RSS per device | connects/s |"
  echo "|---|---|---|---|---|"
  echo "| $CONN | $((RSSN / 1024)) MB | $((RSS1 / 1024)) MB | ${PER_DEV} KB | $CPS |"
  echo
  echo "## 4. Consumer: decode + ledger + delay histogram over recorded JSON messages, one core"
  echo
  echo "| input | msg/s | µs CPU / msg | ledger bytes per device (1M devices) |"
  echo "|---|---|---|---|"
  echo "$CONS_ROW"
  echo
  echo "Targets (issue 4): ≥ 300k msg/s, ≤ 32 bytes per device."
  echo
  echo "## 5. Wall clock: one now() reading (bench/clock.ts), median of 7 interleaved rounds"
  echo
  echo "| option | ns / call | relative to the old clock (same rounds) | mean offset from realtime, ms |"
  echo "|---|---|---|---|"
  echo "$CLOCK_ROWS"
  echo
  echo "fleetload's clock (src/clock.ts) is the WallClock row: performance.now() anchored to Date.now()'s millisecond tick."
  echo
  echo "## 6. TLS (Mosquitto with a self-signed P-256 certificate, TLS 1.3)"
  echo
  echo "### 6a. Cost per delivered message over TLS: 1000 devices × 10 msg/s, ${SECS} s (\`bench/peer-bench.sh -T\`)"
  echo
  echo "| generator | QoS | delivered msg/s | µs CPU / msg | user µs | system µs | peak RSS MB | fleetload is cheaper by |"
  echo "|---|---|---|---|---|---|---|---|"
  for q in 0 1; do
    T=$T0; [[ $q == 1 ]] && T=$T1
    F=$(field "$(row fleetload "$T")" cpu_us_per_msg)
    for tool in locust mqttjs fleetload; do
      L=$(row $tool "$T"); [[ -z $L ]] && continue
      U=$(field "$L" cpu_us_per_msg); R=""
      [[ $tool != fleetload ]] && R=$(ratio "$F" "$U")
      echo "| $tool | $q | $(field "$L" delivered) | $U | $(field "$L" user_us_per_msg) | $(field "$L" sys_us_per_msg) | $(field "$L" peak_rss_mb) | $R |"
    done
  done
  echo
  echo "Targets (issue 14): fleetload ≥ 2× below MQTT.js at QoS 1 and ≥ 8× below Locust+paho. The floor has no TLS row"
  echo "(it writes plain bytes)."
  echo
  echo "### 6b. TLS handshakes: ${TLS_CONN} connects, 200 in flight, through fleetload's transport (bench/tls-connects.ts)"
  echo
  echo "| wave | devices | full handshakes | resumed | failed | handshakes/s | client µs CPU / handshake |"
  echo "|---|---|---|---|---|---|---|"
  echo "$HS_ROWS"
  echo
  echo "\"No resumption\" forgets the kept session before each connect: what every connect cost before fleetload kept the"
  echo "session a server gave (a TLS 1.3 ticket) and offered it on the next connect (src/mqtt/transport.ts). Devices"
  echo "without a client certificate share one session per server; a device with its own certificate resumes only its own."
  echo "The broker and this process share the machine's cores: handshakes/s is bounded by both."
  echo
  echo "### 6c. Idle TLS fleet: ${TLS_IDLE} connected devices in one process, Mosquitto over TLS"
  echo
  echo "| devices | peak RSS | baseline RSS (1 device) | RSS per device | connects/s (ramp, with resumption) |"
  echo "|---|---|---|---|---|"
  echo "| $TCONN | $((TRSSN / 1024)) MB | $((TRSS1 / 1024)) MB | ${TPER_DEV} KB | $TCPS |"
  echo
  echo "Target (issue 14): ≤ 30 KB per idle TLS device (plain TCP: section 3)."
  echo
  echo "Commands: \`bench/run.sh\` runs all six; \`bench/peer-bench.sh\` (the shared peer bench plus a \`floor\` tool and user/system columns) runs section 1 alone,"
  echo "e.g. \`FLEETLOAD_CMD='${fl_cmd//$OUT//tmp/out}' bench/peer-bench.sh -d 1000 -r 10 -s 20 -q 1 -t locust,mqttjs,fleetload,floor\`."
} > "$RESULTS"
log "wrote $RESULTS"
