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
  // No waiter yet, but 104 admitted charges for 64 slots: 40 are ahead.
  assert.ok(Math.abs(p.expectedWaitMs(stats(60, 0, 40), 100, 104) - 41 / 0.4) < 1e-9);
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
