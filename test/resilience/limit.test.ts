import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FixedLimit, GradientLimit, type GradientConfig } from '../../src/resilience/limit.js';
import { GRADIENT_SHAPE } from '../../src/gateway/admission.js';

const c: GradientConfig = {
  initial: 50,
  min: 10,
  max: 500,
  smoothing: 0.2,
  tolerance: 1.5,
  longWindow: 100,
  shortWindow: 5,
};

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
  for (let i = 1; i < seen.length; i++)
    assert.ok(seen[i]! >= seen[i - 1]! * 0.85, 'no cliff: each step keeps at least 85 %');
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

test('drops with little of the limit in use leave it alone; with a quarter or more in use they shrink it', () => {
  const grown = () => {
    const l = new GradientLimit(c);
    for (let i = 0; i < 100; i++) l.onSample(10, l.current, false);
    return l;
  };
  // A CPU-saturated front thread: timeouts while most slots are empty (in-flight 105 under 577, measured).
  const idle = grown();
  const before = idle.current;
  for (let i = 0; i < 200; i++) idle.onSample(1000, Math.floor(before * 0.2), true);
  assert.equal(idle.current, before, 'the limit is not what let too much in');
  // Nor do they cut it later: healthy answers with the limit in use afterwards find it where it was.
  idle.onSample(10, idle.current, false);
  assert.ok(idle.current >= before, `${before} → ${idle.current}`);
  const busy = grown();
  for (let i = 0; i < 50; i++) busy.onSample(1000, Math.ceil(busy.current * 0.3), true);
  assert.ok(busy.current < before / 2, `${before} → ${busy.current}`);
});

test('fixed limit never moves', () => {
  const l = new FixedLimit(7);
  l.onSample(1000, 7, true);
  assert.equal(l.current, 7);
});

test("the gateway's shape does not read a healthy tail as queueing: clusters of slow answers leave the limit where it was", () => {
  // 25 ms answers, and every 30th answer starts a run of 6 at 200 ms (a
  // group-commit batch, a GC pause, a Poisson burst): healthy, nothing queued.
  const run = (shortWindow: number, allowanceMs: number) => {
    const l = new GradientLimit({ ...GRADIENT_SHAPE, shortWindow, allowanceMs, initial: 256, min: 8, max: 2048 });
    let lowest = l.current;
    for (let i = 0; i < 20_000; i++) {
      l.onSample(i % 30 < 6 ? 200 : 25, Math.ceil(l.current * 0.6), false);
      if (i > 600) lowest = Math.min(lowest, l.current);
    }
    return lowest;
  };
  const shape = run(GRADIENT_SHAPE.shortWindow, GRADIENT_SHAPE.allowanceMs);
  assert.ok(shape >= 256, `lowest limit ${shape}`);
  // The short RTT of 10 the gateway had, with the ratio alone, shrank it on the same answers.
  const before = run(10, 0);
  assert.ok(before < 256, `with a short RTT of 10 and no allowance the limit fell to ${before}`);
});

test("the gateway's shape still shrinks the limit when answers stay slow (queueing)", () => {
  for (const [base, slow] of [
    [25, 200],
    [5, 120],
  ] as const) {
    const l = new GradientLimit({ ...GRADIENT_SHAPE, initial: 256, min: 8, max: 2048 });
    for (let i = 0; i < 2_000; i++) l.onSample(base, Math.ceil(l.current * 0.6), false);
    const healthy = l.current;
    for (let i = 0; i < 200; i++) l.onSample(slow, l.current, false);
    assert.ok(
      l.current < healthy * 0.6,
      `limit ${healthy} -> ${l.current} after 200 answers at ${slow} ms (baseline ${base} ms)`,
    );
  }
});

test("the gateway's shape does not take a fast service's busy seconds for a queue: answers a few ms over a few-ms baseline leave the limit", () => {
  // The committed bench at b2c4ab4 (capacity, 4 050/s, two thirds of the
  // ceiling): answers of ~5 ms became 20-45 ms while the second core was
  // busy; 1.5× the baseline read that as queueing and cut the limit to
  // 87-178, under the bursts of a Poisson arrival. Modelled: 5 ms answers,
  // then runs of 40 ms (8×, 35 ms over) with the limit well used.
  const run = (allowanceMs: number) => {
    const l = new GradientLimit({ ...GRADIENT_SHAPE, allowanceMs, initial: 256, min: 8, max: 2048 });
    for (let i = 0; i < 2_000; i++) l.onSample(5, Math.ceil(l.current * 0.6), false);
    let lowest = l.current;
    for (let i = 0; i < 20_000; i++) {
      l.onSample(i % 100 < 40 ? 40 : 5, Math.ceil(l.current * 0.6), false);
      lowest = Math.min(lowest, l.current);
    }
    return lowest;
  };
  const shape = run(GRADIENT_SHAPE.allowanceMs);
  assert.ok(shape >= 256, `lowest limit ${shape}`);
  const ratioOnly = run(0);
  assert.ok(ratioOnly < 256 / 2, `with the ratio alone the limit fell to ${ratioOnly}`);
});
