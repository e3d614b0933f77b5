// The admission decision the front thread makes for every request.
import assert from 'node:assert/strict';
import { seededRandom } from '../src/lib/random.js';
import { shed, type Signals } from '../src/resilience/shedder.js';
import { GradientLimit } from '../src/resilience/limit.js';
import type { Suite } from './harness.js';

const random = seededRandom(1);
const calm: Signals = { inFlight: 40, limit: 256, loopDelayMs: 5, utilization: 0.4, expectedMs: 1, remainingMs: 1000 };
const pressed: Signals = { ...calm, loopDelayMs: 150, utilization: 0.97 };
const limit = new GradientLimit();
let i = 0;

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
      name: 'GradientLimit.onSample',
      check: () => {
        const l = new GradientLimit();
        for (let k = 0; k < 100; k++) l.onSample(5, l.current, false);
        assert.ok(l.current > 64);
      },
      fn: () => limit.onSample(5 + (++i % 3), limit.current, false),
    },
  ],
};
