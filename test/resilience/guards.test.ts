/**
 * What the breaker learns from a guarded call, with a manual clock and plain
 * numbers: only what the downstream did counts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/lib/clock.js';
import { AnswerTime, ANSWER_TIME_REGION, initAnswerTimeRegion } from '../../src/resilience/answer-time.js';
import { Breaker, breakerRegionSpec, initBreakerRegion, type BreakerConfig } from '../../src/resilience/breaker.js';
import { Bulkhead, BULKHEAD_REGION, initBulkheadRegion } from '../../src/resilience/bulkhead.js';
import { guarded, type Guard, type Verdict } from '../../src/resilience/guards.js';
import { localRegion } from '../../src/shm/regions.js';
import { TEST_BREAKER } from './fixtures/breaker-config.js';

const config: BreakerConfig = TEST_BREAKER;
const FULL = 800;

function setup(extra: Partial<Guard> = {}) {
  const clock = new ManualClock();
  const r = localRegion(breakerRegionSpec(config));
  initBreakerRegion(r, config);
  const breaker = new Breaker('provider', r, config);
  const ar = localRegion(ANSWER_TIME_REGION);
  initAnswerTimeRegion(ar);
  const answers = new AnswerTime(ar);
  const g: Guard = { breaker, answers, acquireTimeoutMs: 100, attemptTimeoutMs: FULL, clock, ...extra };
  return { clock, breaker, answers, g };
}

/** A call that takes `ms` of the manual clock (or its whole budget, if less) and ends with `verdict`. */
function takes(clock: ManualClock, ms: number, verdict: Verdict) {
  return {
    call: (budget: number) => {
      const ran = verdict === 'timeout' ? Math.min(ms, budget) : ms;
      clock.advance(ran);
      return Promise.resolve(verdict);
    },
    classify: (v: Verdict) => v,
  };
}

async function run(g: Guard, clock: ManualClock, timeoutMs: number, ms: number, verdict: Verdict) {
  const c = takes(clock, ms, verdict);
  return guarded(g, timeoutMs, c.call, c.classify);
}

test('200 calls cut short by a 20 ms caller deadline leave the breaker closed and its window empty', async () => {
  const { g, clock, breaker, answers } = setup();
  for (let i = 0; i < 200; i++) await run(g, clock, 20, 50, 'timeout');
  const s = breaker.stats(clock.epochMs());
  assert.equal(s.state, 'closed');
  assert.equal(s.calls, 0);
  assert.equal(answers.floorMs(clock.epochMs()), 0, 'a call that ran out is not an answer');
});

test('timeouts of calls that had the full per-attempt budget are failures: a hung provider still opens the breaker', async () => {
  const { g, clock, breaker } = setup();
  for (let i = 0; i < 10; i++) await run(g, clock, FULL, 5000, 'timeout');
  assert.equal(breaker.state(), 'open');
  assert.equal(breaker.stats(clock.epochMs()).failureRate, 1);
});

test('a call that answered in time counts as usual whatever its budget: fast 5xx with a short deadline are failures', async () => {
  const { g, clock, breaker } = setup();
  for (let i = 0; i < 10; i++) await run(g, clock, 30, 2, 'failure');
  assert.equal(breaker.state(), 'open');
});

test('short-budget successes count, and feed the answer-time floor', async () => {
  const { g, clock, breaker, answers } = setup();
  for (let i = 0; i < 5; i++) await run(g, clock, 100, 40 + i, 'success');
  assert.equal(breaker.stats(clock.epochMs()).calls, 5);
  assert.equal(answers.floorMs(clock.epochMs()), 40);
});

test('a short-budget call is neutral however long it ran (its duration is the deadline plus our own lag, which a flood inflates)', async () => {
  const { g, clock, breaker } = setup();
  // A 200 ms budget whose timer fired 700 ms late on a starved event loop.
  const late = (budget: number) => (clock.advance(budget + 700), Promise.resolve<Verdict>('timeout'));
  for (let i = 0; i < 50; i++) await guarded(g, 200, late, (v) => v);
  // Just under the slow-call threshold (500 ms): still the caller's doing.
  for (let i = 0; i < 50; i++) await run(g, clock, 498, 5000, 'timeout');
  const s = breaker.stats(clock.epochMs());
  assert.equal(s.calls, 0);
  assert.equal(s.state, 'closed');
});

