// The Node floor of the peer bench: floor.py's load through Node's own I/O, with nothing of an MQTT client.
//
// What floor.py does (a hand-made CONNECT per connection, then pre-encoded PUBLISH bytes written round-robin at the
// target rate, every due message each 1 ms wake-up; at QoS 1 the PUBACKs counted, not parsed), written the
// cheapest way Node allows: libuv's TCP handles straight from Node's internal bindings (no net.Socket, no
// streams), and over TLS Node's TLSWrap (OpenSSL) wrapped around them (no tls.TLSSocket), one shared secure
// context, sessions resumed and kept without the server certificate, the reads landing in one shared buffer.
// That is the way src/mqtt/raw-tcp.ts and src/mqtt/raw-tls.ts drive fleetload's devices, minus everything
// fleetload does per message (scheduling each device, encoding the payload, keeping the message until its PUBACK,
// parsing packets, measuring). Unlike floor.py it reads as Node does: each socket's bytes when they arrive.
// So: whatever a Node load generator costs above this row is its own JavaScript; this row itself is the kernel's
// share, OpenSSL's per-record work and Node's C++ I/O layer (libuv, StreamBase, TLSWrap, a write request and its
// completion callback per message), which no JavaScript on Node can avoid.
//
// usage: [FLOOR_CA=ca.pem] node node-floor.mjs URL DEVICES RATE_PER_DEVICE SECONDS QOS   (needs `npm run build`)
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { connectAll, connectPacket, secureHandle, stream, tcp } from './raw-tls.mjs';

const [url, devices, rate, seconds, qos] = process.argv.slice(2);
const N = Number(devices);
const Q = Number(qos);
const target = new URL(url);
const secure = target.protocol === 'mqtts:';
const host = target.hostname;
const port = Number(target.port || (secure ? 8883 : 1883));
const state = stream.streamBaseState;
const kRead = stream.kReadBytesOrError;
const kAsync = stream.kLastWriteWasAsync;
if (!(N > 0) || !(Number(rate) > 0) || !(Number(seconds) > 0) || !(Q === 0 || Q === 1) || (secure && !process.env.FLOOR_CA)) {
  console.error('usage: [FLOOR_CA=ca.pem] node node-floor.mjs URL DEVICES RATE_PER_DEVICE SECONDS QOS (0|1; mqtts:// needs FLOOR_CA)');
  process.exit(2);
}
const secureContext = secure ? tls.createSecureContext({ ca: readFileSync(process.env.FLOOR_CA) }) : undefined;
const readBuffer = Buffer.allocUnsafeSlow(64 * 1024);

/** floor.py's packet: the same topic and 120-byte payload; QoS 1 reuses packet id 1 (each is acked before the next) */
function publishPacket(i) {
  const topic = Buffer.from(`floor/dev-${String(i).padStart(6, '0')}`);
  const payload = Buffer.from(
    '{"deviceId":"dev-000000","seq":1,"ts":1764288000000.000,"runId":"floor"}'.padEnd(120, ' '),
  );
  const id = Q ? Buffer.from([0, 1]) : Buffer.alloc(0);
  const len = 2 + topic.length + id.length + payload.length;
  return Buffer.concat([
    Buffer.from([0x30 | (Q << 1), (len & 127) | 128, len >> 7, topic.length >> 8, topic.length & 255]),
    topic,
    id,
    payload,
  ]);
}

let acks = 0;
let failed = 0;
const conns = [];

/** One device: a TCP handle (and a TLSWrap around it); `ready(ok)` once the CONNACK is in. */
function open(i, ready) {
  const h = new tcp.TCP(tcp.constants.SOCKET);
  const req = new tcp.TCPConnectWrap();
  // `io`: the handle written to; `tls`: the TLSWrap, held from the start (collected, it would hand the TCP
  // handle's reads back to JavaScript, which has no reader there)
  const c = { io: undefined, tls: undefined, w: new stream.WriteWrap(), busy: false, up: false, packet: publishPacket(i) };
  const onread = () => {
    const n = state[kRead];
    if (n < 0) {
      if (c.up) failed++;
      c.up = false;
      return;
    }
    if (!c.up) {
      c.up = true; // the CONNACK
      ready(true);
      return;
    }
    acks += n >> 2; // PUBACKs: 4 bytes each
  };
  const start = (io) => {
    c.io = io;
    c.w.handle = io;
    c.w.oncomplete = () => {
      c.busy = false;
    };
    write(c, connectPacket(`node-floor-${i}`, 60));
  };
  req.oncomplete = (status) => {
    if (status < 0) return ready(false);
    h.setNoDelay(true);
    if (!secure) {
      h.onread = onread;
      h.useUserBuffer(readBuffer);
      h.readStart();
      return start(h);
    }
    c.tls = secureHandle(h, secureContext, readBuffer, {
      secure: (ok) => (ok ? start(c.tls) : ready(false)),
      read: onread,
    });
  };
  h.connect(req, host, port);
  conns.push(c);
}

/** One write in flight per connection (a TLSWrap aborts the process on a second): `busy` until it completes. */
function write(c, bytes) {
  c.busy = true;
  c.io.writeBuffer(c.w, bytes);
  if (!secure && !state[kAsync]) c.busy = false; // a TCP write that went out at once reports no completion
}

// connect everyone (200 handshakes in flight), as floor.py does before sending
const connected = await connectAll(N, 200, open);

if (connected < N) {
  console.error(`node-floor: ${N - connected} of ${N} connections failed (is the broker up at ${url}, and its certificate trusted by FLOOR_CA?)`);
  process.exit(1);
}

// send: every due message each 1 ms wake-up, round-robin over the devices
const total = N * Number(rate);
const t0 = performance.now();
let sent = 0;
let skipped = 0;
await new Promise((resolve) => {
  const timer = setInterval(() => {
    const now = (performance.now() - t0) / 1000;
    if (now >= Number(seconds)) {
      clearInterval(timer);
      resolve();
      return;
    }
    const due = Math.floor(now * total);
    while (sent < due) {
      const c = conns[sent % N];
      sent++;
      if (c.busy || !c.up) skipped++;
      else write(c, c.packet);
    }
  }, 1);
});
const r = process.resourceUsage();
console.log(
  `node-floor connected=${connected} sent=${sent} skipped=${skipped} acks=${acks} lost_connections=${failed} user_s=${(r.userCPUTime / 1e6).toFixed(2)} sys_s=${(r.systemCPUTime / 1e6).toFixed(2)}`,
);
process.exit(0);
