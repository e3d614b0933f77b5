// Breaker and bulkhead bookkeeping around every downstream call (shared memory, one lock for the breaker window).
import assert from 'node:assert/strict';
import { Breaker, breakerRegionSpec, initBreakerRegion, type BreakerConfig } from '../src/resilience/breaker.js';
import { Bulkhead, BULKHEAD_REGION, initBulkheadRegion } from '../src/resilience/bulkhead.js';
import { allocateShared, openRegion } from '../src/shm/regions.js';
import type { Suite } from './harness.js';

const config: BreakerConfig = {
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
};
const layout = allocateShared({ b: breakerRegionSpec(config), k: BULKHEAD_REGION });
initBreakerRegion(openRegion(layout, 'b'), config);
initBulkheadRegion(openRegion(layout, 'k'), { limit: 64, maxWaiting: 16 });
const breaker = new Breaker('provider', openRegion(layout, 'b'), config);
const bulkhead = new Bulkhead('provider', openRegion(layout, 'k'));
let t = 0;

export const suite: Suite = {
  name: 'breaker+bulkhead',
  cases: [
    {
      name: 'breaker tryAdmit() (front-thread check, lock-free while closed)',
      check: () => assert.equal(breaker.tryAdmit(0), true),
      fn: () => breaker.tryAdmit(t),
    },
    {
      name: 'breaker acquire + record success',
      check: () => {
        const p = breaker.acquire(0);
        assert.equal(p, 'call');
        breaker.record(p!, 0, true, 3);
        assert.equal(breaker.state(), 'closed');
      },
      fn: () => {
        t += 0.01;
        const p = breaker.acquire(t);
        if (p) breaker.record(p, t, true, 3);
      },
    },
    {
      name: 'bulkhead tryAcquire + release',
      check: () => {
        assert.equal(bulkhead.tryAcquire(), true);
        bulkhead.release();
        assert.equal(bulkhead.stats().inUse, 0);
      },
      fn: () => {
        if (bulkhead.tryAcquire()) bulkhead.release();
      },
    },
  ],
};
