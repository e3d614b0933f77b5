import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { Bulkhead, BULKHEAD_REGION, initBulkheadRegion } from '../../src/resilience/bulkhead.js';
import { allocateShared, openRegion } from '../../src/resilience/shared-memory.js';

function make(limit: number, maxWaiting: number) {
  const layout = allocateShared({ b: BULKHEAD_REGION });
  const r = openRegion(layout, 'b');
  initBulkheadRegion(r, { limit, maxWaiting });
  return { layout, b: new Bulkhead('provider', r) };
}

test('admits up to the limit; the next caller is refused at once when it may not wait', async () => {
  const { b } = make(2, 0);
  assert.deepEqual(await b.acquire(0), { ok: true, waitedMs: 0 });
  assert.equal(b.tryAcquire(), true);
  const r = await b.acquire(50);
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.reason, 'full');
  assert.deepEqual(b.stats(), { inUse: 2, limit: 2, waiting: 0, acquired: 2, rejectedFull: 1, rejectedTimeout: 0 });
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
    Array.from({ length: 4 }, () => new Promise<{ max: number; got: number }>((resolve, reject) => {
      const w = new Worker(new URL('./fixtures/bulkhead-worker.js', import.meta.url), { workerData: { layout, rounds: 2000 } });
      w.once('message', resolve);
      w.once('error', reject);
    })),
  );
  for (const r of results) {
    assert.equal(r.got, 2000, 'every acquire eventually succeeds within its timeout');
    assert.ok(r.max <= 3, `saw ${r.max} in use`);
  }
  assert.equal(b.stats().inUse, 0);
  assert.equal(b.stats().acquired, 8000);
});
