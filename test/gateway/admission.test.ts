import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Admission, type AdmissionSettings } from '../../src/gateway/admission.js';
import { ManualClock } from '../../src/lib/clock.js';

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
