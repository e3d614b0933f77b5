/**
 * The spinlock that guards the breakers, the retry budget and the answer-time
 * floor in shared memory. A worker thread terminated inside a critical section
 * runs no `finally`: without a takeover its lock stays taken and every thread
 * that reaches it spins forever (a gateway's front thread once hung for 28
 * minutes in CI that way).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { withLock } from '../../src/shm/regions.js';

test('a worker terminated inside its critical section: the next caller takes the lock over after the stale time, and it works after', async () => {
  for (let round = 0; round < 3; round++) {
    const buffer = new SharedArrayBuffer(8);
    const i32 = new Int32Array(buffer);
    const w = new Worker(new URL('./fixtures/hold-lock-worker.js', import.meta.url), { workerData: { buffer } });
    await new Promise<void>((resolve, reject) => {
      w.once('message', () => resolve());
      w.once('error', reject);
    });
    await w.terminate();
    assert.notEqual(Atomics.load(i32, 0), 0, 'the dead thread left the lock taken');
    const started = performance.now();
    const got = withLock(i32, 0, () => 'ran', 100);
    const waited = performance.now() - started;
    assert.equal(got, 'ran');
    assert.ok(waited >= 100 && waited < 5000, `taken over after ${waited.toFixed(0)} ms`);
    assert.equal(Atomics.load(i32, 0), 0, 'released after');
    // And it is an ordinary lock again: no wait.
    const again = performance.now();
    withLock(i32, 0, () => undefined, 100);
    assert.ok(performance.now() - again < 50);
  }
});

test('a holder that was only slow does not free the lock of the thread that took it over', () => {
  const i32 = new Int32Array(new SharedArrayBuffer(4));
  const staleToken = 12345;
  Atomics.store(i32, 0, staleToken);
  withLock(
    i32,
    0,
    () => {
      const mine = Atomics.load(i32, 0);
      assert.ok(mine !== 0 && mine !== staleToken, 'held under the taker’s own token');
      // The slow holder finishes now and releases what it believes is its lock.
      assert.notEqual(Atomics.compareExchange(i32, 0, staleToken, 0), staleToken);
      assert.equal(Atomics.load(i32, 0), mine, 'still held by the taker');
    },
    20,
  );
  assert.equal(Atomics.load(i32, 0), 0);
});

test('a live holder is waited for, not taken over, however many waiters there are', async () => {
  const buffer = new SharedArrayBuffer(8);
  const i32 = new Int32Array(buffer);
  // Four threads increment a counter under the lock; a lost update would show a lower total.
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.url).then(({ withLock }) => {
      const i32 = new Int32Array(workerData.buffer);
      for (let i = 0; i < 20000; i++) withLock(i32, 0, () => { i32[1] = i32[1] + 1; });
      parentPort.postMessage('done');
    });`;
  const url = new URL('../../src/shm/regions.js', import.meta.url).href;
  const workers = Array.from({ length: 4 }, () => new Worker(code, { eval: true, workerData: { buffer, url } }));
  await Promise.all(workers.map((w) => new Promise((r, j) => (w.once('message', r), w.once('error', j)))));
  await Promise.all(workers.map((w) => w.terminate()));
  assert.equal(i32[1], 80000);
  assert.equal(Atomics.load(i32, 0), 0);
});
