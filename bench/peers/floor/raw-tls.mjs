// What the floors share (node-floor.mjs per message, ../../tls-floor.ts FLOOR_RAW=1 per idle connection): Node's
// TLS layer (TLSWrap, OpenSSL) straight on a libuv TCP handle from Node's internal bindings, no tls.TLSSocket — the
// way src/mqtt/raw-tls.ts connects fleetload's devices, with only what any TLS client must do. Plain JavaScript, so
// node-floor.mjs runs without a TypeScript loader (its start-up counts in its figure); types in raw-tls.d.mts.
// Needs `npm run build` (the lean sessions come from dist/mqtt/tls-session.js).
import { leanSession } from '../../../dist/mqtt/tls-session.js';

const { binding } = process;
export const tcp = binding('tcp_wrap');
export const stream = binding('stream_wrap');
const { wrap } = binding('tls_wrap');
const noop = () => {};

/** the last session a server gave, kept without its certificate (src/mqtt/tls-session.ts), offered by the next connect */
let session;

/**
 * Wraps TLS around TCP handle `h` once it is connected: 512-byte records (OpenSSL's least), the kept session
 * offered, the chain checked as every client must. `on.secure()` once the handshake passed (false: refused),
 * `on.read()` per read (the byte count or error in `stream.streamBaseState[stream.kReadBytesOrError]`),
 * `on.ticket()` when the server gave a session. Returns the TLSWrap, which the caller must hold: collected, it
 * would hand the TCP handle's reads back to JavaScript, which has no reader there.
 */
export function secureHandle(h, secureContext, readBuffer, on) {
  const ssl = wrap(h, secureContext.context, false, false);
  const offered = session !== undefined;
  Object.assign(ssl, {
    onhandshakestart: noop,
    onocspresponse: noop,
    onkeylog: noop,
    onerror: () => on.secure(false),
    onnewsession: (_id, s) => {
      session = leanSession(s, { tls12: true });
      on.ticket?.();
    },
    onhandshakedone: () => {
      // as src/mqtt/raw-tls.ts: a resumed lean session we offered has no certificate to report on (it was verified
      // when kept)
      const err = ssl.verifyError();
      const lean =
        err?.code === 'UNABLE_TO_GET_ISSUER_CERT' && offered && ssl.isSessionReused() && !ssl.getPeerCertificate(false);
      on.secure(!err || lean);
    },
    onread: on.read,
  });
  ssl.setVerifyMode(true, true);
  ssl.setMaxSendFragment(512);
  if (offered) ssl.setSession(session);
  ssl.enableSessionCallbacks();
  ssl.useUserBuffer(readBuffer);
  ssl.readStart();
  ssl.start();
  return ssl;
}

/**
 * Opens `n` connections, at most `inflight` at once: `open(i, settle)` starts connection i and calls `settle(ok)`
 * when it is up or failed (later calls are ignored). Resolves with how many are up.
 */
export function connectAll(n, inflight, open) {
  return new Promise((resolve) => {
    let started = 0;
    let settled = 0;
    let up = 0;
    const next = () => {
      if (started >= n) return;
      const i = started++; // distinct client ids: the broker drops an older connection with the same id
      let done = false;
      open(i, (ok) => {
        if (done) return;
        done = true;
        if (ok) up++;
        if (++settled === n) resolve(up);
        else next();
      });
    };
    for (let k = 0; k < Math.min(inflight, n); k++) next();
  });
}

/** MQTT 3.1.1 CONNECT, clean session, client id `id`, keepalive `keepaliveS` (0: the broker never expects a ping) */
export function connectPacket(id, keepaliveS) {
  const cid = Buffer.from(id);
  const body = Buffer.concat([
    Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, keepaliveS >> 8, keepaliveS & 255, 0, cid.length]),
    cid,
  ]);
  return Buffer.concat([Buffer.from([0x10, body.length]), body]);
}
