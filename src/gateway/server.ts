/**
 * The front thread: routes, validation and dispatch on uWebSockets.js. It
 * never does DB or downstream I/O; it parses, validates, dispatches a task to
 * the worker pool and writes the answer. Probe routes (/health, /ready,
 * /version) answer from memory.
 */
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import { FramingCheck } from '../http/framing.js';
import { problem, json, type Reply, type ErrorCode } from '../errors/catalogue.js';
import {
  admissionTimeoutMs,
  chargeHead,
  completeCharge,
  MAX_HEADER_SECTION_BYTES,
  parseChargeKey,
  problemFrom,
  replyByDeadline,
  type ChargeHead,
} from '../charge/request.js';
import { QuoteService } from '../fx/quote-service.js';
import type { RateOutcome } from '../downstream/fx-client.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../runtime/logger.js';
import { versionInfo } from '../runtime/version.js';
import { openApiDocument } from '../http/openapi.js';
import { methodNotAllowed, notFound, ROUTES } from '../http/contract.js';
import type { ServerSettings } from '../service/settings.js';
import { ServiceState } from '../service/state.js';
import { Exchange, readBody, UploadTimer } from './http.js';
import { nativeUws, uwsInfo } from './native.js';
import type { Task } from './tasks.js';
import type { Admission } from './admission.js';
import { AddressCap } from '../resilience/address-cap.js';
import type { Breaker } from '../resilience/breaker.js';
import type { Downstream } from '../resilience/protection.js';
import type { RequestClass, ShedReason } from '../resilience/shedder.js';
import type { RouteLabel, Telemetry } from '../metrics/telemetry.js';
import { failedAnswerLog, requestIdFrom } from '../runtime/request-id.js';

/** What the front thread consults before dispatching. */
export interface FrontGuards {
  admission: Admission;
  breakers: Partial<Record<Downstream, Breaker>>;
}

