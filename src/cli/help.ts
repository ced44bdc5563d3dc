/** Help texts. Keep them true to what is implemented: a flag listed here is a flag parseRunArgs accepts. */

export const MAIN_HELP = `fleetload — load-test IoT platforms with a fleet of simulated MQTT devices

Usage: fleetload <command> [options]

Commands:
  run [scenario.yaml]   run a load test (fleetload run --help)
  consume               standalone consumer: MQTT, NATS JetStream, Event Hubs (fleetload consume --help)
  schema                print the JSON Schema of the scenario file (fleetload schema --help)
  plan [scenario.yaml]  print the load plan without connecting (fleetload plan --help)
  certs                 make a CA and per-device certificates (fleetload certs --help)
  report DIR            rebuild the HTML report of a run
  compare A B           compare two runs (fleetload compare --help)
  merge DIR…            join the results folders of one run exactly (fleetload merge --help)
  ui                    a web UI that starts tests, shows them live and lists past runs (fleetload ui --help)

  worker                a generator process of run --workers K (started by it, not by hand)

Options:
  -h, --help            show this help
  -v, --version         print the version
`;

export const PLAN_HELP = `Usage: fleetload plan [scenario.yaml] [flags]

Prints what \`fleetload run\` would do with the same scenario file and flags, without connecting: the broker,
the fleet over time (ramp or stages), msg/s at full fleet and the number of messages the run will schedule
(what summary.json's messages.scheduled should meet when every device connects on time), the consumer,
thresholds and the results folder. It takes every flag of run (fleetload run --help lists them); the input is
checked as run checks it (exit 2 with the culprit named).

Example:
  fleetload plan --stage 30s:100 --stage 1m:100 --stage 30s:0 -i 500ms

Options:
  -h, --help            show this help
`;

export const SCHEMA_HELP = `Usage: fleetload schema

Prints the JSON Schema (draft 2020-12) of the scenario file on stdout: every key of a scenario.yaml,
its type, default and meaning. Editors use it for completion and checks, e.g.
  fleetload schema > fleetload.schema.json
and in scenario.yaml:  # yaml-language-server: $schema=./fleetload.schema.json

Options:
  -h, --help            show this help
`;

