import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/lib/clock.js';
import { beforeDeadline, isDeadline } from '../../src/lib/deadline.js';

test('ManualClock fires due timers on advance, in time order, at their own time; cancelled ones never', () => {
  const clock = new ManualClock(100);
  const fired: string[] = [];
  clock.setTimeout(() => fired.push(`b@${clock.now()}`), 20);
  clock.setTimeout(() => {
    fired.push(`a@${clock.now()}`);
    // Armed while firing, due within the same step: fires in it too.
    clock.setTimeout(() => fired.push(`c@${clock.now()}`), 5);
  }, 10);
  const cancel = clock.setTimeout(() => fired.push('never'), 15);
  cancel();
  clock.advance(9);
  assert.deepEqual(fired, []);
  clock.advance(30);
  assert.deepEqual(fired, ['a@110', 'c@115', 'b@120']);
  assert.equal(clock.now(), 139);
  assert.equal(clock.pendingTimers, 0);
});

test('beforeDeadline rejects when the clock reaches the deadline, not before, and clears its timer on success', async () => {
  const clock = new ManualClock();
  const late = beforeDeadline(clock, clock.epochMs() + 500, new Promise(() => {}));
  let err: unknown;
  late.catch((e: unknown) => (err = e));
  clock.advance(499);
  await new Promise((r) => setImmediate(r));
  assert.equal(err, undefined);
  clock.advance(1);
  await new Promise((r) => setImmediate(r));
  assert.ok(isDeadline(err));
  assert.equal(await beforeDeadline(clock, clock.epochMs() + 500, Promise.resolve(7)), 7);
  assert.equal(clock.pendingTimers, 0);
});
