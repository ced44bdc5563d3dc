import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type AccessRules,
  answerRefusal,
  hostAllowed,
  isLoopbackHost,
  isWildcardHost,
  newToken,
  type Refusal,
  refusal,
  refusalLogger,
  replyJson,
  tokenEquals,
} from './guard.js';

/**
 * Who may use the dashboard (src/web/guard.ts has the rules): on loopback without --web-token, anyone on this
 * machine (Host checked); off loopback, or whenever a token is given, only who has the token — as a bearer
 * header, or as the HttpOnly, SameSite=Strict cookie set by `GET /login?token=…`. That path takes the
 * one-time code of the link printed at start (valid once) or the token itself, then redirects to `/` so the URL
 * bar and history keep no secret. A generated token is never printed: the one-time link is the way in.
 */

export interface DashboardAccessOptions {
  /** --web-host */
  host: string;
  /** --web-token; off loopback without it, one is generated */
  token?: string | undefined;
  /** --web-allowed-hosts */
  allowedHosts?: readonly string[] | undefined;
  /** which hosts count as loopback (tests treat a loopback address as remote; the server still listens) */
  isLoopback?: ((host: string) => boolean) | undefined;
  log?: ((line: string) => void) | undefined;
}

/** Longest `token` query value looked at on /login. */
const MAX_LOGIN_VALUE = 512;

export class DashboardAccess {
  readonly loopback: boolean;
  /** undefined: no token asked for (loopback, none given) */
  readonly token: string | undefined;
  readonly generated: boolean;
  private readonly rules: AccessRules;
  private code: string | undefined;
  private spent: string | undefined;
  private readonly logRefusal: (req: IncomingMessage, r: Refusal) => void;
  private readonly o: DashboardAccessOptions;

  constructor(o: DashboardAccessOptions) {
    this.o = o;
    this.loopback = (o.isLoopback ?? isLoopbackHost)(o.host);
    this.generated = o.token === undefined && !this.loopback;
    this.token = o.token ?? (this.loopback ? undefined : newToken());
    this.code = this.token === undefined ? undefined : newToken();
    this.rules = {
      bindHost: o.host,
      allowedHosts: o.allowedHosts ?? [],
      token: this.token,
      cookie: 'fleetload',
      allowFlag: '--web-allowed-hosts',
      tokenHint:
        'open the one-time login link printed at start, or send Authorization: Bearer <token> (--web-token)',
    };
    this.logRefusal = refusalLogger('dashboard', '--web-allowed-hosts', o.log ?? (() => {}));
  }

  /** The cookie's name carries the port: two dashboards on one host keep their own cookies. */
  setPort(port: number): void {
    this.rules.cookie = `fleetload-${port}`;
  }

  /**
   * Answers the request when it may not go further (403 Host, 401 token) or when it is a login; true when it
   * did. Called first for every request.
   */
  handle(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    if (path === '/login' && this.token !== undefined && hostAllowed(req.headers.host, this.rules)) {
      this.login(req, res, this.token);
      return true;
    }
    const r = refusal(req, this.rules);
    if (!r) return false;
    this.logRefusal(req, r);
    answerRefusal(req, res, r);
    return true;
  }

  /** Lines for the terminal at start: the off-loopback warning, the one-time login link. */
  notices(url: string): string[] {
    const lines: string[] = [];
    const port = new URL(url).port;
    if (!this.loopback) {
      const where = isWildcardHost(this.o.host) ? 'every interface' : this.o.host;
      lines.push(
        `warning: the dashboard listens on ${where} (not loopback), port ${port}: whoever reaches it and has the token can watch the run, change its load and stop it; every request without the token gets 401` +
          (isWildcardHost(this.o.host)
            ? `; from another machine use this machine's address instead of ${new URL(url).hostname}`
            : ''),
      );
    }
    if (this.code !== undefined) {
      lines.push(
        `dashboard login (one-time link, sets a cookie): ${new URL(`/login?token=${this.code}`, url)}` +
          (this.generated
            ? ' — the token was generated for this run; set --web-token (FLEETLOAD_WEB_TOKEN) to script the API or log in again'
            : ' — or send Authorization: Bearer <your --web-token>, or open /login?token=<your --web-token>'),
      );
    }
    return lines;
  }

  private login(req: IncomingMessage, res: ServerResponse, token: string): void {
    req.resume();
    if (req.method !== 'GET') {
      replyJson(res, 405, { error: `${req.method} is not allowed here; use GET` }, { Allow: 'GET' });
      return;
    }
    const given = (new URL(req.url ?? '/', 'http://x').searchParams.get('token') ?? '').slice(
      0,
      MAX_LOGIN_VALUE,
    );
    // every comparison is made, whatever the first says
    const byCode = this.code !== undefined && tokenEquals(given, this.code);
    const byToken = tokenEquals(given, token);
    const wasSpent = this.spent !== undefined && tokenEquals(given, this.spent);
    if (!byCode && !byToken) {
      replyJson(
        res,
        401,
        {
          error: wasSpent
            ? 'this one-time login link has been used; log in with /login?token=<your --web-token>, or restart the run for a new link'
            : 'this login link is not valid for this run; use the link printed at start',
        },
        { 'WWW-Authenticate': 'Bearer realm="fleetload"', 'Referrer-Policy': 'no-referrer' },
      );
      return;
    }
    if (byCode) {
      this.spent = this.code;
      this.code = undefined;
    }
    res.writeHead(303, {
      Location: '/',
      'Set-Cookie': `${this.rules.cookie}=${token}; Path=/; HttpOnly; SameSite=Strict`,
      'Cache-Control': 'no-store',
      'Referrer-Policy': 'no-referrer',
      'Content-Length': 0,
    });
    res.end();
  }
}
