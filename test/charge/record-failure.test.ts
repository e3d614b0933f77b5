/**
 * The database fails the record after the provider has charged. The client
 * must not be told "not charged" (the 503 is db_unavailable, whose title says
 * the charge may complete later), the row must stay `started`, and whichever
 * comes first, the client's retry or the reconciler, must finish it with the
 * one provider charge already made: never a second. Real Postgres, the real
 * simulator and the real provider client; only the database gate fails, once,
 * where the record runs. Both record paths: one statement per request, and
 * group commit.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ChargeStore } from '../../src/charge/store.js';
import { GroupCommit } from '../../src/charge/group-commit.js';
import { runCharge, type DbGate, type LifecycleDeps } from '../../src/charge/lifecycle.js';
import { reconcileOnce } from '../../src/charge/reconciler.js';
import { createPool } from '../../src/downstream/pool.js';
import { ProviderClient } from '../../src/downstream/provider-client.js';
import { startSimulator, type Simulator } from '../../src/simulator/index.js';
import { systemClock } from '../../src/lib/clock.js';
import { DEV_PROVIDER_KEY_SECRET, providerKeys } from '../../src/charge/provider-key.js';
import { startTestDb, type TestDb } from '../support/postgres.js';
import { lifecycleDeps } from '../support/lifecycle.js';
import { ledgerForReference } from '../support/simulator.js';
import type { Pool } from 'undici';

const input = { amount: 1250, currency: 'EUR', source: 'tok_visa' };
const providerKey = providerKeys(DEV_PROVIDER_KEY_SECRET);

let db: TestDb;
let sim: Simulator;
let store: ChargeStore;
let pool: Pool;
let client: ProviderClient;

before(async () => {
  db = await startTestDb();
  sim = await startSimulator({ providerPort: 0, fxPort: 0 });
  store = new ChargeStore(db.sql, providerKey);
  pool = createPool({ url: sim.providerUrl, connections: 4, keepAliveMs: 5000, connectTimeoutMs: 1000 });
  client = new ProviderClient(pool, { warn: () => {} });
});

after(async () => {
  await pool?.close();
  await sim?.close();
  await db?.close();
});

const deadline = () => systemClock.epochMs() + 3000;

/** What postgres.js throws when the server goes away mid-statement: not a deadline. */
function connectionLost(): Error {
  return Object.assign(new Error('write CONNECTION_CLOSED 127.0.0.1:5432'), { code: 'CONNECTION_CLOSED' });
}

/**
 * A gate on the real database that fails its `failAt`-th statement (1-based)
 * once: with one request at a time, the claim is the first and the record the
 * second. `statements` counts every call.
 */
function failingOnce(failAt: number): { gate: DbGate; statements: () => number } {
  let n = 0;
  const gate: DbGate = async (_deadline, phase) => {
    n++;
    if (n === failAt) throw connectionLost();
    return phase(db.sql);
  };
  return { gate, statements: () => n };
}

type Path = 'one statement per request' | 'group commit';

/** Lifecycle deps whose record (the second statement) fails once, on `path`. */
function depsFailingTheRecord(path: Path): LifecycleDeps {
  const { gate } = failingOnce(2);
  if (path === 'one statement per request') return lifecycleDeps(store, client, { db: gate });
  const commits = new GroupCommit(db.sql, { clock: systemClock, providerKey, gate });
  return lifecycleDeps(store, client, { commits, db: gate });
}

const healthy = () => lifecycleDeps(store, client);

/** The first try: charged at the provider, the record fails, the client hears db_unavailable and the row waits. */
async function chargedButNotRecorded(path: Path, key: string): Promise<void> {
  const r = await runCharge(depsFailingTheRecord(path), key, input, deadline());
  assert.equal(r.status, 503, r.body);
  const body = JSON.parse(r.body) as { code: string; title: string };
  assert.equal(body.code, 'db_unavailable');
  assert.match(body.title, /may complete later/, 'the 503 does not say "not charged"');
  assert.equal((await ledgerForReference(sim.providerUrl, key)).length, 1, 'the provider did charge');
  const row = await store.get(key);
  assert.equal(row?.status, 'started', 'nothing recorded as failed: the row waits for a retry or the reconciler');
}

/** Exactly one provider charge, the row says so, and the key replays it. */
async function recordedOnce(key: string): Promise<void> {
  const charges = await ledgerForReference(sim.providerUrl, key);
  assert.equal(charges.length, 1, 'exactly one provider charge for the key');
  const row = await store.get(key);
  assert.equal(row?.status, 'succeeded');
  assert.equal(row?.provider_charge_id, charges[0]!.id);
  const replay = await runCharge(healthy(), key, input, deadline());
  assert.equal(replay.status, 201, replay.body);
  assert.equal(replay.headers?.['Idempotent-Replayed'], 'true');
  assert.equal((JSON.parse(replay.body) as { provider_charge_id: string }).provider_charge_id, charges[0]!.id);
  assert.equal((await ledgerForReference(sim.providerUrl, key)).length, 1);
}

for (const path of ['one statement per request', 'group commit'] as const) {
  describe(`the record fails after the provider charged (${path})`, () => {
    it("the client's retry finishes it with the same provider charge, never a second (5 rounds)", async () => {
      for (let round = 0; round < 5; round++) {
        const key = `record-fail-retry-${path.length}-${round}`;
        await chargedButNotRecorded(path, key);
        // The lease was released with the 503: the retry takes the row over
        // at once and asks the provider again under the same provider key.
        const retry = await runCharge(healthy(), key, input, deadline());
        assert.equal(retry.status, 201, retry.body);
        await recordedOnce(key);
      }
    });

    it('with no retry, the reconciler finishes it with the same provider charge (5 rounds)', async () => {
      for (let round = 0; round < 5; round++) {
        const key = `record-fail-reconcile-${path.length}-${round}`;
        await chargedButNotRecorded(path, key);
        // Other tests' rows may be finished in the same pass: this key's row is what counts.
        const pass = await reconcileOnce(healthy(), 50);
        assert.equal(pass.failed, 0, JSON.stringify(pass));
        await recordedOnce(key);
      }
    });
  });
}
