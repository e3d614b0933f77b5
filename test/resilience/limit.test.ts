import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FixedLimit, GradientLimit, type GradientConfig } from '../../src/resilience/limit.js';
import { seededRandom } from '../../src/lib/random.js';

const c: GradientConfig = { initial: 50, min: 10, max: 500, smoothing: 0.2, tolerance: 1.5, longWindow: 100, shortWindow: 5 };

test('grows while latency holds steady and the limit is in use', () => {
  const l = new GradientLimit(c);
  for (let i = 0; i < 200; i++) l.onSample(10, l.current, false);
  assert.ok(l.current > 100, `limit ${l.current}`);
  assert.ok(l.current <= 500);
});

test('does not grow when app-limited (little in flight)', () => {
  const l = new GradientLimit(c);
  for (let i = 0; i < 200; i++) l.onSample(10, 5, false);
  assert.equal(l.current, 50);
});

test('shrinks when latency rises, in steps, down to the minimum, never to zero', () => {
  const l = new GradientLimit(c);
  for (let i = 0; i < 100; i++) l.onSample(10, l.current, false);
  const before = l.current;
  const seen: number[] = [];
  for (let i = 0; i < 20; i++) {
    l.onSample(100, l.current, false);
    seen.push(l.current);
  }
  assert.ok(l.current < before / 2, `${before} → ${l.current}`);
  assert.ok(l.current >= 10);
  // A latency that stays high becomes the new baseline (Gradient2 reacts to
  // change, not to a level); a latency that keeps climbing keeps shrinking it.
  for (let rtt = 100; rtt < 10_000; rtt *= 1.2) l.onSample(rtt, l.current, false);
  assert.ok(l.current <= 15, `limit ${l.current}`);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! >= seen[i - 1]! * 0.85, 'no cliff: each step keeps at least 85 %');
});

test('drops count as overload; recovery brings the limit back up', () => {
  const l = new GradientLimit(c);
  for (let i = 0; i < 100; i++) l.onSample(10, l.current, false);
  for (let i = 0; i < 50; i++) l.onSample(10, l.current, true);
  const low = l.current;
  assert.ok(low < 100);
  for (let i = 0; i < 300; i++) l.onSample(10, l.current, false);
  assert.ok(l.current > low, `${low} → ${l.current}`);
});

test('fixed limit never moves', () => {
  const l = new FixedLimit(7);
  l.onSample(1000, 7, true);
  assert.equal(l.current, 7);
});

// The surge tests drive the limit with a closed-loop model, in plain numbers:
// a service with `capacity` requests' worth of parallelism answers in `base`
// ms; beyond that, requests queue (Little's law), so the RTT grows with what
// the limit lets in, and the callers always have more to send. An answer
// slower than `timeout` is a drop, and so is every `refuseEvery`-th (a fast
// downstream refusal). The settings are admission's own (src/gateway/admission.ts).
const real: GradientConfig = { initial: 256, min: 16, max: 2048, smoothing: 0.2, tolerance: 1.5, longWindow: 600, shortWindow: 10 };

interface Load {
  capacity: number;
  base: number;
  /** Factor on the service time (CPU contention). */
  inflate?: number;
  /** Delay added to every answer whatever the concurrency (a busy event loop). */
  add?: number;
  timeout?: number;
  refuseEvery?: number;
  /** Requests the callers keep in flight; the limit caps them. */
  offered?: number;
}

function drive(l: GradientLimit, random: () => number, load: Load, samples: number): number[] {
  const seen: number[] = [];
  for (let i = 1; i <= samples; i++) {
    const inflight = Math.min(l.current, load.offered ?? Infinity);
    const rtt = (load.base * Math.max(1, inflight / load.capacity) * (load.inflate ?? 1) + (load.add ?? 0)) * (0.8 + 0.4 * random());
    const refused = load.refuseEvery !== undefined && i % load.refuseEvery === 0;
    const timedOut = load.timeout !== undefined && rtt > load.timeout;
    l.onSample(refused ? 0.5 : timedOut ? load.timeout! : rtt, inflight, refused || timedOut);
    seen.push(l.current);
  }
  return seen;
}

