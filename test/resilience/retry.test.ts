import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/lib/clock.js';
import { seededRandom } from '../../src/lib/random.js';
import { fullJitterDelayMs } from '../../src/resilience/backoff.js';
import { withRetries, type RetryPolicy } from '../../src/resilience/retry.js';

const policy: RetryPolicy = { maxAttempts: 3, baseMs: 100, capMs: 300, attemptTimeoutMs: 200, minAttemptMs: 5 };

function env(clock: ManualClock) {
  const slept: number[] = [];
  return {
    slept,
    e: {
      clock,
      random: () => 0.5,
      sleep: async (ms: number) => {
        slept.push(ms);
        clock.advance(ms);
      },
    },
  };
}

test('full jitter stays within [0, min(cap, base*2^(n-1))]', () => {
  const r = seededRandom(1);
  for (let n = 1; n <= 8; n++) {
    for (let i = 0; i < 200; i++) {
      const d = fullJitterDelayMs(n, 100, 1000, r);
      assert.ok(d >= 0 && d <= Math.min(1000, 100 * 2 ** (n - 1)), `${n}: ${d}`);
    }
  }
  assert.equal(
    fullJitterDelayMs(3, 100, 1000, () => 0.5),
    200,
  );
  assert.equal(
    fullJitterDelayMs(10, 100, 1000, () => 0.999999),
    999.999,
  );
});

test('stops at the first non-retryable result', async () => {
  const clock = new ManualClock();
  const { e } = env(clock);
  let calls = 0;
  const r = await withRetries(
    e,
    policy,
    clock.epochMs() + 10_000,
    async () => ++calls,
    (n) => n < 2,
  );
  assert.deepEqual(r, { result: 2, attempts: 2 });
});

test('caps attempts, backing off with jitter between them', async () => {
  const clock = new ManualClock();
  const { e, slept } = env(clock);
  const timeouts: number[] = [];
  const r = await withRetries(
    e,
    policy,
    clock.epochMs() + 10_000,
    async (t) => {
      timeouts.push(t);
      return 'fail';
    },
    () => true,
  );
  assert.equal(r.attempts, 3);
  assert.equal(r.stopped, 'attempts');
  assert.deepEqual(slept, [50, 100]); // random 0.5 of 100 and 200
  assert.deepEqual(timeouts, [200, 200, 200]);
});

test('never starts an attempt or a sleep past the deadline, and shrinks the last timeout', async () => {
  const clock = new ManualClock();
  const { e, slept } = env(clock);
  const timeouts: number[] = [];
  const deadline = clock.epochMs() + 260;
  const r = await withRetries(
    e,
    policy,
    deadline,
    async (t) => {
      timeouts.push(t);
      clock.advance(t);
      return 'fail';
    },
    () => true,
  );
  // attempt 1 uses 200 ms, sleeps 50, then only 10 ms are left: one more short attempt.
  assert.deepEqual(timeouts, [200, 10]);
  assert.deepEqual(slept, [50]);
  assert.equal(r.stopped, 'deadline');
  assert.ok(clock.epochMs() <= deadline);
});
