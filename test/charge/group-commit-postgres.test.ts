/**
 * Group commit against a real Postgres: every request of a batch gets the
 * answer ChargeStore would have given it alone, in fewer statements, and
 * within the lifecycle's rules (deadlines, DB slots, the reconciler).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupCommit } from '../../src/charge/group-commit.js';
import { BatchStore } from '../../src/charge/batch-store.js';
import { ChargeStore, type ClaimResult, type StoredOutcome } from '../../src/charge/store.js';
import { providerKeys } from '../../src/charge/provider-key.js';
import { DbBusyError, runCharge, type DbGate, type LifecycleDeps } from '../../src/charge/lifecycle.js';
import { reconcileOnce } from '../../src/charge/reconciler.js';
import type { Provider } from '../../src/downstream/provider-client.js';
import type { Reply } from '../../src/errors/catalogue.js';
import { ManualClock, systemClock, type Clock } from '../../src/lib/clock.js';
import { holdRecordedRow, holdRows, rowXmax, startTestDb, withinMs, type TestDb } from '../support/postgres.js';
import { lifecycleDeps, ScriptedProvider } from '../support/lifecycle.js';

let db: TestDb;
let store: ChargeStore;
const providerKey = providerKeys('group-commit-test-secret-0123');
before(async () => {
  db = await startTestDb();
  store = new ChargeStore(db.sql, providerKey);
});
after(async () => {
  await db?.close();
});

const input = { amount: 500, currency: 'USD', source: 'tok_visa' };
const soon = () => systemClock.epochMs() + 5000;

interface Counts {
  claim: { statements: number; requests: number };
  record: { statements: number; requests: number };
}

function commits(o: { gate?: DbGate; maxWaitMs?: number; clock?: Clock } = {}) {
  const counts: Counts = { claim: { statements: 0, requests: 0 }, record: { statements: 0, requests: 0 } };
  const gc = new GroupCommit(db.sql, {
    clock: systemClock,
    providerKey,
    ...o,
    count: (phase, what, n) => (counts[phase][what] += n),
  });
  return { gc, counts };
}

/** A gate that holds every batch until opened, and counts the slots taken. */
function heldGate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  const g = { slots: 0, waiting: 0, open: () => open() };
  const gate: DbGate = async (_t, phase) => {
    g.slots++;
    g.waiting++;
    await opened;
    return phase(db.sql);
  };
  return { g, gate };
}

const deps = (provider: Provider, commits?: GroupCommit, db?: DbGate, clock?: Clock): LifecycleDeps =>
  lifecycleDeps(store, provider, {
    ...(commits ? { commits } : {}),
    ...(db ? { db } : {}),
    ...(clock ? { clock } : {}),
  });

/** Until `done()` holds, letting promise callbacks and I/O run (no clock time passes). */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((r) => setImmediate(r));
}

test('concurrent claims of distinct keys share statements and each gets its own claim', async () => {
  const { gc, counts } = commits();
  const keys = Array.from({ length: 40 }, (_, i) => `gc-d-${i}`);
  const results = await Promise.all(
    keys.map((k, i) => gc.claim(k, `fp${i}`, { ...input, amount: 100 + i }, 60_000, soon())),
  );
  assert.equal(counts.claim.requests, 40);
  assert.ok(counts.claim.statements < 40, `${counts.claim.statements} statements for 40 claims`);
  const rows = await db.sql<
    {
      idempotency_key: string;
      charge_id: string;
      provider_key: string;
      lease_token: string;
      amount: number;
      fingerprint: string;
    }[]
  >`
    SELECT idempotency_key, charge_id, provider_key, lease_token::text, amount, fingerprint FROM charges WHERE idempotency_key LIKE 'gc-d-%'`;
  const byKey = new Map(rows.map((r) => [r.idempotency_key, r]));
  results.forEach((r, i) => {
    assert.equal(r.kind, 'claimed');
    if (r.kind !== 'claimed') return;
    const row = byKey.get(keys[i]!)!;
    assert.equal(r.takeover, false);
    assert.equal(r.chargeId, row.charge_id);
    assert.equal(r.providerKey, row.provider_key);
    assert.equal(r.providerKey, providerKey(keys[i]!, `fp${i}`));
    assert.equal(r.leaseToken, row.lease_token);
    assert.equal(row.amount, 100 + i);
    assert.equal(row.fingerprint, `fp${i}`);
  });
  assert.equal(new Set(results.map((r) => (r.kind === 'claimed' ? r.chargeId : ''))).size, 40);
});

