/**
 * SIGTERM while the reconciler works through a large backlog of expired
 * leases (what a crash or a collapse leaves behind). The reconciler runs
 * pass after pass while the backlog lasts; before the drain told it to stop,
 * a shutdown waited for every remaining pass (measured once: an exit 7.19 s
 * after SIGTERM, its drain done at 1.46 s).
 *
 * Held here, end to end, with a real Postgres, the simulator and the
 * compiled gateway: the exit comes within one pass of the signal, with code
 * 0 and a finished drain; every row is then final or still `started` (none
 * lost, none half-written), and a second process finishes the rest with the
 * provider charging each key exactly once.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { ChargeStore } from '../../src/charge/store.js';
import { DEV_PROVIDER_KEY_SECRET, providerKeys } from '../../src/charge/provider-key.js';
import { gatewayHarness } from '../support/gateway-harness.js';
import { until } from '../support/http.js';
import { clearFaults, ledger, setFaults } from '../support/simulator.js';

const ROWS = 1200;
const BATCH = 100;
/** Each pass takes at least this long (every row's provider call, in parallel). */
const PROVIDER_MS = 1000;
/**
 * The whole backlog takes ROWS / BATCH = 12 passes of ≥ 1 s (measured with
 * the stop ignored: 7.1 s for 6 passes). Stopping after the current pass
 * took 1.4 s on an idle machine; the bound leaves room for a loaded one
 * (timers 1.4 s late have been seen) and still fails the old behaviour.
 */
const EXIT_BOUND_MS = 6 * PROVIDER_MS;

const h = gatewayHarness({
  RECONCILE_INTERVAL_MS: '100',
  RECONCILE_BATCH: String(BATCH),
  // Every row of a pass is called at once (a connection each, no bulkhead wait, no breaker): a pass lasts one provider call.
  PROVIDER_BULKHEAD: String(2 * BATCH),
  PROVIDER_CONNECTIONS: String(2 * BATCH),
  BREAKERS: 'false',
  PROVIDER_TIMEOUT_MS: String(3 * PROVIDER_MS),
  SHUTDOWN_DELAY_MS: '0',
});

async function statuses(): Promise<Record<string, number>> {
  const rows = await h.db.sql<{ status: string; n: number }[]>`
    SELECT status, count(*)::int AS n FROM charges WHERE idempotency_key LIKE 'backlog-%' GROUP BY status`;
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

void describe('shutdown during a reconcile backlog', () => {
  it('exits within one pass of SIGTERM, loses nothing, and the next process charges each key once', async () => {
    // The backlog: claimed rows whose lease has expired, as a killed process leaves them.
    const store = new ChargeStore(h.db.sql, providerKeys(DEV_PROVIDER_KEY_SECRET));
    const input = { amount: 700, currency: 'USD', source: 'tok_visa' };
    for (let i = 0; i < ROWS; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, async (_, j) => {
          const key = `backlog-${i + j}`;
          const fp = createHash('sha256').update(key).digest('hex');
          const c = await store.claim(key, fp, input, 60_000);
          assert.equal(c.kind, 'claimed');
          await store.release(key, (c as { leaseToken: string }).leaseToken, 0);
        }),
      );
    }
    assert.deepEqual(await statuses(), { started: ROWS });

    await setFaults(h.sim.providerUrl, { latencyMs: PROVIDER_MS });
    try {
      const { t } = await h.gateway();
      // The first pass is under way once the provider has been asked.
      await until(
        'the reconciler calls the provider',
        async () => (await ledger(h.sim.providerUrl)).attempts > 0,
        10_000,
      );
      const signalledAt = performance.now();
      const code = await t.stop('SIGTERM', 30_000);
      const exitMs = performance.now() - signalledAt;
      h.targets.splice(h.targets.indexOf(t), 1);
      assert.equal(code, 0, t.logs().slice(-2000));
      assert.ok(
        t.logLines().some((l) => l.msg === 'drain finished'),
        'the drain finished (not the grace timer)',
      );
      assert.ok(
        exitMs < EXIT_BOUND_MS,
        `exited ${exitMs.toFixed(0)} ms after SIGTERM; the whole backlog would take ${ROWS / BATCH} passes of ≥ ${PROVIDER_MS} ms`,
      );
      // Every row is accounted for: finished, or left started for the next process.
      const after1 = await statuses();
      assert.equal((after1.started ?? 0) + (after1.succeeded ?? 0), ROWS, JSON.stringify(after1));
      assert.ok((after1.started ?? 0) > 0, `the exit left part of the backlog: ${JSON.stringify(after1)}`);

      // The next process finishes the rest (what the first left was never leased again).
      await clearFaults(h.sim.providerUrl);
      const { t: next } = await h.gateway();
      await until('the backlog is finished', async () => (await statuses()).succeeded === ROWS, 60_000);
      const l = await ledger(h.sim.providerUrl);
      assert.equal(l.created, ROWS, 'one provider charge per key');
      assert.equal(l.keys, ROWS);
      assert.deepEqual(l.duplicates, []);
      assert.equal(await next.stop('SIGTERM', 15_000), 0);
      h.targets.splice(h.targets.indexOf(next), 1);
    } finally {
      await clearFaults(h.sim.providerUrl);
    }
  });
});
