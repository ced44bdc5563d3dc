/**
 * Kept TLS sessions, made cheaper to offer. Node's `setSession` decodes the whole serialized session on every
 * connect, and a session holds the server's certificate: decoding its public key is OpenSSL 3's slowest path (its
 * decoder and algorithm lookups), about a third of a resumed handshake's client CPU, and each connection keeps its
 * own decoded copy. A resumed handshake never uses that certificate — the server proves itself with the session's
 * secret — so sessions are kept without it. Node counts a resumed TLS 1.3 session without a certificate as verified
 * (as its own `tls.connect` does); a resumed TLS 1.2 one it reports as UNABLE_TO_GET_ISSUER_CERT, so TLS 1.2
 * sessions are only made lean for the raw TLS channel (`tls12`), which accepts exactly that case (src/mqtt/raw-tls.ts).
 */

/** One DER element: where it starts, where its contents start, where it ends. */
interface Element {
  tag: number;
  start: number;
  body: number;
  end: number;
}

/** The element at `at`, or undefined when the bytes are not one (single-byte tags, definite lengths). */
function element(b: Uint8Array, at: number, limit: number): Element | undefined {
  if (at + 2 > limit) return undefined;
  const tag = b[at] as number;
  if ((tag & 0x1f) === 0x1f) return undefined; // multi-byte tag: not in an SSL_SESSION
  let len = b[at + 1] as number;
  let body = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || body + n > limit) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (b[body + i] as number);
    body += n;
  }
  const end = body + len;
  return end <= limit ? { tag, start: at, body, end } : undefined;
}

function derLength(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v % 256);
  return [0x80 | out.length, ...out];
}

const SEQUENCE = 0x30;
const INTEGER = 0x02;
/** SSL_SESSION_ASN1's `peer` field: [3] EXPLICIT Certificate OPTIONAL */
const PEER = 0xa3;
const TLS1_3_VERSION = 0x0304;
const TLS1_2_VERSION = 0x0303;

/**
 * The session to keep: a TLS 1.3 session (and with `tls12`, a TLS 1.2 one) without the server's certificate;
 * anything else (other versions, bytes this does not recognise as an OpenSSL session) unchanged.
 */
export function leanSession(der: Buffer, o: { tls12?: boolean } = {}): Buffer {
  const outer = element(der, 0, der.length);
  if (!outer || outer.tag !== SEQUENCE || outer.start !== 0 || outer.end !== der.length) return der;
  const fields: Element[] = [];
  for (let at = outer.body; at < outer.end; ) {
    const e = element(der, at, outer.end);
    if (!e) return der;
    fields.push(e);
    at = e.end;
  }
  const version = fields[1];
  if (!version || version.tag !== INTEGER || version.end - version.body !== 2) return der;
  const v = der.readUInt16BE(version.body);
  if (v !== TLS1_3_VERSION && !(o.tls12 && v === TLS1_2_VERSION)) return der;
  const peer = fields.find((f) => f.tag === PEER);
  if (!peer) return der;
  const length = outer.end - outer.body - (peer.end - peer.start);
  return Buffer.concat([
    Buffer.from([SEQUENCE, ...derLength(length)]),
    der.subarray(outer.body, peer.start),
    der.subarray(peer.end, outer.end),
  ]);
}
