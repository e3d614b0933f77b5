import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Breaker, breakerRegionSpec, initBreakerRegion, type BreakerConfig, type Transition } from '../../src/resilience/breaker.js';
import { allocateShared, localRegion, openRegion } from '../../src/resilience/shared-memory.js';

const config: BreakerConfig = {
  windowMs: 10_000,
  buckets: 10,
  minCalls: 10,
  failureRateThreshold: 0.5,
  slowCallMs: 500,
  slowCallRateThreshold: 0.8,
  openMs: 5000,
  halfOpenProbes: 4,
  halfOpenSuccessRatio: 0.75,
};

function make(c = config) {
  const r = localRegion(breakerRegionSpec(c));
  initBreakerRegion(r, c);
  const transitions: Transition[] = [];
  return { b: new Breaker('provider', r, c, (t) => transitions.push(t)), transitions };
}

function calls(b: Breaker, t: number, n: number, ok: boolean, ms = 10): void {
  for (let i = 0; i < n; i++) {
    const p = b.acquire(t);
    assert.equal(p, 'call');
    b.record(p!, t, ok, ms);
  }
}

test('stays closed below the minimum volume, whatever the failure rate', () => {
  const { b } = make();
  calls(b, 1000, 9, false);
  assert.equal(b.state(), 'closed');
});

test('opens on failure rate over the window, and rejects until the open period ends', () => {
  const { b, transitions } = make();
  calls(b, 1000, 5, true);
  calls(b, 1000, 4, false);
  assert.equal(b.state(), 'closed');
  calls(b, 1000, 1, false); // 5 of 10 failed = 50 %
  assert.equal(b.state(), 'open');
  assert.deepEqual(transitions[0], { from: 'closed', to: 'open', failureRate: 0.5, slowCallRate: 0 });
  assert.equal(b.admits(1000 + 4999), false);
  assert.equal(b.acquire(1000 + 4999), null);
  assert.equal(b.stats(1000).rejections, 1);
  assert.equal(b.admits(1000 + 5000), true);
});

test('opens on slow-call rate even when every call succeeds', () => {
  const { b } = make();
  calls(b, 0, 2, true, 10);
  calls(b, 0, 8, true, 600); // 80 % slow
  assert.equal(b.state(), 'open');
});

test('old buckets slide out of the window', () => {
  const { b } = make();
  calls(b, 0, 9, false);
  // 10 s later the nine failures have left the window: one more failure is 1 of 1, below min volume.
  calls(b, 10_000, 1, false);
  assert.equal(b.state(), 'closed');
  assert.equal(b.stats(10_000).calls, 1);
});

test('half-open admits only the probes, closes on the success ratio', () => {
  const { b, transitions } = make();
  calls(b, 0, 10, false);
  const t = 5000;
  const probes = [b.acquire(t), b.acquire(t), b.acquire(t), b.acquire(t)];
  assert.deepEqual(probes, ['probe', 'probe', 'probe', 'probe']);
  assert.equal(b.state(), 'half_open');
  assert.equal(b.acquire(t), null, 'a fifth call is rejected while probing');
  b.record('probe', t, true, 10);
  b.record('probe', t, false, 10);
  b.record('probe', t, true, 10);
  assert.equal(b.state(), 'half_open');
  b.record('probe', t, true, 10); // 3 of 4 = 75 %
  assert.equal(b.state(), 'closed');
  assert.deepEqual(transitions.map((x) => x.to), ['open', 'half_open', 'closed']);
  assert.equal(b.stats(t).calls, 0, 'the window starts empty after closing');
});

test('half-open reopens as soon as the success ratio is out of reach', () => {
  const { b } = make();
  calls(b, 0, 10, false);
  for (let i = 0; i < 4; i++) b.acquire(5000);
  b.record('probe', 5100, false, 10);
  assert.equal(b.state(), 'half_open');
  b.record('probe', 5200, false, 10); // at most 2 of 4 can succeed now
  assert.equal(b.state(), 'open');
  assert.equal(b.admits(5200 + 4999), false);
  assert.equal(b.admits(5200 + 5000), true);
});

test('a call that began before the breaker opened does not count afterwards', () => {
  const { b } = make();
  const early = b.acquire(0)!;
  calls(b, 0, 10, false);
  assert.equal(b.state(), 'open');
  b.record(early, 10, true, 5);
  assert.equal(b.state(), 'open');
});

test('admin: force open holds until reset; reset clears the window', () => {
  const { b } = make();
  b.forceOpen();
  assert.equal(b.state(), 'forced_open');
  assert.equal(b.admits(1e12), false);
  assert.equal(b.acquire(1e12), null);
  b.reset();
  assert.equal(b.state(), 'closed');
  assert.equal(b.acquire(0), 'call');
});

test('shared across threads: the state one view changes is the state the other sees', () => {
  const layout = allocateShared({ b: breakerRegionSpec(config) });
  const r1 = openRegion(layout, 'b');
  initBreakerRegion(r1, config);
  const a = new Breaker('p', r1, config);
  const b = new Breaker('p', openRegion(structuredClone(layout), 'b'), config);
  calls(a, 0, 10, false);
  assert.equal(b.state(), 'open');
  assert.equal(b.acquire(100), null);
  assert.equal(a.stats(100).rejections, 1);
});
