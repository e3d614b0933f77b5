/**
 * HTTP for contract tests: an undici client for ordinary requests (raw text
 * kept, so replays can be compared byte for byte), a raw `node:net` exchange
 * for what a well-behaved client cannot send (oversize chunked bodies,
 * half-sent bodies, malformed headers, non-ASCII header bytes), and a bounded
 * poll for conditions that become true later.
 */
import { AssertionError } from 'node:assert';
import { connect, type Socket } from 'node:net';
import { request, type Dispatcher } from 'undici';

export interface HttpResult {
  status: number;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  text: string;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read arbitrary fields of JSON answers
  /** Time from sending to the whole body, in ms. */
  ms: number;
}

export interface CallOptions {
  headers?: Record<string, string>;
  /** An object is sent as JSON (with Content-Type application/json unless given). */
  body?: string | Buffer | object;
  dispatcher?: Dispatcher;
  /** Client-side bound on the whole exchange. Default 20 s. */
  timeoutMs?: number;
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** One exchange `call` made, for suites that hold every answer to a document (the OpenAPI conformance check). */
export interface CallRecord {
  method: string;
  path: string;
  status: number;
  contentType: string | undefined;
  body: string;
  /** What was sent: the body as UTF-8 text (undefined: none), and its Content-Type. */
  request: { body: string | undefined; contentType: string | undefined };
}

let recorder: ((r: CallRecord) => void) | undefined;

/** Every later `call` reports its exchange to `fn` (undefined: stop). */
export function recordCalls(fn: ((r: CallRecord) => void) | undefined): void {
  recorder = fn;
}

export async function call(baseUrl: string, method: string, path: string, o: CallOptions = {}): Promise<HttpResult> {
  const headers: Record<string, string> = { ...o.headers };
  let body: string | Buffer | undefined;
  if (typeof o.body === 'string' || Buffer.isBuffer(o.body)) {
    body = o.body;
  } else if (o.body !== undefined) {
    body = JSON.stringify(o.body);
    if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-type'))
      headers['content-type'] = 'application/json';
  }
  const timeoutMs = o.timeoutMs ?? 20_000;
  const started = performance.now();
  const res = await request(`${baseUrl}${path}`, {
    method: method as Dispatcher.HttpMethod,
    headers,
    body,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    signal: AbortSignal.timeout(timeoutMs),
    ...(o.dispatcher ? { dispatcher: o.dispatcher } : {}),
  });
  const text = await res.body.text();
  const flat: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) {
    if (v !== undefined) flat[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  recorder?.({
    method,
    path,
    status: res.statusCode,
    contentType: flat['content-type'],
    body: text,
    request: {
      body: body === undefined ? undefined : Buffer.isBuffer(body) ? body.toString('utf8') : body,
      contentType: Object.entries(headers).find(([k]) => k.toLowerCase() === 'content-type')?.[1],
    },
  });
  return { status: res.statusCode, headers: flat, text, body: parseJson(text), ms: performance.now() - started };
}

/**
 * Poll `check` until it returns something other than undefined/false, at
 * most timeoutMs. A failed assertion inside `check` fails at once (it is a
 * wrong answer, not a "not yet"); other errors (a refused connection while a
 * process restarts) are retried.
 */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 5000,
  intervalMs = 50,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
      last = v;
    } catch (e) {
      if (e instanceof AssertionError) throw e;
      last = e;
    }
    if (performance.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for: ${what}${last instanceof Error ? ` (last error: ${last.message})` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read arbitrary fields of JSON answers
}

/**
 * One raw TCP connection to a server, with a minimal HTTP/1.1 response
 * parser (Content-Length or chunked bodies; else the body runs to close).
 */
export class RawConnection {
  readonly socket: Socket;
  #buf = Buffer.alloc(0);
  #closed = false;
  #error: Error | undefined;
  #waiters: (() => void)[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      this.#wake();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on('error', (e) => {
      this.#error = e;
      this.#wake();
    });
  }

  /** `localAddress`: the client side's address (any of 127/8 on loopback), to appear to the server as another client. */
  static open(port: number, host = '127.0.0.1', localAddress?: string): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host, ...(localAddress ? { localAddress } : {}) });
      s.once('connect', () => {
        s.off('error', reject);
        resolve(new RawConnection(s));
      });
      s.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Write and wait until the bytes are handed to the kernel; false if the peer is gone. */
  write(data: string | Buffer): Promise<boolean> {
    if (this.#closed || this.socket.destroyed) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.socket.write(data, (err) => resolve(!err));
    });
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  #wait(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.#waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** The next complete response (taken off the buffer), or undefined if the connection closed (or timed out) without one. */
  async readResponse(timeoutMs = 5000): Promise<RawResponse | undefined> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const parsed = parseResponse(this.#buf, this.#closed);
      if (parsed) {
        this.#buf = this.#buf.subarray(parsed.bytes);
        return parsed.response;
      }
      if (this.#closed || this.#error) return undefined;
      const left = deadline - performance.now();
      if (left <= 0) return undefined;
      await this.#wait(left);
    }
  }

  /** True once the peer closed (or reset) the connection, within timeoutMs. */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (!this.#closed) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await this.#wait(left);
    }
    return true;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** The first response in buf and the bytes it took. */
