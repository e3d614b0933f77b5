import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BulkheadPressure } from '../../src/resilience/bulkhead-pressure.js';

const LIMIT = 64;
const stats = (inUse: number, waiting: number, acquired: number) => ({ inUse, limit: LIMIT, waiting, acquired });

test('a bulkhead with a free slot and nobody ahead costs no wait', () => {
  const p = new BulkheadPressure();
  assert.equal(p.expectedWaitMs(stats(10, 0, 0), 0), 0);
  assert.equal(p.expectedWaitMs(stats(63, 0, 100), 200, 63), 0);
});

test('a full bulkhead: the wait is the callers ahead over the measured acquire rate', () => {
  const p = new BulkheadPressure({ windowMs: 100, weight: 1 });
  p.expectedWaitMs(stats(64, 0, 0), 0);
  // 40 acquisitions in 100 ms: 0.4 per ms (400/s).
  const w = p.expectedWaitMs(stats(64, 19, 40), 100);
  assert.ok(Math.abs(w - 20 / 0.4) < 1e-9, `${w}`);
});

test('charges still on their way to the bulkhead count as ahead, so a burst cannot slip past before it queues', () => {
  const p = new BulkheadPressure({ windowMs: 100, weight: 1 });
  p.expectedWaitMs(stats(64, 0, 0), 0);
  // No waiter yet, but 104 admitted charges for 64 slots: 40 more than the slots.
  assert.ok(Math.abs(p.expectedWaitMs(stats(64, 0, 40), 100, 104) - 41 / 0.4) < 1e-9, 'all of them at a full bulkhead');
  // Nearly full (60 of 64 held): they find it full in that share.
  assert.ok(Math.abs(p.expectedWaitMs(stats(60, 0, 40), 100, 104) - (40 * (60 / 64) + 1) / 0.4) < 1e-9);
});

test('at a nearly idle bulkhead, charges on their way (a burst in Postgres, busy workers) are no reason to refuse', () => {
  // Measured at healthy load: ~80 charges in flight, 2-50 of 64 provider
  // slots held, no waiter, and admission shed charges as "downstream".
  const p = new BulkheadPressure({ windowMs: 100, weight: 1 });
  p.expectedWaitMs(stats(2, 0, 0), 0);
  const rate = 240 / 100; // 2 400 acquisitions a second
  for (const [inUse, inFlight] of [
    [2, 200],
    [10, 150],
    [32, 120],
  ] as const) {
    const w = p.expectedWaitMs(stats(inUse, 0, 240), 100, inFlight);
    // Under the 50 ms admission refuses at (half the 100 ms acquire timeout).
    assert.ok(w < 50, `${inUse} of 64 slots held, ${inFlight} charges in flight: ${w.toFixed(1)} ms`);
    assert.ok(w <= ((inFlight - 64) * (inUse / 64) + 1) / rate + 1e-9);
  }
  // With every slot held the same charges are a real queue.
  assert.ok(p.expectedWaitMs(stats(64, 0, 240), 100, 200) > 50);
});

test('full before any window was measured: no estimate, the bulkhead judges for itself', () => {
  const p = new BulkheadPressure();
  p.expectedWaitMs(stats(0, 0, 0), 0);
  assert.equal(p.expectedWaitMs(stats(64, 30, 64), 50), 0);
});

test('a full bulkhead that acquired nothing for a whole window (a hung downstream) has an unbounded wait, and recovers when slots move again', () => {
  const p = new BulkheadPressure({ windowMs: 100, weight: 0.5 });
  p.expectedWaitMs(stats(64, 0, 0), 0);
  p.expectedWaitMs(stats(64, 0, 40), 100);
  assert.equal(p.expectedWaitMs(stats(64, 5, 40), 200), Infinity);
  const w = p.expectedWaitMs(stats(64, 5, 80), 300);
  assert.ok(Number.isFinite(w) && w > 0, `finite again once slots are acquired: ${w}`);
});

test('the rate is smoothed over windows, and a window shorter than windowMs does not move it', () => {
  const p = new BulkheadPressure({ windowMs: 100, weight: 0.5 });
  p.expectedWaitMs(stats(64, 0, 0), 0);
  p.expectedWaitMs(stats(64, 0, 40), 100); // 0.4/ms
  p.expectedWaitMs(stats(64, 0, 60), 200); // window 0.2/ms → smoothed 0.3/ms
  assert.ok(Math.abs(p.expectedWaitMs(stats(64, 2, 70), 250) - 3 / 0.3) < 1e-9);
});
