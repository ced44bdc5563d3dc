import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';

/**
 * The access rules every HTTP server of fleetload applies before it routes a request (the dashboard,
 * Prometheus /metrics; later `fleetload ui`):
 *
 * 1. **Host** (DNS rebinding): the Host header must name the server as its user reaches it: an IP address
 *    literal (a rebinding page always sends its own *name*), a localhost name, the bound host name, or a name the
 *    user allowed (`--web-allowed-hosts`). Otherwise 403.
 * 2. **Token**, when the server has one (always off loopback): `Authorization: Bearer <token>`, or the server's
 *    cookie (set by the dashboard's login link). Compared in constant time. Otherwise 401, on every path.
 *
 * State-changing requests also need the same origin (`crossOrigin`), and their bodies are bounded by the routes.
 */

export interface AccessRules {
  /** the address the server listens on */
  bindHost: string;
  /** more names the Host header may carry (lowercase, no port) */
  allowedHosts: readonly string[];
  /** the token every request must present; undefined: none is asked for */
  token: string | undefined;
  /** the cookie that may carry the token (browser pages); undefined: the bearer header only */
  cookie?: string | undefined;
  /** the setting a refused Host name can be allowed with, for the 403 message */
  allowFlag: string;
  /** how the 401 says to get the token */
  tokenHint: string;
}

export interface Refusal {
  status: 401 | 403;
  error: string;
  headers: Record<string, string>;
}

/** 127.0.0.0/8, ::1, localhost and *.localhost (RFC 6761: they always resolve to loopback). */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '')
    .toLowerCase();
  return (
    h === 'localhost' ||
    h.endsWith('.localhost') ||
    h === '::1' ||
    h === '0:0:0:0:0:0:0:1' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)
  );
}

/** The wildcard addresses: the server listens on every interface. */
export function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || host === '' || host === '::' || host === '[::]';
}

/** A fresh token: 32 random bytes, base64url (43 characters, bearer- and cookie-safe). */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Constant-time comparison; both sides are hashed first so neither length nor prefix leaks. */
export function tokenEquals(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** The name in a Host header, without port, brackets or trailing dot, lowercased; undefined when malformed. */
export function hostName(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end < 0) return undefined;
    const rest = h.slice(end + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return undefined;
    return h.slice(1, end);
  }
  const m = /^([^:\s/@]+)(:\d{1,5})?$/.exec(h);
  return m?.[1]?.replace(/\.$/, '');
}

/** May a request carrying this Host header reach the server? */
export function hostAllowed(header: string | undefined, rules: AccessRules): boolean {
  const name = hostName(header);
  if (name === undefined || name === '') return false;
  if (isIP(name) !== 0 || isLoopbackHost(name)) return true;
  const bound = rules.bindHost
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '')
    .toLowerCase();
  return name === bound || rules.allowedHosts.some((a) => a.replace(/\.$/, '').toLowerCase() === name);
}

/** One cookie's value from a Cookie header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    if (part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

/** Does the request carry the token (bearer header or the server's cookie)? */
export function hasToken(req: IncomingMessage, token: string, cookie: string | undefined): boolean {
  const auth = req.headers.authorization;
  const bearer = auth ? /^bearer\s+(\S+)\s*$/i.exec(auth)?.[1] : undefined;
  const fromCookie = cookie ? cookieValue(req.headers.cookie, cookie) : undefined;
  // both compared, whatever the first says: the time taken does not tell which one was present
  const a = bearer !== undefined && tokenEquals(bearer, token);
  const b = fromCookie !== undefined && tokenEquals(fromCookie, token);
  return a || b;
}

/** Host, then token: what to answer instead of routing, or undefined when the request may go on. */
export function refusal(req: IncomingMessage, rules: AccessRules): Refusal | undefined {
  if (!hostAllowed(req.headers.host, rules)) {
    const name = hostName(req.headers.host);
    return {
      status: 403,
      error:
        name === undefined
          ? 'a request needs a Host header naming this server'
          : `Host ${printable(name)} is not a name of this server (DNS rebinding guard); open it by IP address or localhost, or allow the name with ${rules.allowFlag} ${printable(name)}`,
      headers: {},
    };
  }
  if (rules.token !== undefined && !hasToken(req, rules.token, rules.cookie)) {
    return {
      status: 401,
      error: `this server needs its token: ${rules.tokenHint}`,
      headers: { 'WWW-Authenticate': 'Bearer realm="fleetload"' },
    };
  }
  return undefined;
}

/**
 * CSRF: true when a browser says the request comes from another origin (an Origin that is not this Host, or
 * Sec-Fetch-Site: cross-site). A request without Origin is not from a page's script or form (curl, scripts).
 */
export function crossOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  return (
    (origin !== undefined && origin !== `http://${req.headers.host ?? ''}`) ||
    req.headers['sec-fetch-site'] === 'cross-site'
  );
}

/** Answers a refusal as JSON; the request body is discarded. */
export function answerRefusal(req: IncomingMessage, res: ServerResponse, r: Refusal): void {
  req.resume();
  replyJson(res, r.status, { error: r.error }, r.headers);
}

/** A JSON answer that is never cached or sniffed (a HEAD gets the status and headers only). */
export function replyJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

/** A value from a request, safe for a terminal line or a message: quoted, control characters escaped, cut. */
export function printable(v: string): string {
  const text = JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
  return text.replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Logs each refused Host name once (the first `max` names), so a scraper or proxy set up with a name can be
 * fixed from the terminal; returns the function to call with each refused request.
 */
export function refusalLogger(
  what: string,
  allowFlag: string,
  log: (line: string) => void,
  max = 5,
): (req: IncomingMessage, r: Refusal) => void {
  const seen = new Set<string>();
  return (req, r) => {
    if (r.status !== 403) return;
    const name = hostName(req.headers.host) ?? '(none)';
    if (seen.has(name) || seen.size >= max) return;
    seen.add(name);
    log(
      `${what}: refused a request for Host ${printable(name)}; allow the name with ${allowFlag} if it is yours`,
    );
  };
}