test('one DB slot per batch, not per request', async () => {
  const { g, gate } = heldGate();
  const { gc, counts } = commits({ gate });
  const ps = Array.from({ length: 20 }, (_, i) => gc.claim(`gc-slot-${i}`, 'fp', input, 60_000, soon()));
  g.open();
  const rs = await Promise.all(ps);
  assert.ok(rs.every((r) => r.kind === 'claimed'));
  assert.equal(g.slots, 2, 'the first claim alone, then the 19 that queued behind it');
  assert.equal(counts.claim.statements, 2);
});

test('the same key twice in one batch: exactly one is claimed, the other is in progress', async () => {
  const { gc } = commits();
  const hold = gc.claim('gc-hold-1', 'fp', input, 60_000, soon());
  const a = gc.claim('gc-dup', 'fp', input, 60_000, soon());
  const b = gc.claim('gc-dup', 'fp', input, 60_000, soon());
  const c = gc.claim('gc-dup', 'other-fp', input, 60_000, soon());
  await hold;
  const [ra, rb, rc] = await Promise.all([a, b, c]);
  // Exactly one of the two claims it. Which one is not promised: a batch held
  // past maxWaitMs lets the next one leave early, so the later copy's batch
  // may commit first.
  assert.deepEqual([ra.kind, rb.kind].sort(), ['claimed', 'in_progress']);
  const waiting = ra.kind === 'in_progress' ? ra : rb;
  assert.ok(waiting.kind === 'in_progress' && waiting.retryAfterMs > 50_000);
  assert.deepEqual(rc, { kind: 'mismatch' });
});

test('mismatch, replay, in progress and takeover inside one batch, beside fresh claims', async () => {
  await store.claim('gc-mm', 'fp', input, 60_000);
  await store.claim('gc-done', 'fp', input, 60_000);
  await store.record('gc-done', 'declined', 'pch_d', 402, '{"declined":true}');
  await store.claim('gc-held', 'fp', input, 60_000);
  const old = await store.claim('gc-exp', 'fp', input, 60_000);
  await store.claim('gc-exp-mm', 'fp', input, 60_000);
  await db.sql`UPDATE charges SET lease_expires_at = now() - interval '1 second' WHERE idempotency_key IN ('gc-exp', 'gc-exp-mm')`;

  const { gc, counts } = commits();
  const hold = gc.claim('gc-hold-2', 'fp', input, 60_000, soon());
  const batch = [
    gc.claim('gc-mm', 'different', input, 60_000, soon()),
    gc.claim('gc-done', 'fp', input, 60_000, soon()),
    gc.claim('gc-held', 'fp', input, 60_000, soon()),
    gc.claim('gc-exp', 'fp', input, 60_000, soon()),
    gc.claim('gc-exp-mm', 'different', input, 60_000, soon()),
    gc.claim('gc-new', 'fp', input, 60_000, soon()),
  ];
  await hold;
  const [mm, done, held, exp, expMm, fresh] = (await Promise.all(batch)) as [
    ClaimResult,
    ClaimResult,
    ClaimResult,
    ClaimResult,
    ClaimResult,
    ClaimResult,
  ];
  assert.equal(
    counts.claim.statements,
    4,
    'the lone claim; then the batch, one read for the rows it did not insert, one takeover of the expired lease',
  );
  assert.deepEqual(mm, { kind: 'mismatch' });
  assert.deepEqual(done, { kind: 'replay', responseStatus: 402, responseBody: '{"declined":true}' });
  assert.equal(held.kind, 'in_progress');
  assert.ok(held.kind === 'in_progress' && held.retryAfterMs > 50_000);
  assert.ok(exp.kind === 'claimed' && old.kind === 'claimed');
  assert.equal(exp.takeover, true);
  assert.equal(exp.chargeId, old.chargeId);
  assert.equal(exp.providerKey, old.providerKey);
  assert.notEqual(exp.leaseToken, old.leaseToken);
  assert.deepEqual(expMm, { kind: 'mismatch' }, 'an expired lease is not taken over with another body');
  assert.ok(fresh.kind === 'claimed' && !fresh.takeover);
  const attempts = await db.sql<{ attempts: number }[]>`SELECT attempts FROM charges WHERE idempotency_key = 'gc-exp'`;
  assert.equal(attempts[0]!.attempts, 2);
  // Leave no expired lease behind for the reconciler tests below.
  await db.sql`DELETE FROM charges WHERE idempotency_key = 'gc-exp-mm'`;
});

