/**
 * The response headers of every HTML page fleetload serves (the dashboard, the UI): the page may talk to its own
 * origin only (no CDN, no fonts, no beacons), runs only its own nonce'd scripts, and is framed by nobody — except
 * the UI's /live, which frames a run's dashboard from the same origin (`framedBySameOrigin`).
 */

/** what a page refuses to be framed by; the UI swaps it for SAME_ORIGIN_FRAMING on the dashboard it frames */
export const NO_FRAMING = "frame-ancestors 'none'";
export const SAME_ORIGIN_FRAMING = "frame-ancestors 'self'";

export function pageHeaders(
  body: string,
  nonce: string,
  o: { framesSameOrigin?: boolean } = {},
): Record<string, string | number> {
  return {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'Content-Security-Policy': [
      "default-src 'none'",
      `script-src 'nonce-${nonce}'`,
      "style-src 'unsafe-inline'",
      "connect-src 'self'",
      ...(o.framesSameOrigin ? ["frame-src 'self'"] : []),
      'img-src data:',
      "base-uri 'none'",
      "form-action 'none'",
      NO_FRAMING,
    ].join('; '),
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
  };
}

/** The headers of a dashboard page framed by the UI at /live: same-origin framing instead of none. */
export function framedBySameOrigin(headers: Record<string, string | string[]>): void {
  headers['x-frame-options'] = 'SAMEORIGIN';
  const csp = headers['content-security-policy'];
  if (typeof csp === 'string')
    headers['content-security-policy'] = csp.replace(NO_FRAMING, SAME_ORIGIN_FRAMING);
}
