import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { Bulkhead, BULKHEAD_REGION, initBulkheadRegion } from '../../src/resilience/bulkhead.js';
import { allocateShared, openRegion, type SharedLayout } from '../../src/shm/regions.js';
import {
  createProtectionLayout,
  openProtection,
  reclaimThread,
  type ProtectionSettings,
} from '../../src/resilience/protection.js';
import { claimThreadSlot, slotOf, THREAD_SLOTS } from '../../src/resilience/thread-slots.js';
import { ManualClock } from '../../src/lib/clock.js';

function make(limit: number, maxWaiting: number) {
  const layout = allocateShared({ b: BULKHEAD_REGION });
  const r = openRegion(layout, 'b');
  initBulkheadRegion(r, { limit, maxWaiting });
  return { layout, b: new Bulkhead('provider', r) };
}

test("a wait is measured and bounded on the bulkhead's clock", async () => {
  const clock = new ManualClock();
  const r = openRegion(make(1, 4).layout, 'b');
  const b = new Bulkhead('provider', r, clock);
  assert.equal(b.tryAcquire(), true);
  const granted = b.acquire(10_000);
  await new Promise((resolve) => setImmediate(resolve));
  clock.advance(30);
  b.release();
  assert.deepEqual(await granted, { ok: true, waitedMs: 30 }, "the waited time is the clock's, not the runtime's");
  // Full again: the acquire timeout runs out on the clock, whatever the runtime's own wait (whole ms) did.
  const refused = b.acquire(20);
  await new Promise((resolve) => setImmediate(resolve));
  clock.advance(25);
  assert.deepEqual(await refused, { ok: false, reason: 'timeout', waitedMs: 25 });
  b.release();
  assert.equal(b.inUse, 0);
});

test('admits up to the limit; the next caller is refused at once when it may not wait', async () => {
  const { b } = make(2, 0);
  assert.deepEqual(await b.acquire(0), { ok: true, waitedMs: 0 });
  assert.equal(b.tryAcquire(), true);
  const r = await b.acquire(50);
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.reason, 'full');
  assert.deepEqual(b.stats(), {
    inUse: 2,
    limit: 2,
    waiting: 0,
    acquired: 2,
    rejectedFull: 1,
    rejectedTimeout: 0,
    reclaimed: 0,
  });
});

test('a waiter gets the slot a release frees, without polling', async () => {
  const { b } = make(1, 4);
  assert.equal(b.tryAcquire(), true);
  const waiting = b.acquire(5000);
  assert.equal(b.stats().waiting, 1);
  b.release();
  const r = await waiting;
  assert.equal(r.ok, true);
  assert.equal(b.stats().inUse, 1);
  assert.equal(b.stats().waiting, 0);
});

test('the acquire timeout bounds the wait', async () => {
  const { b } = make(1, 4);
  b.tryAcquire();
  const r = await b.acquire(30);
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.reason, 'timeout');
  assert.ok(r.waitedMs >= 25, `waited ${r.waitedMs}`);
  assert.equal(b.stats().rejectedTimeout, 1);
});

