import assert from 'node:assert/strict';
import { test } from 'node:test';
import { errorReporter, safeError, type ErrorStage } from '../../src/charge/error-report.js';
import { keyHash } from '../../src/charge/key-hash.js';
import { DbBusyError, DeadlineError } from '../../src/charge/lifecycle.js';
import { ManualClock } from '../../src/lib/clock.js';
import { capturedLogger } from '../support/log-capture.js';

function setup(o: { burst?: number; windowMs?: number } = {}) {
  const clock = new ManualClock();
  const cap = capturedLogger();
  const counts = new Map<ErrorStage, number>();
  const report = errorReporter({ clock, log: cap.log, count: (s) => counts.set(s, (counts.get(s) ?? 0) + 1), ...o });
  return { clock, cap, counts, report };
}

test('an unexpected error is counted and logged once, with the key hash and without the raw key', async () => {
  const { cap, counts, report } = setup();
  const key = 'order-4711-customer-alice';
  report('claim', new TypeError(`Cannot read properties of undefined (reading 'kind') for ${key}`), key);
  await new Promise((r) => setImmediate(r));
  const lines = cap.lines();
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.level, 50);
  assert.equal(lines[0]!.stage, 'claim');
  assert.equal(lines[0]!.key_hash, keyHash(key));
  assert.equal((lines[0]!.error as { type: string }).type, 'TypeError');
  assert.ok(!cap.raw().includes(key), cap.raw());
  assert.equal(counts.get('claim'), 1);
});

test('expected refusals (deadline, busy DB gate) are neither logged nor counted here', async () => {
  const { cap, counts, report } = setup();
  report('claim', new DeadlineError(), 'k1');
  report('record', new DbBusyError(), 'k1');
  await new Promise((r) => setImmediate(r));
  assert.equal(cap.raw(), '');
  assert.equal(counts.size, 0);
});

test('a Postgres error logs type, message and SQLSTATE, never its detail (the failing row)', () => {
  const e = Object.assign(new Error('new row for relation "charges" violates check constraint "x"'), {
    name: 'PostgresError',
    code: '23514',
    detail: 'Failing row contains (key-1, fp, started, {"source": "tok_4242424242424242"}).',
    where: 'SQL statement',
  });
  const s = safeError(e, 'key-1');
  assert.deepEqual(Object.keys(s).sort(), ['code', 'message', 'stack', 'type']);
  assert.equal(s.code, '23514');
  assert.ok(!JSON.stringify(s).includes('tok_4242'));
  assert.deepEqual(safeError('a string', 'k'), { type: 'string', message: 'a string' });
});

test('a dead database does not flood the log: `burst` lines per window, then one line saying how many were left out; all are counted', async () => {
  const { clock, cap, counts, report } = setup({ burst: 3, windowMs: 10_000 });
  for (let i = 0; i < 1000; i++) report('claim', new Error('connect ECONNREFUSED'), `k${i}`);
  report('record', new Error('connect ECONNREFUSED'), 'r1');
  await new Promise((r) => setImmediate(r));
  assert.equal(cap.lines().filter((l) => l.stage === 'claim').length, 3);
  assert.equal(cap.lines().filter((l) => l.stage === 'record').length, 1, 'each stage has its own allowance');
  assert.equal(counts.get('claim'), 1000);
  clock.advance(9_999);
  report('claim', new Error('connect ECONNREFUSED'), 'late');
  await new Promise((r) => setImmediate(r));
  assert.equal(cap.lines().filter((l) => l.stage === 'claim').length, 3, 'still inside the window');
  clock.advance(1);
  report('claim', new Error('connect ECONNREFUSED'), 'next');
  await new Promise((r) => setImmediate(r));
  const claim = cap.lines().filter((l) => l.stage === 'claim');
  assert.equal(claim.length, 5);
  assert.equal(claim[3]!.not_logged, 998);
  assert.equal(claim[4]!.key_hash, keyHash('next'));
  assert.equal(counts.get('claim'), 1002);
});

test('the key hash is stable, short and differs between keys', () => {
  assert.equal(keyHash('a'), keyHash('a'));
  assert.match(keyHash('a'), /^[0-9a-f]{16}$/);
  assert.notEqual(keyHash('a'), keyHash('b'));
  // sha256("abc") = ba7816bf8f01cfea...
  assert.equal(keyHash('abc'), 'ba7816bf8f01cfea');
});

test('the request id, when known, is in the line: what a client reports can be found', async () => {
  const { cap, report } = setup();
  report('record', new Error('connection terminated'), 'k-req', 'req-7f3a');
  await new Promise((r) => setImmediate(r));
  assert.equal(cap.lines()[0]!.request_id, 'req-7f3a');
});
