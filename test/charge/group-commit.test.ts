/**
 * The group-commit flush policy, without a database: a scripted `run` and a
 * manual clock, whose timers (deadlines, early leave) fire as it is advanced.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Batcher } from '../../src/charge/group-commit.js';
import { isDeadline } from '../../src/charge/lifecycle.js';
import { ManualClock } from '../../src/lib/clock.js';

interface Call {
  reqs: string[];
  boundEpochMs: number;
  done: (results: (string | Error)[]) => void;
  fail: (e: Error) => void;
}

/** A batcher whose batches stay in flight until the test settles them. */
function harness(maxBatch = 64) {
  const clock = new ManualClock();
  const calls: Call[] = [];
  const b = new Batcher<string, string>({
    clock,
    maxBatch,
    maxInFlight: 1,
    maxWaitMs: 10,
    keyOf: (r) => r.split('#')[0]!,
    run: (reqs, boundEpochMs) =>
      new Promise((resolve, reject) => {
        calls.push({ reqs, boundEpochMs, done: resolve, fail: reject });
      }),
  });
  const echo = (c: Call) => c.done(c.reqs.map((r) => `ok:${r}`));
  return { clock, calls, b, echo };
}

const tick = () => new Promise((r) => setImmediate(r));

test('idle: a request leaves at once, alone, without a timer', async () => {
  const { calls, b, clock, echo } = harness();
  const p = b.submit('a');
  assert.equal(calls.length, 1);
  assert.deepEqual(calls[0]!.reqs, ['a']);
  assert.equal(clock.pendingTimers, 0);
  echo(calls[0]!);
  assert.equal(await p, 'ok:a');
});

test('while a batch is in flight, requests accumulate and leave together when it returns', async () => {
  const { calls, b, echo } = harness();
  const first = b.submit('a');
  const rest = ['b', 'c', 'd', 'e'].map((k) => b.submit(k));
  assert.equal(calls.length, 1, 'nothing else leaves while the first is in flight');
  echo(calls[0]!);
  await first;
  assert.equal(calls.length, 2);
  assert.deepEqual(calls[1]!.reqs, ['b', 'c', 'd', 'e']);
  echo(calls[1]!);
  assert.deepEqual(await Promise.all(rest), ['ok:b', 'ok:c', 'ok:d', 'ok:e']);
  assert.deepEqual(b.stats(), { inFlight: 0, queued: 0 });
});

test('a full batch leaves beside the one in flight', () => {
  const { calls, b } = harness(3);
  void b.submit('a');
  for (const k of ['b', 'c', 'd', 'e']) void b.submit(k);
  assert.equal(calls.length, 2);
  assert.deepEqual(calls[1]!.reqs, ['b', 'c', 'd']);
  assert.deepEqual(b.stats(), { inFlight: 2, queued: 1 });
});

test('requests waiting maxWaitMs behind a slow batch leave beside it', async () => {
  const { calls, b, clock, echo } = harness();
  const first = b.submit('a');
  const second = b.submit('b');
  assert.equal(clock.pendingTimers, 1, 'a timer only while requests wait behind a batch');
  clock.advance(9);
  assert.equal(calls.length, 1);
  clock.advance(1);
  assert.equal(calls.length, 2);
  assert.deepEqual(calls[1]!.reqs, ['b']);
  echo(calls[1]!);
  assert.equal(await second, 'ok:b');
  echo(calls[0]!);
  assert.equal(await first, 'ok:a');
  assert.equal(clock.pendingTimers, 0);
});

test('a key already in the forming batch waits for the next one', async () => {
  const { calls, b, echo } = harness();
  const a0 = b.submit('x#0');
  const a1 = b.submit('x#1');
  const y = b.submit('y');
  const a2 = b.submit('x#2');
  echo(calls[0]!);
  await a0;
  assert.deepEqual(calls[1]!.reqs, ['x#1', 'y']);
  echo(calls[1]!);
  await Promise.all([a1, y]);
  assert.deepEqual(calls[2]!.reqs, ['x#2']);
  echo(calls[2]!);
  assert.equal(await a2, 'ok:x#2');
});

test('a request whose deadline passes while queued is rejected then and never sent; the others are', async () => {
  const { calls, b, clock, echo } = harness();
  const first = b.submit('a', { deadlineEpochMs: clock.epochMs() + 1000 });
  // Its deadline comes before the early-leave timer (maxWaitMs 10): it is still queued then.
  const late = b.submit('b', { deadlineEpochMs: clock.epochMs() + 5 });
  const onTime = b.submit('c', { deadlineEpochMs: clock.epochMs() + 1000 });
  let lateErr: unknown;
  late.catch((e: unknown) => (lateErr = e));
  clock.advance(4);
  await tick();
  assert.equal(lateErr, undefined, 'not before its deadline');
  clock.advance(1);
  await tick();
  assert.ok(isDeadline(lateErr), 'rejected at its deadline, while the first batch is still out');
  clock.advance(5);
  assert.equal(calls.length, 2, 'the early-leave timer sent the rest beside the first batch');
  assert.deepEqual(calls[1]!.reqs, ['c']);
  // The batch's statement is bounded by its most patient request's deadline.
  assert.equal(calls[1]!.boundEpochMs, clock.epochMs() + 990);
  echo(calls[0]!);
  await first;
  echo(calls[1]!);
  assert.equal(await onTime, 'ok:c');
  assert.equal(calls.length, 2, 'the late request was never sent');
  assert.equal(clock.pendingTimers, 0, 'every deadline timer cancelled once its request settled');
});

test('a request whose deadline passes in flight is rejected then; its statement carries on', async () => {
  const { calls, b, clock, echo } = harness();
  const p = b.submit('a', { deadlineEpochMs: clock.epochMs() + 50 });
  clock.advance(50);
  await assert.rejects(p, (e) => isDeadline(e));
  assert.equal(calls.length, 1);
  echo(calls[0]!);
  await assert.rejects(
    b.submit('b', { deadlineEpochMs: clock.epochMs() }),
    (e) => isDeadline(e),
    'no time left: not queued at all',
  );
  assert.equal(calls.length, 1);
});

test('a failed batch rejects all its requests; the next batch works', async () => {
  const { calls, b, echo } = harness();
  const first = b.submit('a');
  const failing = [b.submit('b'), b.submit('c')];
  echo(calls[0]!);
  await first;
  calls[1]!.fail(new Error('boom'));
  for (const p of failing) await assert.rejects(p, /boom/);
  const next = b.submit('d');
  assert.equal(calls.length, 3);
  echo(calls[2]!);
  assert.equal(await next, 'ok:d');
});

test('an Error result rejects its own request only', async () => {
  const { calls, b } = harness();
  const p = b.submit('a');
  await tick();
  const q = b.submit('b');
  const r = b.submit('c');
  calls[0]!.done(['ok:a']);
  await p;
  calls[1]!.done([new Error('missing'), 'ok:c']);
  await assert.rejects(q, /missing/);
  assert.equal(await r, 'ok:c');
});

test('close sends what is queued and resolves when nothing is in flight', async () => {
  const { calls, b, echo } = harness();
  const a = b.submit('a');
  const c = b.submit('b');
  let closed = false;
  const done = b.close().then(() => (closed = true));
  assert.equal(calls.length, 2, 'queued requests leave at close');
  echo(calls[0]!);
  await a;
  await tick();
  assert.equal(closed, false);
  echo(calls[1]!);
  await c;
  await done;
  assert.equal(closed, true);
});
