/**
 * The pure parts around a request: retry decisions, what each arrival asks
 * for, option parsing, and per-second aggregation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/config/options.js';
import { seededRandom } from '../../src/lib/random.js';
import { parseLoadArgs, resolveLoadOptions } from '../../src/lab/load/options.js';
import { isFinal, parseMix, RequestPlanner } from '../../src/lab/load/requests.js';
import { parseRetryAfter, retryPolicy } from '../../src/lab/load/retry.js';
import { LoadStats } from '../../src/lab/load/stats.js';

const settings = { maxAttempts: 0, baseMs: 100, capMs: 1000, random: () => 0.5 };
const s503 = { kind: 'status', status: 503 } as const;

test('none never retries; capped retries non-final answers up to 3 attempts with jittered backoff', () => {
  assert.equal(retryPolicy('none', settings).decide(1, { kind: 'timeout' }, 10), undefined);
  const capped = retryPolicy('capped', settings);
  assert.equal(capped.maxAttempts, 3);
  assert.equal(capped.decide(1, s503, 5), 50, 'full jitter: random x base');
  assert.equal(capped.decide(2, { kind: 'error', code: 'ECONNRESET' }, 5), 100, 'ceiling doubles');
  assert.equal(capped.decide(3, s503, 5), undefined, 'three attempts in all');
  assert.equal(capped.decide(1, { kind: 'status', status: 409 }, 5), 50, 'in progress: try again later');
  for (const status of [201, 402, 400, 422, 404])
    assert.equal(capped.decide(1, { kind: 'status', status }, 5), undefined, String(status));
});

test('capped honours Retry-After up to its cap', () => {
  const capped = retryPolicy('capped', settings);
  assert.equal(capped.decide(1, { ...s503, retryAfterMs: 700 }, 5), 700);
  assert.equal(capped.decide(1, { ...s503, retryAfterMs: 60_000 }, 5), 1000);
  assert.equal(parseRetryAfter('2', 0), 2000);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4000), 6000);
  assert.equal(parseRetryAfter('soon', 0), undefined);
  assert.equal(parseRetryAfter(undefined, 0), undefined);
});

test('storm retries at once, up to 10 attempts, however long it has waited (timeouts too)', () => {
  const storm = retryPolicy('storm', settings);
  assert.equal(storm.maxAttempts, 10);
  assert.equal(storm.decide(1, { ...s503, retryAfterMs: 5000 }, 10), 0, 'ignores Retry-After');
  assert.equal(storm.decide(9, s503, 10), 0);
  assert.equal(storm.decide(10, s503, 10), undefined);
  assert.equal(storm.decide(2, s503, 5000), 0, 'a naive client does not count its own time');
  assert.equal(storm.decide(2, { kind: 'timeout' }, 1200), 0, 'a timeout is resent at once');
  assert.equal(storm.decide(1, { kind: 'status', status: 201 }, 10), undefined);
  assert.equal(retryPolicy('storm', { ...settings, maxAttempts: 4 }).maxAttempts, 4);
});

test('the mix: weights, seeded choice, unique keys, identical bodies per key, reads of created keys', () => {
  assert.deepEqual(parseMix('charge=90,read=5,quote=5'), { charge: 90, read: 5, quote: 5 });
  assert.throws(() => parseMix('charge=90,write=10'), /CLASS=WEIGHT/);
  assert.throws(() => parseMix('charge=0'), /at least one/);
  const plan = (seed: number) => {
    const p = new RequestPlanner(
      'r1',
      parseMix('charge=80,read=10,quote=10'),
      seededRandom(seed),
      seededRandom(seed + 1),
    );
    return Array.from({ length: 2000 }, () => p.next());
  };
  const a = plan(3);
  assert.deepEqual(a, plan(3), 'deterministic under a seed');
  const charges = a.filter((r) => r.cls === 'charge');
  assert.ok(Math.abs(charges.length - 1600) < 100, `${charges.length} charges`);
  assert.deepEqual(
    charges.slice(0, 3).map((r) => r.key),
    ['r1-1', 'r1-2', 'r1-3'],
  );
  assert.equal(new Set(charges.map((r) => r.key)).size, charges.length);
  for (const c of charges.slice(0, 50)) {
    const body = JSON.parse(c.body!) as { amount: number; currency: string; source: string };
    assert.ok(Number.isInteger(body.amount) && body.amount >= 100 && body.amount <= 99_999);
    assert.match(body.currency, /^[A-Z]{3}$/);
  }
  const reads = a.filter((r) => r.cls === 'read');
  assert.ok(
    reads.every((r) => r.path === '/charges/r1-none'),
    'no key created yet: a read that must 404',
  );
  const quotes = a.filter((r) => r.cls === 'quote');
  assert.equal(quotes[0]!.path, '/quote?from=USD&to=EUR&amount=1000');
  assert.notEqual(quotes[1]!.path, quotes[0]!.path, 'pairs cycle');

  const p = new RequestPlanner('r2', { charge: 0, read: 1, quote: 0 }, seededRandom(1), seededRandom(2));
  p.noteCreated('r2-7');
  assert.equal(p.next().path, '/charges/r2-7');
  assert.ok(isFinal('charge', 402) && isFinal('read', 404) && !isFinal('charge', 409) && !isFinal('quote', 503));
});

test('options: defaults, steps, derived run id, and one-line errors', () => {
  const { options: o } = parseLoadArgs(['--seed', '255'], {});
  assert.equal(o.url, 'http://127.0.0.1:8080');
  assert.equal(o.durationSeconds, 10);
  assert.equal(o.deadlineMs, 1000);
  assert.equal(o.connections, 256);
  assert.equal(o.runId, 'load-73');
  assert.deepEqual(o.mix, { charge: 100, read: 0, quote: 0 });
  assert.ok(Object.isFrozen(o));
  const steps = parseLoadArgs(['--schedule', 'steps', '--steps', '100x10s,500x10s,100x10s'], {}).options;
  assert.equal(steps.durationSeconds, 30, 'a steps run lasts its steps unless --duration says otherwise');
  assert.equal(parseLoadArgs(['--rate', '5'], { LOAD_RATE: '7' }).options.rate, 5);
  assert.throws(
    () => parseLoadArgs(['--schedule', 'steps'], {}),
    (e: unknown) => e instanceof ConfigError && /needs --steps/.test(e.message),
  );
  assert.throws(() => parseLoadArgs(['--steps', '10x1s'], {}), /--steps applies to --schedule steps or poisson/);
  assert.equal(parseLoadArgs(['--schedule', 'poisson', '--steps', '10x1s,20x2s'], {}).options.durationSeconds, 3);
  assert.throws(
    () => parseLoadArgs(['--retry', 'forever'], {}),
    /--retry must be one of none, capped, storm; got "forever"/,
  );
  assert.throws(() => parseLoadArgs(['--mix', 'charge=x'], {}), /--mix: mix part/);
  assert.throws(() => parseLoadArgs(['--duration', '0'], {}), /--duration must be a number/);
  assert.notEqual(resolveLoadOptions({}).seed, undefined);
});

test('stats: events land in their second; a closed second still takes a late arrival; totals add up', () => {
  const st = new LoadStats();
  st.offered('charge', 100);
  st.sent('charge', 101, false);
  st.attempt('charge', 150, 503);
  st.sent('charge', 151, true);
  st.attempt('charge', 1200, 201);
  st.completed('charge', 1200, 201, 1100, false);
  const closed = st.closeBefore(1);
  assert.equal(closed.length, 1);
  assert.equal(closed[0]!.offered, 1);
  assert.equal(closed[0]!.retries, 1);
  assert.equal(closed[0]!.latency_ms.charge, undefined, 'nothing completed in second 0');
  st.offered('charge', 990); // a generator behind schedule dispatches an arrival meant for second 0
  assert.equal(st.seconds[0]!.offered, 2);
  const more = st.closeBefore(3);
  assert.equal(more[0]!.completed, 1);
  assert.equal(more[0]!.latency_ms.charge!.count, 1);
  assert.equal(more[1]!.completed, 0);
  const t = st.totals();
  assert.deepEqual([t.offered, t.sent, t.retries, t.completed, t.goodput], [2, 1, 1, 1, 0]);
  assert.deepEqual(t.attempt_statuses, { '503': 1, '201': 1 });
  assert.deepEqual(t.statuses, { '201': 1 });
  assert.ok(Math.abs(st.classes().charge!.latency_ms.p50 - 1100) / 1100 < 0.01);
});
