/**
 * uWebSockets.js request plumbing with its traps handled in one place:
 * onAborted is attached before anything asynchronous, every write after the
 * synchronous part of a handler is corked and skipped once the client is
 * gone, body chunks are copied (uWS neuters them after the callback), and an
 * oversize body is refused as soon as it crosses the limit, never buffered.
 */
import { STATUS_CODES } from 'node:http';
import type { HttpResponse } from 'uWebSockets.js';
import type { Reply } from '../errors/catalogue.js';

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
}

/** One in-flight HTTP exchange. */
export class Exchange {
  aborted = false;
  answered = false;
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
    res.cork(() => {
      res.writeStatus(statusLine(reply.status));
      res.writeHeader('Content-Type', reply.contentType);
      if (reply.headers) for (const k in reply.headers) res.writeHeader(k, reply.headers[k]!);
      res.end(reply.body, closeConnection);
    });
    this.hooks.answered?.(reply.status);
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
 * Consume the request body up to maxBytes, keeping it (`keep`) or not. Calls
 * onTooLarge (once) as soon as the limit is crossed; later chunks are dropped
 * without being kept. uWS neuters each chunk after the callback, so kept
 * chunks are copied.
 */
function consumeBody(x: Exchange, maxBytes: number, keep: boolean, onEnd: (body: Buffer) => void, onTooLarge: () => void): void {
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
      // A whole body in one last chunk is used in place: onEnd consumes it synchronously.
      if (!keep) onEnd(EMPTY);
      else onEnd(chunks.length === 0 ? Buffer.from(chunk) : Buffer.concat([...chunks, Buffer.from(chunk)], size));
      return;
    }
    if (keep) chunks.push(Buffer.from(chunk.slice(0)));
  });
}

const EMPTY = Buffer.alloc(0);

/** Collect the request body (onBody must not keep the buffer past its call). */
export function readBody(x: Exchange, maxBytes: number, onBody: (body: Buffer) => void, onTooLarge: () => void): void {
  consumeBody(x, maxBytes, true, onBody, onTooLarge);
}

/** Consume a body without keeping it (a request answered without reading it, e.g. shed). */
export function drainBody(x: Exchange, maxBytes: number, onEnd: () => void, onTooLarge: () => void): void {
  consumeBody(x, maxBytes, false, () => onEnd(), onTooLarge);
}
