/**
 * GET /quote as both servers answer it: the cache, the single flight, the
 * stale fallback and the guards, driven by a fake clock and a fetch the test
 * settles by hand.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RateOutcome } from '../../src/downstream/fx-client.js';
import { problem, type Reply } from '../../src/errors/catalogue.js';
import { QuoteService, type QuoteGuards } from '../../src/fx/quote-service.js';
import { ManualClock } from '../../src/lib/clock.js';

const TTL_MS = 5000;
const TIMEOUT_MS = 800;
const Q = 'from=usd&to=eur&amount=1000';

interface Fetch {
  from: string;
  to: string;
  deadline: number;
  settle: (r: RateOutcome | Error) => void;
}

function setup(guards?: QuoteGuards) {
  const clock = new ManualClock();
  const fetches: Fetch[] = [];
  const quotes = new QuoteService({
    clock,
    cacheTtlMs: TTL_MS,
    requestTimeoutMs: TIMEOUT_MS,
    fetchRate: (from, to, deadline) =>
      new Promise<RateOutcome>((resolve, reject) =>
        fetches.push({ from, to, deadline, settle: (r) => (r instanceof Error ? reject(r) : resolve(r)) }),
      ),
    ...(guards ? { guards } : {}),
  });
  return { clock, fetches, quotes };
}

const ok = (rate: number, asOf = '2026-01-01T00:00:00.000Z'): RateOutcome => ({ ok: true, rate, asOf });
const body = (r: Reply) => JSON.parse(r.body) as Record<string, unknown>;

/** A reply that must already be there: a cache hit or a refusal answers without waiting. */
function now(r: Reply | Promise<Reply>): Reply {
  assert.ok(!(r instanceof Promise), 'answered synchronously');
  return r;
}

test('an invalid query is refused 400 naming the field, and nothing is fetched', () => {
  const { quotes, fetches } = setup();
  for (const [q, field] of [
    ['from=usd&to=eur', 'amount'],
    ['from=us&to=eur&amount=1', 'from'],
    ['from=usd&to=xxx&amount=1', 'to'],
    ['from=usd&to=eur&amount=0', 'amount'],
    ['from=usd&to=eur&amount=1.5', 'amount'],
    ['', 'from'],
  ] as const) {
    const r = now(quotes.quote(q));
    assert.equal(r.status, 400, q);
    assert.equal(body(r).code, 'invalid_query', q);
    assert.equal(body(r).field, field, q);
  }
  assert.equal(fetches.length, 0);
});

test('a miss fetches once by the deadline; the rate then answers without a fetch until its TTL ends', async () => {
  const { quotes, fetches, clock } = setup();
  const first = quotes.quote(Q);
  assert.equal(fetches.length, 1);
  assert.deepEqual([fetches[0]!.from, fetches[0]!.to], ['USD', 'EUR']);
  assert.equal(fetches[0]!.deadline, clock.epochMs() + TIMEOUT_MS);
  fetches[0]!.settle(ok(0.9));
  const r = await first;
  assert.equal(r.status, 200);
  assert.deepEqual(body(r), {
    from: 'USD',
    to: 'EUR',
    amount: 1000,
    rate: 0.9,
    converted_amount: 900,
    as_of: '2026-01-01T00:00:00.000Z',
    stale: false,
  });
  clock.advance(TTL_MS - 1);
  assert.equal(body(now(quotes.quote(Q))).rate, 0.9);
  assert.equal(fetches.length, 1, 'a fresh rate makes no fetch');
  clock.advance(1);
  const again = quotes.quote(Q);
  assert.ok(again instanceof Promise, 'the TTL ended: fetched again');
  assert.equal(fetches.length, 2);
  fetches[1]!.settle(ok(0.8));
  assert.equal(body(await again).rate, 0.8);
});

