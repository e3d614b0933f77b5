import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChargeStore, WrongRowError, type ClaimResult } from '../../src/charge/store.js';
import { connect } from '../../src/db/connect.js';
import { providerKeys } from '../../src/charge/provider-key.js';
import { runCharge, type LifecycleDeps } from '../../src/charge/lifecycle.js';
import { reconcileOnce } from '../../src/charge/reconciler.js';
import type { Provider } from '../../src/downstream/provider-client.js';
import { systemClock } from '../../src/lib/clock.js';
import { holdRecordedRow, holdRows, rowXmax, startTestDb, withinMs, type TestDb } from '../support/postgres.js';
import { lifecycleDeps, ScriptedProvider } from '../support/lifecycle.js';

let db: TestDb;
let store: ChargeStore;
const providerKey = providerKeys('store-test-secret-0123456789');
before(async () => {
  db = await startTestDb();
  store = new ChargeStore(db.sql, providerKey);
});
after(async () => {
  await db?.close();
});

const input = { amount: 500, currency: 'USD', source: 'tok_visa' };

const deps = (provider: Provider, leaseMs = 60_000): LifecycleDeps => lifecycleDeps(store, provider, { leaseMs });

test('claim: new key, lease held, mismatch, then replay after record', async () => {
  const c = await store.claim('s1', 'fp', input, 60_000);
  assert.equal(c.kind, 'claimed');
  if (c.kind !== 'claimed') return;
  assert.equal(c.takeover, false);
  assert.equal(c.providerKey, providerKey('s1', 'fp'), 'the provider key comes from the request, not the row');
  const again = await store.claim('s1', 'fp', input, 60_000);
  assert.equal(again.kind, 'in_progress');
  assert.ok(again.kind === 'in_progress' && again.retryAfterMs > 50_000);
  assert.deepEqual(await store.claim('s1', 'other', input, 60_000), { kind: 'mismatch' });
  const stored = await store.record('s1', 'succeeded', 'pch_1', 201, '{"x":1}');
  assert.deepEqual(stored, { kind: 'replay', responseStatus: 201, responseBody: '{"x":1}' });
  assert.deepEqual(await store.claim('s1', 'fp', input, 60_000), {
    kind: 'replay',
    responseStatus: 201,
    responseBody: '{"x":1}',
  });
  assert.deepEqual(await store.claim('s1', 'other', input, 60_000), { kind: 'mismatch' });
});

test('a replay or an in-progress answer takes no row lock: answered while another transaction holds the row', async () => {
  // A burst of retries of one key must not queue on that key's row: with a
  // lock per claim, each waited for the previous one's durable commit.
  await store.claim('s-lock-done', 'fp', input, 60_000);
  await store.record('s-lock-done', 'succeeded', 'pch_l', 201, '{"l":1}');
  await store.claim('s-lock-held', 'fp', input, 60_000);
  const keys = ['s-lock-done', 's-lock-held'];
  const before = await rowXmax(db.sql, keys);
  for (let i = 0; i < 5; i++) for (const key of keys) await store.claim(key, 'fp', input, 60_000);
  assert.deepEqual(await rowXmax(db.sql, keys), before, 'answering a stored key wrote a row lock');
  const held = await holdRows(db.sql, keys);
  try {
    const answered = await withinMs(2_000, Promise.all(keys.map((key) => store.claim(key, 'fp', input, 60_000))));
    assert.notEqual(answered, 'blocked', 'a claim of a stored key waited for a row lock');
    const [done, inProgress] = answered as ClaimResult[];
    assert.deepEqual(done, { kind: 'replay', responseStatus: 201, responseBody: '{"l":1}' });
    assert.equal(inProgress!.kind, 'in_progress');
  } finally {
    await held.release();
  }
});

test('two claims racing for one expired lease: exactly one takes it over', async () => {
  for (let round = 0; round < 10; round++) {
    const key = `s-race-${round}`;
    await store.claim(key, 'fp', input, 60_000);
    await db.sql`UPDATE charges SET lease_expires_at = now() - interval '1 second' WHERE idempotency_key = ${key}`;
    const results = await Promise.all([1, 2, 3].map(() => store.claim(key, 'fp', input, 60_000)));
    const taken = results.filter((r) => r.kind === 'claimed');
    assert.equal(taken.length, 1, JSON.stringify(results));
    assert.ok(taken[0]!.kind === 'claimed' && taken[0]!.takeover);
    for (const r of results.filter((x) => x.kind !== 'claimed')) assert.equal(r.kind, 'in_progress');
  }
});

