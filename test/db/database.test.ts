/**
 * Database.run against a pool whose statements never answer (a silent
 * partition), on a manual clock: the caller's answer, the DB slot and the
 * cancel all happen at the deadline, and a pool whose cancelled statement
 * never ends is replaced.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Database, DbBusyError } from '../../src/db/database.js';
import { ManualClock } from '../../src/lib/clock.js';
import { isDeadline } from '../../src/lib/deadline.js';
import { Bulkhead, BULKHEAD_REGION, initBulkheadRegion } from '../../src/resilience/bulkhead.js';
import { allocateShared, openRegion } from '../../src/shm/regions.js';
import { fakePool, settle, type FakePool } from '../support/fake-sql.js';

function bulkhead(limit: number): Bulkhead {
  const r = openRegion(allocateShared({ db: BULKHEAD_REGION }), 'db');
  initBulkheadRegion(r, { limit, maxWaiting: 8 });
  return new Bulkhead('db', r);
}

function harness(o: { limit?: number; honourCancel?: boolean } = {}) {
  const clock = new ManualClock();
  const slots = bulkhead(o.limit ?? 2);
  const pools: FakePool[] = [];
  const events = { timeouts: 0, retired: 0, busy: 0 };
  const db = new Database({
    clock,
    open: () => {
      const p = fakePool(o.honourCancel ? { honourCancel: true } : {});
      pools.push(p);
      return p.sql;
    },
    slots,
    acquireTimeoutMs: 100,
    cancelGraceMs: 2000,
    on: { timeout: () => events.timeouts++, retired: () => events.retired++, busy: () => events.busy++ },
  });
  return { clock, slots, pools, events, db };
}

/** Observe a promise's outcome without awaiting it. */
function watch<T>(p: Promise<T>): { value?: T; error?: unknown; done: boolean } {
  const w: { value?: T; error?: unknown; done: boolean } = { done: false };
  p.then(
    (v) => Object.assign(w, { value: v, done: true }),
    (e: unknown) => Object.assign(w, { error: e, done: true }),
  );
  return w;
}

test('a statement that never answers: at the deadline the caller gets DeadlineError, the slot is back, the statement cancelled', async () => {
  const { clock, slots, pools, db } = harness();
  const w = watch(db.run(clock.epochMs() + 500, (sql) => sql`SELECT 1`));
  await settle();
  assert.equal(slots.inUse, 1);
  assert.equal(pools[0]!.statements.length, 1);
  clock.advance(499);
  await settle();
  assert.equal(w.done, false, 'not before the deadline');
  assert.equal(pools[0]!.statements[0]!.cancelled, 0);
  clock.advance(1);
  await settle();
  assert.ok(w.done && isDeadline(w.error), `got ${String(w.error)}`);
  assert.equal(slots.inUse, 0, 'the slot is back at the deadline, not when the statement ends');
  assert.equal(pools[0]!.statements[0]!.cancelled, 1);
  assert.equal(db.stats().timeouts, 1);
});

test('a cancelled statement that never ends gets its pool replaced after the grace; later statements use the new pool', async () => {
  const { clock, pools, events, db } = harness();
  const w = watch(db.run(clock.epochMs() + 500, (sql) => sql`SELECT 1`));
  await settle();
  clock.advance(500);
  await settle();
  assert.ok(isDeadline(w.error));
  clock.advance(1999);
  assert.equal(pools.length, 1, 'not replaced within the grace');
  clock.advance(1);
  assert.equal(pools.length, 2, 'replaced once the grace passed');
  assert.deepEqual(pools[0]!.ended, [0], 'the old pool is destroyed without waiting (end timeout 0)');
  assert.equal(events.retired, 1);
  const next = watch(db.run(clock.epochMs() + 500, (sql) => sql`SELECT 2`));
  await settle();
  assert.equal(pools[1]!.statements.length, 1, 'the next statement goes to the fresh pool');
  pools[1]!.statements[0]!.answer([{ ok: 1 }]);
  await settle();
  assert.deepEqual(next.value, Object.assign([{ ok: 1 }], { count: 1 }));
});

test('a cancel the server honours (a slow statement, not a dead path) keeps the pool', async () => {
  const { clock, pools, events, db } = harness({ honourCancel: true });
  const w = watch(db.run(clock.epochMs() + 500, (sql) => sql`SELECT pg_sleep(10)`));
  await settle();
  clock.advance(500);
  await settle();
  assert.ok(isDeadline(w.error));
  clock.advance(5000);
  assert.equal(pools.length, 1);
  assert.equal(events.retired, 0);
});

test('statements in flight on a replaced pool end with DeadlineError (they may have committed), and their slots come back', async () => {
  const { clock, slots, pools, db } = harness({ limit: 4 });
  const hung = watch(db.run(clock.epochMs() + 500, (sql) => sql`UPDATE hung`));
  await settle();
  clock.advance(400);
  // A second, more patient statement on the same (dead) pool.
  const patient = watch(db.run(clock.epochMs() + 10_000, (sql) => sql`INSERT patient`));
  await settle();
  assert.equal(slots.inUse, 2);
  clock.advance(100 + 2000);
  await settle();
  assert.ok(isDeadline(hung.error));
  assert.equal(pools.length, 2);
  assert.ok(patient.done && isDeadline(patient.error), `destroyed by the replacement: ${String(patient.error)}`);
  assert.equal(slots.inUse, 0);
});

test('a phase that outlives its deadline cannot send another statement', async () => {
  const { clock, pools, db } = harness({ honourCancel: false });
  let second: unknown;
  const w = watch(
    db.run(clock.epochMs() + 500, async (sql) => {
      await sql`INSERT first`.catch(() => {});
      try {
        return await sql`SELECT second`;
      } catch (e) {
        second = e;
        throw e;
      }
    }),
  );
  await settle();
  clock.advance(500);
  await settle();
  assert.ok(isDeadline(w.error));
  // The first statement answers late: the phase goes on, but its next statement is refused.
  pools[0]!.statements[0]!.answer([]);
  await settle();
  assert.equal(pools[0]!.statements.length, 1, 'no statement sent after the deadline, outside the DB bound');
  assert.ok(isDeadline(second));
});

test('no slot free: DbBusyError, nothing sent; a deadline already passed: DeadlineError, nothing sent', async () => {
  const { clock, slots, pools, events, db } = harness({ limit: 1 });
  const holder = watch(db.run(clock.epochMs() + 10_000, (sql) => sql`SELECT held`));
  await settle();
  // The slot wait is bounded by the acquire timeout (real time, 100 ms here).
  await assert.rejects(
    db.run(clock.epochMs() + 10_000, (sql) => sql`SELECT refused`),
    (e) => e instanceof DbBusyError,
  );
  assert.equal(events.busy, 1);
  assert.equal(pools[0]!.statements.length, 1);
  await assert.rejects(
    db.run(clock.epochMs(), (sql) => sql`SELECT late`),
    (e) => isDeadline(e),
  );
  assert.equal(pools[0]!.statements.length, 1);
  pools[0]!.statements[0]!.answer([]);
  await settle();
  assert.ok(holder.done);
  assert.equal(slots.inUse, 0);
  assert.equal(clock.pendingTimers, 0, 'the deadline timer of an answered statement is cleared');
});
