/**
 * The schedule is the heart of an open-loop generator: arrivals are fixed by
 * the profile, not by answers. Pure tests: arrival counts and times, and the
 * pacer driven by a ManualClock (including a generator that falls behind).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/lib/clock.js';
import { seededRandom } from '../../src/lib/random.js';
import { allArrivals, Arrivals, isBehind, pace, parseSteps, profile } from '../../src/lab/load/schedule.js';

test('constant: rate x duration arrivals, evenly spaced from 0, none at or past the end', () => {
  const t = allArrivals(profile('constant', 100, [], 2000), false, seededRandom(1));
  assert.equal(t.length, 200);
  assert.equal(t[0], 0);
  assert.equal(t[1], 10);
  assert.ok(Math.abs(t[199]! - 1990) < 1e-9, 'no floating-point drift after 200 gaps');
  assert.ok(t.every((x) => x < 2000));
  // A rate that does not divide a second still gives ceil(rate x duration).
  assert.equal(allArrivals(profile('constant', 3, [], 1000), false, seededRandom(1)).length, 3);
  assert.equal(allArrivals(profile('constant', 0, [], 1000), false, seededRandom(1)).length, 0);
});

test('steps: each step gets rate x its duration, starting at its own boundary; a 0 step is a pause', () => {
  const steps = parseSteps('100x1s,500x500ms,0x1s,10x1s');
  assert.deepEqual(steps, [
    { rate: 100, durationMs: 1000 },
    { rate: 500, durationMs: 500 },
    { rate: 0, durationMs: 1000 },
    { rate: 10, durationMs: 1000 },
  ]);
  const t = allArrivals(profile('steps', 0, steps, 3500), false, seededRandom(1));
  const inRange = (a: number, b: number) => t.filter((x) => x >= a && x < b).length;
  assert.equal(inRange(0, 1000), 100);
  assert.equal(inRange(1000, 1500), 250);
  assert.equal(inRange(1500, 2500), 0);
  assert.equal(inRange(2500, 3500), 10);
  assert.equal(t.length, 360);
  assert.ok(t.includes(1000) && t.includes(2500), 'a step starts on its boundary');
  // --duration cuts the profile.
  assert.equal(allArrivals(profile('steps', 0, steps, 1250), false, seededRandom(1)).length, 225);
  assert.throws(() => parseSteps('100x'), /not RATExDURATION/);
  assert.throws(() => parseSteps('100x0s'), /duration > 0/);
});

test('poisson: seeded (same seed, same times), about rate x duration arrivals, exponential gaps', () => {
  const a = allArrivals(profile('poisson', 1000, [], 10_000), true, seededRandom(42));
  const b = allArrivals(profile('poisson', 1000, [], 10_000), true, seededRandom(42));
  const c = allArrivals(profile('poisson', 1000, [], 10_000), true, seededRandom(43));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  // 10 000 expected; the standard deviation of a Poisson count is 100: 5 sigma band.
  assert.ok(Math.abs(a.length - 10_000) < 500, `count ${a.length}`);
  const gaps = a.slice(1).map((x, i) => x - a[i]!);
  const mean = gaps.reduce((s, g) => s + g, 0) / gaps.length;
  assert.ok(Math.abs(mean - 1) < 0.05, `mean gap ${mean}`);
  // Exponential: about e^-1 of gaps exceed the mean, and some are several means long (bursts and lulls).
  const longer = gaps.filter((g) => g > 1).length / gaps.length;
  assert.ok(Math.abs(longer - Math.exp(-1)) < 0.03, `share of gaps > mean: ${longer}`);
  assert.ok(a.every((x, i) => i === 0 || x > a[i - 1]!));
  // Poisson over steps follows each step's rate.
  const s = allArrivals(profile('poisson', 0, parseSteps('100x5s,1000x5s'), 10_000), true, seededRandom(7));
  const first = s.filter((x) => x < 5000).length;
  assert.ok(
    Math.abs(first - 500) < 120 && Math.abs(s.length - first - 5000) < 400,
    `${first} then ${s.length - first}`,
  );
});

test('pace: each arrival is dispatched at its intended time on the injected clock', async () => {
  const clock = new ManualClock(5000);
  const sleep = async (ms: number) => clock.advance(Math.max(ms, 0));
  const got: [number, number][] = [];
  const r = await pace(
    new Arrivals([{ rate: 10, durationMs: 1000 }], false, seededRandom(1)),
    5000,
    { clock, sleep },
    (i, a) => {
      got.push([i, a]);
      return true;
    },
  );
  assert.equal(r, 'done');
  assert.deepEqual(
    got,
    Array.from({ length: 10 }, (_, k) => [k * 100, k * 100]),
  );
});

test('pace: a generator that falls behind sends every overdue arrival late (none dropped) and reports the lag', async () => {
  const clock = new ManualClock();
  let stalled = false;
  // One sleep oversleeps by 250 ms: a GC pause or a blocked event loop in the generator.
  const sleep = async (ms: number) => {
    clock.advance(Math.max(ms, 0));
    if (!stalled && clock.now() >= 300) {
      stalled = true;
      clock.advance(250);
    }
  };
  const got: [number, number][] = [];
  await pace(new Arrivals([{ rate: 100, durationMs: 1000 }], false, seededRandom(1)), 0, { clock, sleep }, (i, a) => {
    got.push([i, a]);
    return true;
  });
  assert.equal(got.length, 100, 'open loop: the schedule is kept, late');
  const lags = got.map(([i, a]) => a - i);
  assert.equal(Math.max(...lags), 250);
  // The arrivals meant for 310..550 all left at 550, in order: their latency will include that wait.
  assert.deepEqual(
    got.filter(([i]) => i > 300 && i <= 550).map(([, a]) => a),
    Array(25).fill(550),
  );
  assert.ok(
    got.filter(([i]) => i > 560).every(([i, a]) => a === i),
    'back on schedule after catching up',
  );
  assert.equal(isBehind(0, 250, 10, 100), true);
});

test('pace: dispatch returning false stops the schedule', async () => {
  const clock = new ManualClock();
  let n = 0;
  const r = await pace(
    new Arrivals([{ rate: 100, durationMs: 1000 }], false, seededRandom(1)),
    0,
    { clock, sleep: async (ms) => clock.advance(Math.max(ms, 0)) },
    () => ++n < 5,
  );
  assert.equal(r, 'stopped');
  assert.equal(n, 5);
});

test('behind-schedule rule: sustained lag (p99 > 10 ms) or one stall (any > 100 ms)', () => {
  assert.equal(isBehind(2, 8, 10, 100), false);
  assert.equal(isBehind(12, 20, 10, 100), true);
  assert.equal(isBehind(1, 101, 10, 100), true);
  assert.equal(isBehind(10, 100, 10, 100), false, 'thresholds are inclusive of "fine"');
});
