/**
 * uWebSockets.js request plumbing with its traps handled in one place:
 * onAborted is attached before anything asynchronous, every write after the
 * synchronous part of a handler is corked and skipped once the client is
 * gone, body chunks are copied (uWS neuters them after the callback), an
 * oversize body is refused as soon as it crosses the limit, never buffered,
 * and a body that has not arrived in time is answered 408 (UploadTimer).
 */
import { STATUS_CODES } from 'node:http';
import type { HttpResponse } from 'uWebSockets.js';
import type { Reply } from '../errors/catalogue.js';
import { bodyFor, REQUEST_ID_HEADER } from '../runtime/request-id.js';
import type { Clock } from '../lib/clock.js';

const STATUS_LINES = new Map<number, string>();
function statusLine(status: number): string {
  let line = STATUS_LINES.get(status);
  if (!line) {
    line = `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
    STATUS_LINES.set(status, line);
  }
  return line;
}

export interface ExchangeHooks {
  /** The exchange ended, answered or aborted (exactly once). */
  finish?: (x: Exchange) => void;
  /** An answer with this status was written. */
  answered?: (status: number) => void;
  /** The client went away first. */
  aborted?: () => void;
  /** An answer was written: its status and the body sent (for the failed-request log). */
  sent?: (x: Exchange, status: number, body: string) => void;
}

/** One in-flight HTTP exchange. */
export class Exchange {
  aborted = false;
  answered = false;
  /** Echoed as X-Request-Id and set as `instance` in problem bodies; empty: neither. */
  requestId = '';
  /** The client's remote address, read when a per-address cap is on (else empty). */
  address = '';
  /**
   * A HEAD request: the answer is its status and headers only (RFC 9110
   * §9.3.2), with the Content-Length the body would have. A body sent after
   * them is read on a keep-alive connection as the start of the next answer.
   * Only catch-all routes see HEAD (uWS's get() does not match it); they set this.
   */
  head = false;
  /** Runs once when the exchange ends, after hooks.finish; handlers set and clear it (e.g. to give back an admission slot). */
  onEnd: (() => void) | undefined;
  constructor(
    readonly res: HttpResponse,
    private readonly hooks: ExchangeHooks = {},
  ) {
    res.onAborted(() => {
      this.aborted = true;
      this.hooks.aborted?.();
      this.#finish();
    });
  }

  get open(): boolean {
    return !this.aborted && !this.answered;
  }

  /** Write a reply once; corked; no-op after abort or a previous answer. */
  send(reply: Reply, closeConnection = false): void {
    if (!this.open) return;
    this.answered = true;
    const { res } = this;
    const id = this.requestId;
    const body = id === '' ? reply.body : bodyFor(reply, id);
    res.cork(() => {
      res.writeStatus(statusLine(reply.status));
      res.writeHeader('Content-Type', reply.contentType);
      if (id !== '') res.writeHeader(REQUEST_ID_HEADER, id);
      if (reply.headers) for (const k in reply.headers) res.writeHeader(k, reply.headers[k]!);
      if (this.head) {
        // uWS v20.30's endWithoutBody(length) with a length above 0 leaves the
        // response open (its handler then aborts the process), and with
        // closeConnection it adds "Content-Length: 0": so the length is a
        // header of ours, and a connection to close is asked to close.
        res.writeHeader('Content-Length', String(Buffer.byteLength(body)));
        if (closeConnection) res.writeHeader('Connection', 'close');
        res.endWithoutBody();
      } else res.end(body, closeConnection);
    });
    this.hooks.answered?.(reply.status);
    this.hooks.sent?.(this, reply.status, body);
    this.#finish();
  }

  #finished = false;
  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.hooks.finish?.(this);
    const end = this.onEnd;
    this.onEnd = undefined;
    end?.();
  }
}

/**
 * Collect the request body up to maxBytes (onBody must not keep the buffer
 * past its call). Calls onTooLarge (once) as soon as the limit is crossed;
 * later chunks are dropped without being kept. uWS neuters each chunk after
 * the callback, so kept chunks are copied. A request answered without its
 * body (shed, refused) needs no reader: uWS parses the rest and drops it.
 */
export function readBody(x: Exchange, maxBytes: number, onBody: (body: Buffer) => void, onTooLarge: () => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let done = false;
  x.res.onData((chunk, isLast) => {
    if (done) return;
    size += chunk.byteLength;
    if (size > maxBytes) {
      done = true;
      onTooLarge();
      return;
    }
    if (isLast) {
      done = true;
      // A whole body in one last chunk is used in place: onBody consumes it synchronously.
      onBody(chunks.length === 0 ? Buffer.from(chunk) : Buffer.concat([...chunks, Buffer.from(chunk)], size));
      return;
    }
    chunks.push(Buffer.from(chunk.slice(0)));
  });
}

/**
 * The 408 for bodies that do not arrive in time. uWS v20.30 closes a socket
 * whose body trickles below 16 KB/s only after its ~10 s idle timeout, and
 * silently; until then the request holds whatever the handler gave it. One
 * timer for all uploads: the timeout is the same for every request, so
 * insertion order is deadline order and a sweep stops at the first upload
 * still in time (each request costs a Map insert and delete).
 */
export class UploadTimer {
  readonly #due = new Map<Exchange, number>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Uploads answered 408 so far. */
  expired = 0;

  constructor(
    private readonly timeoutMs: number,
    private readonly clock: Clock,
    private readonly reply: Reply,
  ) {}

  /** Start the clock on a request whose body is about to be read. */
  add(x: Exchange): void {
    this.#due.set(x, this.clock.now() + this.timeoutMs);
    if (this.#timer === undefined) this.#arm(this.timeoutMs);
  }

  /** The body arrived, or the exchange ended: no 408 for it. */
  delete(x: Exchange): void {
    this.#due.delete(x);
  }

  has(x: Exchange): boolean {
    return this.#due.has(x);
  }

  get size(): number {
    return this.#due.size;
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(() => this.#sweep(), Math.max(1, ms));
  }

  #sweep(): void {
    this.#timer = undefined;
    const now = this.clock.now();
    for (const [x, due] of this.#due) {
      if (due > now) return this.#arm(due - now);
      this.#due.delete(x);
      if (!x.open) continue;
      this.expired++;
      // Close: the rest of the body is not wanted, and the connection is what the client was holding.
      x.send(this.reply, true);
    }
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
