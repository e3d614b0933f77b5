import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import {
  Breaker,
  breakerRegionSpec,
  initBreakerRegion,
  type BreakerConfig,
  type Permit,
  type Transition,
} from '../../src/resilience/breaker.js';
import { allocateShared, localRegion, openRegion } from '../../src/shm/regions.js';
import { TEST_BREAKER } from './fixtures/breaker-config.js';

const config: BreakerConfig = TEST_BREAKER;

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
  assert.equal(b.tryAdmit(1000 + 4999), false);
  assert.equal(b.acquire(1000 + 4999), null);
  assert.equal(b.stats(1000).rejections, 1);
  assert.equal(b.tryAdmit(1000 + 5000), true);
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
  assert.deepEqual(
    probes.map((p) => p !== null && p !== 'call'),
    [true, true, true, true],
  );
  assert.equal(b.state(), 'half_open');
  assert.equal(b.acquire(t), null, 'a fifth call is rejected while probing');
  b.record(probes[0]!, t, true, 10);
  b.record(probes[1]!, t, false, 10);
  b.record(probes[2]!, t, true, 10);
  assert.equal(b.state(), 'half_open');
  b.record(probes[3]!, t, true, 10); // 3 of 4 = 75 %
  assert.equal(b.state(), 'closed');
  assert.deepEqual(
    transitions.map((x) => x.to),
    ['open', 'half_open', 'closed'],
  );
  assert.equal(b.stats(t).calls, 0, 'the window starts empty after closing');
});