/** `maxConnections`: requests open at once (headers in, not answered) before new ones get 503 and a close. */
export interface FrontSettings extends ServerSettings {
  host: string;
  port: number;
  /** ≥ 0: /metrics has a listener of its own (METRICS_PORT) and is not served here. */
  metricsPort: number;
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

/**
 * Piscina's rejection of the tasks a dying worker held ('worker exited with
 * code: N'), or of a worker terminated under them.
 */
export function isWorkerLost(e: unknown): boolean {
  return e instanceof Error && /worker exited with code|Terminating worker thread/i.test(e.message);
}

export class Gateway {
  readonly app: TemplatedApp;
  /** Draining, requests and worker tasks in flight (a task can outlive its exchange when the client hangs up), /ready. */
  readonly state: ServiceState;
  #listenSocket: us_listen_socket | null = null;
  readonly #quotes: QuoteService;
  /** Prebuilt answers for the hot refusal paths. */
  readonly #shed: Record<ShedReason, Reply> = {
    concurrency: problem('overloaded', { detail: 'Shed on admission (concurrency)' }),
    event_loop: problem('overloaded', { detail: 'Shed on admission (event_loop)' }),
    deadline: problem('overloaded', { detail: 'Shed on admission (deadline)' }),
    downstream: problem('bulkhead_full', {
      detail: 'Shed on admission: the payment provider bulkhead cannot free a slot within its acquire timeout',
    }),
  };
  #tooLarge!: Reply;
  readonly #headerTooLarge = problem('request_header_too_large', {
    detail: `The header section may be at most ${MAX_HEADER_SECTION_BYTES} bytes`,
  });
  readonly #atCapacity = problem('overloaded', { detail: 'Too many requests open at once' });
  /** Requests refused because maxConnections requests were open. */
  capRefusals = 0;
  /** Requests whose framing was in doubt, closed without an answer (#closeInDoubt). */
  framingRefusals = 0;
  readonly #framing = new FramingCheck();
  readonly #atAddressCap = problem('overloaded', { detail: 'Too many requests open from this address' });
  /** Open requests per remote address (maxRequestsPerAddress). */
  readonly #perAddress: AddressCap;
  /** Requests whose body is still arriving, each with its 408 deadline. */
  readonly #uploads: UploadTimer;
  /** Charges admitted this turn whose body was still arriving when their handler returned. */
  readonly #holding: Exchange[] = [];
  /** Idempotency-Keys of the charges running on this instance. */
  readonly #keysInFlight = new Set<string>();
  /** One warn line per failed (5xx) answer, rate-limited, naming its request id. */
  #failedAnswer: (requestId: string, route: string, status: number, body: string) => void = () => {};

  constructor(
    private readonly settings: FrontSettings,
    private readonly pool: Dispatcher,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly guards: FrontGuards,
    private readonly telemetry?: Telemetry,
    /** Renders /metrics (Prometheus text). */
    private readonly renderMetrics: () => Promise<string> = () => Promise.resolve(''),
  ) {
    this.state = new ServiceState(clock, () => pool.threads() >= pool.expectedThreads);
    this.#quotes = new QuoteService({
      clock,
      cacheTtlMs: settings.fxCacheTtlMs,
      requestTimeoutMs: settings.requestTimeoutMs,
      fetchRate: (from, to, deadline) =>
        this.#run({ op: 'rate', from, to, deadline, sentAt: clock.epochMs() }) as Promise<RateOutcome>,
      guards: {
        // fx breaker open: the last known rate answers, without a thread hop.
        fxAdmits: () => !guards.breakers.fx || guards.breakers.fx.tryAdmit(clock.epochMs()),
        admit: (deadline) => this.#shedReply('quote', deadline),
        done: (started) => guards.admission.done('quote', started, false),
      },
    });
    this.#tooLarge = problem('payload_too_large', { detail: `The body may be at most ${settings.maxBodyBytes} bytes` });
    this.#uploads = new UploadTimer(
      settings.bodyTimeoutMs,
      clock,
      problem('request_timeout', { detail: `The request body did not arrive within ${settings.bodyTimeoutMs} ms` }),
    );
    this.#perAddress = new AddressCap(settings.maxRequestsPerAddress);
    this.#failedAnswer = failedAnswerLog(log);
    this.app = nativeUws().App();
    this.#routes();
  }

  #routes(): void {
    const app = this.app;
    app.post('/charge', (res, req) => this.#charge(res, req));
    app.get('/charges/:key', (res, req) => this.#getCharge(res, req));
    app.get('/quote', (res, req) => this.#quote(res, req));
    const health = json(200, { status: 'ok' });
    const version = json(200, { ...versionInfo, uws: uwsInfo });
    app.get('/health', (res, req) => this.#answerNow(res, req, '/health', health));
    app.get('/ready', (res, req) => this.#answerNow(res, req, '/ready', this.readiness()));
    app.get('/version', (res, req) => this.#answerNow(res, req, '/version', version));
    const openapi = json(200, openApiDocument(this.settings));
    app.get('/openapi.json', (res, req) => this.#answerNow(res, req, '/openapi.json', openapi));
    const metricsHere = this.settings.metricsPort < 0;
    if (metricsHere) app.get('/metrics', (res, req) => this.#metrics(res, req));
    for (const [path, methods] of Object.entries(metricsHere ? { ...ROUTES, '/metrics': ['GET'] } : ROUTES)) {
      const reply = methodNotAllowed(methods);
      app.any(path, (res, req) => this.#answerNow(res, req, 'other', reply));
    }
    app.any('/*', (res, req) => this.#answerNow(res, req, 'other', notFound()));
  }

  /** Answer synchronously inside the handler (already corked by uWS). */
  #answerNow(res: HttpResponse, req: HttpRequest, route: RouteLabel, reply: Reply): void {
    const started = this.clock.now();
    const x = new Exchange(res, {
      answered: (status) => this.telemetry?.request(route, status, this.clock.now() - started),
    });
    x.requestId = requestIdFrom(req.getHeader('x-request-id'));
    x.head = req.getMethod() === 'head';
    const headerBytes = this.#headerBytes(req);
    if (headerBytes === FRAMING_IN_DOUBT) return this.#closeInDoubt(res);
    if (headerBytes > MAX_HEADER_SECTION_BYTES) return x.send(this.#headerTooLarge, true);
    x.send(reply, this.state.draining);
  }

  /**
   * The checks every tracked request passes first: a header section over the
   * limit (uWS v20.30 takes 64 KiB and more) and the cap on open requests.
   * True when it answered (connection closed).
   */
  #refusedAtDoor(x: Exchange, headerBytes: number): boolean {
    if (headerBytes > MAX_HEADER_SECTION_BYTES) {
      x.send(this.#headerTooLarge, true);
      return true;
    }
    // inFlight already counts this request.
    if (this.state.inFlight > this.settings.maxConnections) {
      this.capRefusals++;
      x.send(this.#atCapacity, true);
      return true;
    }
    // #track counted this request, so over the cap means more than the limit.
    if (x.address !== '' && this.#perAddress.openFrom(x.address) > this.#perAddress.limit) {
      this.#perAddress.refusals++;
      x.send(this.#atAddressCap, true);
      return true;
    }
    return false;
  }

  /**
   * A request whose framing is in doubt (src/http/framing.ts): no answer,
   * the connection closed before uWS parses another byte of it. Counted,
   * never logged per request (a client could fill the log).
   */
  #closeInDoubt(res: HttpResponse): void {
    this.framingRefusals++;
    res.close();
  }

  /**
   * One pass over the header section: its size as received (names, values,
   * ": " and CRLF per line), or FRAMING_IN_DOUBT; `each` sees every header
   * on the way (the charge route keeps them).
   */
  #headerBytes(req: HttpRequest, each?: (name: string, value: string) => void): number {
    const framing = this.#framing.reset();
    let n = requestLineBytes(req);
    req.forEach((name, value) => {
      n += headerLineBytes(name, value);
      framing.see(name, value);
      each?.(name, value);
    });
    return framing.inDoubt ? FRAMING_IN_DOUBT : n;
  }

  #track(res: HttpResponse, route: RouteLabel, requestId: string): Exchange {
    const end = this.state.begin();
    // Read now: the address, like the request, can only be read in the handler's synchronous part.
    const address = this.#perAddress.enabled ? remoteAddress(res) : '';
    if (address !== '') this.#perAddress.take(address);
    const started = this.clock.now();
    const t = this.telemetry;
    const x = new Exchange(res, {
      sent: (ex, status, body) => this.#failedAnswer(ex.requestId, route, status, body),
      // Runs exactly once, whether the request was answered (a refusal and a 408 included) or aborted.
      finish: (x) => {
        if (x.address !== '') this.#perAddress.release(x.address);
        this.#uploads.delete(x);
        end();
      },
      ...(t
        ? {
            answered: (status: number) => t.request(route, status, this.clock.now() - started),
            aborted: () => t.aborted(route),
          }
        : {}),
    });
    x.requestId = requestId;
    x.address = address;
    return x;
  }

  /** Run a task on the pool, counted until it settles (the drain waits for it). */
  #run(task: Task): Promise<unknown> {
    return this.state.task(this.pool.run(task));
  }

  #fail(x: Exchange, code: ErrorCode, extras?: Parameters<typeof problem>[1]): void {
    x.send(problem(code, extras), this.state.draining);
  }

  #charge(res: HttpResponse, req: HttpRequest): void {
    const arrival = this.clock.epochMs();
    // HttpRequest is stack-allocated: read everything before any callback.
    // Every header, repeats included: getHeader would show only the first.
    const headers: [string, string][] = [];
    let requestId: string | undefined;
    const headerBytes = this.#headerBytes(req, (name, value) => {
      headers.push([name, value]);
      if (requestId === undefined && name === 'x-request-id') requestId = value;
    });
    if (headerBytes === FRAMING_IN_DOUBT) return this.#closeInDoubt(res);
    const x = this.#track(res, '/charge', requestIdFrom(requestId));
    if (this.#refusedAtDoor(x, headerBytes)) return;
    if (this.state.draining) return this.#fail(x, 'draining');
    const head = chargeHead(headers, this.settings);
    // A framing problem (repeated header, bad or oversize Content-Length):
    // refuse before reading a byte, and close, since the body's extent is in doubt.
    if (!head.ok) return x.send(head.code === 'payload_too_large' ? this.#tooLarge : problemFrom(head), true);
    // Admission before the body is read: shedding must be the cheapest answer
    // there is, so a shed request is never parsed, validated or fingerprinted.
    // (Under overload any request may get 503 overloaded, even one that would
    // have been a 400: the client learns that when it retries.)
    const timeoutMs = admissionTimeoutMs(head.value, this.settings);
    const shedReason = this.guards.admission.tryAdmit('charge', timeoutMs - (this.clock.epochMs() - arrival));
    // A shed charge is answered now, before its body: uWS parses the rest of
    // the request and drops it. Waiting for a body sent in a later packet
    // made a shed wait one more turn of a saturated event loop (p99 113-239
    // ms in the service under a CPU-bound surge, p50 0.5 ms). The connection
    // is kept only when the rest is bounded: a Content-Length within
    // MAX_BODY_BYTES (checked above). A chunked body could run on without a
    // bound once the request is answered, so it is closed. (A client that
    // sent Expect: 100-continue has had its 100 from uWS already, measured,
    // so it sends its body and stays in step.)
    if (shedReason !== null) return x.send(this.#shed[shedReason], head.value.contentLength === undefined);
    // The slot is held while uWS hands over the body that came with the
    // headers (synchronously, in this same turn of the event loop); a body
    // still incomplete when the turn ends gives it back (#releaseUploaders)
    // and takes it again once complete (readmit: the same decision, no second
    // shed). A client trickling its body holds
    // no slot, only an open request, bounded by maxConnections and bodyTimeoutMs.
    x.onEnd = () => this.guards.admission.cancel('charge');
    this.#uploads.add(x);
    this.#holding.push(x);
    if (this.#holding.length === 1) setImmediate(() => this.#releaseUploaders());
    readBody(
      x,
      this.settings.maxBodyBytes,
      (body) => this.#chargeBody(x, arrival, head.value, body),
      () => x.send(this.#tooLarge, true),
    );
  }

  /** Give back the slots of charges whose body did not arrive in the turn their headers did. */
  #releaseUploaders(): void {
    for (const x of this.#holding.splice(0)) {
      // Answered, or the body is complete (#chargeBody took it out of the uploads): it keeps its slot.
      if (!x.open || !this.#uploads.has(x)) continue;
      const release = x.onEnd;
      x.onEnd = undefined;
      release?.();
    }
  }

  /** The complete body of a charge: retake the slot if given back, validate, then dispatch. Every early answer gives the admission slot back (x.onEnd). */
  #chargeBody(x: Exchange, arrival: number, head: ChargeHead, body: Buffer): void {
    this.#uploads.delete(x);
    if (x.onEnd === undefined) {
      // The slot was given back while the body trickled in. Admitted at the
      // headers, it keeps that decision: it takes a slot again if the hard
      // limit and the time left allow, without meeting the shedder's dice a second time.
      const shedReason = this.guards.admission.readmit(
        'charge',
        admissionTimeoutMs(head, this.settings) - (this.clock.epochMs() - arrival),
      );
      if (shedReason !== null) return x.send(this.#shed[shedReason]);
      x.onEnd = () => this.guards.admission.cancel('charge');
    }
    const r = completeCharge(head, body, this.settings, arrival);
    if (!r.ok) return x.send(problemFrom(r), this.state.draining);
    const { key, deadline, input, fingerprint: fp } = r.value;
    // The same key already running on this instance: answer from memory (one
    // front thread sees every request, so this is exact) and keep duplicate
    // storms away from the database. Always 409, whatever the body: which
    // body the key belongs to is the database's to say. The running request
    // may itself be the reuse (the key completed earlier with this body, and
    // the running one is about to get its 422), so a 422 from memory could
    // refuse the honest retry that the database would answer with its replay.
    if (this.#keysInFlight.has(key)) return this.#fail(x, 'idempotency_in_progress');
    // An open provider breaker refuses here, before a key is claimed or a thread hop is made; half-open lets through only its probe permits.
    if (this.guards.breakers.provider && !this.guards.breakers.provider.tryAdmit(this.clock.epochMs())) {
      return this.#fail(x, 'breaker_open', { detail: 'The payment provider breaker is open' });
    }
    this.#keysInFlight.add(key);
    x.onEnd = undefined; // the task now owns the admission slot: #dispatch releases it when it settles
    this.#dispatch(
      x,
      'charge',
      { op: 'charge', key, fingerprint: fp, input, deadline, sentAt: this.clock.epochMs(), requestId: x.requestId },
      deadline,
      () => this.#keysInFlight.delete(key),
      deadline - arrival < this.settings.requestTimeoutMs,
    );
  }

  /** Admission: null when admitted, else the 503 to answer. */
  #shedReply(cls: RequestClass, deadline: number): Reply | null {
    const reason = this.guards.admission.tryAdmit(cls, deadline - this.clock.epochMs());
    return reason === null ? null : problem('overloaded', { detail: `Shed on admission (${reason})` });
  }

  /** Run an admitted task whose result is a Reply, answering 504 if the deadline passes first. */
  /** `shortDeadline`: the client chose less time than the default, so a 504 is its own doing, not a sign of overload (it must not shrink the limit for everyone). */
  #dispatch(
    x: Exchange,
    cls: RequestClass,
    task: Task,
    deadline: number,
    settled?: () => void,
    shortDeadline = false,
  ): void {
    const started = this.clock.now();
    const work = this.#run(task).then(
      (result) => {
        settled?.();
        const reply = result as Reply;
        this.guards.admission.done(cls, started, reply.status >= 500 && !(shortDeadline && reply.status === 504));
        return reply;
      },
      (e: unknown) => {
        settled?.();
        this.guards.admission.done(cls, started, true);
        throw e;
      },
    );
    void replyByDeadline(this.clock, deadline, work, (e) => this.#taskFailed(x, task, e)).then((reply) =>
      x.send(reply, this.state.draining),
    );
  }

  /** The answer to a task that rejected: the pool refused it, lost it with its worker, or it threw. */
  #taskFailed(x: Exchange, task: Task, e: unknown): Reply {
    if (isQueueFull(e)) return problem('overloaded', { detail: 'The worker queue is full' });
    // The task may have run up to any point before it was lost: a charge
    // may be claimed and at the provider. Its row stays `started` and the
    // reconciler finishes it, which is what 504 deadline_exceeded says.
    // A charge whose task threw is in the same position.
    const lost = isWorkerLost(e);
    this.log.error(
      { err: e, op: task.op, request_id: x.requestId },
      lost ? 'task lost with its worker thread' : 'task failed',
    );
    return problem(lost || task.op === 'charge' ? 'deadline_exceeded' : 'internal_error');
  }

  #getCharge(res: HttpResponse, req: HttpRequest): void {
    const arrival = this.clock.epochMs();
    const key = parseChargeKey(req.getParameter(0) ?? '');
    const headerBytes = this.#headerBytes(req);
    if (headerBytes === FRAMING_IN_DOUBT) return this.#closeInDoubt(res);
    const x = this.#track(res, '/charges/:key', requestIdFrom(req.getHeader('x-request-id')));
    if (this.#refusedAtDoor(x, headerBytes)) return;
    if (!key.ok) return x.send(problemFrom(key), this.state.draining);
    const deadline = arrival + this.settings.requestTimeoutMs;
    const shed = this.#shedReply('read', deadline);
    if (shed) return x.send(shed, this.state.draining);
    this.#dispatch(x, 'read', { op: 'get', key: key.value, deadline, sentAt: this.clock.epochMs() }, deadline);
  }

  #quote(res: HttpResponse, req: HttpRequest): void {
    const query = req.getQuery() ?? '';
    const headerBytes = this.#headerBytes(req);
    if (headerBytes === FRAMING_IN_DOUBT) return this.#closeInDoubt(res);
    const x = this.#track(res, '/quote', requestIdFrom(req.getHeader('x-request-id')));
    if (this.#refusedAtDoor(x, headerBytes)) return;
    const reply = this.#quotes.quote(query);
    if (reply instanceof Promise) void reply.then((r) => x.send(r, this.state.draining));
    else x.send(reply, this.state.draining);
  }

  frontStats(): {
    openRequests: number;
    maxOpenRequests: number;
    uploading: number;
    capRefusals: number;
    framingRefusals: number;
    bodyTimeouts: number;
    maxRequestsPerAddress: number;
    openAddresses: number;
    addressCapRefusals: number;
  } {
    return {
      openRequests: this.state.inFlight,
      maxOpenRequests: this.settings.maxConnections,
      uploading: this.#uploads.size,
      capRefusals: this.capRefusals,
      framingRefusals: this.framingRefusals,
      bodyTimeouts: this.#uploads.expired,
      maxRequestsPerAddress: this.#perAddress.limit,
      openAddresses: this.#perAddress.addresses,
      addressCapRefusals: this.#perAddress.refusals,
    };
  }

  /** /metrics: never shed; rendered asynchronously (prom-client's collectors are async). */
  #metrics(res: HttpResponse, req: HttpRequest): void {
    const started = this.clock.now();
    const x = new Exchange(res, {
      answered: (status) => this.telemetry?.request('/metrics', status, this.clock.now() - started),
    });
    const headerBytes = this.#headerBytes(req);
    if (headerBytes === FRAMING_IN_DOUBT) return this.#closeInDoubt(res);
    if (headerBytes > MAX_HEADER_SECTION_BYTES) return x.send(this.#headerTooLarge, true);
    this.renderMetrics().then(
      (body) =>
        x.send({ status: 200, body, contentType: 'text/plain; version=0.0.4; charset=utf-8' }, this.state.draining),
      (e: unknown) => {
        this.log.error({ err: e }, 'rendering /metrics failed');
        this.#fail(x, 'internal_error');
      },
    );
  }

  readiness(): Reply {
    return this.state.readiness();
  }

  listen(): Promise<number> {
    const uws = nativeUws();
    return new Promise((resolve, reject) => {
      this.app.listen(this.settings.host, this.settings.port, (socket) => {
        if (!socket) return reject(new Error(`cannot listen on ${this.settings.host}:${this.settings.port}`));
        this.#listenSocket = socket;
        resolve(uws.us_socket_local_port(socket));
      });
    });
  }

  /** Stop accepting connections; existing keep-alive connections are closed as they answer. */
  stopAccepting(): void {
    this.state.ready = false;
    this.state.draining = true;
    if (this.#listenSocket) {
      nativeUws().us_listen_socket_close(this.#listenSocket);
      this.#listenSocket = null;
    }
  }

  close(): void {
    this.stopAccepting();
    this.#uploads.close();
    (this.app as unknown as { close?: () => void }).close?.();
  }
}

/** The peer's address as uWS prints it (IPv4 as dotted quad, IPv6 in full); only valid inside the handler's synchronous part. */
function remoteAddress(res: HttpResponse): string {
  return Buffer.from(res.getRemoteAddressAsText()).toString('latin1');
}

/** Bytes of `METHOD url?query HTTP/1.1\r\n` and the blank line, near enough: what a header limit counts besides the headers. */
function requestLineBytes(req: HttpRequest): number {
  return req.getMethod().length + utf8Bytes(req.getUrl()) + utf8Bytes(req.getQuery() ?? '') + 14;
}

/** What Gateway#headerBytes returns for a request whose framing is in doubt (src/http/framing.ts): not answered, its connection closed. */
const FRAMING_IN_DOUBT = -1;

/**
 * Bytes of one `name: value\r\n` line. uWS hands names and values over
 * decoded from UTF-8, so a string's length undercounts up to threefold (a
 * `€` is one character and three bytes): the limit counts bytes.
 */
function headerLineBytes(name: string, value: string): number {
  return utf8Bytes(name) + utf8Bytes(value) + 4;
}

function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}