test('an expired lease is taken over with the same charge id and provider key', async () => {
  const first = await store.claim('s2', 'fp', input, 100);
  await db.sql`UPDATE charges SET lease_expires_at = now() - interval '1 second' WHERE idempotency_key = 's2'`;
  const second = await store.claim('s2', 'fp', input, 60_000);
  assert.ok(first.kind === 'claimed' && second.kind === 'claimed');
  assert.equal(second.takeover, true);
  assert.equal(second.chargeId, first.chargeId);
  assert.equal(second.providerKey, first.providerKey);
  assert.notEqual(second.leaseToken, first.leaseToken);
  // The old owner can no longer release the new owner's lease.
  await store.release('s2', first.leaseToken);
  assert.equal((await store.claim('s2', 'fp', input, 60_000)).kind, 'in_progress');
});

test("a claim that replaces a lost row reuses the lost row's provider key", async () => {
  const first = await store.claim('s-lost', 'fp', input, 60_000);
  // The row vanishes (a restore, a commit a crashed server did not keep).
  await db.sql`DELETE FROM charges WHERE idempotency_key = 's-lost'`;
  const again = await store.claim('s-lost', 'fp', input, 60_000);
  assert.ok(first.kind === 'claimed' && again.kind === 'claimed');
  assert.equal(again.takeover, false, 'a fresh row');
  assert.notEqual(again.chargeId, first.chargeId);
  assert.equal(again.providerKey, first.providerKey, 'so the provider dedupes the retry');
});

test('a row stored before reproducible keys keeps its provider key on takeover and in the reconciler', async () => {
  await db.sql`INSERT INTO charges (idempotency_key, fingerprint, status, charge_id, provider_key, amount, currency, request, lease_token, lease_expires_at)
    VALUES ('s-legacy', 'fp', 'started', 'ch_legacy', 'bw_ch_legacy', 500, 'USD', ${db.sql.json(input)}, gen_random_uuid(), now() - interval '1 second')`;
  const c = await store.claim('s-legacy', 'fp', input, 60_000);
  assert.ok(c.kind === 'claimed' && c.takeover);
  assert.equal(c.providerKey, 'bw_ch_legacy');
  await db.sql`UPDATE charges SET lease_expires_at = now() - interval '1 second' WHERE idempotency_key = 's-legacy'`;
  const leased = await store.leaseExpired(100, 60_000);
  assert.equal(leased.find((p) => p.idempotencyKey === 's-legacy')?.providerKey, 'bw_ch_legacy');
});

test('record: the first writer wins, later writers get the stored outcome', async () => {
  await store.claim('s3', 'fp', input, 60_000);
  await store.record('s3', 'declined', 'pch_a', 402, 'first');
  const later = await store.record('s3', 'succeeded', 'pch_b', 201, 'second');
  assert.deepEqual(later, { kind: 'replay', responseStatus: 402, responseBody: 'first' });
});

test('record: a writer that waited for a concurrent first writer reads its outcome', async () => {
  await store.claim('s3-race', 'fp', input, 60_000);
  const first = await holdRecordedRow(db.sql, 's3-race', 'first');
  const later = store.record('s3-race', 'declined', 'p', 402, 'second');
  // Commit the first writer only once our update waits for its row lock.
  await first.commitWhenBlocked('%WITH upd AS%');
  assert.deepEqual(await later, { kind: 'replay', responseStatus: 201, responseBody: 'first' });
});

test('lifecycle: success is recorded, replayed, and the provider is called once', async () => {
  const p = new ScriptedProvider(() => ({ kind: 'succeeded', providerChargeId: 'pch_ok' }));
  const d = deps(p);
  const r1 = await runCharge(d, 'l1', input, systemClock.epochMs() + 2000);
  assert.equal(r1.status, 201);
  const body = JSON.parse(r1.body) as Record<string, unknown>;
  assert.equal(body.provider_charge_id, 'pch_ok');
  const r2 = await runCharge(d, 'l1', input, systemClock.epochMs() + 2000);
  assert.equal(r2.status, 201);
  assert.equal(r2.body, r1.body);
  assert.equal(r2.headers?.['Idempotent-Replayed'], 'true');
  assert.equal(p.calls.length, 1);
});

