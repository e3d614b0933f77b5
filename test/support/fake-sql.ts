/**
 * A stand-in for a postgres.js pool whose statements answer only when the test
 * says so: each tagged-template call records a statement that stays pending
 * (as on a partitioned connection) until `answer`, `fail` or, when the pool is
 * told to honour cancels, its `cancel()`. Enough for ChargeStore and
 * Database, and for counting cancels and pool replacements.
 */
import type { Sql } from 'postgres';

export interface FakeStatement {
  text: string;
  cancelled: number;
  settled: boolean;
  answer(rows: unknown[]): void;
  fail(e: unknown): void;
}

export interface FakePool {
  sql: Sql;
  statements: FakeStatement[];
  /** end() calls with their timeout (seconds). */
  ended: (number | null | undefined)[];
  /** Settle a cancelled statement with 57014, as a server that answers does. */
  honourCancel: boolean;
}

export function fakePool(o: { honourCancel?: boolean } = {}): FakePool {
  const pool: FakePool = {
    sql: undefined as unknown as Sql,
    statements: [],
    ended: [],
    honourCancel: o.honourCancel ?? false,
  };
  const statement = (text: string): Promise<unknown> & { cancel(): void } => {
    let resolve!: (v: unknown) => void;
    let reject!: (e: unknown) => void;
    const p = new Promise<unknown>((a, b) => {
      resolve = a;
      reject = b;
    });
    const s: FakeStatement = {
      text,
      cancelled: 0,
      settled: false,
      answer: (rows) => {
        if (s.settled) return;
        s.settled = true;
        resolve(Object.assign(rows, { count: rows.length }));
      },
      fail: (e) => {
        if (s.settled) return;
        s.settled = true;
        reject(e);
      },
    };
    pool.statements.push(s);
    return Object.assign(p, {
      cancel: () => {
        s.cancelled++;
        if (pool.honourCancel)
          s.fail(Object.assign(new Error('canceling statement due to user request'), { code: '57014' }));
      },
    });
  };
  const sql = ((strings: TemplateStringsArray) => statement(strings.join('?'))) as unknown as Record<string, unknown>;
  sql.json = (x: unknown) => x;
  sql.unsafe = (text: string) => statement(text);
  sql.end = async (opts?: { timeout?: number | null }) => {
    pool.ended.push(opts?.timeout);
    // As postgres.js's destroy: what is in flight fails at once.
    for (const s of pool.statements)
      s.fail(Object.assign(new Error('write CONNECTION_DESTROYED'), { code: 'CONNECTION_DESTROYED' }));
  };
  pool.sql = sql as unknown as Sql;
  return pool;
}

/** Let pending promise callbacks and immediates run (no timers involved). */
export const settle = (): Promise<void> => new Promise((r) => setImmediate(r));
