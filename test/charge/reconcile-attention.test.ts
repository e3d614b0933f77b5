/**
 * The reconciler against a real Postgres and a provider that never knows:
 * a row is asked again with growing gaps, lands in needs_attention after the
 * last try, and is never charged again — not by the reconciler, not by a
 * client retry (single statements or group commit). And an error in the
 * claim path is logged once and counted, without card data or the raw key.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { errorReporter, type ErrorStage } from '../../src/charge/error-report.js';
import { GroupCommit } from '../../src/charge/group-commit.js';
import { KEY_HASH_SQL, keyHash } from '../../src/charge/key-hash.js';
import { runCharge, type DbGate, type LifecycleDeps } from '../../src/charge/lifecycle.js';
import { reconcileCeilingMs, type ReconcilePolicy } from '../../src/charge/reconcile-policy.js';
import { reconcileOnce, type ReconcilerDeps, type ReconcileReport } from '../../src/charge/reconciler.js';
import { ChargeStore } from '../../src/charge/store.js';
import type { AttemptOutcome } from '../../src/downstream/provider-client.js';
import { systemClock } from '../../src/lib/clock.js';
import { seededRandom } from '../../src/lib/random.js';
import { lifecycleDeps, ScriptedProvider } from '../support/lifecycle.js';
import { capturedLogger } from '../support/log-capture.js';
import { startTestDb, type TestDb } from '../support/postgres.js';
import { DEV_PROVIDER_KEY_SECRET, providerKeys } from '../../src/charge/provider-key.js';

let db: TestDb;
let store: ChargeStore;
before(async () => {
  db = await startTestDb();
  store = new ChargeStore(db.sql, providerKeys(DEV_PROVIDER_KEY_SECRET));
});
after(async () => {
  await db?.close();
});

const input = { amount: 500, currency: 'USD', source: 'tok_visa' };
const soon = () => systemClock.epochMs() + 2000;
const unknown = (): AttemptOutcome => ({ kind: 'unknown', reason: 'timeout' });
const code = (body: string) => (JSON.parse(body) as { code?: string }).code;

function reconciler(provider: ScriptedProvider, reconcile: ReconcilePolicy, seed = 1) {
  const cap = capturedLogger();
  const counts = new Map<ErrorStage, number>();
  const onError = errorReporter({
    clock: systemClock,
    log: cap.log,
    count: (s) => counts.set(s, (counts.get(s) ?? 0) + 1),
  });
  const deps: ReconcilerDeps = {
    ...lifecycleDeps(store, provider),
    random: seededRandom(seed),
    reconcile,
    onError,
    log: cap.log,
  };
  return { deps, cap, counts };
}

async function row(key: string) {
  const rows = await db.sql<
    { status: string; reconcile_attempts: number; lease: boolean; delay_ms: number | null; completed: boolean }[]
  >`
    SELECT status, reconcile_attempts, lease_token IS NOT NULL AS lease, completed_at IS NOT NULL AS completed,
           (EXTRACT(EPOCH FROM (lease_expires_at - updated_at)) * 1000)::float8 AS delay_ms
    FROM charges WHERE idempotency_key = ${key}`;
  return rows[0]!;
}

test('an outcome that stays unknown is asked again with growing gaps, then handed to an operator and never asked again', async () => {
  const key = 'attention-order-0001';
  const provider = new ScriptedProvider(unknown);
  // The client's own charge: unknown, so the row stays started and is released to the reconciler.
  const first = await runCharge(lifecycleDeps(store, provider), key, input, soon());
  assert.equal(first.status, 503);
  const policy = { baseMs: 80, capMs: 320, maxAttempts: 5 };
  const { deps, cap, counts } = reconciler(provider, policy);
  // When each leasing run started and when it returned: the lease happened between the two.
  const startedAt: number[] = [];
  const triedAt: number[] = [];
  const delays: number[] = [];
  const reports: ReconcileReport[] = [];
  const until = systemClock.now() + 15_000;
  while ((await row(key)).status === 'started' && systemClock.now() < until) {
    const start = systemClock.now();
    const r = await reconcileOnce(deps, 10);
    if (r.leased > 0) {
      startedAt.push(start);
      triedAt.push(systemClock.now());
      reports.push(r);
      const after = await row(key);
      if (after.status === 'started') delays.push(after.delay_ms!);
      assert.equal(after.reconcile_attempts, triedAt.length, 'every leased try is counted');
    }
    await sleep(5);
  }
  const done = await row(key);
  assert.equal(done.status, 'needs_attention');
  assert.equal(triedAt.length, policy.maxAttempts, 'exactly maxAttempts tries');
  assert.equal(done.reconcile_attempts, policy.maxAttempts);
  assert.equal(done.lease, false);
  assert.equal(done.completed, false, 'not final: no completion time, the reaper leaves it');
  assert.deepEqual(
    reports.map((r) => [r.deferred, r.needsAttention]),
    [
      [1, 0],
      [1, 0],
      [1, 0],
      [1, 0],
      [0, 1],
    ],
  );
  // The waits stored after tries 1..4: within [c/2, c] of the doubling, capped ceiling, and never shrinking.
  assert.equal(delays.length, policy.maxAttempts - 1);
  delays.forEach((d, i) => {
    const c = reconcileCeilingMs(i + 1, policy);
    assert.ok(d >= c / 2 - 1 && d <= c + 1, `wait after try ${i + 1}: ${d} ms, ceiling ${c}`);
    if (i > 0) assert.ok(d >= delays[i - 1]! - 1, `waits ${delays.join(', ')}`);
  });
  // And the reconciler really waited them out: from the start of the run
  // that wrote a wait to the end of the run that leased again is at least
  // that wait. (Between the two ends it can be less by however long the
  // first run took to return after its write: a loaded machine made that
  // 5 ms and more.) A reconciler that ignored the wait would lease again
  // within a poll, 5-20 ms, well under the 40 ms the shortest wait is.
  for (let i = 1; i < triedAt.length; i++)
    assert.ok(
      triedAt[i]! - startedAt[i - 1]! >= delays[i - 1]! - 1,
      `gap ${i}: ${triedAt[i]! - startedAt[i - 1]!} ms < ${delays[i - 1]} ms`,
    );
  // One error line for the hand-over, with the key's hash and not the key; nothing counted as an error.
  const attention = cap.lines().filter((l) => String(l.msg).startsWith('charge needs attention'));
  assert.equal(attention.length, 1);
  assert.equal(attention[0]!.key_hash, keyHash(key));
  assert.equal(attention[0]!.reconcile_attempts, policy.maxAttempts);
  assert.ok(!cap.raw().includes(key));
  assert.equal(counts.size, 0);

  // Never again: the reconciler leases nothing, however often it runs.
  const calls = provider.calls.length;
  for (let i = 0; i < 10; i++) {
    assert.equal((await reconcileOnce(deps, 10)).leased, 0);
    await sleep(policy.capMs / 5);
  }
  // A client retry gets a clear answer and no replay; the provider is not called.
  const retry = await runCharge(lifecycleDeps(store, provider), key, input, soon());
  assert.equal(retry.status, 409);
  assert.equal(code(retry.body), 'charge_needs_attention');
  assert.equal(retry.headers?.['Idempotent-Replayed'], undefined);
  assert.equal(retry.headers?.['Retry-After'], undefined, 'retrying does not help until an operator acts');
  // A different body under the key is still a 422 first.
  assert.equal((await runCharge(lifecycleDeps(store, provider), key, { ...input, amount: 501 }, soon())).status, 422);
  // A late writer (one that claimed before the hand-over) neither overwrites it nor gets a row-less answer.
  await assert.rejects(store.record(key, 'succeeded', 'pch_late', 201, '{}'), /is missing/);
  assert.equal((await row(key)).status, 'needs_attention');
  assert.equal(provider.calls.length, calls, 'the provider was not called after the hand-over');

  // Visible: the backlog query counts it and names it by the same hash SQL computes.
  const b = await store.backlog();
  assert.ok(b.needsAttention >= 1);
  assert.ok(b.oldestNeedingAttention.some((o) => o.key === key && o.reconcileAttempts === policy.maxAttempts));
  const sqlHash = await db.sql.unsafe<{ h: string }[]>(
    `SELECT ${KEY_HASH_SQL} AS h FROM charges WHERE idempotency_key = $1`,
    [key],
  );
  assert.equal(sqlHash[0]!.h, keyHash(key), 'the runbook query finds the row from the logged hash');

  // The runbook's resolution: requeue to the reconciler, which records what the provider now says, under the same key.
  await db.sql.unsafe(
    `UPDATE charges SET status = 'started', reconcile_attempts = 0, lease_expires_at = now(), updated_at = now() WHERE status = 'needs_attention' AND idempotency_key = $1`,
    [key],
  );
  provider.next = () => ({ kind: 'succeeded', providerChargeId: 'pch_resolved' });
  const resolved = await reconcileOnce(deps, 10);
  assert.equal(resolved.succeeded, 1);
  assert.equal(new Set(provider.calls).size, 1, 'one provider key from the first try to the last');
  const replay = await runCharge(lifecycleDeps(store, provider), key, input, soon());
  assert.equal(replay.status, 201);
  assert.equal(replay.headers?.['Idempotent-Replayed'], 'true');
});

test('a key needing attention answers 409 through group commit too, alone or inside a batch', async () => {
  const key = 'attention-gc-1';
  await store.claim(key, 'fp-gc', input, 60_000);
  await db.sql`UPDATE charges SET status = 'needs_attention', lease_token = NULL, lease_expires_at = NULL WHERE idempotency_key = ${key}`;
  const provider = new ScriptedProvider(() => ({ kind: 'succeeded', providerChargeId: 'pch_gc' }));
  // The first batch is held back a moment so the next requests share one statement.
  let first = true;
  const gate: DbGate = async (_t, phase) => {
    if (first) {
      first = false;
      await sleep(50);
    }
    return phase(db.sql);
  };
  const gc = new GroupCommit(db.sql, { clock: systemClock, gate, providerKey: providerKeys(DEV_PROVIDER_KEY_SECRET) });
  const deps: LifecycleDeps = lifecycleDeps(store, provider, { commits: gc });
  const alone = await runCharge(deps, key, input, soon(), 'fp-gc');
  assert.equal(alone.status, 409);
  const [warm, ...batch] = await Promise.all([
    runCharge(deps, 'attention-gc-warm', input, soon()),
    runCharge(deps, key, input, soon(), 'fp-gc'),
    runCharge(deps, 'attention-gc-2', input, soon()),
    runCharge(deps, 'attention-gc-3', input, soon()),
  ]);
  assert.equal(warm!.status, 201);
  assert.deepEqual(
    batch.map((r) => r.status),
    [409, 201, 201],
  );
  assert.equal(code(batch[0]!.body), 'charge_needs_attention');
  assert.equal(provider.calls.length, 3, 'the provider saw the three fresh keys only');
  await gc.close();
});

test('tries refused before reaching the provider (open breaker) do not count towards the cap', async () => {
  const key = 'attention-refused';
  await store.claim(key, 'fp', input, 1);
  await db.sql`UPDATE charges SET lease_expires_at = now() - interval '1 second' WHERE idempotency_key = ${key}`;
  const provider = new ScriptedProvider(() => ({ kind: 'refused', code: 'breaker_open' }));
  const { deps } = reconciler(provider, { baseMs: 1, capMs: 1, maxAttempts: 2 });
  let leased = 0;
  for (let i = 0; i < 8; i++) {
    leased += (await reconcileOnce(deps, 10)).leased;
    await sleep(5);
  }
  assert.ok(leased >= 6, `leased ${leased} times`);
  const r = await row(key);
  assert.equal(r.status, 'started');
  assert.equal(r.reconcile_attempts, 0);
  // Once the provider is reachable and still cannot tell, the cap applies.
  provider.next = unknown;
  for (let i = 0; i < 8 && (await row(key)).status === 'started'; i++) {
    await reconcileOnce(deps, 10);
    await sleep(5);
  }
  assert.equal((await row(key)).status, 'needs_attention');
  assert.equal((await row(key)).reconcile_attempts, 2);
});

test('a final answer wins over the cap: a row past it is recorded, not handed over', async () => {
  const key = 'attention-late-answer';
  await store.claim(key, 'fp', input, 1);
  await db.sql`UPDATE charges SET lease_expires_at = now() - interval '1 second', reconcile_attempts = 50 WHERE idempotency_key = ${key}`;
  const { deps } = reconciler(new ScriptedProvider(() => ({ kind: 'succeeded', providerChargeId: 'pch_found' })), {
    baseMs: 1,
    capMs: 1,
    maxAttempts: 3,
  });
  const report = await reconcileOnce(deps, 10);
  assert.ok(report.succeeded >= 1);
  assert.equal((await row(key)).status, 'succeeded');
});

test('an error in the claim path is logged once and counted, without card data or the raw key', async () => {
  const key = 'raw-key-that-must-not-be-logged';
  const secret = {
    amount: 7_777_777,
    currency: 'USD',
    source: 'tok_secret_4242424242424242',
    description: 'card holder Jane Roe',
  };
  // A real Postgres error whose detail carries the whole failing row (key, request, card token).
  await db.sql`ALTER TABLE charges ADD CONSTRAINT test_refuse_amount CHECK (amount <> 7777777) NOT VALID`;
  try {
    for (const path of ['single statements', 'group commit'] as const) {
      const cap = capturedLogger();
      const counts = new Map<ErrorStage, number>();
      const gc =
        path === 'group commit'
          ? new GroupCommit(db.sql, { clock: systemClock, providerKey: providerKeys(DEV_PROVIDER_KEY_SECRET) })
          : undefined;
      const deps: LifecycleDeps = {
        ...lifecycleDeps(
          store,
          new ScriptedProvider(() => ({ kind: 'succeeded', providerChargeId: 'never' })),
          gc ? { commits: gc } : {},
        ),
        onError: errorReporter({
          clock: systemClock,
          log: cap.log,
          count: (s) => counts.set(s, (counts.get(s) ?? 0) + 1),
        }),
      };
      const r = await runCharge(deps, `${key}-${path}`, secret, soon());
      await gc?.close();
      await sleep(10);
      assert.equal(r.status, 503, path);
      assert.equal(code(r.body), 'db_unavailable');
      const lines = cap.lines();
      assert.equal(lines.length, 1, `${path}: ${cap.raw()}`);
      assert.equal(lines[0]!.stage, 'claim');
      assert.equal(lines[0]!.key_hash, keyHash(`${key}-${path}`));
      assert.equal((lines[0]!.error as { code: string }).code, '23514', 'the SQLSTATE says what failed');
      for (const leak of ['tok_secret', '4242424242424242', 'Jane Roe', key])
        assert.ok(!cap.raw().includes(leak), `${path}: the log holds ${leak}: ${cap.raw()}`);
      assert.deepEqual([...counts], [['claim', 1]]);
    }
  } finally {
    await db.sql`ALTER TABLE charges DROP CONSTRAINT test_refuse_amount`;
  }
  // A programming error (a TypeError in our own code) takes the same path.
  const cap = capturedLogger();
  const counts = new Map<ErrorStage, number>();
  // Every statement runs through the DB gate: a gate whose phase throws is a bug anywhere on the claim path.
  const broken: DbGate = async () => {
    throw new TypeError("Cannot read properties of undefined (reading 'charge_id')");
  };
  const deps: LifecycleDeps = {
    ...lifecycleDeps(store, new ScriptedProvider(unknown)),
    db: broken,
    onError: errorReporter({ clock: systemClock, log: cap.log, count: (s) => counts.set(s, (counts.get(s) ?? 0) + 1) }),
  };
  assert.equal((await runCharge(deps, 'typeerror-key', input, soon())).status, 503);
  await sleep(10);
  assert.equal(cap.lines().length, 1);
  assert.equal((cap.lines()[0]!.error as { type: string }).type, 'TypeError');
  assert.equal(counts.get('claim'), 1);
});