test('a batch answers stored and in-progress keys while another transaction holds their rows, and writes no lock', async () => {
  await store.claim('gc-lock-done', 'fp', input, 60_000);
  await store.record('gc-lock-done', 'succeeded', 'pch_l', 201, '{"l":1}');
  await store.claim('gc-lock-held', 'fp', input, 60_000);
  const keys = ['gc-lock-done', 'gc-lock-held'];
  const before = await rowXmax(db.sql, keys);
  const batch = new BatchStore(db.sql, providerKey);
  const claimAll = () =>
    batch.claimMany(keys.map((key) => ({ key, fp: 'fp', input, leaseMs: 60_000 })).concat(fresh()));
  let n = 0;
  const fresh = () => [{ key: `gc-lock-new-${n++}`, fp: 'fp', input, leaseMs: 60_000 }];
  for (let i = 0; i < 5; i++) await claimAll();
  assert.deepEqual(await rowXmax(db.sql, keys), before, 'answering a stored key wrote a row lock');
  const held = await holdRows(db.sql, keys);
  try {
    const answered = await withinMs(2_000, claimAll());
    assert.notEqual(answered, 'blocked', 'the batch waited for a row lock another transaction holds');
    const [done, inProgress, created] = answered as ClaimResult[];
    assert.deepEqual(done, { kind: 'replay', responseStatus: 201, responseBody: '{"l":1}' });
    assert.equal(inProgress!.kind, 'in_progress');
    assert.equal(created!.kind, 'claimed');
  } finally {
    await held.release();
  }
});

test('batched record: first writer wins, ours is stored otherwise; a missing row fails alone', async () => {
  for (const k of ['gc-r1', 'gc-r2', 'gc-r3']) await store.claim(k, 'fp', input, 60_000);
  await store.record('gc-r2', 'succeeded', 'pch_first', 201, '{"first":true}');
  const { gc, counts } = commits();
  const hold = gc.record('gc-r1', 'succeeded', 'pch_1', 201, '{"r1":true}', 1000);
  const batch = [
    gc.record('gc-r2', 'declined', 'pch_second', 402, '{"second":true}', 1000),
    gc.record('gc-r3', 'failed', null, 402, '{"r3":true}', 1000),
    gc.record('gc-r-none', 'succeeded', 'pch_x', 201, '{}', 1000),
  ];
  assert.deepEqual(await hold, { kind: 'replay', responseStatus: 201, responseBody: '{"r1":true}' });
  const [r2, r3, none] = (await Promise.allSettled(batch)) as [
    PromiseSettledResult<StoredOutcome>,
    PromiseSettledResult<StoredOutcome>,
    PromiseSettledResult<StoredOutcome>,
  ];
  assert.deepEqual(r2, {
    status: 'fulfilled',
    value: { kind: 'replay', responseStatus: 201, responseBody: '{"first":true}' },
  });
  assert.deepEqual(r3, {
    status: 'fulfilled',
    value: { kind: 'replay', responseStatus: 402, responseBody: '{"r3":true}' },
  });
  assert.equal(none.status, 'rejected');
  assert.match(String((none as PromiseRejectedResult).reason), /gc-r-none is missing/);
  assert.equal(counts.record.requests, 4);
  const rows = await db.sql<
    {
      idempotency_key: string;
      status: string;
      provider_charge_id: string | null;
      lease_token: string | null;
      completed: boolean;
    }[]
  >`
    SELECT idempotency_key, status, provider_charge_id, lease_token, completed_at IS NOT NULL AS completed FROM charges
    WHERE idempotency_key IN ('gc-r1', 'gc-r2', 'gc-r3') ORDER BY idempotency_key`;
  assert.deepEqual(
    rows.map((r) => ({ ...r })),
    [
      {
        idempotency_key: 'gc-r1',
        status: 'succeeded',
        provider_charge_id: 'pch_1',
        lease_token: null,
        completed: true,
      },
      {
        idempotency_key: 'gc-r2',
        status: 'succeeded',
        provider_charge_id: 'pch_first',
        lease_token: null,
        completed: true,
      },
      { idempotency_key: 'gc-r3', status: 'failed', provider_charge_id: null, lease_token: null, completed: true },
    ],
  );
});

