/**
 * One HTTP attempt against the target, over an undici Pool. The settings are
 * the traps undici leaves open (see pitfalls): bounded connections (a burst
 * beyond them queues inside undici, and that wait still counts because
 * latency runs from the intended send), pipelining 1 (a slow answer must not
 * hold the ones behind it), explicit headers/body timeouts instead of the
 * 300 s defaults, and every body read to the end so connections are reused.
 *
 * Each attempt carries the deadline as X-Request-Timeout-Ms and is abandoned
 * by our own timer at deadline + grace: the grace lets the gateway's own 504
 * arrive first, so `timeout` means "the client gave up", distinct from any
 * status the server sent. The timer runs from the attempt's start and
 * covers its wait for a connection.
 *
 * The attempt is the gateway's own downstream call (startExchange: an undici
 * dispatch handler, one timer, the body collected as chunks), not
 * `request()` + `body.text()`: the generator shares two cores with what it
 * measures, and that path costs about half the CPU per request.
 */
import { Pool } from 'undici';
import { startExchange, type Exchange } from '../../downstream/pool.js';
import type { PlannedRequest } from './requests.js';
import { parseRetryAfter, type AttemptOutcome } from './retry.js';

export interface AttemptResult {
  outcome: AttemptOutcome;
  /** Idempotent-Replayed: true on the answer. */
  replayed: boolean;
  /** From a charge's 2xx JSON body, when present. */
  chargeId?: string;
  providerChargeId?: string;
  /** The `code` of a 4xx/5xx problem body (`overloaded`, `starting`, `bulkhead_full`), when it has one. */
  problemCode?: string;
}

export interface ClientSettings {
  /** Target base URL; a path prefix is kept in front of every route. */
  url: string;
  connections: number;
  /** Sent as X-Request-Timeout-Ms. */
  deadlineMs: number;
  /** The attempt is abandoned this long after the deadline. */
  graceMs: number;
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

export class LoadClient {
  readonly #pool: Pool;
  readonly #prefix: string;
  readonly #deadline: string;
  readonly #giveUpMs: number;
  readonly #live = new Set<Exchange>();

  constructor(s: ClientSettings) {
    const u = new URL(s.url);
    this.#prefix = u.pathname.replace(/\/+$/, '');
    this.#deadline = String(s.deadlineMs);
    this.#giveUpMs = s.deadlineMs + s.graceMs;
    // undici's own timers are a backstop behind ours, never the first to fire.
    const backstop = this.#giveUpMs + 1000;
    this.#pool = new Pool(u.origin, {
      connections: s.connections,
      pipelining: 1,
      keepAliveTimeout: 10_000,
      headersTimeout: backstop,
      bodyTimeout: backstop,
      connectTimeout: Math.min(this.#giveUpMs, 10_000),
    });
  }

  async attempt(req: PlannedRequest): Promise<AttemptResult> {
    const headers: Record<string, string> = { 'x-request-timeout-ms': this.#deadline };
    if (req.key !== undefined) headers['idempotency-key'] = req.key;
    if (req.body !== undefined) headers['content-type'] = 'application/json';
    const exchange = startExchange(
      this.#pool,
      { path: this.#prefix + req.path, method: req.method, headers, body: req.body ?? null },
      this.#giveUpMs,
    );
    this.#live.add(exchange);
    try {
      const answer = await exchange.answer;
      if ('failed' in answer) {
        // Given up by our timer or by the end of the run (abortAll): the client gave up waiting.
        if (answer.failed === 'timeout') return { outcome: { kind: 'timeout' }, replayed: false };
        // `bad_response`: a body past MAX_ANSWER_BYTES, which no answer of the service looks like.
        const code = answer.failed === 'connection' ? errorCode(answer.error) : answer.failed;
        // undici's own timers, the backstop behind ours, also mean the client gave up.
        if (TIMEOUT_CODES.has(code)) return { outcome: { kind: 'timeout' }, replayed: false };
        return { outcome: { kind: 'error', code }, replayed: false };
      }
      const status = answer.statusCode;
      const replayed = String(answer.headers['idempotent-replayed'] ?? '').toLowerCase() === 'true';
      const retryAfterMs = parseRetryAfter(first(answer.headers['retry-after']), Date.now());
      const outcome: AttemptOutcome =
        retryAfterMs === undefined ? { kind: 'status', status } : { kind: 'status', status, retryAfterMs };
      const result: AttemptResult = { outcome, replayed };
      if (req.cls === 'charge' && status >= 200 && status < 300) readChargeIds(answer.text, result);
      else if (status >= 400) readProblemCode(answer.text, result);
      return result;
    } finally {
      this.#live.delete(exchange);
    }
  }

  /** Give up every attempt in flight (the run's straggler window is over). */
  abortAll(): void {
    for (const exchange of this.#live) exchange.giveUp();
  }

  async close(): Promise<void> {
    this.abortAll();
    await this.#pool.destroy();
  }
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function readChargeIds(text: string, into: AttemptResult): void {
  try {
    const body = JSON.parse(text) as { id?: unknown; provider_charge_id?: unknown };
    if (typeof body.id === 'string') into.chargeId = body.id;
    if (typeof body.provider_charge_id === 'string') into.providerChargeId = body.provider_charge_id;
  } catch {
    // A 2xx that is not JSON has no ids to report; the status still counts.
  }
}

function readProblemCode(text: string, into: AttemptResult): void {
  try {
    const body = JSON.parse(text) as { code?: unknown };
    if (typeof body.code === 'string') into.problemCode = body.code;
  } catch {
    // Not a problem body (a proxy's HTML page): the status is all there is.
  }
}

/** A stable short code for a failed exchange: ECONNREFUSED, UND_ERR_SOCKET, ... */
function errorCode(e: unknown): string {
  if (typeof e !== 'object' || e === null) return 'unknown';
  const err = e as { code?: unknown; cause?: { code?: unknown }; name?: unknown };
  if (typeof err.code === 'string') {
    // undici wraps a reset socket as UND_ERR_SOCKET; the errno underneath says more.
    if (err.code === 'UND_ERR_SOCKET' && typeof err.cause?.code === 'string') return err.cause.code;
    return err.code;
  }
  if (typeof err.cause?.code === 'string') return err.cause.code;
  return typeof err.name === 'string' ? err.name : 'unknown';
}
