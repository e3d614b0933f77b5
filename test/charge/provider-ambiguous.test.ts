/**
 * A provider whose answer is not understood (a proxy's 404 HTML page in front
 * of it) must not turn a charge into a permanent decline: the row stays
 * `started`, the client hears "unavailable, may complete later", and once the
 * provider heals the reconciler finishes the charge with exactly one provider
 * charge. Real Postgres, the real simulator, the real provider client.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChargeStore } from '../../src/charge/store.js';
import { runCharge } from '../../src/charge/lifecycle.js';
import { reconcileOnce } from '../../src/charge/reconciler.js';
import { createPool } from '../../src/downstream/pool.js';
import { ProviderClient, type AttemptOutcome } from '../../src/downstream/provider-client.js';
import { startSimulator, type Simulator } from '../../src/simulator/index.js';
import { systemClock } from '../../src/lib/clock.js';
import { startTestDb, type TestDb } from '../support/postgres.js';
import { lifecycleDeps, ScriptedProvider } from '../support/lifecycle.js';
import { clearFaults, ledgerForReference, setFaults } from '../support/simulator.js';
import type { Pool } from 'undici';
import { DEV_PROVIDER_KEY_SECRET, providerKeys } from '../../src/charge/provider-key.js';

const HTML_404 =
  '<html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1><hr>nginx/1.25.3</body></html>';
const input = { amount: 700, currency: 'USD', source: 'tok_visa' };

let db: TestDb;
let sim: Simulator;
let store: ChargeStore;
let pool: Pool;
let client: ProviderClient;
const logged: Record<string, unknown>[] = [];

before(async () => {
  db = await startTestDb();
  sim = await startSimulator({ providerPort: 0, fxPort: 0 });
  store = new ChargeStore(db.sql, providerKeys(DEV_PROVIDER_KEY_SECRET));
  pool = createPool({ url: sim.providerUrl, connections: 4, keepAliveMs: 5000, connectTimeoutMs: 1000 });
  client = new ProviderClient(pool, { warn: (fields) => logged.push(fields) });
});

after(async () => {
  await pool?.close();
  await sim?.close();
  await db?.close();
});

beforeEach(() => clearFaults(sim.providerUrl));

const deadline = () => systemClock.epochMs() + 3000;

async function assertUnknownThenReconciled(key: string, chargedDuringFault: number): Promise<void> {
  const deps = lifecycleDeps(store, client);
  // The first try and two client retries while the page is up: never final.
  for (let i = 0; i < 3; i++) {
    const r = await runCharge(deps, key, input, deadline());
    assert.equal(r.status, 503, r.body);
    const body = JSON.parse(r.body) as { code: string };
    assert.equal(body.code, 'provider_unavailable');
    assert.ok(!r.body.includes('nginx') && !r.body.includes('<html'), 'the page never reaches the client');
    assert.equal((await store.get(key))?.status, 'started', 'the row waits for the reconciler');
  }
  // Nothing for the reconciler to finish while the provider still answers the page.
  const stuck = await reconcileOnce(deps, 50);
  assert.equal(stuck.deferred, 1);
  assert.equal((await store.get(key))?.status, 'started');
  assert.equal((await ledgerForReference(sim.providerUrl, key)).length, chargedDuringFault);

  await assertHealedOnce(deps, key);
}

/** The provider heals: the reconciler finishes the deferred row with exactly one provider charge, and a retry replays it. */
async function assertHealedOnce(deps: ReturnType<typeof lifecycleDeps>, key: string): Promise<void> {
  await clearFaults(sim.providerUrl);
  // The deferred row's lease runs one second past the last pass.
  await sleep(1100);
  // Other tests' rows may be finished in the same pass: this key's row is what counts.
  const healed = await reconcileOnce(deps, 50);
  assert.ok(healed.succeeded >= 1 && healed.failed === 0, JSON.stringify(healed));
  const charges = await ledgerForReference(sim.providerUrl, key);
  assert.equal(charges.length, 1, 'exactly one provider charge for the key');
  const row = await store.get(key);
  assert.equal(row?.status, 'succeeded');
  assert.equal(row?.provider_charge_id, charges[0]!.id);
  const replay = await runCharge(deps, key, input, deadline());
  assert.equal(replay.status, 201);
  assert.equal((JSON.parse(replay.body) as { provider_charge_id: string }).provider_charge_id, charges[0]!.id);
  assert.equal((await ledgerForReference(sim.providerUrl, key)).length, 1);
}

