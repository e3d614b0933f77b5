/**
 * A mixed crowd for leak tests: requests from a few client addresses (127/8
 * on loopback) that end every way a request can end on the front door —
 * answered at once (400), answered by a worker (201 charge, 404 read), aborted
 * mid-body, aborted while a worker runs it, timed out (408 after
 * BODY_TIMEOUT_MS), or refused by a per-address cap (503) — so a test can
 * check afterwards that nothing is left counted.
 */
import { randomUUID } from 'node:crypto';
import { seededRandom } from '../../src/lib/random.js';
import { RawConnection, type RawResponse } from './http.js';

export type Ending = 'invalid' | 'charge' | 'read' | 'abort_mid_body' | 'abort_in_flight' | 'body_timeout';
const ENDINGS: readonly Ending[] = ['invalid', 'charge', 'read', 'abort_mid_body', 'abort_in_flight', 'body_timeout'];

export interface MixedResult {
  /** How each sent request ended, by what was sent. */
  sent: Record<Ending, number>;
  /** Statuses of the answers received (aborted requests have none). */
  statuses: Record<number, number>;
  /** The problem `detail` of the 503s received (an address cap and admission shedding both answer 503 overloaded). */
  details503: Record<string, number>;
}

const VALID = JSON.stringify({ amount: 1000, currency: 'usd', source: 'tok_visa' });

function chargeBytes(key: string, body: string): { head: string; body: string } {
  return {
    head: `POST /charge HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nIdempotency-Key: ${key}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`,
    body,
  };
}

/**
 * Send `total` requests, `concurrency` at a time, each from one of
 * `addresses`, with endings drawn from a seeded random. `bodyTimeoutMs`
 * bounds how long a timed-out request is waited for (plus a grace).
 */
export async function mixedRequests(
  port: number,
  o: { total: number; concurrency: number; addresses: string[]; bodyTimeoutMs: number; seed?: number },
): Promise<MixedResult> {
  const random = seededRandom(o.seed ?? 1);
  const sent = Object.fromEntries(ENDINGS.map((e) => [e, 0])) as Record<Ending, number>;
  const statuses: Record<number, number> = {};
  const details503: Record<string, number> = {};
  let next = 0;
  const one = async (i: number): Promise<void> => {
    const ending = ENDINGS[Math.floor(random() * ENDINGS.length)]!;
    const address = o.addresses[i % o.addresses.length]!;
    const pause = Math.floor(random() * 30);
    sent[ending]++;
    const conn = await RawConnection.open(port, '127.0.0.1', address);
    try {
      const key = `mixed-${ending}-${randomUUID()}`;
      let answer: Promise<RawResponse | undefined> | undefined;
      const read = (ms: number) => conn.readResponse(ms);
      switch (ending) {
        case 'invalid': {
          const c = chargeBytes(key, '{not json');
          await conn.write(c.head + c.body);
          answer = read(10_000);
          break;
        }
        case 'charge': {
          const c = chargeBytes(key, VALID);
          await conn.write(c.head + c.body);
          answer = read(10_000);
          break;
        }
        case 'read':
          await conn.write(`GET /charges/${key} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
          answer = read(10_000);
          break;
        case 'abort_mid_body': {
          const c = chargeBytes(key, VALID);
          await conn.write(c.head + c.body.slice(0, 5));
          await new Promise((res) => setTimeout(res, pause));
          break;
        }
        case 'abort_in_flight': {
          const c = chargeBytes(key, VALID);
          await conn.write(c.head + c.body);
          await new Promise((res) => setTimeout(res, pause));
          break;
        }
        case 'body_timeout': {
          const c = chargeBytes(key, VALID);
          await conn.write(c.head + c.body.slice(0, 5));
          answer = read(o.bodyTimeoutMs + 5000);
          break;
        }
      }
      const r = await answer;
      if (r !== undefined) {
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        if (r.status === 503) {
          const detail = String((r.body as { detail?: unknown } | undefined)?.detail);
          details503[detail] = (details503[detail] ?? 0) + 1;
        }
      }
    } finally {
      conn.destroy();
    }
  };
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      while (next < o.total) await one(next++);
    }),
  );
  return { sent, statuses, details503 };
}
