/**
 * Start-up waits for a worker to load before the gateway listens (a charge
 * taken earlier waits in the pool's queue and meets the provider slots in
 * one burst with the others), but never hangs on it: a worker that fails to
 * load or takes too long is logged and the listener opens anyway.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { workerLoaded } from '../../src/gateway/serve.js';
import type { Task } from '../../src/gateway/tasks.js';

function recorder() {
  const warnings: unknown[][] = [];
  return { warnings, log: { warn: (...args: unknown[]) => void warnings.push(args) } };
}

test('a worker that answers: loaded, the task it ran is the no-op, nothing logged', async () => {
  const tasks: Task[] = [];
  const { warnings, log } = recorder();
  const r = await workerLoaded(
    { run: (t) => (tasks.push(t), new Promise((res) => setTimeout(() => res(true), 20))) },
    log as never,
    1000,
  );
  assert.equal(r, 'loaded');
  assert.deepEqual(tasks, [{ op: 'loaded' }]);
  assert.deepEqual(warnings, []);
});

test('a worker that never answers: late after the timeout, with a warning; one that fails: failed, with a warning', async () => {
  const slow = recorder();
  const t0 = performance.now();
  assert.equal(await workerLoaded({ run: () => new Promise(() => {}) }, slow.log as never, 50), 'late');
  assert.ok(performance.now() - t0 >= 45);
  assert.equal(slow.warnings.length, 1);
  assert.match(String(slow.warnings[0]![1]), /no worker loaded in time/);

  const broken = recorder();
  assert.equal(
    await workerLoaded({ run: () => Promise.reject(new Error('boom')) }, broken.log as never, 1000),
    'failed',
  );
  assert.equal(broken.warnings.length, 1);
  assert.match(String(broken.warnings[0]![1]), /failed to load/);
});
