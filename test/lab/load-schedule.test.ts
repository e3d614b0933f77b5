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

/** Mean and coefficient of variation (stddev / mean) of the gaps between arrivals. */
function gapStats(t: readonly number[]): { mean: number; cv: number } {
  const gaps = t.slice(1).map((x, i) => x - t[i]!);
  const mean = gaps.reduce((a, g) => a + g, 0) / gaps.length;
  const sd = Math.sqrt(gaps.reduce((a, g) => a + (g - mean) ** 2, 0) / (gaps.length - 1));
  return { mean, cv: sd / mean };
}

test('poisson: the mean rate is the asked rate and gaps vary as an exponential (CV ~ 1); even spacing has CV 0', () => {
  for (const [rate, seed] of [
    [50, 1],
    [800, 2],
    [5000, 3],
  ] as const) {
    const durationMs = 20_000;
    const t = allArrivals(profile('poisson', rate, [], durationMs), true, seededRandom(seed));
    const n = (rate * durationMs) / 1000;
    // A Poisson count has standard deviation sqrt(n): a 5 sigma band.
    assert.ok(Math.abs(t.length - n) < 5 * Math.sqrt(n), `rate ${rate}: ${t.length} arrivals, expected ~${n}`);
    const { mean, cv } = gapStats(t);
    // The CV of n exponential gaps has a standard error of about 1/sqrt(n); 0.1 is > 6 of them at n = 1 000.
    assert.ok(Math.abs(cv - 1) < 0.1, `rate ${rate}: CV ${cv}`);
    assert.ok(Math.abs(mean - 1000 / rate) < (5 * 1000) / rate / Math.sqrt(n), `rate ${rate}: mean gap ${mean} ms`);
    const even = gapStats(allArrivals(profile('constant', rate, [], durationMs), false, seededRandom(seed)));
    assert.ok(even.cv < 1e-6 && Math.abs(even.mean - 1000 / rate) < 1e-9, `even spacing at ${rate}: CV ${even.cv}`);
  }
  // Per step too: each step's arrivals match its own rate with CV ~ 1, and the same seed replays them exactly.
  const steps = parseSteps('300x10s,3000x10s,300x10s');
  const a = allArrivals(profile('poisson', 0, steps, 30_000), true, seededRandom(11));
  assert.deepEqual(a, allArrivals(profile('poisson', 0, steps, 30_000), true, seededRandom(11)));
  for (const [from, to, rate] of [
    [0, 10_000, 300],
    [10_000, 20_000, 3000],
    [20_000, 30_000, 300],
  ] as const) {
    const inStep = a.filter((x) => x >= from && x < to);
    const n = (rate * (to - from)) / 1000;
    assert.ok(Math.abs(inStep.length - n) < 5 * Math.sqrt(n), `${from}-${to}: ${inStep.length}, expected ~${n}`);
    assert.ok(Math.abs(gapStats(inStep).cv - 1) < 0.15, `${from}-${to}: CV ${gapStats(inStep).cv}`);
  }
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

test('pace: poisson arrivals leave at their own intended times; a stall is charged to them, none dropped', async () => {
  const steps = [{ rate: 400, durationMs: 2000 }];
  const expected = allArrivals(steps, true, seededRandom(5));
  const clock = new ManualClock();
  let stalled = false;
  const sleep = async (ms: number) => {
    clock.advance(Math.max(ms, 0));
    if (!stalled && clock.now() >= 1000) {
      stalled = true;
      clock.advance(200);
    }
  };
  const got: [number, number][] = [];
  await pace(new Arrivals(steps, true, seededRandom(5)), 0, { clock, sleep }, (i, a) => {
    got.push([i, a]);
    return true;
  });
  assert.deepEqual(
    got.map(([i]) => i),
    expected,
    'the intended times are the schedule, whatever the pacer did',
  );
  assert.ok(got.every(([i, a]) => a >= i));
  const late = got.filter(([i, a]) => a > i);
  assert.ok(late.length > 0 && late.every(([i]) => i > 1000 && i <= 1200), 'only the stalled window is late');
  assert.ok(
    late.some(([i, a]) => a - i > 150),
    'latency measured from the intended time would include the stall',
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
