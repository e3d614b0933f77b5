import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Admission, type AdmissionSettings } from '../../src/gateway/admission.js';
import { ManualClock } from '../../src/lib/clock.js';
import { seededRandom } from '../../src/lib/random.js';

const settings: AdmissionSettings = {
  shedding: true,
  limit: 'static',
  staticLimit: 100,
  minLimit: 1,
  maxLimit: 100,
  loopDelayTargetMs: 50,
};
const calmLoop = { delayMs: 1, utilization: 0.1 };

function make(floorMs: number, s: AdmissionSettings = settings) {
  let floor = floorMs;
  // random() = 0 would admit every queue-wait deadline probe: the floor must not depend on chance.
  const a = new Admission(
    s,
    calmLoop,
    () => 0,
    () => 0,
    new ManualClock(),
    undefined,
    () => floor,
  );
  return { a, setFloor: (ms: number) => (floor = ms) };
}

test("a charge with less time left than the provider's fastest recent answer is shed as deadline, and counted", () => {
  const { a } = make(300);
  for (let i = 0; i < 50; i++) assert.equal(a.tryAdmit('charge', 160), 'deadline');
  assert.equal(a.shed.deadline, 50);
  assert.equal(a.inFlight, 0, 'nothing was admitted, nothing to give back');
  assert.equal(a.tryAdmit('charge', 1000), null, 'the default deadline is admitted');
  assert.equal(a.tryAdmit('read', 160), null, 'reads do not call the provider');
  assert.equal(a.inFlight, 2);
});

test('the floor follows the measurement: no answer measured, nothing refused', () => {
  const { a, setFloor } = make(0);
  assert.equal(a.tryAdmit('charge', 5), null);
  setFloor(50);
  assert.equal(a.tryAdmit('charge', 49), 'deadline');
  assert.equal(a.tryAdmit('charge', 50), null);
});

test('with shedding off the floor is not applied (the breaker abuse test relies on this)', () => {
  const { a } = make(300, { ...settings, shedding: false });
  assert.equal(a.tryAdmit('charge', 20), null);
});

// Slow start: a fresh process under the harshest loop and queue signals at
// once (loop delay and utilization pegged, a queue wait past every deadline)
// sheds on none of them at first, a share in proportion to the window
// passed, and all of them after.
describe('slow start', () => {
  const hot = { delayMs: 10_000, utilization: 1 };
  const window = 10_000;

  function fresh(slowStartMs: number | undefined, startAt = 0, bulkheadWaitMs = 0) {
    const clock = new ManualClock(startAt);
    const a = new Admission(
      { ...settings, slowStartMs },
      hot,
      () => 5_000,
      seededRandom(11),
      clock,
      { waitMs: () => bulkheadWaitMs, budgetMs: 100 },
      () => 0,
    );
    return { a, clock };
  }

  /** Share of `n` requests of a class shed at the clock's present time (each admitted one is given back). */
  function shedShare(a: Admission, cls: 'charge' | 'quote', n = 4000): number {
    let shed = 0;
    for (let i = 0; i < n; i++) {
      if (a.tryAdmit(cls, 1000) === null) a.cancel(cls);
      else shed++;
    }
    return shed / n;
  }

  test('ramps in linearly from nothing over the window, measured from start-up, not from clock zero', () => {
    const { a, clock } = fresh(window, 1_000_000);
    assert.equal(shedShare(a, 'quote'), 0, 'nothing shed at start-up');
    assert.equal(shedShare(a, 'charge'), 0);
    assert.deepEqual(a.shed, { concurrency: 0, event_loop: 0, deadline: 0, downstream: 0 });
    clock.advance(window / 2);
    // Quotes: the loop sheds 95 % at full weight, half of it now; the
    // queue-wait check then takes half (of 95 %) of the rest.
    const half = shedShare(a, 'quote');
    const expected = 0.475 + (1 - 0.475) * 0.475;
    assert.ok(Math.abs(half - expected) < 0.03, `half-way: shed ${half.toFixed(3)}, expected ~${expected.toFixed(3)}`);
    clock.advance(window / 2);
    const full = shedShare(a, 'quote');
    assert.ok(full > 0.99, `after the window every signal is in force: shed ${full}`);
    // Charges: half the loop share (47.5 %), then the queue wait keeps only its 5 % probes.
    const charges = shedShare(a, 'charge');
    assert.ok(Math.abs(charges - (1 - 0.525 * 0.05)) < 0.01, `charges shed ${charges}`);
    assert.ok(a.shed.deadline > 0 && a.shed.event_loop > 0, JSON.stringify(a.shed));
  });

  test('the concurrency limit, the bulkhead estimate and the deadline floor are in force from the first request', () => {
    const full = fresh(window, 0, Infinity).a;
    assert.equal(full.tryAdmit('charge', 1000), 'downstream', 'a provider bulkhead that cannot seat it');
    const { a } = fresh(window);
    for (let i = 0; i < settings.staticLimit; i++) assert.equal(a.tryAdmit('charge', 1000), null);
    assert.equal(a.tryAdmit('charge', 1000), 'concurrency');
    const floored = new Admission(
      { ...settings, slowStartMs: window },
      hot,
      () => 0,
      () => 0,
      new ManualClock(),
      undefined,
      () => 300,
    );
    assert.equal(floored.tryAdmit('charge', 200), 'deadline', 'less time left than the fastest provider answer');
  });

  test('0 or no window: every signal in force at once (the setting switches it off)', () => {
    for (const slowStartMs of [0, undefined]) {
      const { a } = fresh(slowStartMs);
      assert.ok(shedShare(a, 'quote') > 0.99, `slowStartMs ${slowStartMs}`);
    }
  });
});