test('a record that lost the race to a writer committing meanwhile reads the stored outcome', async () => {
  await store.claim('gc-race', 'fp', input, 60_000);
  await store.claim('gc-race-2', 'fp', input, 60_000);
  // Hold the row lock in another transaction that records first: our batched
  // update waits for it, then finds the row final and reads its outcome.
  const other = await holdRecordedRow(db.sql, 'gc-race', 'winner');
  let statements = 0;
  const store2 = new BatchStore(db.sql, providerKey, () => statements++);
  const ours = store2.recordMany([
    { key: 'gc-race', status: 'declined', providerChargeId: 'p', responseStatus: 402, responseBody: 'loser' },
    { key: 'gc-race-2', status: 'succeeded', providerChargeId: 'p2', responseStatus: 201, responseBody: 'ours' },
  ]);
  // Let our update reach the lock before the winner commits.
  await other.commitWhenBlocked('%UPDATE charges c%');
  assert.deepEqual(await ours, [
    { kind: 'replay', responseStatus: 201, responseBody: 'winner' },
    { kind: 'replay', responseStatus: 201, responseBody: 'ours' },
  ]);
  assert.equal(statements, 2, 'the update found nothing to do in its snapshot; a second read found the winner');
});

test('a failing statement rejects every request of its batch; the next batch works', async () => {
  const { gc } = commits();
  const hold = gc.claim('gc-err-0', 'fp', input, 60_000, soon());
  // int4 overflow: Postgres rejects the whole statement.
  const batch = [
    gc.claim('gc-err-1', 'fp', input, 60_000, soon()),
    gc.claim('gc-err-2', 'fp', { ...input, amount: 2 ** 40 }, 60_000, soon()),
  ];
  // Settle the batch from the start: it may fail before hold's batch commits.
  const settling = Promise.allSettled(batch);
  await hold;
  const settled = await settling;
  assert.ok(settled.every((s) => s.status === 'rejected'));
  assert.equal(await store.get('gc-err-1'), undefined, 'nothing of the failed batch was stored');
  const next = await Promise.all([
    gc.claim('gc-err-1', 'fp', input, 60_000, soon()),
    gc.claim('gc-err-3', 'fp', input, 60_000, soon()),
  ]);
  assert.ok(next.every((r) => r.kind === 'claimed'));
});

test('lifecycle over group commit: a failing batch answers db_unavailable; a busy DB too', async () => {
  const p = new ScriptedProvider(() => ({ kind: 'succeeded', providerChargeId: 'pch' }));
  const busy: DbGate = async () => {
    throw new DbBusyError();
  };
  const { gc } = commits({ gate: busy });
  const r = await runCharge(deps(p, gc), 'gc-busy', input, soon());
  assert.equal(r.status, 503);
  assert.equal((JSON.parse(r.body) as { code: string }).code, 'db_unavailable');
  assert.equal(p.calls.length, 0);
});

