// One front-thread → worker → front-thread round trip with a charge-sized task (what every charge pays).
import assert from 'node:assert/strict';
import { Piscina } from 'piscina';
import type { Suite } from './harness.js';

const pool = new Piscina({
  filename: new URL('./fixtures/echo-worker.js', import.meta.url).href,
  minThreads: 1,
  maxThreads: 1,
  atomics: 'disabled',
  concurrentTasksPerWorker: 64,
});
const task = {
  op: 'charge',
  key: 'order-1001',
  fingerprint: 'x'.repeat(43),
  input: { amount: 2500, currency: 'USD', source: 'tok_visa' },
  deadline: 1e12,
  sentAt: 1e12,
};

export const suite: Suite = {
  name: 'worker',
  cases: [
    {
      name: 'piscina round trip (charge-sized task)',
      check: async () => assert.deepEqual(await pool.run(task), task),
      fn: () => pool.run(task),
    },
  ],
  teardown: () => pool.destroy(),
};