describe('a provider answering a 404 HTML page', () => {
  it('before doing any work: the charge stays started, then the healed provider charges it exactly once', async () => {
    await setFaults(sim.providerUrl, {
      errorRate: 1,
      errorStatus: 404,
      errorBody: HTML_404,
      errorContentType: 'text/html',
    });
    await assertUnknownThenReconciled('html-404-before', 0);
    assert.ok(
      logged.some((l) => l.status === 404 && typeof l.body === 'string' && l.body.startsWith('<html>')),
      'the page is in the log',
    );
  });

  it('after charging (the answer is lost behind the page): the reconciler finds that charge, no second one', async () => {
    await setFaults(sim.providerUrl, {
      ambiguousRate: 1,
      ambiguousMode: 'error',
      errorStatus: 404,
      errorBody: HTML_404,
      errorContentType: 'text/html',
    });
    await assertUnknownThenReconciled('html-404-after', 1);
  });

  it("401, 403 and 408 in the provider's own JSON shape are not final either", async () => {
    for (const status of [401, 403, 408]) {
      await setFaults(sim.providerUrl, { errorRate: 1, errorStatus: status });
      await assertUnknownThenReconciled(`json-${status}`, 0);
    }
  });
});

const INVALID = JSON.stringify({ error: { type: 'invalid_request', message: 'amount is not valid' } });
const refused: AttemptOutcome = { kind: 'rejected', status: 400, message: 'amount is not valid' };
const lost: AttemptOutcome = { kind: 'unknown', reason: 'status_5xx', status: 500 };

describe('a validation refusal after a request under the same key may have charged', () => {
  it('within one request (500, then 400 invalid_request on the retry): not final, the row stays started', async () => {
    for (let round = 0; round < 3; round++) {
      const script: AttemptOutcome[] = [lost, refused];
      const provider = new ScriptedProvider((): AttemptOutcome => script.shift() ?? refused);
      const key = `refused-after-500-${round}`;
      const r = await runCharge(lifecycleDeps(store, provider), key, input, deadline());
      assert.equal(r.status, 503, r.body);
      assert.equal((JSON.parse(r.body) as { code: string }).code, 'provider_unavailable');
      assert.equal(provider.calls.length, 2);
      assert.equal((await store.get(key))?.status, 'started', 'nothing stored as failed');
    }
  });

  it('a refusal on the first attempt of a fresh key is still final (402, stored failed)', async () => {
    const provider = new ScriptedProvider(() => refused);
    const r = await runCharge(lifecycleDeps(store, provider), 'refused-fresh', input, deadline());
    assert.equal(r.status, 402, r.body);
    assert.equal((JSON.parse(r.body) as { code: string }).code, 'charge_rejected');
    assert.equal(provider.calls.length, 1);
    assert.equal((await store.get('refused-fresh'))?.status, 'failed');
  });

  it('charged, answer lost, then the provider refuses every retry as invalid: never `failed`; once it answers again, the one charge is found', async () => {
    for (let round = 0; round < 3; round++) {
      const key = `charged-then-refused-${round}`;
      const deps = lifecycleDeps(store, client);
      // Charged, and every answer lost behind a 500.
      await setFaults(sim.providerUrl, { ambiguousRate: 1, ambiguousMode: '500' });
      const first = await runCharge(deps, key, input, deadline());
      assert.equal(first.status, 503, first.body);
      assert.equal((await ledgerForReference(sim.providerUrl, key)).length, 1, 'charged once');
      // Now it refuses the same key as invalid: the client's retry (a takeover
      // of the released row) and the reconciler must not believe it.
      await setFaults(sim.providerUrl, { errorRate: 1, errorStatus: 400, errorBody: INVALID });
      const retry = await runCharge(deps, key, input, deadline());
      assert.equal(retry.status, 503, retry.body);
      assert.equal((await store.get(key))?.status, 'started');
      await sleep(50);
      const pass = await reconcileOnce(deps, 50);
      assert.equal(pass.failed, 0, JSON.stringify(pass));
      assert.equal((await store.get(key))?.status, 'started', 'the reconciler does not store it failed either');
      await assertHealedOnce(deps, key);
    }
  });
});