test('concurrent misses for one pair make one fetch and all get its answer; another pair fetches on its own', async () => {
  const { quotes, fetches } = setup();
  const answers = [quotes.quote(Q), quotes.quote(Q), quotes.quote('from=USD&to=EUR&amount=5')];
  const other = quotes.quote('from=usd&to=gbp&amount=1');
  assert.equal(fetches.length, 2);
  fetches[0]!.settle(ok(0.5));
  fetches[1]!.settle(ok(0.7));
  const rs = await Promise.all(answers);
  assert.deepEqual(
    rs.map((r) => body(r).converted_amount),
    [500, 500, 3],
  );
  assert.equal(body(await other).rate, 0.7);
});

test('fx failing: the last known rate answers marked stale; with none, 503 fx_unavailable', async () => {
  const { quotes, fetches, clock } = setup();
  const none = quotes.quote(Q);
  fetches[0]!.settle({ ok: false, reason: 'timeout' });
  assert.equal(body(await none).code, 'fx_unavailable');
  assert.equal((await none).status, 503);

  const first = quotes.quote(Q);
  fetches[1]!.settle(ok(0.9, '2026-01-01T00:00:00.000Z'));
  await first;
  clock.advance(TTL_MS * 10);
  for (const fail of [{ ok: false, reason: 'status', status: 500 } as RateOutcome, new Error('worker lost')]) {
    const stale = quotes.quote(Q);
    fetches.at(-1)!.settle(fail);
    const r = await stale;
    assert.equal(r.status, 200);
    assert.equal(body(r).stale, true);
    assert.equal(body(r).rate, 0.9);
    assert.equal(body(r).as_of, '2026-01-01T00:00:00.000Z');
  }
  assert.equal(fetches.length, 4, 'a stale answer is not cached as fresh: every request past the TTL tries fx again');
});

test('an unknown pair is 400 invalid_query on `to`, not a stale answer, and is not cached', async () => {
  const { quotes, fetches } = setup();
  const r = quotes.quote('from=usd&to=jpy&amount=1');
  fetches[0]!.settle({ ok: false, reason: 'not_found', status: 404 });
  assert.equal((await r).status, 400);
  assert.equal(body(await r).field, 'to');
  void quotes.quote('from=usd&to=jpy&amount=1');
  assert.equal(fetches.length, 2);
});

test('guards: an open fx breaker answers from the last rate without fetching; a shed fetch answers the refusal', async () => {
  let fxOpen = false;
  let shed: Reply | null = null;
  const admitted: number[] = [];
  const done: number[] = [];
  const { quotes, fetches, clock } = setup({
    fxAdmits: () => !fxOpen,
    admit: (deadline) => {
      admitted.push(deadline);
      return shed;
    },
    done: (started) => done.push(started),
  });
  fxOpen = true;
  assert.equal(body(now(quotes.quote(Q))).code, 'fx_unavailable');
  assert.deepEqual([fetches.length, admitted.length], [0, 0], 'an open breaker neither fetches nor takes a slot');

  fxOpen = false;
  shed = problem('overloaded', { detail: 'Shed on admission (concurrency)' });
  const refused = now(quotes.quote(Q));
  assert.equal(refused, shed);
  assert.deepEqual([fetches.length, done.length], [0, 0], 'a shed request fetches nothing and gives no slot back');

  shed = null;
  clock.advance(7);
  const admittedAt = clock.now();
  const first = quotes.quote(Q);
  assert.deepEqual(admitted.at(-1), clock.epochMs() + TIMEOUT_MS);
  clock.advance(30);
  assert.equal(done.length, 0, 'the slot is held while the fetch runs');
  fetches[0]!.settle(new Error('worker lost'));
  await first;
  assert.deepEqual(done, [admittedAt], 'a failed fetch gives its slot back too, with its start');

  const second = quotes.quote(Q);
  fetches[1]!.settle(ok(0.9));
  await second;
  fxOpen = true;
  clock.advance(TTL_MS);
  const r = now(quotes.quote(Q));
  assert.equal(body(r).stale, true, 'open breaker past the TTL: the last rate, marked stale');
  assert.equal(fetches.length, 2);
});