test('lifecycle: an unknown outcome is retried on the same key, then released to the reconciler', async () => {
  let n = 0;
  const p = new ScriptedProvider(() =>
    ++n <= 3
      ? { kind: 'unknown', reason: 'status_5xx', status: 500 }
      : { kind: 'succeeded', providerChargeId: 'pch_late' },
  );
  const d = deps(p);
  const r = await runCharge(d, 'l2', input, systemClock.epochMs() + 2000);
  assert.equal(r.status, 503);
  assert.equal((JSON.parse(r.body) as { code: string }).code, 'provider_unavailable');
  assert.equal(p.calls.length, 3);
  assert.equal(new Set(p.calls).size, 1, 'every attempt uses one provider key');
  const row = await store.get('l2');
  assert.equal(row?.status, 'started');
  // Released: the reconciler may take it now, and finishes it with the same key.
  const report = await reconcileOnce(d, 10);
  assert.equal(report.succeeded, 1);
  assert.equal(new Set(p.calls).size, 1);
  assert.equal((await store.get('l2'))?.status, 'succeeded');
  const replay = await runCharge(d, 'l2', input, systemClock.epochMs() + 2000);
  assert.equal(replay.status, 201);
  assert.equal((JSON.parse(replay.body) as { provider_charge_id: string }).provider_charge_id, 'pch_late');
});

test('lifecycle: a decline is a final 402, stored and replayed; a rejection is a final 402 too', async () => {
  const d = deps(
    new ScriptedProvider(() => ({ kind: 'declined', providerChargeId: 'pch_d', declineCode: 'card_declined' })),
  );
  const r = await runCharge(d, 'l3', input, systemClock.epochMs() + 2000);
  assert.equal(r.status, 402);
  assert.equal(r.contentType, 'application/problem+json');
  const b = JSON.parse(r.body) as Record<string, unknown>;
  assert.equal(b.status, 402);
  assert.equal(b.code, 'card_declined');
  assert.equal(b.charge_status, 'declined');
  assert.equal((await runCharge(d, 'l3', input, systemClock.epochMs() + 2000)).status, 402);
  const rej = await runCharge(
    deps(new ScriptedProvider(() => ({ kind: 'rejected', status: 400, message: 'bad token' }))),
    'l4',
    input,
    systemClock.epochMs() + 2000,
  );
  assert.equal(rej.status, 402);
  assert.equal((JSON.parse(rej.body) as { code: string }).code, 'charge_rejected');
  assert.equal((await store.get('l4'))?.status, 'failed');
});

test('lifecycle: a refused call (breaker open) answers its code and is not retried', async () => {
  const p = new ScriptedProvider(() => ({ kind: 'refused', code: 'breaker_open' }));
  const r = await runCharge(deps(p), 'l5', input, systemClock.epochMs() + 2000);
  assert.equal(r.status, 503);
  assert.equal((JSON.parse(r.body) as { code: string }).code, 'breaker_open');
  assert.equal(p.calls.length, 1);
  // Nothing reached the provider for a fresh claim: the row is gone, so the
  // reconciler will never charge what the client was told was refused.
  assert.equal(await store.get('l5'), undefined);
});

test('lifecycle: a refusal after an attempt that may have reached the provider leaves the row to the reconciler', async () => {
  let n = 0;
  const p = new ScriptedProvider(() =>
    ++n === 1 ? { kind: 'unknown', reason: 'timeout' } : { kind: 'refused', code: 'bulkhead_full' },
  );
  const r = await runCharge(deps(p), 'l6', input, systemClock.epochMs() + 2000);
  // Not the refusal's code ("not charged"): the reconciler will call the provider for it.
  assert.equal(r.status, 503);
  assert.equal((JSON.parse(r.body) as { code: string }).code, 'provider_unavailable');
  assert.equal((await store.get('l6'))?.status, 'started');
  // A takeover that is refused keeps the row too: an earlier owner may have reached the provider.
  await db.sql`UPDATE charges SET lease_expires_at = now() - interval '1 second' WHERE idempotency_key = 'l6'`;
  const again = await runCharge(
    deps(new ScriptedProvider(() => ({ kind: 'refused', code: 'breaker_open' }))),
    'l6',
    input,
    systemClock.epochMs() + 2000,
  );
  assert.equal(again.status, 503);
  assert.equal((JSON.parse(again.body) as { code: string }).code, 'provider_unavailable');
  assert.equal((await store.get('l6'))?.status, 'started');
});