test('half-open reopens as soon as the success ratio is out of reach', () => {
  const { b } = make();
  calls(b, 0, 10, false);
  const probes = [0, 1, 2, 3].map(() => b.acquire(5000)!);
  b.record(probes[0]!, 5100, false, 10);
  assert.equal(b.state(), 'half_open');
  b.record(probes[1]!, 5200, false, 10); // at most 2 of 4 can succeed now
  assert.equal(b.state(), 'open');
  assert.equal(b.tryAdmit(5200 + 4999), false);
  assert.equal(b.tryAdmit(5200 + 5000), true);
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
  assert.equal(b.tryAdmit(1e12), false);
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

/** Open the breaker at t=0 with ten failures; half-open is due at openMs. */
function opened(c = config) {
  const m = make(c);
  calls(m.b, 0, 10, false);
  assert.equal(m.b.state(), 'open');
  return m;
}

const isProbe = (p: Permit | null): boolean => p !== null && p !== 'call';

test('half-open: the front thread lets through at most halfOpenProbes requests, not everyone', () => {
  const { b } = opened();
  const t = 5000;
  const admitted = Array.from({ length: 50 }, () => b.tryAdmit(t)).filter(Boolean).length;
  assert.equal(admitted, 4);
  assert.equal(b.state(), 'half_open');
  assert.equal(b.stats(t).probesInFlight, 4);
  assert.equal(b.stats(t).rejections, 46);
  // Each admitted request's call turns its permit into a probe; a fifth call finds none.
  const probes = [0, 1, 2, 3].map(() => b.acquire(t + 10));
  assert.ok(probes.every(isProbe));
  assert.equal(b.acquire(t + 10), null);
});

test('half-open: a permit let through but never called is released when it expires', () => {
  const { b } = opened();
  for (let i = 0; i < 4; i++) assert.equal(b.tryAdmit(5000), true);
  assert.equal(b.tryAdmit(5000 + 1999), false, 'still reserved');
  // The four were answered without calling (say, replays from the database): nothing was learnt about the downstream.
  assert.equal(b.tryAdmit(5000 + 2000), true, 'expired reservations free their permits');
  assert.equal(b.state(), 'half_open');
  assert.equal(b.stats(7000).probesExpired, 0, 'a reservation that expires is not a failed probe');
});

test('half-open: a probe that never reports (hung call, dead worker) counts as failed, so the breaker is never stuck', () => {
  const { b, transitions } = opened();
  const stuck = [0, 1, 2, 3].map(() => b.acquire(5000)!);
  assert.ok(stuck.every(isProbe));
  // Nobody reports. Before the probe timeout the breaker refuses everything...
  assert.equal(b.tryAdmit(6999), false);
  assert.equal(b.acquire(6999), null);
  // ...after it, two expired probes make 3 of 4 unreachable: open again, as of the expiry.
  assert.equal(b.tryAdmit(7000), false);
  assert.equal(b.state(), 'open');
  assert.equal(b.stats(7000).probesExpired, 2);
  assert.deepEqual(
    transitions.map((x) => x.to),
    ['open', 'half_open', 'open'],
  );
  // openMs after the expiry a new round starts with fresh permits.
  assert.equal(b.tryAdmit(7000 + 4999), false);
  assert.equal(b.tryAdmit(7000 + 5000), true);
  assert.equal(b.state(), 'half_open');
  // The old round's probes report late: ignored, they do not decide the new round.
  for (const p of stuck) b.record(p, 12_001, true, 7000);
  assert.equal(b.state(), 'half_open');
  const fresh = [0, 1, 2].map(() => b.acquire(12_002)!);
  for (const p of fresh) b.record(p, 12_010, true, 5);
  assert.equal(b.state(), 'closed');
});

test('half-open with no traffic for a long time: the first request after the expiry finds a new round', () => {
  const { b } = opened();
  [0, 1, 2, 3].forEach(() => b.acquire(5000));
  // An hour later (the worker that held the probes died long ago).
  assert.equal(b.tryAdmit(3_600_000), true);
  assert.equal(b.state(), 'half_open');
});

test('half-open: a neutral probe (cut short by its caller) gives its permit back and decides nothing', () => {
  const { b } = opened();
  const probes = [0, 1, 2, 3].map(() => b.acquire(5000)!);
  assert.equal(b.acquire(5000), null);
  b.release(probes[0]!, 5010);
  b.release(probes[1]!, 5010);
  assert.equal(b.state(), 'half_open');
  const again = [b.acquire(5020), b.acquire(5020)];
  assert.ok(again.every(isProbe), 'the two permits can be used again');
  assert.equal(b.acquire(5020), null);
  // A released permit cannot be reported afterwards (a double report would count twice).
  b.record(probes[0]!, 5030, false, 10);
  b.record(probes[0]!, 5030, false, 10);
  b.release(probes[1]!, 5030);
  assert.equal(b.state(), 'half_open');
  // The permits now in use are the new ones: they still decide the round.
  b.record(again[0]!, 5040, false, 10);
  b.record(again[1]!, 5040, false, 10);
  assert.equal(b.state(), 'open');
});

test('closed: released calls leave no trace in the window', () => {
  const { b } = make();
  for (let i = 0; i < 100; i++) b.release(b.acquire(1000)!, 1000);
  assert.equal(b.stats(1000).calls, 0);
  assert.equal(b.state(), 'closed');
});

test('shared across threads: four threads racing for half-open permits get exactly halfOpenProbes in all', async () => {
  const c = { ...config, halfOpenProbes: 7 };
  const layout = allocateShared({ b: breakerRegionSpec(c) });
  const r = openRegion(layout, 'b');
  initBreakerRegion(r, c);
  calls(new Breaker('p', r, c), 0, 10, false);
  const results = await Promise.all(
    [0, 1, 2, 3].map(
      () =>
        new Promise<{ admitted: number; probes: number }>((resolve, reject) => {
          const w = new Worker(new URL('./fixtures/breaker-worker.js', import.meta.url), {
            workerData: { layout, config: c, tries: 5000, nowMs: 5000 },
          });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    ),
  );
  const admitted = results.reduce((n, x) => n + x.admitted, 0);
  const probes = results.reduce((n, x) => n + x.probes, 0);
  assert.equal(admitted, 7, `front permits: ${JSON.stringify(results)}`);
  assert.equal(probes, 7, `probes: ${JSON.stringify(results)}`);
  assert.equal(new Breaker('p', r, c).stats(5000).rejections, 4 * 2 * 5000 - 14);
});

test('a passed health check ends the open period early, never before minOpenMs, and only while open', () => {
  const { b, transitions } = make();
  calls(b, 1000, 10, false);
  assert.equal(b.state(), 'open');
  assert.equal(b.openForMs(1000 + 300), 300);
  // Too soon: a downstream that answers lookups may still fail charges.
  assert.equal(b.healthCheckPassed(1000 + config.minOpenMs - 1, 1000), false);
  assert.equal(b.tryAdmit(1000 + config.minOpenMs - 1), false);
  assert.equal(b.healthCheckPassed(1000 + config.minOpenMs, 1000 + config.minOpenMs - 5), true);
  // Due for half-open at once: the next request is a probe, and only probes decide.
  assert.equal(b.state(), 'open');
  assert.equal(b.tryAdmit(1000 + config.minOpenMs), true);
  assert.equal(b.state(), 'half_open');
  assert.equal(b.openForMs(1000 + config.minOpenMs), null);
  assert.equal(b.healthCheckPassed(1000 + config.minOpenMs + 1, 1000 + config.minOpenMs), false, 'not while half-open');
  assert.deepEqual(
    transitions.map((t) => t.to),
    ['open', 'half_open'],
  );
});

test('a health check cannot close a breaker by itself, nor open a forced-open or closed one', () => {
  const { b } = make();
  assert.equal(b.healthCheckPassed(1000, 999), false, 'closed');
  assert.equal(b.openForMs(1000), null);
  b.forceOpen();
  assert.equal(b.healthCheckPassed(1_000_000, 999_999), false, 'forced open stays open');
  assert.equal(b.state(), 'forced_open');
  b.reset();
  calls(b, 2000, 10, false);
  assert.ok(b.healthCheckPassed(2000 + config.minOpenMs, 2000 + config.minOpenMs - 5));
  // The probes fail: open again, for a whole new open period (a check may end it early again).
  const t = 2000 + config.minOpenMs;
  for (let i = 0; i < config.halfOpenProbes; i++) {
    assert.equal(b.tryAdmit(t), true);
    const p = b.acquire(t);
    assert.ok(p && p !== 'call');
    b.record(p, t + 5, false, 5);
    if (b.state() === 'open') break;
  }
  assert.equal(b.state(), 'open');
  assert.equal(b.tryAdmit(t + 10), false);
  assert.equal(b.openForMs(t + 10), 5);
});

test('a health check started before the breaker last opened counts for nothing', () => {
  const { b } = make();
  calls(b, 1000, 10, false);
  // Began in an earlier period (say, before a failed half-open round reopened it): stale.
  assert.equal(b.healthCheckPassed(1000 + config.minOpenMs + 10, 999), false);
  assert.equal(b.tryAdmit(1000 + config.minOpenMs + 10), false, 'still open');
  // Past the open period a check changes nothing either: the next request half-opens it anyway.
  assert.equal(b.healthCheckPassed(1000 + config.openMs, 1000 + config.openMs - 5), false);
  assert.equal(b.tryAdmit(1000 + config.openMs), true);
});

test('a downstream that answers lookups but fails every charge: health checks passing at every chance half-open it at most once per minOpenMs, never closed', () => {
  for (const probeMs of [1, 50, 400]) {
    const { b, transitions } = make();
    calls(b, 0, 10, false);
    // 20 s of simulated time: a passing health check every 10 ms, a charge (which fails) every 10 ms.
    for (let t = 0; t <= 20_000; t += 10) {
      b.healthCheckPassed(t, t - 5);
      if (b.tryAdmit(t)) {
        const p = b.acquire(t);
        if (p && p !== 'call') b.record(p, t + probeMs, false, probeMs);
        else if (p === 'call') assert.fail(`closed at ${t} ms although every charge fails`);
      }
    }
    const halfOpens = transitions.filter((x) => x.to === 'half_open').length;
    assert.notEqual(b.state(), 'closed', `probe ${probeMs} ms`);
    assert.ok(halfOpens >= 2, `probe ${probeMs} ms: health checks did end open periods (${halfOpens})`);
    assert.ok(
      halfOpens <= Math.ceil(20_000 / config.minOpenMs) + 1,
      `probe ${probeMs} ms: ${halfOpens} half-open rounds in 20 s, more than one per ${config.minOpenMs} ms`,
    );
  }
});