export const RUN_HELP = `Usage: fleetload run [scenario.yaml] [flags]

Runs a load test. Settings come from, highest first: flags, FLEETLOAD_<FLAG> environment variables
(e.g. FLEETLOAD_HOST, FLEETLOAD_DEVICES, FLEETLOAD_SPAWN_RATE, FLEETLOAD_RUN_TIME), the scenario file
(camelCase keys: devices, spawnRate, runTime, …), then the defaults below. Empty variables are ignored;
FLEETLOAD_THRESHOLD takes several expressions separated by commas or newlines.
Durations: 500ms, 30s, 5m, 1h30m (a number needs its unit).

Load:
  -H, --host URL            broker: mqtt://, mqtts://, ws://, wss://   (default: embedded broker, MQTT 3.1.1)
  -u, --devices N           devices to simulate                         (default: 100)
  -r, --spawn-rate N        devices started per second                  (default: 50)
  -t, --run-time D          test duration, ramp included, at most 168h  (default: 30s)
      --stage D:N           repeatable, k6-style: move the fleet linearly to N devices over D
                            (e.g. --stage 1m:1000 --stage 5m:1000 --stage 1m:0); stages set the
                            fleet size and the run time, so not with -u/-t
  -i, --interval D          time between one device's messages, ≥ 1ms   (default: 1s)
      --jitter D            random ± offset added to each send          (default: 0ms)
      --qos 0|1|2           publish QoS                                 (default: 1)
      --mqtt-version V      3.1.1 or 5 (5 needs --host)                 (default: 3.1.1)
      --payload FILE        payload template: {{deviceId}} {{seq}} {{ts}} {{iso}} {{index}} {{runId}}
                            {{random 20 30}} {{randomInt 0 9}} {{choice on off}} {{uuid}}; a JSON
                            object with --encoding json (fleetload adds the measurement fields)
      --payload-size N      pad each message payload to N bytes         (default: 0: no padding)
      --inflight N          QoS 1/2 messages in flight per device       (default: 64)
      --messages-per-device N  each device stops after N messages; the run
                            ends when all have, or at --run-time        (default: no limit)
      --offline drop|buffer messages due while a device is offline: dropped and counted, or buffered
                            and sent as a burst on reconnect            (default: drop)
      --offline-buffer N    messages a device buffers                   (default: 1000)
      --backpressure drop|wait  in-flight window full: drop (counted) or wait in the buffer (default: drop)

Connections:
      --source-ip LIST      local addresses to spread connections over: 127.0.0.2,127.0.0.3 or a
                            CIDR such as 127.0.1.0/28 (passes ~28k ports per source address); they
                            must be this machine's; a CIDR is used only as far as the devices need
      --connect-rate N      global limit of connection attempts per second, reconnects included
      --reconnect-min D     reconnect backoff base, exponential with full jitter (default: 500ms)
      --reconnect-max D     reconnect backoff cap                       (default: 30s)
      --command-topic T     each device subscribes to this topic template (commands are counted)
      --encoding E          json: metadata as JSON fields (default); properties: MQTT 5 user
                            properties; binary: a compact binary header (tiny payloads)
      --tick D              scheduler resolution: due messages go out together at most once per
                            tick; coarser costs less CPU, adds up to D of schedule lag (default: 1ms)
      --sockets raw|node    TCP and TLS device sockets: raw libuv handles (default; less CPU and
                            memory) or net.Socket / tls.connect (the fallback where raw is unavailable)
      --workers K|auto      generator processes on this machine, each a segment of the fleet,
                            merged live; auto = one per core               (default: 1)
      --segment i/N         run segment i (0-based) of N of the fleet: devices [iD/N, (i+1)D/N) with
                            their global ids and schedule, at their share of the spawn rate; N
                            processes together send exactly what one would (default: 0/1). Also
                            FLEETLOAD_SEGMENT=i/N, or JOB_COMPLETION_INDEX + FLEETLOAD_SEGMENTS=N
      --start-at T          start the fleet at T: 2026-12-01T10:00:00Z, or +30s from now; everything
                            else (broker, consumer, workers) is ready before (default: at once)
      --clock-ref HOST:PORT  measure this machine's clock against a consumer's time port (fleetload
                            consume answers on it) and stamp ts in that clock (no synced clocks needed)
      --late-start fail|join  started after --start-at: exit 2 saying how late, or start at once
                            (default: fail)

Identity (templates: {deviceId} {index} {runId}; {index:6} pads to 6 digits):
      --topic T             publish topic                    (default: fleetload/{runId}/{deviceId})
      --device-id T         device id ({index} {runId} only) (default: dev-{index:6})
      --client-id T         MQTT client id                   (default: {deviceId}-{runId})
      --username T          MQTT username                    (default: none)
      --password S          MQTT password, never written     (default: none)

TLS and cloud presets (fleetload certs makes a CA and per-device certificates):
      --ca FILE             CA (PEM) that signs the broker's certificate (default: system CAs)
      --cert T              client certificate file template, e.g. certs/{deviceId}.pem
      --key T               client private key file template, e.g. certs/{deviceId}.key
      --servername NAME     TLS server name (SNI, certificate check)  (default: the host)
      --insecure            do not verify the broker's certificate (mqtts://, wss:// only)
      --tls-version 1.2|1.3|auto  pin the TLS version of the devices and the consumer; 1.2: less
                            memory per connection, resumption without a key exchange (default: auto)
      --preset NAME         azure-iot-hub or aws-iot: identities, topic, host (consumer: none)
      --hub HOST            azure-iot-hub: NAME.azure-devices.net (host: mqtts://HOST:8883)
      --device-key KEY      azure-iot-hub: device key (base64) or @FILE template; never written
      --group-key KEY       azure-iot-hub: DPS group enrollment key; device keys derived from it
      --sas-ttl D           azure-iot-hub: SAS token lifetime, renewed before expiry (default: 1h)
      --keepalive D         MQTT keepalive                   (default: 60s)
      --connect-timeout D   time allowed for CONNACK         (default: 10s)

Consumer:
      --consumer mqtt|nats|eventhubs|none  where delivered messages are read (default: mqtt, same broker)
      --consumer-qos 0|1|2  consumer subscription QoS         (default: --qos)
      --consumer-host URL   where the consumer reads, if not the devices' broker (default: --host);
                            nats://host:4222 for --consumer nats
      --consumer-cert FILE, --consumer-key FILE  the consumer's own client certificate, for a broker
                            that requires one when devices use per-device certificates
      --consumer-group G    MQTT 5 shared-subscription group / NATS durable (default: fleetload-<runId>)
      --nats-stream NAME    JetStream stream (default: the stream capturing the topic's subject)
      --nats-create-stream  no stream captures the subject: create one (--nats-stream NAME or FLEETLOAD,
                            capturing every run of the topic, messages kept 24h)
      --eventhub-name N     Event Hub (unless the connection string has EntityPath)
      --eventhub-connection-string S  Event Hubs connection string (a secret, never written)
      --eventhub-consumer-group G     Event Hubs consumer group (default: $Default)
      --storage-connection-string S   Blob Storage for Event Hubs checkpoints (a secret)
      --storage-container C Blob container for checkpoints   (default: fleetload-checkpoints)
      --grace D             after the last send, wait for acks and deliveries (default: 5s)

Output:
      --run-id ID           run identifier: letters, digits, . _ -  (default: time-based)
      --out DIR             results folder root               (default: ./fleetload-results)
      --threshold EXPR      pass/fail rule, repeatable: e2e.p99<500, loss<0.1%  (default: none)
      --min-offered P       least share of scheduled messages that must be sent (default: 95%)
      --junit FILE          also write the verdict as JUnit XML for CI (a test case per threshold)
      --accept CHECK        accept a failed validity check: connected, offered, observed, saturated
                            (repeatable; default: none: an invalid run never passes)
      --json                print summary.json to stdout at the end
      --headless            no web dashboard
      --keep-ui             keep the dashboard (and its summary) up after the run until Ctrl-C or
                            SIGTERM; the exit code is still the run's
      --web-host HOST       dashboard address                 (default: 127.0.0.1)
      --web-port N          dashboard port                    (default: 8089)
      --web-token T         dashboard token, asked of every request (a secret; prefer FLEETLOAD_WEB_TOKEN);
                            off loopback one is generated and a one-time login link printed
      --web-allowed-hosts H names the dashboard and /metrics answer to besides IP addresses and
                            localhost (DNS-rebinding guard), comma-separated

Time series (InfluxDB, Prometheus; Grafana dashboards in deploy/grafana/):
      --influx-url URL      write per-second figures to InfluxDB: http(s)://host:8086 (default: none)
      --influx-db DB        InfluxDB 1.x database (with --influx-user U, --influx-password S)
      --influx-org O --influx-bucket B --influx-token S   InfluxDB 2.x/3.x (token never printed)
      --influx-required     fail the run (exit 3) if InfluxDB does not take the data (default: off:
                            a dead or slow InfluxDB never slows or fails the run; drops are counted)
      --prometheus-port N   serve Prometheus /metrics on this port       (default: off)
      --prometheus-host H   address /metrics listens on                  (default: 127.0.0.1)
      --prometheus-token T  bearer token /metrics asks for; required off loopback (a secret; prefer
                            FLEETLOAD_PROMETHEUS_TOKEN; Prometheus: authorization: credentials:)
      --prometheus-public   serve /metrics off loopback without a token (read-only figures)
      --prometheus-grace D  keep /metrics up after the run (Ctrl-C skips) (default: 15s)
  -h, --help                show this help

Exit codes:
  0  run completed and every threshold passed
  1  a threshold failed, or the run was stopped early
  2  invalid input (flags, scenario, files, URLs): nothing started, nothing written
  3  the system under test could not be reached (no device connected, or the consumer could not attach)
  4  internal error (a bug): one line naming the log file with the stack
  5  the run is invalid: it did not offer or observe the load it planned (see --accept)
  130  aborted by a second Ctrl-C (no summary)
`;