test('global and exact across threads: 4 threads contend, in-use never exceeds the limit, nothing is lost', async () => {
  const { layout, b } = make(3, 16);
  const results = await Promise.all(
    Array.from(
      { length: 4 },
      () =>
        new Promise<{ max: number; got: number }>((resolve, reject) => {
          const w = new Worker(new URL('./fixtures/bulkhead-worker.js', import.meta.url), {
            workerData: { layout, rounds: 2000 },
          });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    ),
  );
  for (const r of results) {
    assert.equal(r.got, 2000, 'every acquire eventually succeeds within its timeout');
    assert.ok(r.max <= 3, `saw ${r.max} in use`);
  }
  assert.equal(b.stats().inUse, 0);
  assert.equal(b.stats().acquired, 8000);
});

test('reclaim gives back exactly what one thread slot held; other slots keep theirs, and their waiters get the slots', async () => {
  const { layout } = make(4, 8);
  const r = openRegion(layout, 'b');
  const mine = new Bulkhead('provider', r, undefined, 3);
  const other = new Bulkhead('provider', r, undefined, 5);
  assert.equal(mine.tryAcquire(), true);
  assert.equal(mine.tryAcquire(), true);
  assert.equal(mine.tryAcquire(), true);
  assert.equal(other.tryAcquire(), true);
  // (A dead thread's waiters need a real thread: see the next tests.)
  const otherWaiter = other.acquire(10_000);
  assert.deepEqual([mine.stats().inUse, mine.stats().waiting], [4, 1]);
  assert.deepEqual(mine.reclaim(3), { held: 3, waiting: 0 });
  // The live thread's waiter is woken by the slots given back.
  assert.equal((await otherWaiter).ok, true);
  const s = other.stats();
  assert.deepEqual([s.inUse, s.waiting, s.reclaimed], [2, 0, 3]);
  assert.deepEqual(mine.reclaim(3), { held: 0, waiting: 0 }, 'a second sweep finds nothing');
  assert.deepEqual(other.reclaim(0), { held: 0, waiting: 0 }, 'the shared slot is never swept');
  other.release();
  other.release();
  assert.equal(other.stats().inUse, 0);
});

test('thread slots: claimed once per thread, found again, refused past the table', () => {
  const { layout } = make(1, 1);
  const threads = { i32: new Int32Array(THREAD_SLOTS), f64: new Float64Array(0) };
  void layout;
  const a = claimThreadSlot(threads, 7);
  const b = claimThreadSlot(threads, 9);
  assert.ok(a > 0 && b > 0 && a !== b);
  assert.equal(slotOf(threads, 9), b);
  assert.equal(claimThreadSlot(threads, 0), 0, 'the main thread is never tracked');
  for (let id = 100; id < 100 + THREAD_SLOTS; id++) claimThreadSlot(threads, id);
  assert.equal(claimThreadSlot(threads, 5000), 0, 'a full table leaves the thread untracked, not failing');
});

const settings: ProtectionSettings = {
  breakers: false,
  breaker: {
    windowMs: 10_000,
    buckets: 10,
    minCalls: 20,
    failureRateThreshold: 0.5,
    slowCallMs: 500,
    slowCallRateThreshold: 0.8,
    openMs: 5000,
    minOpenMs: 1000,
    halfOpenProbes: 5,
    halfOpenSuccessRatio: 0.8,
    probeTimeoutMs: 2000,
  },
  bulkheads: true,
  providerBulkhead: { limit: 4, maxWaiting: 16 },
  fxBulkhead: { limit: 2, maxWaiting: 16 },
  bulkheadAcquireTimeoutMs: 100,
  db: { limit: 3, maxWaiting: 16 },
  dbAcquireTimeoutMs: 100,
  retryBudget: false,
  budget: { ratio: 0.2, minPerSecond: 10, maxTokens: 100 },
};

type Plan = Record<'provider' | 'fx' | 'db', { hold: number; wait: number }>;

function holder(layout: SharedLayout, plan: Plan) {
  const w = new Worker(new URL('./fixtures/holder-worker.js', import.meta.url), {
    workerData: { layout, settings, plan },
  });
  const got: string[] = [];
  const ready = new Promise<void>((resolve, reject) => {
    w.on('message', (m: { ready?: boolean; got?: string }) => {
      if (m.ready) resolve();
      if (m.got) got.push(m.got);
    });
    w.once('error', reject);
  });
  const threadId = w.threadId;
  // The sweep runs where the gateway runs it: on the thread's own exit.
  const exited = new Promise<number>((resolve) => w.once('exit', resolve));
  return { w, got, ready, threadId, exited };
}

test('a thread terminated while holding and waiting on every bulkhead gives all of it back; a live waiter gets its slot', async () => {
  for (let round = 0; round < 3; round++) {
    const layout = createProtectionLayout(settings, Date.now());
    const front = openProtection(layout, settings);
    const { provider, fx, db } = front.bulkheads;
    const counts = () => [provider!.inUse, provider!.waiting, fx!.inUse, fx!.waiting, db!.inUse, db!.waiting];
    // A fills every bulkhead and queues behind itself; B only queues.
    const a = holder(layout, { provider: { hold: 4, wait: 2 }, fx: { hold: 2, wait: 1 }, db: { hold: 3, wait: 1 } });
    await a.ready;
    const b = holder(layout, { provider: { hold: 0, wait: 1 }, fx: { hold: 0, wait: 0 }, db: { hold: 0, wait: 1 } });
    try {
      await b.ready;
      assert.deepEqual(counts(), [4, 3, 2, 1, 3, 2]);
      void a.w.terminate();
      await a.exited;
      assert.deepEqual(reclaimThread(front, a.threadId), {
        provider: { held: 4, waiting: 2 },
        fx: { held: 2, waiting: 1 },
        db: { held: 3, waiting: 1 },
      });
      assert.equal(slotOf(front.threads, a.threadId), 0, "the dead thread's slot is free again");
      // B's waiters were parked on full bulkheads: the slots given back wake them.
      await until(() => b.got.includes('provider') && b.got.includes('db'));
      assert.deepEqual(counts(), [1, 0, 0, 0, 1, 0]);
      void b.w.terminate();
      await b.exited;
      assert.deepEqual(reclaimThread(front, b.threadId), {
        provider: { held: 1, waiting: 0 },
        fx: { held: 0, waiting: 0 },
        db: { held: 1, waiting: 0 },
      });
      assert.deepEqual(counts(), [0, 0, 0, 0, 0, 0]);
      assert.equal(provider!.stats().reclaimed, 5);
    } finally {
      await Promise.all([a.w.terminate(), b.w.terminate()]);
    }
  }
});

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = performance.now();
  while (!check()) {
    if (performance.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
