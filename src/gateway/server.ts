/**
 * The front thread: routes, validation and dispatch on uWebSockets.js. It
 * never does DB or downstream I/O; it parses, validates, dispatches a task to
 * the worker pool and writes the answer. Probe routes (/health, /ready,
 * /version) answer from memory.
 */
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import { problem, json, type Reply, type ErrorCode } from '../errors/catalogue.js';
import { isJsonContentType, parseChargeBody, parseTimeoutHeader, validateIdempotencyKey } from '../charge/validate.js';
import { parseQuoteQuery, quoteReply, RateCache } from '../fx/quote.js';
import { fingerprint } from '../charge/fingerprint.js';
import type { RateOutcome } from '../downstream/fx-client.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../runtime/logger.js';
import { versionInfo } from '../runtime/version.js';
import { DB_CHECK_FRESH_MS, methodNotAllowed, notFound, readinessReply, ROUTES } from '../runtime/contract.js';
import { drainBody, Exchange, readBody } from './http.js';
import { nativeUws, uwsInfo } from './native.js';
import type { Task } from './tasks.js';
import type { Admission } from './admission.js';
import type { Breaker } from '../resilience/breaker.js';
import type { Downstream } from '../resilience/protection.js';
import type { RequestClass, ShedReason } from '../resilience/shedder.js';
import type { RouteLabel, Telemetry } from '../metrics/telemetry.js';

/** What the front thread consults before dispatching. */
export interface FrontGuards {
  admission: Admission;
  breakers: Partial<Record<Downstream, Breaker>>;
}

export interface FrontSettings {
  host: string;
  port: number;
  maxBodyBytes: number;
  requestTimeoutMs: number;
  maxRequestTimeoutMs: number;
  fxCacheTtlMs: number;
}

export interface Dispatcher {
  run(task: Task): Promise<unknown>;
  /** Worker threads currently alive. */
  threads(): number;
  expectedThreads: number;
}

/** Thrown by the dispatcher when its queue is at its limit. */
export function isQueueFull(e: unknown): boolean {
  return e instanceof Error && /queue is at limit|Task queue is at limit/i.test(e.message);
}

/** Time the front thread gives a worker's own 504 to arrive before answering it itself. */
const FRONT_DEADLINE_GRACE_MS = 50;


