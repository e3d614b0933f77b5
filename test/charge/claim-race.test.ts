/**
 * Two gateways on one database claiming the same key at the same instant (a
 * client retrying on another replica, a deploy's old and new process). The
 * claim's insert names its conflict target; the table has a second unique
 * index (provider_key, derived from the key and the body), and when both
 * inserts passed the first check together, the loser's insert failed on that
 * index with 23505 instead of finding the row: the client got 503
 * db_unavailable where the contract says 409, and in a group-commit batch the
 * whole statement failed, so every other key in it got 503 too (found by an
 * attack with two gateways: 12 of 19 runs, innocent keys in 2). Real
 * Postgres, two connection pools, many rounds: the race is timing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { BatchStore } from '../../src/charge/batch-store.js';
import { ChargeStore, type ClaimResult } from '../../src/charge/store.js';
import { providerKeys } from '../../src/charge/provider-key.js';
import { startTestDb, type TestDb } from '../support/postgres.js';

let db: TestDb;
let other: postgres.Sql;
const providerKey = providerKeys('claim-race-test-secret-0123456');
before(async () => {
  db = await startTestDb();
  other = postgres(db.url, { max: 4, onnotice: () => {} });
});
after(async () => {
  await other?.end({ timeout: 1 });
  await db?.close();
});

const input = { amount: 700, currency: 'USD', source: 'tok_visa' };
const LEASE_MS = 30_000;
const ROUNDS = 60;
const SHARED = 8;

const kinds = (rs: readonly (ClaimResult | Error)[]) =>
  rs.map((r) => (r instanceof Error ? `Error: ${r.message}` : r.kind)).sort();

test('the same key claimed by two processes at once: one claims it, the other hears "in progress", never an error', async () => {
  const a = new ChargeStore(db.sql, providerKey);
  const b = new ChargeStore(other, providerKey);
  const seen = new Map<string, number>();
  for (let round = 0; round < ROUNDS; round++) {
    const keys = Array.from({ length: SHARED }, (_, i) => `single-${round}-${i}`);
    const results = await Promise.all(
      keys.flatMap((k) => [
        a.claim(k, 'fp', input, LEASE_MS).catch((e: unknown) => e as Error),
        b.claim(k, 'fp', input, LEASE_MS).catch((e: unknown) => e as Error),
      ]),
    );
    for (const k of kinds(results)) seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  assert.deepEqual(Object.fromEntries(seen), { claimed: ROUNDS * SHARED, in_progress: ROUNDS * SHARED });
});

test('a group-commit batch racing another process for some of its keys: those are in progress, every other key is claimed', async () => {
  const a = new BatchStore(db.sql, providerKey);
  const b = new ChargeStore(other, providerKey);
  for (let round = 0; round < ROUNDS; round++) {
    const shared = Array.from({ length: SHARED }, (_, i) => `batch-${round}-shared-${i}`);
    const own = Array.from({ length: SHARED }, (_, i) => `batch-${round}-own-${i}`);
    const [batch, ...singles] = await Promise.all([
      a
        .claimMany([...shared, ...own].map((key) => ({ key, fp: 'fp', input, leaseMs: LEASE_MS })))
        .catch((e: unknown) => [e as Error]),
      ...shared.map((k) => b.claim(k, 'fp', input, LEASE_MS).catch((e: unknown) => e as Error)),
    ]);
    const ownResults = (batch as (ClaimResult | Error)[]).slice(SHARED);
    assert.deepEqual(kinds(ownResults), Array(SHARED).fill('claimed'), `round ${round}: the batch's other keys`);
    const sharedResults = [
      ...(batch as (ClaimResult | Error)[]).slice(0, SHARED),
      ...(singles as (ClaimResult | Error)[]),
    ];
    assert.deepEqual(
      kinds(sharedResults),
      [...Array(SHARED).fill('claimed'), ...Array(SHARED).fill('in_progress')],
      `round ${round}: the shared keys`,
    );
  }
});
