/**
 * The batch statements' plans as the table grows from empty. Postgres plans
 * a prepared statement generically after five executions and keeps that
 * plan until the table's statistics change. A plan made on an empty table
 * (a fresh database; the lab empties the table before every run) reads
 * `= ANY(keys)` with a sequential scan, so every batch afterwards read the
 * whole table. BatchStore sends those statements unnamed: planned each time,
 * against the table as it is.
 *
 * ChargeStore's per-key statements stay prepared, and must find their row
 * by its key whatever plan they keep: a status test the planner can match
 * to the partial index of started rows let it walk every started row
 * instead, and a provider outage leaves thousands of them.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { BatchStore } from '../../src/charge/batch-store.js';
import { ChargeStore } from '../../src/charge/store.js';
import { providerKeys } from '../../src/charge/provider-key.js';
import { startTestDb, type TestDb } from '../support/postgres.js';

let db: TestDb;
before(async () => {
  db = await startTestDb();
});
after(async () => {
  await db?.close();
});

const providerKey = providerKeys('batch-store-plans-secret-0123');
const input = { amount: 500, currency: 'USD', source: 'tok_visa' };
const GROWN = 50_000;

/** Claim, record and claim again (a replay, read from the stored rows) a batch of keys. */
async function chargeAndReplay(store: BatchStore, keys: readonly string[]): Promise<void> {
  const claims = keys.map((key) => ({ key, fp: 'fp', input, leaseMs: 30_000 }));
  for (const c of await store.claimMany(claims)) assert.equal((c as { kind?: string }).kind, 'claimed');
  const stored = await store.recordMany(
    keys.map((key) => ({
      key,
      status: 'succeeded' as const,
      providerChargeId: `pc_${key}`,
      responseStatus: 201,
      responseBody: '{}',
    })),
  );
  for (const s of stored) assert.equal((s as { kind?: string }).kind, 'replay');
  for (const c of await store.claimMany(claims)) assert.equal((c as { kind?: string }).kind, 'replay');
}

test('after the table grows from empty, the batch reads by key are index lookups, never a scan of the table', async () => {
  // No autoanalyze: it would replace a kept plan, which is what a 15 s run or
  // the first minute of a fresh database does not get.
  await db.sql`ALTER TABLE charges SET (autovacuum_enabled = false)`;
  await db.sql`TRUNCATE charges`;
  // One connection, so every batch statement meets the same session's plans.
  const conn = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    const store = new BatchStore(conn, providerKey);
    // Ten rounds on a table of at most 40 rows: past the five executions
    // after which Postgres may keep a generic plan.
    for (let i = 0; i < 10; i++) await chargeAndReplay(store, [`early-${i}-a`, `early-${i}-b`]);
    await db.sql.unsafe(
      `INSERT INTO charges (idempotency_key, fingerprint, status, charge_id, provider_key, amount, currency, request,
                            response_status, response_body, completed_at)
       SELECT 'grown-' || g, 'fp', 'succeeded', 'ch_grown_' || g, 'pk_grown_' || g, 500, 'USD', '{}'::jsonb, 201, '{}', now()
       FROM generate_series(1, ${GROWN}) AS g`,
    );
    await chargeAndReplay(store, ['late-a', 'late-b']);
  } finally {
    // A backend sends its statistics when it exits.
    await conn.end({ timeout: 5 });
  }
  const inserted = 10 * 2 + GROWN + 2;
  let stats: { n_tup_ins: string; seq_tup_read: string } | undefined;
  for (let waited = 0; waited < 10_000; waited += 100) {
    [stats] = await db.sql<{ n_tup_ins: string; seq_tup_read: string }[]>`
      SELECT n_tup_ins, seq_tup_read FROM pg_stat_user_tables WHERE relname = 'charges'`;
    if (Number(stats?.n_tup_ins) >= inserted) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(
    Number(stats?.n_tup_ins) >= inserted,
    `the session's statistics arrived (${stats?.n_tup_ins} inserts seen)`,
  );
  // Scans of the table while it held at most 40 rows read a few hundred
  // tuples at most; one scan of the grown table reads 50 000.
  assert.ok(
    Number(stats?.seq_tup_read) < GROWN,
    `rows read by sequential scans: ${stats?.seq_tup_read} (one scan of the grown table reads ${GROWN})`,
  );
});

/** Rows read from an index of `charges` by this database's sessions, once a closed session's statistics have arrived. */
async function indexReads(index: string, insertedAtLeast: number): Promise<number> {
  let row: { n_tup_ins: string; idx_tup_read: string } | undefined;
  for (let waited = 0; waited < 10_000; waited += 100) {
    [row] = await db.sql<{ n_tup_ins: string; idx_tup_read: string }[]>`
      SELECT t.n_tup_ins, i.idx_tup_read FROM pg_stat_user_tables t
      JOIN pg_stat_user_indexes i ON i.relid = t.relid AND i.indexrelname = ${index}
      WHERE t.relname = 'charges'`;
    if (Number(row?.n_tup_ins) >= insertedAtLeast) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(
    Number(row?.n_tup_ins) >= insertedAtLeast,
    `the session's statistics arrived (${row?.n_tup_ins} inserts seen)`,
  );
  return Number(row?.idx_tup_read);
}

test('a per-key record finds its row by key, not by walking the started rows, after a backlog of started rows builds up', async () => {
  await db.sql`ALTER TABLE charges SET (autovacuum_enabled = false)`;
  await db.sql`TRUNCATE charges`;
  // Statistics of a healthy table: many final rows, almost none started.
  await db.sql.unsafe(
    `INSERT INTO charges (idempotency_key, fingerprint, status, charge_id, provider_key, amount, currency, request,
                          response_status, response_body, completed_at)
     SELECT 'done-' || g, 'fp', 'succeeded', 'ch_done_' || g, 'pk_done_' || g, 500, 'USD', '{}'::jsonb, 201, '{}', now()
     FROM generate_series(1, ${GROWN}) AS g`,
  );
  await db.sql`ANALYZE charges`;
  const conn = postgres(db.url, { max: 1, onnotice: () => {} });
  const backlog = 20_000;
  let before: number;
  try {
    const store = new ChargeStore(conn, providerKey);
    const charge = async (key: string) => {
      const c = await store.claim(key, 'fp', input, 30_000);
      assert.equal(c.kind, 'claimed');
      await store.record(key, 'succeeded', `pc_${key}`, 201, '{}');
    };
    // Past the five executions after which a prepared statement may keep a generic plan.
    for (let i = 0; i < 10; i++) await charge(`early-${i}`);
    // An outage's backlog: 20 000 charges started and not finished, with no ANALYZE since.
    await db.sql.unsafe(
      `INSERT INTO charges (idempotency_key, fingerprint, status, charge_id, provider_key, amount, currency, request,
                            lease_token, lease_expires_at)
       SELECT 'stuck-' || g, 'fp', 'started', 'ch_stuck_' || g, 'pk_stuck_' || g, 500, 'USD', '{}'::jsonb,
              gen_random_uuid(), now() + interval '1 hour'
       FROM generate_series(1, ${backlog}) AS g`,
    );
    before = await indexReads('charges_pending_idx', GROWN + 10 + backlog);
    await charge('late');
  } finally {
    // A backend sends its statistics when it exits.
    await conn.end({ timeout: 5 });
  }
  const after = await indexReads('charges_pending_idx', GROWN + 10 + backlog + 1);
  // Finding one row by key reads no started row's index entry but its own.
  assert.ok(after - before < 100, `index entries of started rows read by one charge: ${after - before} of ${backlog}`);
});