/** `fleetload ui` (src/cli/ui.ts) */
export const UI_HELP = `Usage: fleetload ui [--web-host H] [--web-port P] [--out DIR] [--web-token T]

A web UI that starts load tests: a New test form (every setting of the scenario, checked as fleetload run
checks it, with the equivalent command and scenario YAML), the live dashboard of the running test, Stop, and a
History of every run in the results folder (verdict, exit code, report, files, compare two runs).
One run at a time; each is a \`fleetload run\` process of its own, so a crashing run never takes the UI down.

      --web-host HOST       address the UI listens on               (default: 127.0.0.1)
                            any address but loopback needs --web-token: the UI starts load tests
      --web-port N          port (0: a free one)                    (default: 8089)
      --out DIR             results folder: where runs are written and History reads (default: ./fleetload-results)
      --web-token T         token asked of every request (a secret; prefer FLEETLOAD_WEB_TOKEN); a one-time
                            login link is printed at start
      --web-allowed-hosts H names the UI answers to besides IP addresses and localhost (DNS-rebinding guard)
  -h, --help                show this help

FLEETLOAD_<FLAG> variables set these too, and are the defaults of the form's empty fields.
Ctrl-C (or SIGTERM) stops the running test gracefully (its summary is written), then the UI; a second aborts.

Exit codes: 0 stopped by Ctrl-C/SIGTERM · 2 bad input (flags, a port in use, off loopback without a token) ·
130 aborted by a second Ctrl-C
`;
