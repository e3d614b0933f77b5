/**
 * Misbehaving clients on raw sockets, for the `abuse` scenario: what an HTTP
 * library will not send. Loopback only (the lab never aims these at anything
 * else), bounded in count and in time, and every socket is destroyed when its
 * time is up.
 *
 * - trickle: connections that send a charge's headers and part of its body,
 *   then a byte every few seconds, never the last one, so a server that
 *   admits a request before its body has arrived holds a slot per connection;
 * - hostile: one request per connection at a steady rate, cycling through
 *   headers and bodies a strict parser refuses (repeated Idempotency-Key, a
 *   key with non-ASCII bytes, a body that is not UTF-8, a 64 KiB header).
 *
 * Each reports what it was answered: the status of the first response line,
 * `closed` (the server closed without an answer), `open` (no answer when the
 * time was up) or `error` (the connection failed).
 */
import { connect, type Socket } from 'node:net';

function loopbackTarget(url: string): { host: string; port: number } {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (!['127.0.0.1', 'localhost', '::1'].includes(host))
    throw new Error(`abusive clients only target loopback, not ${u.hostname}`);
  return { host, port: Number(u.port) };
}

/** The status of an HTTP response's first line in `buf`, or undefined when the line is not complete yet. */
function statusOf(buf: string): string | undefined {
  const end = buf.indexOf('\r\n');
  if (end < 0) return undefined;
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(buf.slice(0, end));
  return m ? m[1]! : 'garbled';
}

function count(into: Record<string, number>, k: string): void {
  into[k] = (into[k] ?? 0) + 1;
}

/** A charge body like the load generator's, `n` making each one distinct. */
export function chargeBody(n: number, description = 'bulwark abuse'): string {
  return JSON.stringify({
    amount: 100 + (n % 9000),
    currency: 'USD',
    source: 'tok_visa',
    description,
    metadata: { n: String(n) },
  });
}

export interface TrickleOptions {
  url: string;
  connections: number;
  seconds: number;
  /** One byte per connection this often. */
  byteEveryMs: number;
  /** Keys `<prefix>-<i>`. */
  keyPrefix: string;
  deadlineMs: number;
}

export interface AbuseResult {
  statuses: Record<string, number>;
  /** Every Idempotency-Key sent (ASCII ones; the audit accounts for them). */
  keys: string[];
  /** Milliseconds from the first byte to the answer, per answered connection. */
  answeredMs: number[];
}

const MAX_CONNECTIONS = 1000;

export async function trickleBodies(o: TrickleOptions): Promise<AbuseResult> {
  const { host, port } = loopbackTarget(o.url);
  const n = Math.min(o.connections, MAX_CONNECTIONS);
  const statuses: Record<string, number> = {};
  const keys: string[] = [];
  const answeredMs: number[] = [];
  const endAt = Date.now() + o.seconds * 1000;
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const key = `${o.keyPrefix}-${i}`;
      keys.push(key);
      const body = Buffer.from(chargeBody(i));
      const head = Buffer.from(
        `POST /charge HTTP/1.1\r\nHost: ${host}:${port}\r\nContent-Type: application/json\r\nIdempotency-Key: ${key}\r\n` +
          `X-Request-Timeout-Ms: ${o.deadlineMs}\r\nContent-Length: ${body.length}\r\n\r\n`,
      );
      let sent = Math.min(10, body.length - 1);
      let buf = '';
      let done = false;
      const started = Date.now();
      const s: Socket = connect({ host, port });
      const finish = (what: string) => {
        if (done) return;
        done = true;
        clearInterval(drip);
        clearTimeout(stop);
        count(statuses, what);
        s.destroy();
        resolve();
      };
      s.setNoDelay(true);
      s.on('connect', () => s.write(Buffer.concat([head, body.subarray(0, sent)])));
      s.on('data', (d: Buffer) => {
        buf += d.toString('latin1');
        const st = statusOf(buf);
        if (st !== undefined) {
          answeredMs.push(Date.now() - started);
          finish(st);
        }
      });
      s.on('error', () => finish('error'));
      s.on('close', () => finish('closed'));
      // Never the last byte: the body stays incomplete for as long as the server lets it.
      const drip = setInterval(() => {
        if (sent < body.length - 1 && s.writable) s.write(body.subarray(sent, ++sent));
      }, o.byteEveryMs);
      const stop = setTimeout(() => finish('open'), Math.max(0, endAt - Date.now()));
    });
  // Opened over the first half second rather than in one burst of SYNs.
  const all: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    all.push(one(i));
    if (i % 50 === 49) await new Promise((r) => setTimeout(r, 50));
  }
  await Promise.all(all);
  return { statuses, keys, answeredMs };
}