export class Gateway {
  readonly app: TemplatedApp;
  draining = false;
  /** False from SIGTERM on; /ready fails while requests are still served. */
  ready = true;
  inFlight = 0;
  /** Tasks running in workers; can outlive their exchange when the client hangs up. */
  tasks = 0;
  #listenSocket: us_listen_socket | null = null;
  #dbOk = false;
  #dbCheckedAt = -Infinity;
  readonly #rates: RateCache;
  /** Prebuilt answers for the hot refusal paths. */
  readonly #shed: Record<ShedReason, Reply> = {
    concurrency: problem('overloaded', { detail: 'Shed on admission (concurrency)' }),
    event_loop: problem('overloaded', { detail: 'Shed on admission (event_loop)' }),
    deadline: problem('overloaded', { detail: 'Shed on admission (deadline)' }),
    downstream: problem('bulkhead_full', { detail: 'Shed on admission: the payment provider bulkhead cannot free a slot within its acquire timeout' }),
  };
  #tooLarge!: Reply;
  /** Idempotency-Key → fingerprint of charges running on this instance. */
  readonly #keysInFlight = new Map<string, string>();
  #idleWaiters: (() => void)[] = [];

  constructor(
    private readonly s: FrontSettings,
    private readonly pool: Dispatcher,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly guards: FrontGuards,
    private readonly telemetry?: Telemetry,
    /** Renders /metrics (Prometheus text). */
    private readonly renderMetrics: () => string = () => '',
  ) {
    this.#rates = new RateCache(s.fxCacheTtlMs);
    this.#tooLarge = problem('payload_too_large', { detail: `The body may be at most ${s.maxBodyBytes} bytes` });
    this.app = nativeUws().App();
    this.#routes();
  }

  #routes(): void {
    const app = this.app;
    app.post('/charge', (res, req) => this.#charge(res, req));
    app.get('/charges/:key', (res, req) => this.#getCharge(res, req));
    app.get('/quote', (res, req) => this.#quote(res, req));
    app.get('/health', (res) => this.#answerNow(res, '/health', json(200, { status: 'ok' })));
    app.get('/ready', (res) => this.#answerNow(res, '/ready', this.readiness()));
    app.get('/version', (res) => this.#answerNow(res, '/version', json(200, { ...versionInfo, uws: uwsInfo })));
    app.get('/metrics', (res) => this.#answerNow(res, '/metrics', this.metrics()));
    for (const [path, methods] of Object.entries({ ...ROUTES, '/metrics': ['GET'] })) {
      const reply = methodNotAllowed(methods);
      app.any(path, (res) => this.#answerNow(res, 'other', reply));
    }
    app.any('/*', (res) => this.#answerNow(res, 'other', notFound()));
  }

  /** Answer synchronously inside the handler (already corked by uWS). */
  #answerNow(res: HttpResponse, route: RouteLabel, reply: Reply): void {
    const started = this.clock.now();
    new Exchange(res, { answered: (status) => this.telemetry?.request(route, status, this.clock.now() - started) }).send(reply, this.draining);
  }

  #track(res: HttpResponse, route: RouteLabel): Exchange {
    this.inFlight++;
    const started = this.clock.now();
    const t = this.telemetry;
    return new Exchange(res, {
      finish: () => {
        this.inFlight--;
        this.#maybeIdle();
      },
      ...(t ? { answered: (status: number) => t.request(route, status, this.clock.now() - started), aborted: () => t.aborted(route) } : {}),
    });
  }

  #maybeIdle(): void {
    if (this.inFlight === 0 && this.tasks === 0 && this.#idleWaiters.length > 0) {
      for (const w of this.#idleWaiters.splice(0)) w();
    }
  }

  /** Run a task on the pool, counted until it settles (the drain waits for it). */
  #run(task: Task): Promise<unknown> {
    this.tasks++;
    return this.pool.run(task).finally(() => {
      this.tasks--;
      this.#maybeIdle();
    });
  }

  #fail(x: Exchange, code: ErrorCode, extras?: Parameters<typeof problem>[1]): void {
    x.send(problem(code, extras), this.draining);
  }

  #charge(res: HttpResponse, req: HttpRequest): void {
    const arrival = this.clock.epochMs();
    const x = this.#track(res, '/charge');
    // HttpRequest is stack-allocated: read everything before any callback.
    const contentType = req.getHeader('content-type');
    const keyRaw = req.getHeader('idempotency-key');
    const timeoutRaw = req.getHeader('x-request-timeout-ms');
    const contentLength = req.getHeader('content-length');
    if (this.draining) return this.#fail(x, 'draining');
    if (contentLength !== '' && Number(contentLength) > this.s.maxBodyBytes) {
      // Refuse before reading a byte, and close: the rest of the body is not wanted.
      return x.send(this.#tooLarge, true);
    }
    // Admission before the body is read: shedding must be the cheapest answer
    // there is, so a shed request is never parsed, validated or fingerprinted.
    // (Under overload any request may get 503 overloaded, even one that would
    // have been a 400: the client learns that when it retries.)
    const timeout = parseTimeoutHeader(timeoutRaw, this.s.requestTimeoutMs, this.s.maxRequestTimeoutMs);
    const shedReason = this.guards.admission.tryAdmit('charge', (timeout.ok ? timeout.value : this.s.requestTimeoutMs) - (this.clock.epochMs() - arrival));
    if (shedReason !== null) {
      const reply = this.#shed[shedReason];
      return drainBody(x, this.s.maxBodyBytes, () => x.send(reply), () => x.send(this.#tooLarge, true));
    }
    x.onEnd = () => this.guards.admission.cancel('charge');
    readBody(
      x,
      this.s.maxBodyBytes,
      (body) => this.#chargeBody(x, arrival, contentType, keyRaw, timeout, body),
      () => x.send(this.#tooLarge, true),
    );
  }

  /** The body of an admitted charge: validate, then dispatch. Every early answer gives the admission slot back (x.onEnd). */
  #chargeBody(x: Exchange, arrival: number, contentType: string, keyRaw: string, timeout: ReturnType<typeof parseTimeoutHeader>, body: Buffer): void {
    if (!isJsonContentType(contentType)) return this.#fail(x, 'unsupported_media_type', { field: 'Content-Type' });
    const key = validateIdempotencyKey(keyRaw);
    if (!key.ok) return this.#fail(x, key.code, { field: key.field, detail: key.detail });
    if (!timeout.ok) return this.#fail(x, timeout.code, { field: timeout.field, detail: timeout.detail });
    const input = parseChargeBody(body.toString('utf8'));
    if (!input.ok) return this.#fail(x, input.code, { detail: input.detail, ...(input.field ? { field: input.field } : {}) });
    const deadline = arrival + timeout.value;
    // The same key already running on this instance: answer from memory (one
    // front thread sees every request, so this is exact) and keep duplicate
    // storms away from the database.
    const fp = fingerprint(input.value);
    const running = this.#keysInFlight.get(key.value);
    if (running !== undefined) {
      if (running !== fp) return this.#fail(x, 'idempotency_key_reused', { field: 'Idempotency-Key', detail: 'This Idempotency-Key was used with a different request body' });
      return this.#fail(x, 'idempotency_in_progress');
    }
    // An open provider breaker refuses here, before a key is claimed or a thread hop is made; half-open lets through only its probe permits.
    if (this.guards.breakers.provider && !this.guards.breakers.provider.tryAdmit(this.clock.epochMs())) {
      return this.#fail(x, 'breaker_open', { detail: 'The payment provider breaker is open' });
    }
    this.#keysInFlight.set(key.value, fp);
    x.onEnd = undefined; // the task now owns the admission slot: #dispatch releases it when it settles
    this.#dispatch(x, 'charge', { op: 'charge', key: key.value, fingerprint: fp, input: input.value, deadline, sentAt: this.clock.epochMs() }, deadline, () =>
      this.#keysInFlight.delete(key.value),
    timeout.value < this.s.requestTimeoutMs);
  }

  /** Admission: false (and a 503 sent) when the request is shed. */
  #admit(x: Exchange, cls: RequestClass, deadline: number): boolean {
    const reason = this.guards.admission.tryAdmit(cls, deadline - this.clock.epochMs());
    if (reason === null) return true;
    this.#fail(x, 'overloaded', { detail: `Shed on admission (${reason})` });
    return false;
  }

  /** Run an admitted task whose result is a Reply, answering 504 if the deadline passes first. */
  /** `shortDeadline`: the client chose less time than the default, so a 504 is its own doing, not a sign of overload (it must not shrink the limit for everyone). */
  #dispatch(x: Exchange, cls: RequestClass, task: Task, deadline: number, settled?: () => void, shortDeadline = false): void {
    const started = this.clock.now();
    const timer = setTimeout(() => this.#fail(x, 'deadline_exceeded'), Math.max(0, deadline - this.clock.epochMs()) + FRONT_DEADLINE_GRACE_MS);
    this.#run(task).then(
      (result) => {
        clearTimeout(timer);
        settled?.();
        const reply = result as Reply;
        this.guards.admission.done(cls, started, reply.status >= 500 && !(shortDeadline && reply.status === 504));
        x.send(reply, this.draining);
      },
      (e: unknown) => {
        clearTimeout(timer);
        settled?.();
        this.guards.admission.done(cls, started, true);
        if (isQueueFull(e)) return this.#fail(x, 'overloaded', { detail: 'The worker queue is full' });
        this.log.error({ err: e, op: task.op }, 'task failed');
        this.#fail(x, 'internal_error');
      },
    );
  }

  #getCharge(res: HttpResponse, req: HttpRequest): void {
    const arrival = this.clock.epochMs();
    let key: string;
    try {
      key = decodeURIComponent(req.getParameter(0) ?? '');
    } catch {
      key = '';
    }
    const x = this.#track(res, '/charges/:key');
    const valid = validateIdempotencyKey(key);
    if (!valid.ok) return this.#fail(x, 'invalid_idempotency_key', { field: 'idempotencyKey', detail: valid.detail });
    const deadline = arrival + this.s.requestTimeoutMs;
    if (!this.#admit(x, 'read', deadline)) return;
    this.#dispatch(x, 'read', { op: 'get', key, sentAt: this.clock.epochMs() }, deadline);
  }

  #quote(res: HttpResponse, req: HttpRequest): void {
    const q = parseQuoteQuery(req.getQuery() ?? '');
    const x = this.#track(res, '/quote');
    if (!q.ok) return this.#fail(x, q.code, { detail: q.detail, ...(q.field ? { field: q.field } : {}) });
    const { from, to } = q.value;
    const pair = `${from}-${to}`;
    const now = this.clock.now();
    const hit = this.#rates.fresh(pair, now);
    if (hit) return x.send(quoteReply(q.value, hit.rate, hit.asOf, false));
    // fx breaker open: answer from the last known rate without a thread hop.
    if (this.guards.breakers.fx && !this.guards.breakers.fx.tryAdmit(this.clock.epochMs())) return this.#staleOrFail(x, q.value, pair);
    const deadline = this.clock.epochMs() + this.s.requestTimeoutMs;
    if (!this.#admit(x, 'quote', deadline)) return;
    const started = this.clock.now();
    this.#rates
      .singleFlight(pair, () => this.#run({ op: 'rate', from, to, deadline, sentAt: this.clock.epochMs() }) as Promise<RateOutcome>)
      .finally(() => this.guards.admission.done('quote', started, false))
      .then(
        (r) => {
          if (r.ok) {
            this.#rates.put(pair, r.rate, r.asOf, this.clock.now());
            return x.send(quoteReply(q.value, r.rate, r.asOf, false));
          }
          if (r.reason === 'not_found') return this.#fail(x, 'invalid_query', { field: 'to', detail: `No rate for ${pair}` });
          this.#staleOrFail(x, q.value, pair);
        },
        () => this.#staleOrFail(x, q.value, pair),
      );
  }

  #staleOrFail(x: Exchange, q: { from: string; to: string; amount: number }, pair: string): void {
    const last = this.#rates.last(pair);
    if (last) return x.send(quoteReply(q, last.rate, last.asOf, true));
    this.#fail(x, 'fx_unavailable');
  }

  metrics(): Reply {
    return { status: 200, body: this.renderMetrics(), contentType: 'text/plain; version=0.0.4; charset=utf-8' };
  }

  /** Refresh the cached DB check (at most once a second; driven by a timer). */
  async refreshDbCheck(): Promise<void> {
    try {
      this.#dbOk = (await this.pool.run({ op: 'ping' })) === true;
    } catch {
      this.#dbOk = false;
    }
    this.#dbCheckedAt = this.clock.now();
  }

  readiness(): Reply {
    const dbFresh = this.clock.now() - this.#dbCheckedAt < DB_CHECK_FRESH_MS;
    return readinessReply({
      draining: this.draining || !this.ready,
      workers_up: this.pool.threads() >= this.pool.expectedThreads,
      db_reachable: this.#dbOk && dbFresh,
    });
  }

  listen(): Promise<number> {
    const uws = nativeUws();
    return new Promise((resolve, reject) => {
      this.app.listen(this.s.host, this.s.port, (socket) => {
        if (!socket) return reject(new Error(`cannot listen on ${this.s.host}:${this.s.port}`));
        this.#listenSocket = socket;
        resolve(uws.us_socket_local_port(socket));
      });
    });
  }

  /** Stop accepting connections; existing keep-alive connections are closed as they answer. */
  stopAccepting(): void {
    this.ready = false;
    this.draining = true;
    if (this.#listenSocket) {
      nativeUws().us_listen_socket_close(this.#listenSocket);
      this.#listenSocket = null;
    }
  }

  /** Resolves when no request or task is in flight, or after timeoutMs; true if idle. */
  whenIdle(timeoutMs: number): Promise<boolean> {
    if (this.inFlight === 0 && this.tasks === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.#idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  close(): void {
    this.stopAccepting();
    (this.app as unknown as { close?: () => void }).close?.();
  }
}
