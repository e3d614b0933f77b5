/**
 * The keep-alive undici Pool behind each downstream client (provider, fx),
 * with every timeout set: undici's defaults are 300 s and unbounded
 * connections.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Pool, type Dispatcher } from 'undici';

export interface DownstreamPoolOptions {
  url: string;
  connections: number;
  keepAliveMs: number;
  connectTimeoutMs: number;
}

export function createPool(options: DownstreamPoolOptions): Pool {
  return new Pool(options.url, {
    connections: options.connections,
    keepAliveTimeout: options.keepAliveMs,
    keepAliveMaxTimeout: options.keepAliveMs,
    connectTimeout: options.connectTimeoutMs,
    // Each request's deadline is a timer in requestText; these are the
    // backstops for a request sent without one.
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
    pipelining: 1,
  });
}

/**
 * The largest answer body a downstream may send. Provider and fx answers are
 * a few hundred bytes; without a cap a misbehaving peer could stream into a
 * worker's heap until the deadline (over loopback, gigabytes in a second).
 */
export const MAX_ANSWER_BYTES = 1 << 20;

/**
 * A request's status and whole body, or why there is none: `bad_response`
 * is a body past MAX_ANSWER_BYTES (the word both clients use for an answer
 * they cannot read).
 */
export type TextAnswer = { statusCode: number; text: string } | { failed: 'timeout' | 'connection' | 'bad_response' };

/**
 * A TextAnswer with what a client outside the gateway also reads: the
 * answer's headers, and the error behind a failed connection.
 */
export type ExchangeAnswer =
  | { statusCode: number; text: string; headers: IncomingHttpHeaders }
  | { failed: 'timeout' | 'bad_response' }
  | { failed: 'connection'; error: Error };

/** One request under way: its answer, and a way to give up on it now (the answer is then `timeout`). */
export interface Exchange {
  readonly answer: Promise<ExchangeAnswer>;
  giveUp(): void;
}

/**
 * undici's reasons for a request we end ourselves. It hands them back to the
 * handler, which has settled by then and ignores them: made once, so ending
 * a request captures no stack trace.
 */
const NOT_SENT = new Error('deadline passed before the request was sent');
const ENDED = {
  timeout: new Error('downstream request ended: timeout'),
  bad_response: new Error('downstream request ended: bad_response'),
} as const;

/**
 * One request's answer, collected by an undici dispatch handler: the status,
 * the body's chunks, and one timer for the whole request. undici's
 * `request()` builds a readable stream, an AbortSignal listener and a
 * promise chain per call; this does the same job for about half the CPU
 * (docs/performance.md, "The provider call").
 */
class TextCollector implements Dispatcher.DispatchHandler {
  #controller: Dispatcher.DispatchController | null = null;
  #statusCode = 0;
  #headers: IncomingHttpHeaders = {};
  #chunks: Buffer[] = [];
  #bytes = 0;
  #settled = false;
  readonly #timer: NodeJS.Timeout;

  constructor(
    private readonly resolve: (answer: ExchangeAnswer) => void,
    timeoutMs: number,
    /** Keep the headers and a connection's error in the answer (an Exchange); requestText leaves them out. */
    private readonly detailed: boolean,
  ) {
    this.#timer = setTimeout(() => this.#fail('timeout'), Math.max(1, Math.ceil(timeoutMs)));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    // The deadline passed while the request waited for a connection: it is
    // never sent. Thrown, not `controller.abort()`: undici (7.x, client-h1's
    // writeH1) answers an abort here by destroying the socket the request
    // was about to use, but a throw by failing the request alone, and the
    // connection serves the next one. With the abort, a queue of expired
    // requests behind a slow server cost one connect and close each:
    // profiled in the lab's load generator against a collapsing service,
    // the connects, closes and their garbage were most of its CPU.
    // test/downstream/request-text.test.ts counts the connections.
    if (this.#settled) throw NOT_SENT;
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    // 1xx answers are informational; the final answer follows on the same request.
    if (statusCode < 200) return;
    this.#statusCode = statusCode;
    if (this.detailed) this.#headers = headers;
    this.#chunks = [];
    this.#bytes = 0;
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#settled) return;
    this.#bytes += chunk.length;
    if (this.#bytes > MAX_ANSWER_BYTES) return this.#fail('bad_response');
    this.#chunks.push(chunk);
  }

  onResponseEnd(): void {
    const text = decode(this.#chunks, this.#bytes);
    // Without `detailed` the answer is a TextAnswer, all requestText resolves with.
    this.#settle(
      this.detailed
        ? { statusCode: this.#statusCode, text, headers: this.#headers }
        : ({ statusCode: this.#statusCode, text } as ExchangeAnswer),
    );
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    this.#settle(this.detailed ? { failed: 'connection', error } : ({ failed: 'connection' } as ExchangeAnswer));
  }

  /** Ends the request now with `timeout` (a no-op once it has an answer). */
  giveUp(): void {
    this.#fail('timeout');
  }

  #fail(failed: 'timeout' | 'bad_response'): void {
    if (this.#settle({ failed })) this.#controller?.abort(ENDED[failed]);
  }

  /** The first outcome wins; later callbacks (an abort's own error) are ignored. */
  #settle(answer: ExchangeAnswer): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    clearTimeout(this.#timer);
    this.#chunks = [];
    this.resolve(answer);
    return true;
  }
}

/** UTF-8, a leading byte-order mark skipped (as undici's `body.text()` does). */
function decode(chunks: readonly Buffer[], bytes: number): string {
  if (chunks.length === 0) return '';
  const buffer = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, bytes);
  const bom = buffer.length >= 3 && buffer[0] === 0xef && buffer[1] === 0xbb && buffer[2] === 0xbf;
  return buffer.toString('utf8', bom ? 3 : 0);
}

/**
 * One request, its body read whole (at most MAX_ANSWER_BYTES), within
 * `timeoutMs`: waiting for a connection, connecting, headers and body
 * together. When the time runs out the answer is `timeout` at once, even
 * while the request still waits in the pool's queue (it is then never sent).
 * The timer is cleared when the answer is read.
 */
export function requestText(
  pool: Dispatcher,
  options: Dispatcher.DispatchOptions,
  timeoutMs: number,
): Promise<TextAnswer> {
  return new Promise((resolve) => dispatchTo(pool, options, new TextCollector(resolve, timeoutMs, false)));
}

/**
 * requestText for a client that also reads the answer's headers and the
 * error behind a failed connection, and may give up before the time is out
 * (the lab's load generator).
 */
export function startExchange(pool: Dispatcher, options: Dispatcher.DispatchOptions, timeoutMs: number): Exchange {
  let collector!: TextCollector;
  const answer = new Promise<ExchangeAnswer>((resolve) => (collector = new TextCollector(resolve, timeoutMs, true)));
  dispatchTo(pool, options, collector);
  return { answer, giveUp: () => collector.giveUp() };
}

function dispatchTo(pool: Dispatcher, options: Dispatcher.DispatchOptions, collector: TextCollector): void {
  try {
    pool.dispatch(options, collector);
  } catch (e) {
    // A Pool reports its own errors to the handler; a composed dispatcher may throw.
    collector.onResponseError(undefined, e as Error);
  }
}
