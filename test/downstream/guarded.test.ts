/**
 * The downstream clients behind their guards: what each answer teaches the
 * breaker, and a refusal turned into the client's own outcome type.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuardedProvider, guardedRate } from '../../src/downstream/guarded.js';
import type { RateOutcome } from '../../src/downstream/fx-client.js';
import type { AttemptOutcome, Provider } from '../../src/downstream/provider-client.js';
import { ManualClock } from '../../src/lib/clock.js';
import { Breaker, breakerRegionSpec, initBreakerRegion } from '../../src/resilience/breaker.js';
import type { Guard } from '../../src/resilience/guards.js';
import { localRegion } from '../../src/shm/regions.js';
import { TEST_BREAKER } from '../resilience/fixtures/breaker-config.js';

function setup() {
  const clock = new ManualClock();
  const region = localRegion(breakerRegionSpec(TEST_BREAKER));
  initBreakerRegion(region, TEST_BREAKER);
  const breaker = new Breaker('provider', region, TEST_BREAKER);
  const guard: Guard = { breaker, acquireTimeoutMs: 100, attemptTimeoutMs: 800, clock };
  return { clock, breaker, guard };
}

test('GuardedProvider: provider timeouts with a short budget are neutral, 5xx are failures, declines successes', async () => {
  const { guard, clock, breaker } = setup();
  let next: AttemptOutcome = { kind: 'unknown', reason: 'timeout' };
  const inner: Provider = {
    createCharge: (_k, _r, _i, t) => {
      clock.advance(t);
      return Promise.resolve(next);
    },
    getCharge: () => Promise.resolve(next),
  };
  const provider = new GuardedProvider(inner, guard);
  const input = { amount: 1, currency: 'USD', source: 'tok_visa' };
  for (let i = 0; i < 30; i++) await provider.createCharge('k', 'r', input, 20);
  assert.equal(breaker.stats(clock.epochMs()).calls, 0);
  next = { kind: 'declined', providerChargeId: 'p', declineCode: 'card_declined' };
  for (let i = 0; i < 5; i++) await provider.createCharge('k', 'r', input, 20);
  next = { kind: 'unknown', reason: 'status_5xx', status: 503 };
  for (let i = 0; i < 5; i++) await provider.createCharge('k', 'r', input, 20);
  const stats = breaker.stats(clock.epochMs());
  assert.equal(stats.calls, 10);
  assert.equal(stats.failureRate, 0.5);
  assert.equal(stats.state, 'open');
});

test('guardedRate: a pair the fx service does not know is an answer, not a failure; an open breaker is a refusal', async () => {
  const { guard, clock, breaker } = setup();
  let next: RateOutcome = { ok: false, reason: 'not_found', status: 404 };
  const call = () => Promise.resolve(next);
  for (let i = 0; i < 10; i++) assert.deepEqual(await guardedRate(guard, 100, call), next);
  assert.equal(breaker.stats(clock.epochMs()).failureRate, 0);
  next = { ok: false, reason: 'status', status: 503 };
  for (let i = 0; i < 10; i++) await guardedRate(guard, 100, call);
  assert.equal(breaker.state(), 'open');
  let called = false;
  const refused = await guardedRate(guard, 100, () => {
    called = true;
    return Promise.resolve(next);
  });
  assert.deepEqual(refused, { refused: 'breaker_open' });
  assert.equal(called, false, 'nothing sent past an open breaker');
});