test('lifecycle over group commit: concurrent charges succeed, are recorded and replay', async () => {
  const p = new ScriptedProvider(() => ({ kind: 'succeeded', providerChargeId: 'pch_ok' }));
  const { gc, counts } = commits();
  const d = deps(p, gc);
  const keys = Array.from({ length: 30 }, (_, i) => `gc-life-${i}`);
  const replies = await Promise.all(keys.map((k) => runCharge(d, k, input, soon())));
  assert.ok(replies.every((r) => r.status === 201));
  assert.ok(counts.claim.statements < 30 && counts.record.statements < 30, JSON.stringify(counts));
  const rows = await db.sql`SELECT 1 FROM charges WHERE idempotency_key LIKE 'gc-life-%' AND status = 'succeeded'`;
  assert.equal(rows.length, 30);
  const again = await Promise.all(keys.map((k) => runCharge(d, k, input, soon())));
  assert.ok(
    again.every(
      (r, i) => r.status === 201 && r.body === replies[i]!.body && r.headers?.['Idempotent-Replayed'] === 'true',
    ),
  );
  assert.equal(p.calls.length, 30);
});

test("one caller's deadline: 504 for it, the others of its batch are unaffected, nothing lost", async () => {
  const clock = new ManualClock();
  const p = new ScriptedProvider(() => ({ kind: 'succeeded', providerChargeId: 'pch_dl' }));
  const { g, gate } = heldGate();
  // No early batch beside the held one: the others stay queued behind it.
  const { gc } = commits({ gate, maxWaitMs: 60_000, clock });
  const d = deps(p, gc, undefined, clock);
  const patientBy = clock.epochMs() + 5000;
  const blocker = runCharge(d, 'gc-dl-0', input, patientBy);
  // Queued behind the held batch: one with a short deadline, two patient ones.
  let short: Reply | undefined;
  void runCharge(d, 'gc-dl-short', input, clock.epochMs() + 30).then((r) => (short = r));
  const patient = ['gc-dl-1', 'gc-dl-2'].map((k) => runCharge(d, k, input, patientBy));
  await until(() => g.slots === 1);
  clock.advance(29);
  await new Promise((r) => setImmediate(r));
  assert.equal(short, undefined, 'not before its deadline');
  clock.advance(1);
  await until(() => short !== undefined);
  assert.equal(short!.status, 504);
  assert.equal((JSON.parse(short!.body) as { code: string }).code, 'deadline_exceeded');
  g.open();
  const others = await Promise.all([blocker, ...patient]);
  assert.ok(others.every((x) => x.status === 201));
  // It expired while queued: never sent, so never claimed, never charged.
  assert.equal(await store.get('gc-dl-short'), undefined);
  assert.equal(p.calls.length, 3);
  await gc.close();
});

test('requests queued behind a stalled batch leave beside it after maxWaitMs, each with its own deadline', async () => {
  const p = new ScriptedProvider(() => ({ kind: 'succeeded', providerChargeId: 'pch_mw' }));
  const { g, gate } = heldGate();
  const { gc } = commits({ gate, maxWaitMs: 5 });
  const d = deps(p, gc);
  const stalled = runCharge(d, 'gc-mw-0', input, soon());
  const queued = runCharge(d, 'gc-mw-1', input, soon());
  // The second batch leaves without waiting for the first to return.
  while (g.slots < 2) await new Promise((r) => setImmediate(r));
  g.open();
  assert.deepEqual(
    (await Promise.all([stalled, queued])).map((r) => r.status),
    [201, 201],
  );
});

test("a claim sent before its caller's deadline and committed after it stays started for the reconciler", async () => {
  const clock = new ManualClock();
  const p = new ScriptedProvider(() => ({ kind: 'succeeded', providerChargeId: 'pch_late' }));
  const { g, gate } = heldGate();
  const { gc } = commits({ gate, clock });
  const d = deps(p, gc, undefined, clock);
  // Alone in its batch, which waits for a slot while the caller gives up.
  const late = runCharge(d, 'gc-late', input, clock.epochMs() + 30);
  await until(() => g.slots === 1);
  clock.advance(30);
  const r = await late;
  assert.equal(r.status, 504);
  g.open();
  await gc.close();
  const row = await store.get('gc-late');
  assert.equal(row?.status, 'started');
  assert.equal(p.calls.length, 0);
  await db.sql`UPDATE charges SET lease_expires_at = now() - interval '1 second' WHERE idempotency_key = 'gc-late'`;
  const report = await reconcileOnce(deps(p), 10);
  assert.equal(report.succeeded, 1);
  assert.deepEqual(p.calls, [row!.provider_key]);
  assert.equal((await store.get('gc-late'))?.status, 'succeeded');
});