export type HostileCase = 'repeated-key' | 'non-ascii-key' | 'non-utf8-body' | 'huge-header';
export const HOSTILE_CASES: readonly HostileCase[] = ['repeated-key', 'non-ascii-key', 'non-utf8-body', 'huge-header'];

/** One hostile request's bytes; `keys` are the ASCII keys it carries. */
export function hostileRequest(
  c: HostileCase,
  i: number,
  keyPrefix: string,
  hostPort: string,
  deadlineMs: number,
): { bytes: Buffer; keys: string[] } {
  const key = `${keyPrefix}-${c}-${i}`;
  const common = `Host: ${hostPort}\r\nContent-Type: application/json\r\nX-Request-Timeout-Ms: ${deadlineMs}\r\nConnection: close\r\n`;
  const build = (headers: Buffer, body: Buffer) =>
    Buffer.concat([
      Buffer.from(`POST /charge HTTP/1.1\r\n${common}`),
      headers,
      Buffer.from(`Content-Length: ${body.length}\r\n\r\n`),
      body,
    ]);
  const json = Buffer.from(chargeBody(i));
  switch (c) {
    case 'repeated-key':
      return {
        bytes: build(Buffer.from(`Idempotency-Key: ${key}-a\r\nIdempotency-Key: ${key}-b\r\n`), json),
        keys: [`${key}-a`, `${key}-b`],
      };
    case 'non-ascii-key':
      // é in Latin-1, then a lone UTF-8 continuation byte.
      return {
        bytes: build(
          Buffer.concat([Buffer.from(`Idempotency-Key: ${key}-`), Buffer.from([0xe9, 0x80]), Buffer.from('\r\n')]),
          json,
        ),
        keys: [],
      };
    case 'non-utf8-body': {
      const text = chargeBody(i, 'bad-bytes-here');
      const at = text.indexOf('bad-bytes-here');
      const body = Buffer.concat([
        Buffer.from(text.slice(0, at)),
        Buffer.from([0xff, 0xfe, 0xc3, 0x28]),
        Buffer.from(text.slice(at + 'bad-bytes-here'.length)),
      ]);
      return { bytes: build(Buffer.from(`Idempotency-Key: ${key}\r\n`), body), keys: [key] };
    }
    case 'huge-header':
      return {
        bytes: build(Buffer.from(`Idempotency-Key: ${key}\r\nX-Filler: ${'a'.repeat(64 * 1024)}\r\n`), json),
        keys: [key],
      };
  }
}

export interface HostileOptions {
  url: string;
  /** Requests per second (one connection each). */
  rate: number;
  seconds: number;
  keyPrefix: string;
  deadlineMs: number;
  /** Longest wait for an answer. */
  answerTimeoutMs?: number;
}

/** Statuses are counted per case: `repeated-key 400`, `huge-header closed`... */
export async function hostileRequests(o: HostileOptions): Promise<AbuseResult> {
  const { host, port } = loopbackTarget(o.url);
  const statuses: Record<string, number> = {};
  const keys: string[] = [];
  const answeredMs: number[] = [];
  const total = Math.round(o.rate * o.seconds);
  const gapMs = 1000 / o.rate;
  const t0 = Date.now();
  const sends: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const wait = t0 + i * gapMs - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const c = HOSTILE_CASES[i % HOSTILE_CASES.length]!;
    const req = hostileRequest(c, i, o.keyPrefix, `${host}:${port}`, o.deadlineMs);
    keys.push(...req.keys);
    sends.push(
      new Promise<void>((resolve) => {
        let buf = '';
        let done = false;
        const started = Date.now();
        const s = connect({ host, port });
        const finish = (what: string) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          count(statuses, `${c} ${what}`);
          s.destroy();
          resolve();
        };
        const timer = setTimeout(() => finish('open'), o.answerTimeoutMs ?? 3000);
        s.on('connect', () => s.write(req.bytes));
        s.on('data', (d: Buffer) => {
          buf += d.toString('latin1');
          const st = statusOf(buf);
          if (st !== undefined) {
            answeredMs.push(Date.now() - started);
            finish(st);
          }
        });
        // A server that refuses a huge header may reset the connection while we still write.
        s.on('error', (e: NodeJS.ErrnoException) =>
          finish(e.code === 'ECONNRESET' || e.code === 'EPIPE' ? 'closed' : 'error'),
        );
        s.on('close', () => finish('closed'));
      }),
    );
  }
  await Promise.all(sends);
  return { statuses, keys, answeredMs };
}
