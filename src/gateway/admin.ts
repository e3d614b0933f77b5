/**
 * The admin surface, on its own port and bound to loopback by default: a JSON
 * snapshot of every limit, breaker, bulkhead, pool and queue, and the breaker
 * controls an on-call engineer needs (reset, force open).
 *
 * Loopback is not a boundary against the engineer's own browser. A web page
 * can make the browser talk to 127.0.0.1:9090 (or to a `kubectl
 * port-forward`), and with DNS rebinding (evil.example resolving to 127.0.0.1
 * after the page loaded) it is even same-origin to the browser, so Origin
 * checks alone do not help. Hence, on every route:
 *
 * - the Host header must name the admin port as the engineer reached it:
 *   localhost, 127.0.0.1 or [::1] with this port, or a configured entry
 *   (ADMIN_ALLOWED_HOSTS). A rebound page sends `Host: evil.example:9090`
 *   and gets 403, for reads too (the state reveals traffic and settings);
 * - state-changing calls need the `X-Bulwark-Admin: 1` header, which no
 *   simple cross-origin request can carry (it forces a CORS preflight, which
 *   this port never grants), and an Origin, if sent, naming the admin host;
 * - when ADMIN_TOKEN is set, state-changing calls need
 *   `Authorization: Bearer <token>`, compared in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import { json, problem, type Reply } from '../errors/catalogue.js';
import { DOWNSTREAMS, type Downstream } from '../resilience/protection.js';
import type { Breaker } from '../resilience/breaker.js';
import { DASHBOARD_HEADERS, DASHBOARD_HTML } from './dashboard.js';
import { Exchange } from './http.js';
import { nativeUws } from './native.js';

export interface AdminDeps {
  state: () => unknown;
  breakers: Partial<Record<Downstream, Breaker>>;
  /** Extra Host values answered besides loopback with the admin port: `host:port`, or `host` for any port. */
  allowedHosts?: readonly string[];
  /** When non-empty, breaker changes need `Authorization: Bearer <token>`. */
  token?: string;
}

/** The header the dashboard (and a runbook's curl) sends with every state-changing call. */
const ADMIN_HEADER = 'x-bulwark-admin';

const LOOPBACK = ['localhost', '127.0.0.1', '[::1]'];

/** ADMIN_ALLOWED_HOSTS as a list: comma-separated, trimmed, lower-cased, empty entries dropped. */
export function parseAllowedHosts(raw: string): string[] {
  return raw
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== '');
}