test('lifecycle: a refusal whose row the database would not let go of says "may complete later", never its own code', async () => {
  // Postgres stops between the claim and the abandon: the row stays started
  // and the reconciler will charge it, so "breaker_open" (not charged) would be false.
  // A class method bound to the real store (its private fields); own fields (the sql client) as they are.
  const method = (target: ChargeStore, prop: string | symbol): unknown => {
    const v = Reflect.get(target, prop, target) as unknown;
    return typeof v === 'function' && !Object.prototype.hasOwnProperty.call(target, prop)
      ? (v as (...a: unknown[]) => unknown).bind(target)
      : v;
  };
  const abandonFails = (sql: Parameters<ChargeStore['on']>[0]): ChargeStore =>
    new Proxy(store.on(sql), {
      get(target, prop) {
        if (prop === 'abandon') return () => Promise.reject(new Error('connection lost'));
        return method(target, prop);
      },
    });
  const failing = new Proxy(store, {
    get(target, prop) {
      if (prop === 'on') return abandonFails;
      return method(target, prop);
    },
  });
  const p = new ScriptedProvider(() => ({ kind: 'refused', code: 'breaker_open' }));
  const r = await runCharge(lifecycleDeps(failing, p), 'l6b', input, systemClock.epochMs() + 2000);
  assert.equal(r.status, 503);
  assert.equal((JSON.parse(r.body) as { code: string }).code, 'provider_unavailable');
  assert.equal(p.calls.length, 1);
  const row = await db.sql<{ status: string; free: boolean }[]>`
    SELECT status, lease_expires_at <= now() AS free FROM charges WHERE idempotency_key = 'l6b'`;
  assert.deepEqual(row[0], { status: 'started', free: true }, 'left to the reconciler, its lease released');
});

test('reconciler: still-unknown outcomes are deferred, not lost', async () => {
  const p = new ScriptedProvider(() => ({ kind: 'unknown', reason: 'timeout' }));
  await store.claim('r1', 'fp', input, 1);
  await db.sql`UPDATE charges SET lease_expires_at = now() - interval '1 second' WHERE idempotency_key = 'r1'`;
  const report = await reconcileOnce(deps(p), 50);
  assert.ok(report.deferred >= 1);
  const row = await db.sql<
    { status: string; later: boolean }[]
  >`SELECT status, lease_expires_at > now() AS later FROM charges WHERE idempotency_key = 'r1'`;
  assert.deepEqual(row[0], { status: 'started', later: true });
});

test('reaper: prunes completed keys past retention, never started ones', async () => {
  await store.claim('old-done', 'fp', input, 60_000);
  await store.record('old-done', 'succeeded', 'p', 201, '{}');
  await store.claim('old-started', 'fp', input, 60_000);
  await db.sql`UPDATE charges SET created_at = now() - interval '100 hours', completed_at = CASE WHEN status = 'started' THEN NULL ELSE now() - interval '100 hours' END WHERE idempotency_key IN ('old-done', 'old-started')`;
  const n = await store.reap(72);
  assert.ok(n >= 1);
  assert.equal(await store.get('old-done'), undefined);
  assert.equal((await store.get('old-started'))?.status, 'started');
});

test("a statement answered with another key's row is refused, never used: no provider key, no replay of someone else's answer", async () => {
  // What postgres.js did once during a Postgres crash with pipelining on:
  // resolve a statement with the rows of another one.
  const foreign = {
    idempotency_key: 'someone-else',
    charge_id: 'ch_x',
    provider_key: 'bw_someone_else',
    lease_token: 't',
    inserted: true,
    created_at: new Date(),
    fingerprint: 'fp',
    status: 'succeeded',
    response_status: 201,
    response_body: '{"theirs":true}',
    expired: false,
    wait_ms: 0,
  };
  const lying = Object.assign(async () => [foreign], { json: (v: unknown) => v }) as unknown as ConstructorParameters<
    typeof ChargeStore
  >[0];
  const liar = new ChargeStore(lying, providerKey);
  await assert.rejects(liar.claim('mine', 'fp', input, 60_000), WrongRowError);
  await assert.rejects(liar.record('mine', 'succeeded', 'pch', 201, '{}'), WrongRowError);
  await assert.rejects(liar.get('mine'), WrongRowError);
});

test('database connections send one statement at a time (no pipelining)', async () => {
  const sql = connect({ url: db.url, max: 1, connectTimeoutMs: 1000, statementTimeoutMs: 1000 });
  try {
    assert.equal((sql.options as unknown as { max_pipeline: number }).max_pipeline, 1);
    const both = await Promise.all([sql<{ a: number }[]>`SELECT 1 AS a`, sql<{ a: number }[]>`SELECT 2 AS a`]);
    assert.deepEqual(
      both.map((r) => r[0]!.a),
      [1, 2],
    );
  } finally {
    await sql.end({ timeout: 1 });
  }
});