function parseResponse(buf: Buffer, closed: boolean): { response: RawResponse; bytes: number } | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const head = buf.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '');
  if (!m) return undefined;
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  let rest = buf.subarray(end + 4);
  let bodyBuf: Buffer;
  if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    if (rest.length < n) return undefined;
    bodyBuf = rest.subarray(0, n);
    rest = rest.subarray(n);
  } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const parts: Buffer[] = [];
    for (;;) {
      const lineEnd = rest.indexOf('\r\n');
      if (lineEnd === -1) return undefined;
      const size = parseInt(rest.subarray(0, lineEnd).toString('latin1'), 16);
      if (Number.isNaN(size)) return undefined;
      if (size === 0) {
        // The last chunk, then any trailer lines, then the empty line.
        const end = rest.indexOf('\r\n\r\n', lineEnd);
        if (end === -1) return undefined;
        rest = rest.subarray(end + 4);
        break;
      }
      if (rest.length < lineEnd + 2 + size + 2) return undefined;
      parts.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
      rest = rest.subarray(lineEnd + 2 + size + 2);
    }
    bodyBuf = Buffer.concat(parts);
  } else {
    if (!closed) return undefined;
    bodyBuf = rest;
    rest = rest.subarray(rest.length);
  }
  const text = bodyBuf.toString('utf8');
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { response: { status: Number(m[1]), headers, text, body }, bytes: buf.length - rest.length };
}

/** Send raw bytes on a fresh connection and read the first response. */
export async function rawExchange(
  port: number,
  data: string | Buffer,
  timeoutMs = 5000,
): Promise<{ response: RawResponse | undefined; conn: RawConnection }> {
  const conn = await RawConnection.open(port);
  await conn.write(data);
  const response = await conn.readResponse(timeoutMs);
  return { response, conn };
}

/**
 * `HEAD head` and `GET next` in one write on one connection, and what came
 * back: the HEAD answer's header section and every byte after it. A body
 * after a HEAD answer is read by a keep-alive client as the start of the next
 * answer, so `rest` must begin with the GET's status line.
 */
export async function headThenGet(
  port: number,
  head: string,
  next: string,
  host = 'x',
): Promise<{ headAnswer: string; rest: string; bytes: string }> {
  const conn = await RawConnection.open(port);
  try {
    let bytes = '';
    conn.socket.on('data', (d: Buffer) => (bytes += d.toString('latin1')));
    await conn.write(`HEAD ${head} HTTP/1.1\r\nHost: ${host}\r\n\r\nGET ${next} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    const deadline = performance.now() + 5000;
    while (!/\r\n\r\n[\s\S]*\r\n\r\n/.test(bytes) && performance.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    const [headAnswer = '', ...after] = bytes.split('\r\n\r\n');
    return { headAnswer, rest: after.join('\r\n\r\n'), bytes };
  } finally {
    conn.destroy();
  }
}
