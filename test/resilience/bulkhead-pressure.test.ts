import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BulkheadPressure } from '../../src/resilience/bulkhead-pressure.js';

const LIMIT = 64;
const config = { windowMs: 100, weight: 1, arrivalMs: 25 };
const stats = (inUse: number, waiting: number, acquired: number) => ({ inUse, limit: LIMIT, waiting, acquired });

test('a bulkhead with a free slot and nobody ahead costs no wait', () => {
  const p = new BulkheadPressure();
  assert.equal(p.expectedWaitMs(stats(10, 0, 0), 0), 0);
  assert.equal(p.expectedWaitMs(stats(63, 0, 100), 200, 63), 0);
});

test('a full bulkhead: the wait is the callers ahead over the measured acquire rate', () => {
  const p = new BulkheadPressure(config);
  p.expectedWaitMs(stats(64, 0, 0), 0);
  // 40 acquisitions in 100 ms: 0.4 per ms (400/s).
  const w = p.expectedWaitMs(stats(64, 19, 40), 100);
  assert.ok(Math.abs(w - 20 / 0.4) < 1e-9, `${w}`);
});

test('charges on their way beyond what the slots seat meanwhile count as ahead, so a burst at a saturated provider cannot slip past before it queues', () => {
  // The overload scenario's provider: 400 calls/s, every slot held, no waiter yet.
  const p = new BulkheadPressure(config);
  p.expectedWaitMs(stats(64, 0, 0), 0);
  // 104 charges in flight: 40 on their way; 0.4/ms × 25 ms = 10 slots turn over before they arrive.
  const w = p.expectedWaitMs(stats(64, 0, 40), 100, 104);
  assert.ok(Math.abs(w - (40 - 10 + 1) / 0.4) < 1e-9, `${w}`);
  assert.ok(w > 50, 'past half the 100 ms acquire timeout: refused at admission');
  // Free slots seat charges on their way too (60 of 64 held: 4 more seats),
  // and the rest count in the share of slots held.
  assert.ok(Math.abs(p.expectedWaitMs(stats(60, 0, 40), 100, 104) - ((44 - 14) * (60 / 64) + 1) / 0.4) < 1e-9);
  // Waiters are ahead whatever the rate.
  assert.ok(Math.abs(p.expectedWaitMs(stats(64, 19, 40), 100, 83) - 20 / 0.4) < 1e-9);
});

test('at healthy load, hundreds of charges in flight are no queue while the slots turn over fast (a CPU-bound machine at its ceiling)', () => {
  // Measured in capacity at 2 000-2 400/s: 100-250 charges in flight,
  // every provider slot held at moments, the provider answering at once;
  // counting all of them in the share of slots held shed 6 000-8 600 charges
  // the unprotected service served within the SLO.
  const p = new BulkheadPressure(config);
  p.expectedWaitMs(stats(2, 0, 0), 0);
  // 240 acquired in the 100 ms window below: 2 400 a second, so 60 slots turn over in 25 ms.
  for (const [inUse, inFlight] of [
    [2, 200],
    [32, 150],
    [64, 180],
    [64, 150],
  ] as const) {
    const w = p.expectedWaitMs(stats(inUse, 0, 240), 100, inFlight);
    assert.ok(w < 50, `${inUse} of 64 slots held, ${inFlight} charges in flight: ${w.toFixed(1)} ms`);
  }
  // More on their way than the slots can seat in time is a real queue, however fast they turn over.
  assert.ok(p.expectedWaitMs(stats(64, 0, 240), 100, 300) > 50);
  // Nothing on the way beyond the free slots: no wait at all.
  assert.equal(p.expectedWaitMs(stats(32, 0, 240), 100, 60), 0);
});

test('an idle provider is no queue, however many charges are held up before it (trickled bodies, a slow Postgres)', () => {
  const p = new BulkheadPressure(config);
  p.expectedWaitMs(stats(0, 0, 0), 0);
  // 5 calls a second: hardly any slot turns over in 25 ms.
  assert.equal(p.expectedWaitMs(stats(0, 0, 1), 200, 400), 0);
});

test('full before any window was measured: no estimate, the bulkhead judges for itself', () => {
  const p = new BulkheadPressure();
  p.expectedWaitMs(stats(0, 0, 0), 0);
  assert.equal(p.expectedWaitMs(stats(64, 30, 64), 50), 0);
});

test('a full bulkhead that acquired nothing for a whole window (a hung downstream) has an unbounded wait, and recovers when slots move again', () => {
  const p = new BulkheadPressure({ ...config, weight: 0.5 });
  p.expectedWaitMs(stats(64, 0, 0), 0);
  p.expectedWaitMs(stats(64, 0, 40), 100);
  assert.equal(p.expectedWaitMs(stats(64, 5, 40), 200), Infinity);
  const w = p.expectedWaitMs(stats(64, 5, 80), 300);
  assert.ok(Number.isFinite(w) && w > 0, `finite again once slots are acquired: ${w}`);
});

test('the rate is smoothed over windows, and a window shorter than windowMs does not move it', () => {
  const p = new BulkheadPressure({ ...config, weight: 0.5 });
  p.expectedWaitMs(stats(64, 0, 0), 0);
  p.expectedWaitMs(stats(64, 0, 40), 100); // 0.4/ms
  p.expectedWaitMs(stats(64, 0, 60), 200); // window 0.2/ms → smoothed 0.3/ms
  assert.ok(Math.abs(p.expectedWaitMs(stats(64, 2, 70), 250) - 3 / 0.3) < 1e-9);
});

test('slots free and a window without an acquisition is a stall before the bulkhead (Postgres, the worker), not a hung downstream', () => {
  const p = new BulkheadPressure(config);
  p.expectedWaitMs(stats(10, 0, 0), 0);
  p.expectedWaitMs(stats(10, 0, 300), 100); // 3 per ms
  // A window without an acquisition, 20 of 64 slots held, 250 charges in flight: the rate judges.
  p.expectedWaitMs(stats(20, 0, 300), 200, 250);
  const w = p.expectedWaitMs(stats(20, 0, 300), 300, 250);
  assert.ok(Number.isFinite(w), `${w}`);
  // The same window with every slot held is a hung downstream.
  const full = new BulkheadPressure(config);
  full.expectedWaitMs(stats(10, 0, 0), 0);
  full.expectedWaitMs(stats(10, 0, 300), 100);
  assert.equal(full.expectedWaitMs(stats(64, 0, 300), 200, 250), Infinity);
});
