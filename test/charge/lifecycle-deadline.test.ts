/**
 * The charge lifecycle's DB deadlines on a manual clock, against statements
 * that never answer (a silent partition): the claim answers 504 at the
 * request deadline, the record 504 at its settle budget (never 201 without
 * the record), and every DB slot is back at that moment.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Database } from '../../src/db/database.js';
import { runCharge, type LifecycleDeps } from '../../src/charge/lifecycle.js';
import { ChargeStore } from '../../src/charge/store.js';
import type { Reply } from '../../src/errors/catalogue.js';
import { ManualClock } from '../../src/lib/clock.js';
import { Bulkhead, BULKHEAD_REGION, initBulkheadRegion } from '../../src/resilience/bulkhead.js';
import { allocateShared, openRegion } from '../../src/shm/regions.js';
import { fakePool, settle, type FakePool } from '../support/fake-sql.js';
import { ScriptedProvider } from '../support/lifecycle.js';
import { DEV_PROVIDER_KEY_SECRET, providerKeys } from '../../src/charge/provider-key.js';

const input = { amount: 500, currency: 'USD', source: 'tok_visa' };
const SETTLE_MS = 800;

function harness() {
  const clock = new ManualClock();
  const r = openRegion(allocateShared({ db: BULKHEAD_REGION }), 'db');
  initBulkheadRegion(r, { limit: 4, maxWaiting: 8 });
  const slots = new Bulkhead('db', r);
  const pools: FakePool[] = [];
  const database = new Database({
    clock,
    open: () => {
      const p = fakePool();
      pools.push(p);
      return p.sql;
    },
    slots,
    acquireTimeoutMs: 100,
    cancelGraceMs: 2000,
  });
  const provider = new ScriptedProvider(() => ({ kind: 'succeeded', providerChargeId: 'pch_1' }));
  const timeouts: string[] = [];
  const deps: LifecycleDeps = {
    clock,
    random: () => 0,
    sleep: async () => {},
    store: new ChargeStore(database.sql, providerKeys(DEV_PROVIDER_KEY_SECRET)),
    provider,
    db: (d, phase) => database.run(d, phase),
    onTimeout: (stage) => timeouts.push(stage),
    settings: {
      leaseMs: 60_000,
      providerRetry: { maxAttempts: 1, baseMs: 1, capMs: 1, attemptTimeoutMs: SETTLE_MS, minAttemptMs: 1 },
    },
  };
  return { clock, slots, pools, provider, deps, timeouts };
}

/** The reply once it came (a function: an assertion must not narrow it for later reads). */
function watch(p: Promise<Reply>): () => Reply | undefined {
  let reply: Reply | undefined;
  void p.then((r) => (reply = r));
  return () => reply;
}

const code = (r: Reply | undefined) => (r ? (JSON.parse(r.body) as { code?: string }).code : undefined);

test('a claim that never answers: 504 deadline_exceeded at the deadline, slot back, statement cancelled, provider never called', async () => {
  const { clock, slots, pools, provider, deps, timeouts } = harness();
  const w = watch(runCharge(deps, 'k1', input, clock.epochMs() + 500));
  await settle();
  assert.equal(slots.inUse, 1);
  clock.advance(499);
  await settle();
  assert.equal(w(), undefined);
  clock.advance(1);
  await settle();
  assert.equal(w()?.status, 504);
  assert.equal(code(w()), 'deadline_exceeded');
  assert.equal(slots.inUse, 0);
  assert.equal(pools[0]!.statements[0]!.cancelled, 1);
  assert.equal(provider.calls.length, 0);
  assert.deepEqual(timeouts, ['claim']);
  // The connection never answers the cancel: the pool is replaced after the grace.
  clock.advance(2000);
  assert.equal(pools.length, 2);
});

test('a record that never answers: 504 at the settle budget (never 201 unstored), slot back, statement cancelled', async () => {
  const { clock, slots, pools, provider, deps } = harness();
  const w = watch(runCharge(deps, 'k2', input, clock.epochMs() + 500));
  await settle();
  pools[0]!.statements[0]!.answer([
    {
      idempotency_key: 'k2',
      charge_id: 'ch_1',
      provider_key: 'bw_ch_1',
      lease_token: 't',
      inserted: true,
      created_at: new Date(0),
    },
  ]);
  await settle();
  await settle();
  assert.equal(provider.calls.length, 1, 'claimed, then the provider answered');
  const record = pools[0]!.statements[1]!;
  assert.match(record.text, /UPDATE charges SET status/);
  assert.equal(slots.inUse, 1);
  // The request deadline passes: the record, already under way, is allowed its settle budget.
  clock.advance(500);
  await settle();
  assert.equal(w(), undefined);
  clock.advance(SETTLE_MS - 500);
  await settle();
  assert.equal(w()?.status, 504, `got ${w()?.status} ${w()?.body}`);
  assert.equal(code(w()), 'deadline_exceeded');
  assert.equal(record.cancelled, 1);
  assert.equal(slots.inUse, 0);
  assert.equal(pools[0]!.statements.length, 2, 'no release sent into a database that just stalled');
});
