// The admission decision the front thread makes for every request.
import assert from 'node:assert/strict';
import { seededRandom } from '../src/lib/random.js';
import { shed, type Signals } from '../src/resilience/shedder.js';
import { GradientLimit } from '../src/resilience/limit.js';
import { BulkheadPressure } from '../src/resilience/bulkhead-pressure.js';
import type { Suite } from './harness.js';

const random = seededRandom(1);
const calm: Signals = { inFlight: 40, limit: 256, loopDelayMs: 5, utilization: 0.4, expectedMs: 1, remainingMs: 1000 };
const pressed: Signals = { ...calm, loopDelayMs: 150, utilization: 0.97 };
const limit = new GradientLimit();
let i = 0;
// Overloaded: RTTs three times the baseline and every fifth answer a drop.
const overloaded = new GradientLimit();
for (let k = 0; k < 1000; k++) overloaded.onSample(5, overloaded.current, false);
let j = 0;
// A full provider bulkhead seating 0.4 callers per ms (400/s), as the front thread reads it per charge.
const pressure = new BulkheadPressure({ windowMs: 100, weight: 0.5, arrivalMs: 25 });
let t = 0;
let acquired = 0;

export const suite: Suite = {
  name: 'admission',
  cases: [
    {
      name: 'shed() calm',
      check: () => assert.equal(shed('charge', calm, random), null),
      fn: () => shed('charge', calm, random),
    },
    {
      name: 'shed() under loop pressure',
      check: () => {
        let n = 0;
        for (let k = 0; k < 1000; k++) if (shed('quote', pressed, random) === 'event_loop') n++;
        assert.ok(n > 400 && n < 600, `${n}`);
      },
      fn: () => shed('quote', pressed, random),
    },
    {
      name: 'BulkheadPressure.expectedWaitMs (full bulkhead)',
      check: () => {
        const p = new BulkheadPressure({ windowMs: 100, weight: 1, arrivalMs: 25 });
        p.expectedWaitMs({ inUse: 64, limit: 64, waiting: 0, acquired: 0 }, 0);
        assert.ok(Math.abs(p.expectedWaitMs({ inUse: 64, limit: 64, waiting: 19, acquired: 40 }, 100) - 50) < 1e-9);
      },
      fn: () => {
        t += 0.01;
        acquired += 0.004;
        return pressure.expectedWaitMs({ inUse: 64, limit: 64, waiting: 20, acquired: Math.floor(acquired) }, t, 90);
      },
    },
    {
      name: 'GradientLimit.onSample',
      check: () => {
        const l = new GradientLimit();
        for (let k = 0; k < 100; k++) l.onSample(5, l.current, false);
        assert.ok(l.current > 64);
      },
      fn: () => limit.onSample(5 + (++i % 3), limit.current, false),
    },
    {
      name: 'GradientLimit.onSample (overload, 1 in 5 a drop)',
      check: () => {
        const l = new GradientLimit();
        for (let k = 0; k < 100; k++) l.onSample(5, l.current, false);
        const before = l.current;
        for (let k = 0; k < 100; k++) l.onSample(15, l.current, k % 5 === 0);
        assert.ok(l.current < before, `${before} → ${l.current}`);
      },
      fn: () => overloaded.onSample(15 + (++j % 3), overloaded.current, j % 5 === 0),
    },
  ],
};
