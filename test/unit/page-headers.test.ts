import assert from 'node:assert/strict';
import { test } from 'node:test';
import { framedBySameOrigin, pageHeaders } from '../../src/web/page-headers.js';

test('a page is framed by nobody and frames nothing; the UI page frames its own origin only', () => {
  const dash = pageHeaders('<p>é</p>', 'n0nce');
  const csp = String(dash['Content-Security-Policy']);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.match(csp, /script-src 'nonce-n0nce'/);
  assert.doesNotMatch(csp, /frame-src/);
  assert.equal(dash['X-Frame-Options'], 'DENY');
  assert.equal(dash['Content-Length'], 9, 'bytes, not characters');
  const ui = String(pageHeaders('x', 'n', { framesSameOrigin: true })['Content-Security-Policy']);
  assert.match(ui, /frame-src 'self'/);
  assert.match(ui, /frame-ancestors 'none'/, 'the UI itself is not framed');
});

test('the dashboard the UI frames at /live may be framed by the same origin, nothing else changes', () => {
  const h: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(pageHeaders('x', 'n'))) h[k.toLowerCase()] = String(v);
  const before = { ...h };
  framedBySameOrigin(h);
  assert.equal(h['x-frame-options'], 'SAMEORIGIN');
  assert.equal(
    h['content-security-policy'],
    String(before['content-security-policy']).replace("frame-ancestors 'none'", "frame-ancestors 'self'"),
  );
  assert.match(String(h['content-security-policy']), /frame-ancestors 'self'/);
});