/** A service starting up: its callers come one by one, so the baseline learns the RTT without a queue. */
function warmUp(l: GradientLimit, random: () => number, load: Load): void {
  for (let offered = 1; offered <= (load.offered ?? 2 * load.capacity); offered++) drive(l, random, { ...load, offered }, 15);
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

// Healthy: callers want twice what the service can run at once.
const healthy: Load = { capacity: 100, base: 10, offered: 200, timeout: 100 };
// The surge: service time doubled and 10 ms more on every answer (CPU
// contention), callers without end, answers over 200 ms dropped, and a fifth
// refused at once. 30 000 samples are 50 long windows: many seconds at any
// rate this gateway runs at.
const surge: Load = { capacity: 100, base: 10, inflate: 2, add: 10, timeout: 200, refuseEvery: 5 };

test('a sustained surge of drops and inflated RTTs leaves the baseline where it was and the limit no higher', () => {
  for (const seed of [17, 18, 19]) {
    const random = seededRandom(seed);
    const l = new GradientLimit(real);
    warmUp(l, random, healthy);
    drive(l, random, healthy, 6000);
    const baseline = l.longRttMs;
    const before = l.current;
    const during = drive(l, random, surge, 30_000);
    assert.ok(Math.abs(l.longRttMs - baseline) / baseline < 0.03, `seed ${seed}: baseline ${baseline.toFixed(2)} → ${l.longRttMs.toFixed(2)} ms`);
    assert.ok(Math.max(...during) <= before, `seed ${seed}: limit ${before} before, up to ${Math.max(...during)} during`);
  }
});

test('after the surge the limit is back near its healthy value within 2 000 samples', () => {
  for (const seed of [17, 18, 19]) {
    const random = seededRandom(seed);
    const l = new GradientLimit(real);
    warmUp(l, random, healthy);
    const healthyMean = mean(drive(l, random, healthy, 6000).slice(-1000));
    drive(l, random, surge, 30_000);
    const low = l.current;
    const after = mean(drive(l, random, healthy, 2000).slice(-200));
    assert.ok(low < healthyMean * 0.75, `seed ${seed}: the surge pushed it down: ${low} vs ${healthyMean.toFixed(0)}`);
    assert.ok(Math.abs(after - healthyMean) <= 0.1 * healthyMean, `seed ${seed}: healthy ${healthyMean.toFixed(0)}, after ${after.toFixed(0)}`);
  }
});

test('no swinging: under a steady overload the limit stays within ±25 % of its mean', () => {
  const overloads: Load[] = [
    surge,
    { ...surge, timeout: 60 },
    { capacity: 100, base: 10, add: 20, timeout: 60, refuseEvery: 20 },
    { capacity: 100, base: 10, add: 50, timeout: 100, refuseEvery: 20 },
    { capacity: 20, base: 2, add: 20, timeout: 60 },
  ];
  for (const [k, load] of overloads.entries()) {
    for (const seed of [20, 21, 22]) {
      const l = new GradientLimit(real);
      const random = seededRandom(seed);
      warmUp(l, random, load);
      // Everything after the first 2 000 samples: a limit that creeps is swinging slowly.
      const seen = drive(l, random, load, 20_000).slice(2000);
      const m = mean(seen);
      const [lo, hi] = [Math.min(...seen), Math.max(...seen)];
      assert.ok(lo >= 0.75 * m && hi <= 1.25 * m, `overload ${k}, seed ${seed}: ${lo}..${hi} around ${m.toFixed(0)}`);
    }
  }
});

test('drops never move the baseline, however long or short they took, and push the limit down', () => {
  const l = new GradientLimit(real);
  for (let i = 0; i < 1000; i++) l.onSample(10, l.current, false);
  const baseline = l.longRttMs;
  const before = l.current;
  for (let i = 0; i < 5000; i++) l.onSample(i % 2 ? 0 : 10_000, l.current, true);
  assert.equal(l.longRttMs, baseline);
  assert.ok(l.current < before / 2, `${before} → ${l.current}`);
});

test('drops before any answer (everything times out from the start) still push the limit down', () => {
  const l = new GradientLimit(real);
  for (let i = 0; i < 200; i++) l.onSample(1000, l.current, true);
  assert.equal(l.current, real.min);
  assert.equal(l.longRttMs, 0, 'and no baseline is made up from them');
});