/** The host part of a Host value (`[::1]:9090` → `[::1]`, `a.b:1` → `a.b`, `a.b` → `a.b`). */
function hostname(host: string): string {
  const end = host.startsWith('[') ? host.indexOf(']') + 1 : host.lastIndexOf(':');
  return end > 0 && end < host.length ? host.slice(0, end) : host;
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export class AdminServer {
  readonly app: TemplatedApp;
  #socket: us_listen_socket | null = null;
  /** Exact `host:port` values answered; filled in by listen() once the port is known. */
  readonly #exact = new Set<string>();
  /** Host names answered on any port. */
  readonly #anyPort = new Set<string>();
  readonly #token: Buffer | undefined;
  readonly #forbiddenHost: Reply = problem('forbidden', {
    detail:
      'This Host is not an admin host (DNS-rebinding guard): use localhost, 127.0.0.1 or [::1] with the admin port, or add it to ADMIN_ALLOWED_HOSTS',
  });

  constructor(private readonly deps: AdminDeps) {
    for (const h of deps.allowedHosts ?? []) (hostname(h) === h ? this.#anyPort : this.#exact).add(h);
    this.#token = deps.token ? digest(deps.token) : undefined;
    this.app = nativeUws().App();
    this.app.get('/admin/state', (res, req) => {
      if (this.#hostOk(res, req)) this.#send(res, json(200, this.deps.state()));
    });
    this.app.get('/admin/dashboard', (res, req) => {
      if (this.#hostOk(res, req))
        this.#send(res, {
          status: 200,
          body: DASHBOARD_HTML,
          contentType: 'text/html; charset=utf-8',
          headers: { ...DASHBOARD_HEADERS },
        });
    });
    this.app.post('/admin/breakers/:name/:action', (res, req) => {
      if (!this.#hostOk(res, req)) return;
      const refusal = this.#mayChange(req);
      if (refusal) return this.#send(res, refusal);
      const name = req.getParameter(0) ?? '';
      const action = req.getParameter(1) ?? '';
      const breaker = (DOWNSTREAMS as readonly string[]).includes(name)
        ? this.deps.breakers[name as Downstream]
        : undefined;
      if (!breaker)
        return this.#send(
          res,
          problem('not_found', {
            detail: `No breaker named "${name}" (breakers: ${Object.keys(this.deps.breakers).join(', ') || 'none, breakers are off'})`,
          }),
        );
      if (action === 'reset') breaker.reset();
      else if (action === 'open') breaker.forceOpen();
      else return this.#send(res, problem('not_found', { detail: 'Actions: reset, open' }));
      this.#send(res, json(200, { name, state: breaker.state() }));
    });
    this.app.any('/*', (res, req) => {
      const head = req.getMethod() === 'head';
      if (this.#hostOk(res, req, head))
        this.#send(
          res,
          problem('not_found', {
            detail: 'Admin routes: GET /admin/state, GET /admin/dashboard, POST /admin/breakers/:name/reset|open',
          }),
          head,
        );
    });
  }

  /** True when the Host header names this admin port; otherwise a 403 is sent. */
  #hostOk(res: HttpResponse, req: HttpRequest, head = false): boolean {
    const host = req.getHeader('host').toLowerCase();
    if (this.#exact.has(host) || this.#anyPort.has(hostname(host))) return true;
    this.#send(res, this.#forbiddenHost, head);
    return false;
  }

  /** Why a state-changing call is refused, or undefined. Reads the request synchronously (uWS requests live on the stack). */
  #mayChange(req: HttpRequest): Reply | undefined {
    if (req.getHeader(ADMIN_HEADER) !== '1') {
      return problem('forbidden', {
        detail:
          'Breaker changes need the header X-Bulwark-Admin: 1 (the dashboard sends it; a cross-origin page cannot)',
      });
    }
    // Belt and braces: a browser sends Origin on a cross-origin POST; only the admin page's own origin may act.
    const origin = req.getHeader('origin');
    if (origin !== '' && origin.toLowerCase() !== `http://${req.getHeader('host').toLowerCase()}`) {
      return problem('forbidden', { detail: 'Cross-origin requests may not change breakers' });
    }
    if (this.#token) {
      const m = /^Bearer ([^\s]+)$/i.exec(req.getHeader('authorization'));
      // Digests of equal length, so the comparison's time says nothing about the token, not even its length.
      if (!m || !timingSafeEqual(digest(m[1]!), this.#token)) {
        return problem('unauthorized', {
          detail: 'Breaker changes need Authorization: Bearer <ADMIN_TOKEN>',
          headers: { 'WWW-Authenticate': 'Bearer realm="bulwark-admin"' },
        });
      }
    }
    return undefined;
  }

  #send(res: HttpResponse, reply: Parameters<Exchange['send']>[0], head = false): void {
    const x = new Exchange(res);
    x.head = head;
    x.send(reply);
  }

  listen(host: string, port: number): Promise<number> {
    const uws = nativeUws();
    return new Promise((resolve, reject) => {
      this.app.listen(host, port, (socket) => {
        if (!socket) return reject(new Error(`cannot listen on admin ${host}:${port}`));
        this.#socket = socket;
        const bound = uws.us_socket_local_port(socket);
        for (const h of LOOPBACK) this.#exact.add(`${h}:${bound}`);
        resolve(bound);
      });
    });
  }

  close(): void {
    if (this.#socket) nativeUws().us_listen_socket_close(this.#socket);
    this.#socket = null;
    (this.app as unknown as { close?: () => void }).close?.();
  }
}