// The adaptive limit compares answer times with their own baseline, so it
// must learn from one kind of work. A read answers from Postgres in ~2 ms, a
// charge waits 100-300 ms for the provider: fed both, every run of charges
// among the reads looked like queueing. Before only charges taught it, the
// 900 reads/s case shed 2 800 charges (the 0 reads/s case is the control).
describe('adaptive limit under a mix of reads and charges', () => {
  /** `readsPerMs` reads and 0.3 charges per ms, for `seconds`; the limit starts at 100, where 60 charges in flight move it. */
  function simulate(seconds: number, readsPerMs: number): Admission {
    const clock = new ManualClock();
    const random = seededRandom(3);
    const a = new Admission(
      { ...settings, limit: 'adaptive', staticLimit: 100, minLimit: 16, maxLimit: 2048 },
      calmLoop,
      () => 0,
      random,
      clock,
    );
    const ends: { at: number; cls: 'charge' | 'read'; start: number }[] = [];
    for (let ms = 0; ms < seconds * 1000; ms++) {
      // Per millisecond: 0.3 charges and 0.9 reads on average.
      const arrivals: ('charge' | 'read')[] = [];
      if (random() < 0.3) arrivals.push('charge');
      if (random() < readsPerMs) arrivals.push('read');
      for (const cls of arrivals) {
        if (a.tryAdmit(cls, 1000) !== null) continue;
        const took = cls === 'charge' ? 100 + 200 * random() : 1 + 2 * random();
        ends.push({ at: ms + took, cls, start: ms });
      }
      clock.advance(1);
      for (let i = ends.length - 1; i >= 0; i--) {
        const e = ends[i]!;
        if (e.at > ms + 1) continue;
        a.done(e.cls, e.start, false);
        ends.splice(i, 1);
      }
    }
    return a;
  }

  for (const readsPerMs of [0, 0.9]) {
    test(`${readsPerMs * 1000} reads/s beside 300 charges/s: nothing shed, the limit above what the charges need`, () => {
      const a = simulate(20, readsPerMs);
      assert.equal(a.shed.concurrency, 0, `shed on the limit: ${a.shed.concurrency}`);
      // 300 charges/s × 0.2 s = 60 in flight on average, ~90 at a peak.
      assert.ok(a.limit.current >= 128, `limit ${a.limit.current}`);
    });
  }
});
