/**
 * A charge whose body arrives after its headers gives its admission slot back
 * while it uploads and takes it again when the body is complete. That second
 * take must not be a second roll of the shedder's dice (a body in a later
 * packet would be shed with probability 1 − (1 − p)² instead of p), but it
 * must still respect the hard concurrency limit. Plain numbers, a scripted
 * loop and a counted random source.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Admission, type AdmissionSettings } from '../../src/gateway/admission.js';
import { ManualClock } from '../../src/lib/clock.js';
import { seededRandom, type Random } from '../../src/lib/random.js';
import { DEFAULT_SHEDDER } from '../../src/resilience/shedder.js';

const settings: AdmissionSettings = {
  shedding: true,
  limit: 'static',
  staticLimit: 100_000,
  minLimit: 1,
  maxLimit: 100_000,
  loopDelayTargetMs: DEFAULT_SHEDDER.loopDelayTargetMs,
};

/** Loop delay 60 % of the span over target: pressure 0.6, so a charge is shed with p = 0.6 × 0.5 = 0.3. */
const PRESSED_LOOP = {
  delayMs: DEFAULT_SHEDDER.loopDelayTargetMs + 0.6 * DEFAULT_SHEDDER.loopDelaySpanMs,
  utilization: 0,
};
const P = 0.3;

function counted(random: Random): { random: Random; calls: () => number } {
  let calls = 0;
  return {
    random: () => {
      calls++;
      return random();
    },
    calls: () => calls,
  };
}

function admission(random: Random, s: AdmissionSettings = settings, loop = PRESSED_LOOP, floorMs = 0): Admission {
  return new Admission(
    s,
    loop,
    () => 0,
    random,
    new ManualClock(),
    undefined,
    () => floorMs,
  );
}

test('under loop pressure a charge whose body comes later is shed with p, not 1 − (1 − p)²: readmit never rolls the dice', (t) => {
  const N = 20_000;
  const dice = counted(seededRandom(13));
  const a = admission(dice.random);
  let shedAtHeaders = 0;
  let shedAtBody = 0;
  for (let i = 0; i < N; i++) {
    if (a.tryAdmit('charge', 1000) !== null) {
      shedAtHeaders++;
      continue;
    }
    a.cancel('charge'); // the body did not come with the headers: the slot goes back while it uploads
    const callsBefore = dice.calls();
    if (a.readmit('charge', 1000) !== null) shedAtBody++;
    assert.equal(dice.calls(), callsBefore, 'readmit draws no random number');
    a.cancel('charge'); // the charge ends
  }
  assert.equal(shedAtBody, 0, 'under the hard limit an admitted charge is never shed at its body');
  const rate = (shedAtHeaders + shedAtBody) / N;
  assert.ok(Math.abs(rate - P) < 0.02, `shed rate ${rate.toFixed(3)} is p = ${P}`);
  assert.equal(a.inFlight, 0);
  assert.equal(a.shed.event_loop, shedAtHeaders);

  // The same dice deciding twice (the old path) is what the test tells apart: 1 − 0.7² = 0.51.
  const twice = admission(seededRandom(13));
  let shedTwice = 0;
  for (let i = 0; i < N; i++) {
    if (twice.tryAdmit('charge', 1000) !== null) {
      shedTwice++;
      continue;
    }
    twice.cancel('charge');
    if (twice.tryAdmit('charge', 1000) !== null) shedTwice++;
    else twice.cancel('charge');
  }
  t.diagnostic(`shed once: ${rate.toFixed(3)}; two rolls: ${(shedTwice / N).toFixed(3)}`);
  assert.ok(Math.abs(shedTwice / N - (1 - (1 - P) ** 2)) < 0.02, `two rolls shed ${(shedTwice / N).toFixed(3)}`);
});

test('readmit with the loop at 100 % pressure and a random that would shed everything: admitted', () => {
  const a = admission(() => 0, settings, { delayMs: 10_000, utilization: 1 });
  // random() = 0 sheds every charge the shedder looks at (capped at 95 %).
  assert.equal(a.tryAdmit('charge', 1000), 'event_loop');
  assert.equal(a.readmit('charge', 1000), null);
  assert.equal(a.inFlight, 1);
  assert.equal(a.chargesInFlight, 1);
});

test('readmit respects the hard concurrency limit: a slot taken meanwhile by another request is not given twice', () => {
  const a = admission(() => 0.99, { ...settings, staticLimit: 3 }, { delayMs: 0, utilization: 0 });
  for (let i = 0; i < 3; i++) assert.equal(a.tryAdmit('charge', 1000), null);
  a.cancel('charge'); // one charge starts uploading: its slot goes back
  assert.equal(a.tryAdmit('charge', 1000), null, 'another request takes the freed slot');
  assert.equal(a.tryAdmit('charge', 1000), 'concurrency', 'the limit is full');
  assert.equal(a.readmit('charge', 1000), 'concurrency', 'the uploader finds the limit full');
  assert.equal(a.shed.concurrency, 2);
  assert.equal(a.inFlight, 3, 'no slot beyond the limit');
  a.done('charge', 0, false);
  assert.equal(a.readmit('charge', 1000), null, 'a slot came free: the uploader takes it');
  assert.equal(a.inFlight, 3);
  // Reads have 90 % of the limit: floor(3 × 0.9) = 2 slots, all taken.
  assert.equal(a.readmit('read', 1000), 'concurrency');
});

test('a deadline spent during the upload, or below the provider floor, is refused at readmit, deterministically', () => {
  const dice = counted(() => 0.99);
  const a = admission(dice.random, settings, { delayMs: 0, utilization: 0 }, 120);
  assert.equal(a.readmit('charge', 0), 'deadline', 'no time left');
  assert.equal(a.readmit('charge', -300), 'deadline');
  assert.equal(a.readmit('charge', 119), 'deadline', 'less than the fastest provider answer');
  assert.equal(a.readmit('read', 119), null, 'the floor is the provider: reads are not held to it');
  assert.equal(a.readmit('charge', 120), null);
  assert.equal(dice.calls(), 0, 'no chance involved');
  assert.equal(a.shed.deadline, 3);
  assert.equal(a.inFlight, 2);
});

test('with the limit off and shedding off readmit always admits (mechanisms off: nothing refused)', () => {
  const a = admission(() => 0, { ...settings, limit: 'off', shedding: false, staticLimit: 1 }, PRESSED_LOOP, 500);
  for (let i = 0; i < 50; i++) assert.equal(a.readmit('charge', i % 2 === 0 ? 1000 : -5), null);
  assert.equal(a.inFlight, 50);
});