test('a caller that allowed at least the slow-call threshold asked nothing unreasonable: its timeout is a failure', async () => {
  // A default 1 s deadline whose claim took 400 ms on a loaded host leaves a 600 ms attempt: a hung provider still opens the breaker.
  const { g, clock, breaker } = setup();
  for (let i = 0; i < 10; i++) await run(g, clock, 600, 5000, 'timeout');
  assert.equal(breaker.stats(clock.epochMs()).failureRate, 1);
  assert.equal(breaker.state(), 'open');
});

test('a full-budget call that waited for our bulkhead and then ran out is a failure (a hung provider behind a busy bulkhead still opens the breaker)', async () => {
  const clock = new ManualClock();
  // A bulkhead whose slot comes after 60 ms of a full 800 ms budget.
  const slow = {
    acquire: () => (clock.advance(60), Promise.resolve({ ok: true, waitedMs: 60 })),
    release: () => undefined,
  } as unknown as Bulkhead;
  const { g, breaker } = setup({ clock, bulkhead: slow });
  for (let i = 0; i < 10; i++) await run(g, clock, FULL, 100_000, 'timeout');
  assert.equal(breaker.stats(clock.epochMs()).failureRate, 1);
  assert.equal(breaker.state(), 'open');
  // The same wait with a caller's short deadline is still neutral.
  const { g: g2, breaker: b2, clock: c2 } = setup();
  const slow2 = {
    acquire: () => (c2.advance(60), Promise.resolve({ ok: true, waitedMs: 60 })),
    release: () => undefined,
  } as unknown as Bulkhead;
  for (let i = 0; i < 20; i++) await run({ ...g2, bulkhead: slow2 }, c2, 300, 100_000, 'timeout');
  assert.equal(b2.stats(c2.epochMs()).calls, 0);
});

test('a bulkhead refusal and an abort are neutral; a call that throws anything else is a failure', async () => {
  const clock = new ManualClock();
  const br = localRegion(BULKHEAD_REGION);
  initBulkheadRegion(br, { limit: 1, maxWaiting: 0 });
  const bulkhead = new Bulkhead('provider', br);
  const { g, breaker } = setup({ clock, bulkhead });
  assert.equal((await bulkhead.acquire(0)).ok, true);
  for (let i = 0; i < 20; i++) assert.deepEqual(await run(g, clock, FULL, 1, 'failure'), { refused: 'bulkhead_full' });
  bulkhead.release();
  assert.equal(breaker.stats(clock.epochMs()).calls, 0);
  const abort = Object.assign(new Error('aborted'), { name: 'AbortError' });
  for (let i = 0; i < 20; i++)
    await assert.rejects(
      guarded(
        g,
        FULL,
        () => Promise.reject(abort),
        () => 'success',
      ),
    );
  assert.equal(breaker.stats(clock.epochMs()).calls, 0);
  for (let i = 0; i < 10; i++)
    await assert.rejects(
      guarded(
        g,
        FULL,
        () => Promise.reject(new Error('boom')),
        () => 'success',
      ),
    );
  assert.equal(breaker.state(), 'open');
});

test('half-open: probes cut short by a client deadline give their permits back; real answers close the breaker', async () => {
  const { g, clock, breaker } = setup();
  breaker.forceOpen();
  breaker.reset();
  for (let i = 0; i < 10; i++) await run(g, clock, FULL, 1, 'failure');
  assert.equal(breaker.state(), 'open');
  clock.advance(config.openMs);
  // The abusive client keeps sending 20 ms deadlines: none of them can fail a probe.
  for (let i = 0; i < 50; i++) await run(g, clock, 20, 50, 'timeout');
  assert.equal(breaker.state(), 'half_open');
  for (let i = 0; i < 3; i++) await run(g, clock, FULL, 40, 'success');
  assert.equal(breaker.state(), 'closed');
});
