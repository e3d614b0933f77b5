import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  afterUnknown,
  DEFAULT_RECONCILE_POLICY,
  reconcileCeilingMs,
  reconcileDelayMs,
} from '../../src/charge/reconcile-policy.js';
import { seededRandom } from '../../src/lib/random.js';

const p = { baseMs: 1000, capMs: 300_000, maxAttempts: 20 };

test('the ceiling doubles from the base with every try, then stays at the cap', () => {
  const ceilings = Array.from({ length: 12 }, (_, i) => reconcileCeilingMs(i + 1, p));
  assert.deepEqual(
    ceilings,
    [1000, 2000, 4000, 8000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 300_000, 300_000],
  );
  // Far past the cap: no overflow to Infinity or NaN.
  assert.equal(reconcileCeilingMs(5000, p), 300_000);
  assert.equal(reconcileCeilingMs(0, p), 1000);
});

test('each wait lies in [ceiling/2, ceiling]: the extremes of the random source land on the bounds', () => {
  for (let n = 1; n <= 12; n++) {
    const c = reconcileCeilingMs(n, p);
    assert.equal(
      reconcileDelayMs(n, p, () => 0),
      c / 2,
    );
    assert.equal(
      reconcileDelayMs(n, p, () => 0.999999),
      c / 2 + 0.999999 * (c / 2),
    );
  }
});

test('gaps never shrink from one try to the next, whatever the jitter draws (10 000 seeded schedules)', () => {
  for (let seed = 0; seed < 10_000; seed++) {
    const random = seededRandom(seed);
    let previous = 0;
    for (let n = 1; n <= 14; n++) {
      const d = reconcileDelayMs(n, p, random);
      assert.ok(
        d >= previous || reconcileCeilingMs(n, p) === p.capMs,
        `seed ${seed}, try ${n}: ${d} after ${previous}`,
      );
      assert.ok(d <= p.capMs, `seed ${seed}, try ${n}: ${d} over the cap`);
      previous = d;
    }
  }
});

test('the jitter spreads rows that failed together: 1000 rows on the same try are not due in the same second', () => {
  const random = seededRandom(7);
  const due = Array.from({ length: 1000 }, () => Math.floor(reconcileDelayMs(10, p, random) / 1000));
  // At the cap (300 s) the waits spread over [150 s, 300 s]: about 150 distinct seconds.
  assert.ok(new Set(due).size > 120, `${new Set(due).size} distinct seconds`);
  assert.ok(Math.max(...due.map((s) => due.filter((x) => x === s).length)) < 30);
});

test('give up after exactly maxAttempts unknown tries, not one before', () => {
  for (let n = 1; n < p.maxAttempts; n++) assert.equal(afterUnknown(n, p), 'retry', `try ${n}`);
  assert.equal(afterUnknown(p.maxAttempts, p), 'give_up');
  assert.equal(
    afterUnknown(p.maxAttempts + 3, p),
    'give_up',
    'a row past the cap (the setting was lowered) gives up at once',
  );
  assert.equal(afterUnknown(1, { maxAttempts: 1 }), 'give_up');
});

test('the defaults hand a row to an operator between about 29 and 59 minutes after its first unknown try', () => {
  const d = DEFAULT_RECONCILE_POLICY;
  let min = 0;
  let max = 0;
  // The waits between the tries: after tries 1 .. maxAttempts-1.
  for (let n = 1; n < d.maxAttempts; n++) {
    min += reconcileDelayMs(n, d, () => 0);
    max += reconcileDelayMs(n, d, () => 1);
  }
  // 1+2+…+256 s, then ten waits at the 300 s cap: 3511 s at most, half of it at least.
  assert.ok(min / 60_000 > 29 && min / 60_000 < 30, `${min / 60_000} min`);
  assert.ok(max / 60_000 > 58 && max / 60_000 < 59, `${max / 60_000} min`);
});
