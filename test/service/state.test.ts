/**
 * The state both servers' probes and shutdown read: "idle" waits for the
 * requests and for the work they started, and /ready says no while
 * draining, before SIGTERM's drain (ready = false), with a worker missing or
 * with a database check that is failing or stale.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../src/lib/clock.js';
import { DB_CHECK_FRESH_MS } from '../../src/http/contract.js';
import { ServiceState } from '../../src/service/state.js';

const tick = () => new Promise((r) => setImmediate(r));

function watch(p: Promise<boolean>): () => boolean | undefined {
  let v: boolean | undefined;
  void p.then((x) => (v = x));
  return () => v;
}

test('idle means no request and no task: a task outliving its request (client gone) holds the drain', async () => {
  const clock = new ManualClock();
  const s = new ServiceState(clock);
  assert.equal(await s.whenIdle(0), true);
  const end = s.begin();
  let finish!: () => void;
  const task = s.task(new Promise<void>((r) => (finish = r)));
  const idle = watch(s.whenIdle(1000));
  end();
  end(); // a second end (answered, then the socket closed) must not count twice
  assert.equal(s.inFlight, 0);
  await tick();
  assert.equal(idle(), undefined, 'the task still runs');
  finish();
  await task;
  await tick();
  assert.equal(idle(), true);
  assert.equal(clock.pendingTimers, 0, 'the grace timer is cancelled');
});

test('whenIdle gives up after its timeout (a fake-clock timer) with work still in flight', async () => {
  const clock = new ManualClock();
  const s = new ServiceState(clock);
  s.begin();
  void s.task(new Promise(() => {}));
  const idle = watch(s.whenIdle(500));
  clock.advance(499);
  await tick();
  assert.equal(idle(), undefined);
  clock.advance(1);
  await tick();
  assert.equal(idle(), false);
});

test('a task that fails still leaves the count', async () => {
  const s = new ServiceState(new ManualClock());
  await assert.rejects(s.task(Promise.reject(new Error('worker lost'))));
  assert.equal(s.tasks, 0);
  assert.equal(await s.whenIdle(0), true);
});

test('/ready: db reachable and fresh, workers up, not draining and ready; each alone makes it 503', async () => {
  const clock = new ManualClock();
  let workersUp = true;
  const s = new ServiceState(clock, () => workersUp);
  const checks = () => (JSON.parse(s.readiness().body) as { checks: Record<string, unknown> }).checks;
  assert.equal(s.readiness().status, 503, 'no check yet');
  await s.refreshDbCheck(async () => true);
  assert.equal(s.readiness().status, 200);
  workersUp = false;
  assert.equal(s.readiness().status, 503);
  assert.equal(checks().workers_up, false);
  workersUp = true;
  s.ready = false;
  assert.equal(s.readiness().status, 503);
  s.ready = true;
  s.draining = true;
  assert.equal(s.readiness().status, 503);
  s.draining = false;
  await s.refreshDbCheck(() => Promise.reject(new Error('down')));
  assert.equal(s.readiness().status, 503);
  assert.equal(checks().db_reachable, false);
  await s.refreshDbCheck(async () => 'yes'); // only `true` counts
  assert.equal(s.readiness().status, 503);
  await s.refreshDbCheck(async () => true);
  clock.advance(DB_CHECK_FRESH_MS);
  assert.equal(s.readiness().status, 503, 'a check nobody refreshed no longer counts');
});
