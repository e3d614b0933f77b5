import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DbWaitError, isTransientDbError, retryStartupStep, waitForDatabase, type DbWait } from '../../src/db/wait.js';
import { ManualClock } from '../../src/lib/clock.js';
import { redactUrl } from '../../src/config/options.js';

/** A probe failing `failures` times with `error`, on a clock that sleeps advance. */
function harness(
  failures: number,
  error: object = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
) {
  const clock = new ManualClock();
  const waits: DbWait[] = [];
  let probes = 0;
  const o = {
    connectTimeoutMs: 1000,
    clock,
    random: () => 0.5,
    sleep: async (ms: number) => clock.advance(ms),
    onWait: (w: DbWait) => waits.push(w),
    probe: async () => {
      probes++;
      clock.advance(5);
      if (probes <= failures) throw error;
    },
  };
  return { o, waits, probes: () => probes };
}

test('retries with capped exponential backoff until the database answers, one report per wait', async () => {
  const h = harness(8);
  await waitForDatabase('postgres://u:pw@db:5433/app', { ...h.o, timeoutMs: 30_000, baseMs: 100, capMs: 2000 });
  assert.equal(h.probes(), 9);
  assert.deepEqual(
    h.waits.map((w) => w.retryInMs),
    [75, 150, 300, 600, 1200, 1500, 1500, 1500],
  );
  assert.ok(h.waits.every((w, i) => w.attempt === i + 1 && w.target === 'db:5433/app' && /ECONNREFUSED/.test(w.error)));
});

test('gives up after the timeout, naming host and port, never the password', async () => {
  const h = harness(Infinity);
  await assert.rejects(
    waitForDatabase('postgres://u:pw-secret@db:5433/app', { ...h.o, timeoutMs: 3000 }),
    (e: unknown) => {
      assert.ok(e instanceof DbWaitError);
      assert.match(e.message, /^postgres at db:5433\/app did not answer within 3000 ms/);
      assert.doesNotMatch(e.message, /pw-secret/);
      return true;
    },
  );
  const waited = h.waits.reduce((s, w) => s + w.retryInMs, 0);
  assert.ok(waited <= 3000, `${waited} ms of waits within the 3000 ms bound`);
});

test('a wrong password is not retried; giveUp stops the wait', async () => {
  const auth = harness(
    Infinity,
    Object.assign(new Error('password authentication failed for user "u"'), { code: '28P01' }),
  );
  await assert.rejects(waitForDatabase('postgres://u:x@db/app', { ...auth.o, timeoutMs: 30_000 }), /refused us: 28P01/);
  assert.equal(auth.probes(), 1);
  const h = harness(Infinity);
  let checks = 0;
  await assert.rejects(
    waitForDatabase('postgres://db/app', { ...h.o, timeoutMs: 30_000, giveUp: () => ++checks === 3 }),
    /gave up waiting/,
  );
  assert.equal(h.probes(), 3);
});

test('redactUrl masks passwords in URLs, unparseable ones and query parameters', () => {
  assert.equal(redactUrl('postgres://app:pw@db:5432/x'), 'postgres://app:***@db:5432/x');
  assert.equal(
    redactUrl('postgres://app@db:5432/x?sslmode=require&password=pw'),
    'postgres://app@db:5432/x?sslmode=require&password=***',
  );
  assert.equal(redactUrl('postgres://app:p@ss@db:bad/x'), 'postgres://app:***@db:bad/x');
  assert.equal(redactUrl('postgres://db:5432/x'), 'postgres://db:5432/x');
});

test('a start-up step (durability check, migrations) is retried while it fails as a restarting Postgres fails, and only then', async () => {
  const clock = new ManualClock();
  const o = {
    timeoutMs: 30_000,
    connectTimeoutMs: 1000,
    clock,
    random: () => 0.5,
    sleep: async (ms: number) => clock.advance(ms),
  };
  const coded = (code: string, message = code) => Object.assign(new Error(message), { code });
  // Measured in an attack: Postgres stopped and started 20-90 ms into start-up failed these, and serve exited 1.
  const restart = [
    coded('57P03', 'the database system is shutting down'),
    coded('ECONNRESET', 'read ECONNRESET'),
    coded('CONNECTION_CLOSED'),
    coded('57P01', 'terminating connection due to administrator command'),
  ];
  let calls = 0;
  const waits: DbWait[] = [];
  const value = await retryStartupStep(
    'postgres://u:pw@db:5433/app',
    { ...o, onWait: (w) => waits.push(w) },
    async () => {
      const e = restart[calls++];
      if (e) throw e;
      return 'done';
    },
  );
  assert.equal(value, 'done');
  assert.equal(calls, 5);
  assert.equal(waits.length, 4);
  for (const [i, code] of ['57P03', 'ECONNRESET', 'CONNECTION_CLOSED', '57P01'].entries())
    assert.ok(waits[i]!.error.includes(code), `wait ${i + 1}: ${waits[i]!.error}`);
  // A failure of the step itself is the step's answer, at once and unchanged.
  for (const e of [coded('42601', 'syntax error'), new Error('NODE_ENV=production refuses fsync=off')]) {
    let tries = 0;
    await assert.rejects(
      retryStartupStep('postgres://db/app', o, async () => {
        tries++;
        throw e;
      }),
      (thrown) => thrown === e,
    );
    assert.equal(tries, 1, e.message);
  }
  assert.equal(isTransientDbError(coded('53300', 'too many connections')), true);
  assert.equal(isTransientDbError(coded('23505')), false);
  assert.equal(isTransientDbError(undefined), false);
});
