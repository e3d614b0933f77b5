/**
 * The admin surface, on its own port and bound to loopback by default: a JSON
 * snapshot of every limit, breaker, bulkhead, pool and queue, and the breaker
 * controls an on-call engineer needs (reset, force open).
 */
import type { HttpResponse, TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import { json, problem } from '../errors/catalogue.js';
import { DOWNSTREAMS, type Downstream } from '../resilience/protection.js';
import type { Breaker } from '../resilience/breaker.js';
import { DASHBOARD_HEADERS, DASHBOARD_HTML } from './dashboard.js';
import { Exchange } from './http.js';
import { nativeUws } from './native.js';

export interface AdminDeps {
  state: () => unknown;
  breakers: Partial<Record<Downstream, Breaker>>;
}

export class AdminServer {
  readonly app: TemplatedApp;
  #socket: us_listen_socket | null = null;

  constructor(private readonly deps: AdminDeps) {
    this.app = nativeUws().App();
    this.app.get('/admin/state', (res) => this.#send(res, json(200, this.deps.state())));
    this.app.get('/admin/dashboard', (res) => this.#send(res, { status: 200, body: DASHBOARD_HTML, contentType: 'text/html; charset=utf-8', headers: { ...DASHBOARD_HEADERS } }));
    this.app.post('/admin/breakers/:name/:action', (res, req) => {
      const name = req.getParameter(0) ?? '';
      const action = req.getParameter(1) ?? '';
      // A web page open in a local browser could POST here (no preflight for a
      // simple POST); browsers always send Origin on such requests, curl does
      // not. Only the admin origin itself (the dashboard) may act.
      const origin = req.getHeader('origin');
      if (origin !== '' && origin !== `http://${req.getHeader('host')}`) {
        return this.#send(res, problem('forbidden', { detail: 'Cross-origin requests may not change breakers' }));
      }
      const breaker = (DOWNSTREAMS as readonly string[]).includes(name) ? this.deps.breakers[name as Downstream] : undefined;
      if (!breaker) return this.#send(res, problem('not_found', { detail: `No breaker named "${name}" (breakers: ${Object.keys(this.deps.breakers).join(', ') || 'none, breakers are off'})` }));
      if (action === 'reset') breaker.reset();
      else if (action === 'open') breaker.forceOpen();
      else return this.#send(res, problem('not_found', { detail: 'Actions: reset, open' }));
      this.#send(res, json(200, { name, state: breaker.state() }));
    });
    this.app.any('/*', (res) => this.#send(res, problem('not_found', { detail: 'Admin routes: GET /admin/state, GET /admin/dashboard, POST /admin/breakers/:name/reset|open' })));
  }

  #send(res: HttpResponse, reply: Parameters<Exchange['send']>[0]): void {
    new Exchange(res).send(reply);
  }

  listen(host: string, port: number): Promise<number> {
    const uws = nativeUws();
    return new Promise((resolve, reject) => {
      this.app.listen(host, port, (socket) => {
        if (!socket) return reject(new Error(`cannot listen on admin ${host}:${port}`));
        this.#socket = socket;
        resolve(uws.us_socket_local_port(socket));
      });
    });
  }

  close(): void {
    if (this.#socket) nativeUws().us_listen_socket_close(this.#socket);
    this.#socket = null;
    (this.app as unknown as { close?: () => void }).close?.();
  }
}
