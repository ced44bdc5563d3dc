#!/usr/bin/env bash
# fleetload's TLS bench (section 6 of bench/RESULTS.md), runnable alone: `bash bench/run.sh tls` (splices the section
# into RESULTS.md) or `bash bench/tls.sh > section.md` (prints it). Every row is measured here, in one window:
#   6a. CPU per delivered message over TLS, QoS 0 and 1: fleetload, MQTT.js, Locust+paho (bench/peer-bench.sh -T),
#       beside the floor (Python's ssl, no MQTT client) and the Node floor (the same through Node's own I/O);
#       fleetload QoS 1 again with --tls-version 1.2; QoS 1 repeated TLS_ROUNDS times (each round the four
#       generators one after another), and the targets judged on the medians of the rounds' ratios
#   6b. TLS handshakes: client CPU per handshake on one core (taskset) and handshakes/s, full vs resumed, with
#       TLS 1.3 (Node's default) and TLS 1.2 (--tls-version 1.2)
#   6c. idle TLS devices: RSS per device at TLS_IDLE devices (TLS 1.3 and --tls-version 1.2), beside the floor (bare
#       tls.connect sockets, TLS 1.3 and 1.2)
#   6d. mutual TLS, one certificate per device (fleetload certs, Mosquitto require_certificate): CPU per message,
#       handshakes
#   6e. reconnect storm: TLS_STORM devices lose the broker at once (kill -9, restart) and come back at
#       --connect-rate: time to all connected, reconnects/s, with and without session resumption
# usage: bench/tls.sh [--quick]   env: TLS_IDLE (10000), TLS_STORM (5000), STORM_RATE (2000), SECS (20),
#   TLS_ROUNDS (3: QoS 1 peer rounds in 6a), HS_PAIRS (3: pairs of handshake waves in 6b and 6d),
#   TLS_SECTIONS (default "a b c d e": the subsections to run; the others' tables stay empty)
# Needs what bench/run.sh needs, and taskset.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
cd "$ROOT" # node --import tsx resolves tsx from here
QUICK=${1:-}
SECS=${SECS:-20}; TLS_IDLE=${TLS_IDLE:-10000}; TLS_STORM=${TLS_STORM:-5000}; STORM_RATE=${STORM_RATE:-2000}
TLS_CONN=2000; MTLS_DEVICES=1000; TLS_ROUNDS=${TLS_ROUNDS:-3}; HS_PAIRS=${HS_PAIRS:-3}
[[ $QUICK == --quick ]] && { SECS=8; TLS_IDLE=1000; TLS_STORM=500; TLS_CONN=300; MTLS_DEVICES=200; TLS_ROUNDS=1; HS_PAIRS=1; }
export PAIRS=$HS_PAIRS # bench/tls-connects.ts: pairs of waves (full, resumed) per run
CLI="node $ROOT/dist/cli/main.js"
[[ -f $ROOT/dist/cli/main.js ]] || npm run build >/dev/null
OUT=$(mktemp -d)
TMOSQ=
trap '[[ -n $TMOSQ ]] && kill "$TMOSQ" 2>/dev/null; [[ -n ${KEEP_OUT:-} ]] || rm -rf "$OUT"' EXIT
log() { printf '%s\n' "$*" >&2; }
want() { [[ " ${TLS_SECTIONS:-a b c d e} " == *" $1 "* ]]; }
# arithmetic on figures that may be missing (a subsection not run): empty (div, minus, median) or – (ratio) then
div() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a > 0 && b > 0) printf "%.2f", a / b }'; } # 2 decimals: judged as printed
ratio() { local q; q=$(div "$2" "$1"); if [[ -n $q ]]; then echo "$q×"; else echo "–"; fi; } # how many times cheaper a is
minus() { awk -v a="$1" -v f="$2" 'BEGIN{ if (a > 0 && f > 0) printf "%.1f", a - f }'; }
median() { # of the numbers on stdin (anything else skipped); $1: printf format (%.2f)
  tr ' ' '\n' | grep -E '^[0-9.]+$' | sort -g |
    awk -v f="${1:-%.2f}" '{ v[NR] = $1 } END { if (NR) printf f, (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
PEER_ROWS= ROUND_ROWS= MED_MQTTJS= MED_LOCUST= HS_ROWS= IDLE_ROWS= T1_12= STORM_ROWS= MTLS_MSG= MTLS_HS= T_CERTS=–
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true # 10,000 TLS devices need 10,000 descriptors (the hard limit here: 20,000)
T_START=$(date +%s)
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# the machine's load while we measure (other work shares the cores): recorded beside the figures
LOADS=()
load_now() { LOADS+=("$(cut -d' ' -f1 /proc/loadavg)"); }

# ---- one TLS Mosquitto (self-signed P-256 certificate for 127.0.0.1), restartable ------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$OUT/server.key" -out "$OUT/ca.pem" \
  -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1,DNS:localhost >/dev/null 2>&1
chmod 755 "$OUT"; chmod 644 "$OUT/server.key" # Mosquitto started as root reads them as user mosquitto
TPORT=$(freeport)
printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_connections -1\nmax_queued_messages 1000000\ncertfile %s\nkeyfile %s\n' \
  "$TPORT" "$OUT/ca.pem" "$OUT/server.key" > "$OUT/t.conf"
start_broker() { # conf → TMOSQ; Mosquitto pinned to core 1 when the client is pinned to core 0 (6b)
  (ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; exec ${PIN_BROKER:-} mosquitto -c "$1" >> "$OUT/broker.log" 2>&1) & TMOSQ=$!
  for _ in $(seq 50); do (echo > "/dev/tcp/127.0.0.1/$2") 2>/dev/null && return; sleep 0.1; done
  log "broker did not start: $(tail -3 "$OUT/broker.log")"; exit 1
}
stop_broker() { # [signal] port: also waits until the port is closed (the broker may be another subshell's child)
  [[ -n $TMOSQ ]] || return 0
  kill "${1:--TERM}" "$TMOSQ" 2>/dev/null || true; wait "$TMOSQ" 2>/dev/null || true
  for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/${2:-$TPORT}") 2>/dev/null || break; sleep 0.05; done
  TMOSQ=
}

# ---- 6a. peers over TLS ------------------------------------------------------------------------------------------
if want a; then
fl_cmd="$CLI run -H {url} -u {devices} -r {spawn} -t {seconds}s -i {interval_ms}ms --qos {qos} --headless --consumer none --out $OUT --json --ca {ca}"
log "6a peers over TLS, QoS 0 and 1 (${SECS}s each)…"
load_now
PEERS=locust,mqttjs,fleetload,floor,floor-node
T0=$(FLEETLOAD_CMD="$fl_cmd" "$HERE/peer-bench.sh" -T -d 1000 -r 10 -s "$SECS" -q 0 -p 500 -t $PEERS); log "$T0"
T1=$(FLEETLOAD_CMD="$fl_cmd" "$HERE/peer-bench.sh" -T -d 1000 -r 10 -s "$SECS" -q 1 -p 500 -t $PEERS); log "$T1"
T1_12=$(FLEETLOAD_CMD="$fl_cmd --tls-version 1.2" "$HERE/peer-bench.sh" -T -d 1000 -r 10 -s "$SECS" -q 1 -p 500 -t fleetload); log "$T1_12"
# before src/mqtt/raw-tls.ts: the same run on tls.connect sockets
T1_NODE=$(FLEETLOAD_CMD="$fl_cmd --sockets node" "$HERE/peer-bench.sh" -T -d 1000 -r 10 -s "$SECS" -q 1 -p 500 -t fleetload); log "$T1_NODE"
# the QoS 1 run again, TLS_ROUNDS − 1 more times: one run moves by about ±10% on a shared machine
T1_ROUNDS=("$T1")
for ((k = 2; k <= TLS_ROUNDS; k++)); do
  T1_ROUNDS+=("$(FLEETLOAD_CMD="$fl_cmd" "$HERE/peer-bench.sh" -T -d 1000 -r 10 -s "$SECS" -q 1 -p 500 -t $PEERS)")
  log "${T1_ROUNDS[-1]}"
done
load_now
field() { sed -n "s/.*$2= *\([0-9.]*\).*/\1/p" <<<"$1"; }
row() { grep "^$1 " <<<"$2" || true; }
above() { awk -v a="$1" -v f="$2" 'BEGIN{ if (a > 0 && f > 0) printf "%.2f", a - f; else print "–" }'; }
PEER_ROWS=$(for q in 0 1; do
  T=$T0; [[ $q == 1 ]] && T=$T1
  F=$(field "$(row fleetload "$T")" cpu_us_per_msg); FL=$(field "$(row floor "$T")" cpu_us_per_msg)
  FN=$(field "$(row floor-node "$T")" cpu_us_per_msg)
  FA=$(above "$F" "$FL")
  for tool in locust mqttjs fleetload floor floor-node; do
    L=$(row $tool "$T"); [[ -z $L ]] && continue
    U=$(field "$L" cpu_us_per_msg); R="" A=$(above "$U" "$FL") RA="" AN=$(above "$U" "$FN")
    [[ $tool == locust || $tool == mqttjs ]] && R=$(ratio "$F" "$U") && RA=$(ratio "$FA" "$A")
    [[ $tool == floor ]] && A="(the floor)" AN=""
    [[ $tool == floor-node ]] && AN="(the Node floor)"
    echo "| $tool | $q | $(field "$L" delivered) | $U | $(field "$L" user_us_per_msg) | $(field "$L" sys_us_per_msg) | $(field "$L" peak_rss_mb) | $R | $A | $RA | $AN |"
  done
done
FL=$(field "$(row floor "$T1")" cpu_us_per_msg); FN=$(field "$(row floor-node "$T1")" cpu_us_per_msg)
variant() { # label, peer-bench output: one more QoS 1 fleetload row
  local L; L=$(row fleetload "$2"); [[ -n $L ]] || return 0
  local U; U=$(field "$L" cpu_us_per_msg)
  echo "| $1 | 1 | $(field "$L" delivered) | $U | $(field "$L" user_us_per_msg) | $(field "$L" sys_us_per_msg) | $(field "$L" peak_rss_mb) | | $(above "$U" "$FL") | | $(above "$U" "$FN") |"
}
variant 'fleetload --tls-version 1.2' "$T1_12"
variant 'fleetload --sockets node (tls.connect: before raw TLS)' "$T1_NODE"
true)
# QoS 1, round by round: µs per message of each generator and fleetload's ratios; then the medians
ROUND_ROWS=$(for ((k = 0; k < ${#T1_ROUNDS[@]}; k++)); do
  T=${T1_ROUNDS[$k]}
  F=$(field "$(row fleetload "$T")" cpu_us_per_msg); M=$(field "$(row mqttjs "$T")" cpu_us_per_msg)
  L=$(field "$(row locust "$T")" cpu_us_per_msg); O=$(field "$(row floor "$T")" cpu_us_per_msg)
  N=$(field "$(row floor-node "$T")" cpu_us_per_msg)
  echo "| $((k + 1)) | $F | $M | $L | $O | $N | $(ratio "$F" "$M") | $(ratio "$F" "$L") |"
done)
col() { awk -F'|' -v c="$1" '{ gsub(/[ ×]/, "", $c); printf "%s ", $c }' <<<"$ROUND_ROWS"; }
MED_MQTTJS=$(col 8 | median); MED_LOCUST=$(col 9 | median)
ROUND_ROWS+=$'\n'"| median | $(col 3 | median) | $(col 4 | median) | $(col 5 | median) | $(col 6 | median) | $(col 7 | median) | ${MED_MQTTJS}× | ${MED_LOCUST}× |"

fi

# ---- 6b. handshakes: the client on core 0, the broker on core 1 ---------------------------------------------------
hs_rows() { # label → table rows from tls-connects.ts JSON lines on stdin
  node -e '
    const lines = require("fs").readFileSync(0, "utf8").trim().split("\n").filter(Boolean).map(JSON.parse);
    for (const w of lines) console.log(`| ${process.argv[1]} | ${w.wave} | ${w.devices.toLocaleString("en")} | ${w.full.toLocaleString("en")} | ${w.resumed.toLocaleString("en")} | ${w.failed} | ${w.perSec.toLocaleString("en")} | ${w.cpuUsPerHandshake} | ${Math.round(1e6 / w.cpuUsPerHandshake).toLocaleString("en")} |`);
  ' "$1"
}
if want b; then
log "6b handshakes, client pinned to core 0…"
PIN_BROKER="taskset -c 1" start_broker "$OUT/t.conf" "$TPORT"
load_now
HS_ROWS=$(timeout 180 taskset -c 0 node --import tsx "$HERE/tls-connects.ts" "mqtts://127.0.0.1:$TPORT" "$OUT/ca.pem" "$TLS_CONN" 200 | hs_rows "server certificate only, TLS 1.3 (auto)")
log "$HS_ROWS"
HS_ROWS+=$'\n'$(SOCKETS=node timeout 180 taskset -c 0 node --import tsx "$HERE/tls-connects.ts" "mqtts://127.0.0.1:$TPORT" "$OUT/ca.pem" "$TLS_CONN" 200 | hs_rows "tls.connect (--sockets node: before raw TLS), TLS 1.3")
log "$HS_ROWS"
HS_ROWS+=$'\n'$(TLS_VERSION=1.2 timeout 180 taskset -c 0 node --import tsx "$HERE/tls-connects.ts" "mqtts://127.0.0.1:$TPORT" "$OUT/ca.pem" "$TLS_CONN" 200 | hs_rows "server certificate only, --tls-version 1.2")
log "$HS_ROWS"
stop_broker

fi

# ---- 6c. idle TLS devices vs the floor ------------------------------------------------------------------------------
# RSS is read from outside (/proc/PID/status VmRSS, every second) for fleetload and for the floor alike: the
# lowest reading of the last seconds of the hold, all devices connected; per device = (N − 1-device run) / N.
if want c; then
held_rss() { # command… → KB
  "$@" > "$OUT/held.out" 2> "$OUT/held.err" & local p=$! s=()
  while kill -0 $p 2>/dev/null; do
    local r; r=$(awk '/VmRSS/{print $2}' /proc/$p/status 2>/dev/null || true); [[ -n $r ]] && s+=("$r"); sleep 1
  done
  wait $p 2>/dev/null || true
  local n=${#s[@]}; printf '%s\n' "${s[@]:$((n > 7 ? n - 7 : 0)):5}" | sort -n | head -1
}
log "6c idle TLS: fleetload and the floor at $TLS_IDLE devices…"
start_broker "$OUT/t.conf" "$TPORT"
load_now
IDLE_RAMP=$((TLS_IDLE / 1000 + 1)) # -r 1000: ~1000 handshakes/s
fl_idle() { held_rss $CLI run -H "mqtts://127.0.0.1:$TPORT" --ca "$OUT/ca.pem" -u "$1" -r 1000 -t "$((IDLE_RAMP + 14))s" -i 1h --qos 0 \
  --headless --consumer none --out "$OUT" --json "${@:2}"; }
fl_connected() { node -e 'try { console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).devices.connectedPeak) } catch { console.log("?") }' "$OUT/held.out"; }
floor_idle() { FLOOR_HOLD_MS=9000 held_rss node --import tsx "$HERE/tls-floor.ts" "mqtts://127.0.0.1:$TPORT" "$OUT/ca.pem" "$1" 200; }
FL1=$(fl_idle 1); FLN=$(fl_idle "$TLS_IDLE"); FLCONN=$(fl_connected)
FL12N=$(fl_idle "$TLS_IDLE" --tls-version 1.2); FL12CONN=$(fl_connected)
FLNODE=$(fl_idle "$TLS_IDLE" --sockets node); FLNODECONN=$(fl_connected)
floor_connected() { node -e 'const l = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").pop(); try { console.log(JSON.parse(l).connected) } catch { console.log("?") }' "$OUT/held.out"; }
FO1=$(FLOOR_RAW=1 floor_idle 1); FON=$(FLOOR_RAW=1 floor_idle "$TLS_IDLE"); FOCONN=$(floor_connected)
F12N=$(FLOOR_RAW=1 FLOOR_MAX_VERSION=TLSv1.2 floor_idle "$TLS_IDLE"); F12CONN=$(floor_connected)
FT1=$(floor_idle 1); FTN=$(floor_idle "$TLS_IDLE"); FTCONN=$(floor_connected)
per() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN{printf "%.1f", (b-a)/n}'; }
IDLE_ROWS=$(
  echo "| fleetload run (devices idle, -i 1h), TLS 1.3 (auto) | $FLCONN | $((FLN / 1024)) MB | $((FL1 / 1024)) MB | $(per "$FL1" "$FLN" "$TLS_IDLE") KB |"
  echo "| fleetload run --tls-version 1.2 (devices idle) | $FL12CONN | $((FL12N / 1024)) MB | $((FL1 / 1024)) MB | $(per "$FL1" "$FL12N" "$TLS_IDLE") KB |"
  echo "| fleetload run --sockets node (tls.connect: before raw TLS), TLS 1.3 | $FLNODECONN | $((FLNODE / 1024)) MB | $((FL1 / 1024)) MB | $(per "$FL1" "$FLNODE" "$TLS_IDLE") KB |"
  echo "| floor: TLSWrap on a raw TCP handle, 512-byte records, lean sessions, CONNECT/CONNACK (+ PINGREQ after the tickets), TLS 1.3 | $FOCONN | $((FON / 1024)) MB | $((FO1 / 1024)) MB | $(per "$FO1" "$FON" "$TLS_IDLE") KB |"
  echo "| floor, TLS 1.2 (maxVersion) | $F12CONN | $((F12N / 1024)) MB | $((FO1 / 1024)) MB | $(per "$FO1" "$F12N" "$TLS_IDLE") KB |"
  echo "| bare tls.connect + one CONNECT/CONNACK, TLS 1.3 (the floor before raw TLS) | $FTCONN | $((FTN / 1024)) MB | $((FT1 / 1024)) MB | $(per "$FT1" "$FTN" "$TLS_IDLE") KB |"
)
log "$IDLE_ROWS"

fi

# ---- 6e. reconnect storm --------------------------------------------------------------------------------------------
# fleetload holds TLS_STORM idle devices; once all are connected the broker is killed (-9) and restarted 1 s later
# (a restarted Mosquitto has new ticket keys: the first reconnects are full handshakes either way). From the run's
# intervals: the seconds from the restart to all connected again, and the reconnects per second meanwhile.
if want e; then
storm() { # resumption on|off → table row
  local id="storm-$1-$$" dir="$OUT/storm-$1"
  FLEETLOAD_TLS_RESUMPTION=$1 /usr/bin/time -f '%U %S' -o "$OUT/storm.time" $CLI run -H "mqtts://127.0.0.1:$TPORT" --ca "$OUT/ca.pem" \
    -u "$TLS_STORM" -r 2000 --connect-rate "$STORM_RATE" --reconnect-min 100ms --reconnect-max 1s -t 35s -i 1h --qos 0 \
    --headless --consumer none --out "$dir" --run-id "$id" --json > "$OUT/storm.json" 2>/dev/null & local p=$!
  local f="$dir/$id/intervals.jsonl" t_kill="" t_back=""
  for _ in $(seq 300); do
    [[ -f $f ]] && [[ $(tail -1 "$f" | sed -n 's/.*"devicesConnected":\([0-9]*\).*/\1/p') -ge $TLS_STORM ]] && break; sleep 0.2
  done
  sleep 2
  stop_broker -KILL "$TPORT"; sleep 1; t_kill=$(date +%s.%N)
  start_broker "$OUT/t.conf" "$TPORT"; t_back=$(date +%s.%N)
  wait $p 2>/dev/null || true
  node -e '
    const fs = require("fs");
    const [f, back, n, label, tf] = process.argv.slice(1);
    const rows = fs.readFileSync(f, "utf8").trim().split("\n").map(JSON.parse);
    const t = (r) => Date.parse(r.time) / 1000;
    const after = rows.filter((r) => t(r) > Number(back));
    const full = after.find((r) => r.devicesConnected >= Number(n));
    const secs = full ? t(full) - Number(back) : NaN;
    const until = full ? after.slice(0, after.indexOf(full) + 1) : after;
    const reconnects = until.reduce((a, r) => a + r.counters.connects, 0);
    const peak = Math.max(...until.map((r) => r.counters.connects * 1000 / r.durationMs));
    const cpu = until.reduce((a, r) => a + (r.cpuPercent / 100) * r.durationMs / 1000, 0);
    const [u, y] = fs.readFileSync(tf, "utf8").trim().split("\n").pop().split(/\s+/).map(Number);
    console.log(`| ${label} | ${Number(n).toLocaleString("en")} | ${full ? "≤ " + Math.ceil(secs) + " s" : "not all within the run"} | ${reconnects.toLocaleString("en")} | ${full ? Math.round(reconnects / Math.ceil(secs)).toLocaleString("en") : "–"} | ${Math.round(peak).toLocaleString("en")} | ${(cpu * 1e6 / Math.max(1, reconnects)).toFixed(0)} | ${(u + y).toFixed(1)} s |`);
  ' "$f" "$t_back" "$TLS_STORM" "$2" "$OUT/storm.time"
}
log "6e reconnect storm: $TLS_STORM devices, --connect-rate $STORM_RATE…"
[[ -n $TMOSQ ]] || start_broker "$OUT/t.conf" "$TPORT"
load_now
# in this shell, not a $(…) subshell: the broker it restarts stays this shell's child
storm on "with resumption (default)" > "$OUT/storm.rows"
storm off "without resumption (FLEETLOAD_TLS_RESUMPTION=off)" >> "$OUT/storm.rows"
STORM_ROWS=$(cat "$OUT/storm.rows")
log "$STORM_ROWS"
stop_broker

fi

# ---- 6d. mutual TLS, a certificate per device -----------------------------------------------------------------------
if want d; then
log "6d mutual TLS: $MTLS_DEVICES device certificates…"
CERTS=$OUT/certs
T_CERTS0=$(date +%s.%N)
$CLI certs -u "$MTLS_DEVICES" --out "$CERTS" --server-cert 127.0.0.1 --readable-server-key > /dev/null
T_CERTS=$(awk -v a="$T_CERTS0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
MPORT=$(freeport)
printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_connections -1\nmax_queued_messages 1000000\ncertfile %s\nkeyfile %s\ncafile %s\nrequire_certificate true\nuse_identity_as_username true\n' \
  "$MPORT" "$CERTS/server.pem" "$CERTS/server.key" "$CERTS/ca.pem" > "$OUT/m.conf"
chmod -R a+rX "$CERTS"
start_broker "$OUT/m.conf" "$MPORT"
load_now
msg_cost() { # label, extra run flags… → table row (µs CPU per sent message, whole process)
  local label=$1; shift
  /usr/bin/time -f '%U %S %M' -o "$OUT/m.time" $CLI run -H "mqtts://127.0.0.1:$MPORT" --ca "$CERTS/ca.pem" -u "$MTLS_DEVICES" -r 500 \
    -t "${SECS}s" -i 100ms --qos 1 --headless --consumer none --out "$OUT" --json "$@" > "$OUT/m.json" 2>/dev/null || true
  node -e '
    const fs = require("fs"); const s = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    const [u, y, m] = fs.readFileSync(process.argv[2], "utf8").trim().split("\n").pop().split(/\s+/).map(Number);
    console.log(`| ${process.argv[3]} | ${s.devices.connectedPeak.toLocaleString("en")} | ${s.messages.sent.toLocaleString("en")} | ${s.messages.acked.toLocaleString("en")} | ${((u + y) * 1e6 / Math.max(1, s.messages.sent)).toFixed(1)} | ${(m / 1024).toFixed(0)} MB |`);
  ' "$OUT/m.json" "$OUT/m.time" "$label"
}
MTLS_MSG=$(msg_cost "mutual TLS, --cert/--key per device" --cert "$CERTS/{deviceId}.pem" --key "$CERTS/{deviceId}.key")
log "$MTLS_MSG"
stop_broker -TERM "$MPORT"
PIN_BROKER="taskset -c 1" start_broker "$OUT/m.conf" "$MPORT"
MTLS_HS=$(timeout 180 taskset -c 0 node --import tsx "$HERE/tls-connects.ts" "mqtts://127.0.0.1:$MPORT" "$CERTS/ca.pem" "$MTLS_DEVICES" 200 "$CERTS" | hs_rows "mutual TLS, own certificate")
log "$MTLS_HS"
stop_broker -TERM "$MPORT"
load_now
fi

T_ALL=$(( $(date +%s) - T_START ))

# ---- targets (issue 14), judged on this run's figures ----------------------------------------------------------------
cell() { awk -F'|' -v c="$1" '{gsub(/[ ,×KB]/, "", $c); print $c; exit}'; } # column of the first row on stdin
R_MQTTJS=$(grep '^| mqttjs | 1 ' <<<"$PEER_ROWS" | cell 9 || true)
R_LOCUST=$(grep '^| locust | 1 ' <<<"$PEER_ROWS" | cell 9 || true)
# judged on the medians of the QoS 1 rounds when there are several
[[ -n $MED_MQTTJS ]] && R_MQTTJS=$MED_MQTTJS
[[ -n $MED_LOCUST ]] && R_LOCUST=$MED_LOCUST
us() { grep "^| $1 | 1 " <<<"$PEER_ROWS" | cell 5 || true; } # µs CPU / msg at QoS 1
R12_MQTTJS=$(div "$(us mqttjs)" "$(us 'fleetload --tls-version 1.2')")
R12_LOCUST=$(div "$(us locust)" "$(us 'fleetload --tls-version 1.2')")
# label, wave kind → one core's ceiling: the median over that kind's waves (one wave moves by about ±10% here)
ceil() { grep "$1" <<<"$HS_ROWS" | grep "| $2" | awk -F'|' '{ gsub(/[ ,]/, "", $10); print $10 }' | median %d; }
FULL_CEIL=$(ceil 'TLS 1.3 (auto)' 'full handshakes'); RES_CEIL=$(ceil 'TLS 1.3 (auto)' 'with resumption')
FULL12=$(ceil 'tls-version 1.2' 'full handshakes'); RES12=$(ceil 'tls-version 1.2' 'with resumption')
IDLE_KB=$(grep '^| fleetload run (devices idle' <<<"$IDLE_ROWS" | cell 6 || true)
IDLE12=$(grep '^| fleetload run --tls-version 1.2' <<<"$IDLE_ROWS" | cell 6 || true)
FLOOR_KB=$(grep '^| floor: TLSWrap' <<<"$IDLE_ROWS" | cell 6 || true)
FLOOR12=$(grep 'floor, TLS 1.2' <<<"$IDLE_ROWS" | cell 6 || true)
RES_X=$(div "$RES_CEIL" "$FULL_CEIL"); RES12_X=$(div "$RES12" "$FULL12")
# µs per message at QoS 1: the medians of the rounds (the last row of ROUND_ROWS), else the table's
med_us() { grep '^| median ' <<<"$ROUND_ROWS" | cell "$1" || true; }
F_US=$(med_us 3); M_US=$(med_us 4); L_US=$(med_us 5); FLOOR_US=$(med_us 6); NFLOOR_US=$(med_us 7)
[[ -n $F_US ]] || { F_US=$(us fleetload); M_US=$(us mqttjs); L_US=$(us locust); FLOOR_US=$(us floor); NFLOOR_US=$(us floor-node); }
L8_US=$(awk -v a="$L_US" 'BEGIN{ if (a > 0) printf "%.1f", a / 8 }')
M2_US=$(awk -v a="$M_US" 'BEGIN{ if (a > 0) printf "%.1f", a / 2 }')
M2_ABOVE=$(minus "$M2_US" "$FLOOR_US"); OURS_ABOVE=$(minus "$F_US" "$FLOOR_US")
# the same against the Node floor (floor-node): what a load generator on Node may spend on its own work
M2_ABOVE_N=$(minus "$M2_US" "$NFLOOR_US"); OURS_ABOVE_N=$(minus "$F_US" "$NFLOOR_US")
L8_NOTE=$(awk -v a="$L8_US" -v f="$NFLOOR_US" 'BEGIN{ if (!(a > 0 && f > 0)) print "not measured";
  else if (a < f) print "that target is below what Node'"'"'s own I/O costs with no MQTT client at all: no generator on Node meets it here";
  else printf "that target leaves a generator on Node %.1f µs above the Node floor", a - f }')
met() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN{ if (v == "") print "not measured"; else if ((op == ">=" && v + 0 >= t) || (op == "<=" && v + 0 <= t)) print "**met**"; else print "**not met**" }'; }
VERDICT=$(
  echo "| target | TLS 1.3 (auto) | verdict | --tls-version 1.2 | verdict |"
  echo "|---|---|---|---|---|"
  echo "| QoS 1 over TLS: ≥ 2× below MQTT.js (at TLS 1.3; median of the rounds) | ${R_MQTTJS:-–}× | $(met "$R_MQTTJS" 2 '>=') | ${R12_MQTTJS:-–}× | $(met "$R12_MQTTJS" 2 '>=') |"
  echo "| QoS 1 over TLS: ≥ 8× below Locust+paho (at TLS 1.3; median of the rounds) | ${R_LOCUST:-–}× | $(met "$R_LOCUST" 8 '>=') | ${R12_LOCUST:-–}× | $(met "$R12_LOCUST" 8 '>=') |"
  echo "| ≥ 1,000 full handshakes/s on one core (client ceiling, 6b; median of the waves) | ${FULL_CEIL:-–} | $(met "$FULL_CEIL" 1000 '>=') | ${FULL12:-–} | $(met "$FULL12" 1000 '>=') |"
  echo "| ≥ 3× that (3,000/s) with resumption (median of the waves; in brackets: × the full handshakes' median) | ${RES_CEIL:-–} (${RES_X:-–}×) | $(met "$RES_CEIL" 3000 '>=') | ${RES12:-–} (${RES12_X:-–}×) | $(met "$RES12" 3000 '>=') |"
  echo "| idle TLS device ≤ 30 KB (floors: ${FLOOR_KB:-–} KB at 1.3, ${FLOOR12:-–} KB at 1.2) | ${IDLE_KB:-–} KB | $(met "$IDLE_KB" 30 '<=') | ${IDLE12:-–} KB | $(met "$IDLE12" 30 '<=') |"
)

# ---- section 6 --------------------------------------------------------------------------------------------------------
cat <<EOF
## 6. TLS (Mosquitto with a self-signed P-256 certificate; TLS 1.3 unless a row says 1.2)

Measured by \`bash bench/run.sh tls\` (bench/tls.sh, ${T_ALL} s) on $(date -u +%Y-%m-%d), $(nproc) cores, node $(node --version), OpenSSL $(node -p process.versions.openssl).
Load average (1 min) sampled during the section: $(IFS=' '; echo "${LOADS[*]}") — the machine was shared with other work:
compare rows of one table, not figures across runs.

### 6a. Cost per delivered message over TLS: 1000 devices × 10 msg/s, ${SECS} s (\`bench/peer-bench.sh -T\`)

| generator | QoS | delivered msg/s | µs CPU / msg | user µs | system µs | peak RSS MB | fleetload is cheaper by | above the floor, µs | above the floor, fleetload is cheaper by | above the Node floor, µs |
|---|---|---|---|---|---|---|---|---|---|---|
$PEER_ROWS

QoS 1 in ${TLS_ROUNDS} rounds (the first is the table above's; in each round the five run one after another, against
the same broker), µs CPU per delivered message and how many times cheaper fleetload is:

| round | fleetload | MQTT.js | Locust+paho | floor | Node floor | × MQTT.js | × Locust+paho |
|---|---|---|---|---|---|---|---|
$ROUND_ROWS

Targets (issue 14): fleetload ≥ 2× below MQTT.js at QoS 1 and ≥ 8× below Locust+paho, judged (6g) on the medians
of the rounds' ratios.
\`floor\` (bench/peers/floor/floor.py over TLS) is no MQTT client and no JavaScript: Python's ssl module (OpenSSL)
with pre-encoded packets, one TLS record written per message, PUBACKs drained per readable socket, a full handshake
per connection. It is the kernel's share plus OpenSSL's per-record work, which every TLS generator with a
connection per device pays; "above the floor" is each generator's own cost, the part a generator can cut.
\`floor-node\` (bench/peers/floor/node-floor.mjs) is the same load through Node's own I/O, the cheapest way Node
allows: libuv TCP handles from Node's internal bindings with Node's TLSWrap (OpenSSL) around them, as fleetload's
devices use them (src/mqtt/raw-tls.ts), sessions resumed, the same packets pre-encoded, PUBACKs counted as they
arrive — no MQTT client, no scheduling per device, no measuring. It adds Node's C++ I/O layer and event loop to the
floor (libuv, StreamBase, TLSWrap and its memory BIOs, a write request and its completion callback per message) and
its start-up: what every load generator written for Node pays before its own JavaScript runs. "Above the Node
floor" is what a generator's own JavaScript costs: for fleetload, scheduling each device, encoding each payload
(sequence number, timestamp), keeping each QoS 1 message until its PUBACK, parsing what comes back, the
latency histograms and per-second counters, start-up and the ramp, and the results folder.

### 6b. TLS handshakes on one core: ${TLS_CONN} connects, 200 in flight (bench/tls-connects.ts under \`taskset -c 0\`, Mosquitto on core 1)

| certificates | wave | devices | full handshakes | resumed | failed | handshakes/s (wall) | client µs CPU / handshake | one core's ceiling, handshakes/s |
|---|---|---|---|---|---|---|---|---|
$HS_ROWS

"One core's ceiling" is 10⁶ / (client µs CPU per handshake): what one fully busy client core sustains; the wall
rate is also bounded by the broker (one core). "No resumption" waves offer no kept session (\`resume: false\`):
every connect a full handshake, as before fleetload kept sessions; each device still keeps the session it is given,
so the next wave resumes. ${HS_PAIRS} pairs of waves per row set (one wave moves by about ±10% here); the targets
are judged (6g) on the median ceiling of each kind of wave.
Targets (issue 14): ≥ 1,000 full handshakes/s on one core; ≥ 3× that with resumption.

### 6c. Idle TLS devices: RSS per device at ${TLS_IDLE} devices, beside the floor

| process | connected | RSS, all connected | RSS, 1 device | RSS per device |
|---|---|---|---|---|
$IDLE_ROWS

RSS read from outside (VmRSS each second, lowest of the last seconds of the hold). The floor (bench/tls-floor.ts
with FLOOR_RAW=1) is the least a Node TLS client can hold per connection: Node's TLS layer on a raw TCP handle, no
socket objects, 512-byte records (OpenSSL's least: it sizes a connection's write buffer by them), doing the least
an MQTT device does (one CONNECT written, one CONNACK read), one shared SecureContext, sessions resumed and kept
without the server certificate, and one PINGREQ after the CONNACK when a ticket came after the CONNECT (it lets
OpenSSL free the write buffer the ticket made it set up) — what fleetload's devices do. The last row
is the same on \`tls.connect\` sockets (the floor of a client built on Node's public TLS API). fleetload's own state
per device is the rest (about 2–3 KB: section 3). Target (issue 14): ≤ 30 KB per idle TLS device.

### 6d. Mutual TLS, one certificate per device (\`fleetload certs\`: ECDSA P-256; Mosquitto \`require_certificate\`)

\`fleetload certs -u ${MTLS_DEVICES}\` took ${T_CERTS} s.

| run: ${MTLS_DEVICES} devices × 10 msg/s, QoS 1, ${SECS} s | connected | sent | acked | µs CPU / sent msg (whole process) | peak RSS |
|---|---|---|---|---|---|
$MTLS_MSG

| certificates | wave | devices | full handshakes | resumed | failed | handshakes/s (wall) | client µs CPU / handshake | one core's ceiling, handshakes/s |
|---|---|---|---|---|---|---|---|---|
$MTLS_HS

### 6e. Reconnect storm: ${TLS_STORM} TLS devices lose the broker (kill -9, restart 1 s later), \`--connect-rate ${STORM_RATE}\`

| run | devices | back to all connected (after the restart) | reconnects | reconnects/s | peak reconnects/s (1 s) | client µs CPU / reconnect | run CPU (user + system) |
|---|---|---|---|---|---|---|---|
$STORM_ROWS

A restarted Mosquitto has new ticket keys, so the first reconnects are full handshakes in both runs; with
resumption the others resume the session the first ones were given. The interval rows are 1 s apart: times are
rounded up to the second. Client µs CPU / reconnect is the process's CPU over those seconds divided by the
reconnects (it includes the broker-down retries).
EOF
echo
cat "$HERE/tls-profile.md"
cat <<EOF

### 6g. Targets (issue 14), on this run's figures

$VERDICT

What bounds each target, with the floors. Per message: about two fifths of a TLS message's cost is the kernel's
and the rest mostly OpenSSL's per-record work and Node's C++ TLS layer (6f), which every generator with a socket per
device pays; the \`floor\` row of 6a (OpenSSL and the kernel, no Node, no MQTT client) bounds every ratio to another
generator, and the \`floor-node\` row (the same through Node's own I/O, no MQTT client) bounds every ratio a load
generator written for Node can reach. On this run (medians of the QoS 1 rounds) 8× below Locust+paho is ${L8_US:-–} µs
per message; the floor costs ${FLOOR_US:-–} µs and the Node floor ${NFLOOR_US:-–} µs: ${L8_NOTE}. 2× below MQTT.js is ${M2_US:-–} µs,
${M2_ABOVE:-–} µs above the floor and ${M2_ABOVE_N:-–} µs above the Node floor: that is all a generator on Node may spend on
its own work (start-up, the ramp, scheduling, encoding, QoS 1 tracking, measuring) at this load; fleetload spends
${OURS_ABOVE_N:-–} µs there (${OURS_ABOVE:-–} µs above the floor). Locust+paho is saturated here (it delivers well under its schedule), so
its ratio understates what it would cost at the full rate. Idle memory: an idle device holds OpenSSL's per-connection
state (the raw floor of 6c) plus fleetload's own state (about 1–2 KB). Handshakes: a resumed TLS 1.3 handshake still
makes an X25519 key exchange and pays OpenSSL 3's algorithm fetching (6f); a resumed TLS 1.2 handshake makes no key
exchange. Resumption always saves the broker's signature and the bytes, and with mutual TLS the client's
certificate work (6d).
EOF
