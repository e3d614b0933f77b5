import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BreakerHealthChecks } from '../../src/gateway/breaker-health.js';
import { ManualClock } from '../../src/lib/clock.js';

/** A breaker whose open period the test sets, and checks the test resolves by hand. */
function rig(maxInFlight = 3) {
  const clock = new ManualClock();
  let openedAt: number | null = null;
  const pending: (() => void)[] = [];
  const errors: unknown[] = [];
  let fail = false;
  const checks = new BreakerHealthChecks(
    { openForMs: (now) => (openedAt === null ? null : now - openedAt) },
    { intervalMs: 100, minOpenMs: 1000, openMs: 5000, maxInFlight },
    () =>
      new Promise<void>((resolve, reject) => {
        if (fail) reject(new Error('queue full'));
        else pending.push(resolve);
      }),
    clock,
    (e) => errors.push(e),
  );
  return {
    clock,
    checks,
    pending,
    errors,
    open: () => (openedAt = clock.epochMs()),
    close: () => (openedAt = null),
    failing: () => (fail = true),
  };
}

const settle = () => new Promise((r) => setImmediate(r));

test('no health check while the breaker is closed, nor in its first minOpenMs', async () => {
  const r = rig();
  r.clock.advance(5000);
  assert.equal(r.pending.length, 0, 'closed');
  r.open();
  r.clock.advance(900);
  assert.equal(r.pending.length, 0, 'open 0.9 s');
  r.clock.advance(100);
  assert.equal(r.pending.length, 1, 'open 1 s: the first check');
  const stopped = r.checks.stop();
  r.pending.shift()!();
  await stopped;
});

test('checks start every interval without waiting for the last, at most maxInFlight at once', async () => {
  const r = rig(3);
  r.open();
  r.clock.advance(1000);
  r.clock.advance(500);
  assert.equal(r.pending.length, 3, 'bounded by maxInFlight while they hang');
  assert.equal(r.checks.inFlight, 3);
  r.pending.shift()!();
  await settle();
  assert.equal(r.checks.inFlight, 2);
  r.clock.advance(100);
  assert.equal(r.pending.length, 3, 'one ended, one more started');
  r.close();
  r.pending.splice(0).forEach((f) => f());
  await settle();
  r.clock.advance(1000);
  assert.equal(r.pending.length, 0, 'closed again: no checks');
  await r.checks.stop();
});

test('a check that fails to run is reported, and stop() ends the timer and waits for running checks', async () => {
  const r = rig();
  r.open();
  r.failing();
  r.clock.advance(1000);
  await settle();
  assert.equal(r.errors.length, 1);
  assert.equal(r.checks.inFlight, 0);
  await r.checks.stop();
  r.clock.advance(10_000);
  assert.equal(r.errors.length, 1, 'no check after stop');
  assert.equal(r.clock.pendingTimers, 0);
});

test('no check once the open period is over: the next request half-opens the breaker, a check could change nothing', async () => {
  const r = rig(100);
  r.open();
  r.clock.advance(4900);
  const started = r.pending.length;
  assert.ok(started > 0);
  r.clock.advance(2000);
  assert.equal(r.pending.length, started, 'none past openMs, however long no request comes');
  const stopped = r.checks.stop();
  r.pending.splice(0).forEach((f) => f());
  await stopped;
});
