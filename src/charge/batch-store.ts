/**
 * The claim and record statements of ChargeStore for many keys at once: one
 * statement for the batch (arrays unnested server-side), plus one follow-up
 * read for the keys the statement did not settle. Results keep the meaning
 * of ChargeStore.claim and ChargeStore.record, request by request.
 *
 * A batch of one is sent as ChargeStore's own statement: for one row the
 * unnest form costs Postgres more than VALUES (measured), and a lightly
 * loaded worker mostly sends batches of one.
 *
 * Every row is found through the primary key (`= ANY($keys)`), with no
 * join the planner could reorder, and no status test it could match to a
 * partial index (charges_pending_idx, charges_completed_idx): the update
 * writes `(status = 'started') IS TRUE` and the reads filter status here.
 * On a freshly emptied table without statistics the planner did scan every
 * started row through the partial index when it could.
 *
 * Callers pass distinct keys: results are matched to requests by key, and
 * an update would take the values of the first of two writers. Claims
 * insert, and take expired leases over, in sorted key order, and the
 * record's index scan visits keys in index order, so batches of one kind
 * take row locks in one order; should a deadlock still occur, Postgres
 * aborts one statement and its callers see an error, as with any failed
 * statement. A key that is already stored costs a read, never a lock.
 */
import { randomUUID } from 'node:crypto';
import type { Sql } from 'postgres';
import {
  ChargeStore,
  claimedFrom,
  existingResult,
  WrongRowError,
  type ClaimedRow,
  type ExistingRow,
  newChargeId,
  type ChargeStatus,
  type ClaimResult,
  type FinalStatus,
  type StoredOutcome,
} from './store.js';
import type { ChargeInput } from './input.js';
import type { ProviderKeyFn } from './provider-key.js';

export interface ClaimRequest {
  key: string;
  fp: string;
  input: ChargeInput;
  leaseMs: number;
}

export interface RecordRequest {
  key: string;
  status: FinalStatus;
  providerChargeId: string | null;
  responseStatus: number;
  responseBody: string;
}

class RecordMissingError extends Error {
  override readonly name = 'RecordMissingError';
}

type Phase = 'claim' | 'record';

/**
 * The statements that find rows by `= ANY(keys)` go out as unnamed
 * statements, planned at each execution against the table as it is then.
 * Prepared (named), Postgres plans such a statement generically after five
 * executions and keeps that plan. Made while the table was empty (a fresh
 * database, or the lab's table emptied before each run) it is a sequential
 * scan, which it then stays until autoanalyze invalidates it, a minute or
 * more later: every batch's record read the whole table, so Postgres's CPU
 * per charge grew with the table (0.13 ms at best, 0.41 ms in a 15 s run
 * that ended at 43 000 rows; docs/performance.md). Planning each time costs
 * one parse and plan per statement, shared by the batch's charges. The
 * claim's insert keeps its prepared plan: it reads rows through the unique
 * indexes' conflict checks, not a scan.
 */
const UNNAMED = { prepare: false } as const;

function assertDistinct(keys: readonly string[]): void {
  if (new Set(keys).size !== keys.length) throw new Error('batch-store: keys in one batch must be distinct');
}

/**
 * A batch statement's rows by key, each checked to be one the statement was
 * sent for (see ownRow: a driver that mixes up answers must not hand us
 * another statement's rows).
 */
function byOwnKey<R extends { idempotency_key: string }>(
  rows: readonly R[],
  sentFor: readonly { key: string }[],
  phase: string,
): Map<string, R> {
  const keys = new Set(sentFor.map((r) => r.key));
  for (const r of rows)
    if (!keys.has(r.idempotency_key)) throw new WrongRowError(`${phase}: the database answered about another key`);
  return new Map(rows.map((r) => [r.idempotency_key, r]));
}

/** Compares indices of `reqs` by key in code-unit order (the lock order). */
function byKey(reqs: readonly { key: string }[]): (a: number, b: number) => number {
  return (a, b) => (reqs[a]!.key < reqs[b]!.key ? -1 : reqs[a]!.key > reqs[b]!.key ? 1 : 0);
}

/** Indices of `reqs` in key order. */
function sortedOrder(reqs: readonly { key: string }[]): number[] {
  return reqs.map((_, i) => i).sort(byKey(reqs));
}

export class BatchStore {
  readonly #single: ChargeStore;
  constructor(
    private readonly sql: Sql,
    /** The provider key of a new claim (ChargeStore's). */
    private readonly providerKey: ProviderKeyFn,
    /** Called before each statement is sent (for statements-per-request metrics). */
    private readonly onStatement: (phase: Phase) => void = () => {},
  ) {
    this.#single = new ChargeStore(sql, providerKey);
  }

  /**
   * ChargeStore.claim for distinct keys. Results are in request order. Like
   * claim, a key whose row vanished between the insert and the read (a
   * reaper race) gets a second round, then in_progress.
   */
  async claimMany(reqs: readonly ClaimRequest[]): Promise<(ClaimResult | Error)[]> {
    if (reqs.length === 1) {
      const r = reqs[0]!;
      this.onStatement('claim');
      return [await this.#single.claim(r.key, r.fp, r.input, r.leaseMs)];
    }
    assertDistinct(reqs.map((r) => r.key));
    const results: (ClaimResult | undefined)[] = new Array(reqs.length);
    try {
      await this.#claimRounds(reqs, results);
    } catch (e) {
      // Each statement commits on its own. Once one has, some keys hold a
      // committed claim: they get it (their row exists, and failing them
      // would answer "the database is unavailable" for a claim the
      // reconciler later charges). Only the keys still unsettled fail.
      if (!results.some((r) => r !== undefined)) throw e;
      const err = e instanceof Error ? e : new Error(String(e));
      // Array.from, not map: map skips the holes of `new Array(n)`.
      return Array.from(results, (r) => r ?? err);
    }
    return results as ClaimResult[];
  }

  /** claimMany's rounds: fills `results` as each statement settles keys. */
  async #claimRounds(reqs: readonly ClaimRequest[], results: (ClaimResult | undefined)[]): Promise<void> {
    let pending = sortedOrder(reqs);
    for (let round = 0; round < 2 && pending.length > 0; round++) {
      pending.sort(byKey(reqs));
      const batch = pending.map((i) => reqs[i]!);
      const ids = batch.map(() => newChargeId());
      this.onStatement('claim');
      // ON CONFLICT with no target, as ChargeStore.claim: a twin claim's insert
      // may meet this one on provider_key first, and one failed row fails the
      // whole statement, every key in it.
      const rows = await this.sql<ClaimedRow[]>`
        INSERT INTO charges (idempotency_key, fingerprint, status, charge_id, provider_key, amount, currency, request, lease_token, lease_expires_at)
        SELECT b.key, b.fp, 'started', b.charge_id, b.provider_key, b.amount, b.currency, b.request::jsonb, b.token::uuid,
               now() + make_interval(secs => b.lease_s)
        FROM unnest(${batch.map((r) => r.key)}::text[], ${batch.map((r) => r.fp)}::text[], ${ids}::text[],
                    ${batch.map((r) => this.providerKey(r.key, r.fp))}::text[], ${batch.map((r) => r.input.amount)}::int4[],
                    ${batch.map((r) => r.input.currency)}::text[], ${batch.map((r) => JSON.stringify(r.input))}::text[],
                    ${batch.map(() => randomUUID())}::text[], ${batch.map((r) => r.leaseMs / 1000)}::float8[])
             AS b(key, fp, charge_id, provider_key, amount, currency, request, token, lease_s)
        ON CONFLICT DO NOTHING
        RETURNING idempotency_key, charge_id, provider_key, lease_token, true AS inserted, created_at`;
      const claimed = byOwnKey(rows, batch, 'claim');
      const unsettled: number[] = [];
      for (const i of pending) {
        const row = claimed.get(reqs[i]!.key);
        if (!row) {
          unsettled.push(i);
          continue;
        }
        results[i] = claimedFrom(row);
      }
      pending = [];
      if (unsettled.length === 0) break;
      // Rows the insert found: one read for all of them, in a new statement so
      // it sees what the conflicting writers committed. Reads take no row
      // lock (see ChargeStore.claim).
      this.onStatement('claim');
      const existing = await this.sql.unsafe<(ExistingRow & { idempotency_key: string })[]>(
        `SELECT idempotency_key, fingerprint, status, response_status, response_body,
                lease_expires_at < now() AS expired,
                GREATEST(0, EXTRACT(EPOCH FROM (lease_expires_at - now())) * 1000)::float8 AS wait_ms
         FROM charges WHERE idempotency_key = ANY($1::text[])`,
        [unsettled.map((i) => reqs[i]!.key)],
        UNNAMED,
      );
      const found = byOwnKey(
        existing,
        unsettled.map((i) => reqs[i]!),
        'claim',
      );
      const expired: number[] = [];
      for (const i of unsettled) {
        const r = reqs[i]!;
        const cur = found.get(r.key);
        const seen = cur ? existingResult(cur, r.fp) : undefined;
        if (seen === undefined) pending.push(i);
        else if (seen === 'expired') expired.push(i);
        else results[i] = seen;
      }
      if (expired.length === 0) continue;
      // Expired leases, taken over in key order (the lock order); the WHERE
      // repeats the read's test, so a row another claim took meanwhile is
      // read again next round.
      const tokens = expired.map(() => randomUUID());
      this.onStatement('claim');
      const taken = await this.sql.unsafe<ClaimedRow[]>(
        `UPDATE charges c
            SET lease_token = ($2::uuid[])[array_position($1::text[], c.idempotency_key)],
                lease_expires_at = now() + make_interval(secs => ($3::float8[])[array_position($1::text[], c.idempotency_key)]),
                attempts = c.attempts + 1, updated_at = now()
          WHERE c.idempotency_key = ANY($1::text[]) AND (c.status = 'started') IS TRUE
            AND c.lease_expires_at < now()
            AND c.fingerprint = ($4::text[])[array_position($1::text[], c.idempotency_key)]
          RETURNING c.idempotency_key, c.charge_id, c.provider_key, c.lease_token, false AS inserted, c.created_at`,
        [
          expired.map((i) => reqs[i]!.key),
          tokens,
          expired.map((i) => reqs[i]!.leaseMs / 1000),
          expired.map((i) => reqs[i]!.fp),
        ],
        UNNAMED,
      );
      const takenBy = byOwnKey(
        taken,
        expired.map((i) => reqs[i]!),
        'claim',
      );
      for (const i of expired) {
        const row = takenBy.get(reqs[i]!.key);
        if (row) results[i] = claimedFrom(row);
        else pending.push(i);
      }
    }
    // A row that vanished or was taken over twice in a row: only a reaper or
    // another client racing this one does that; tell the client to come back.
    for (const i of pending) results[i] = { kind: 'in_progress', retryAfterMs: 0 };
  }

  /**
   * ChargeStore.record for distinct keys: each result is the stored outcome,
   * ours or the first writer's, or RecordMissingError when the row is gone.
   */
  async recordMany(reqs: readonly RecordRequest[]): Promise<(StoredOutcome | RecordMissingError)[]> {
    if (reqs.length === 1) {
      const r = reqs[0]!;
      this.onStatement('record');
      return [await this.#single.record(r.key, r.status, r.providerChargeId, r.responseStatus, r.responseBody)];
    }
    assertDistinct(reqs.map((r) => r.key));
    const batch = sortedOrder(reqs).map((i) => reqs[i]!);
    const keys = batch.map((r) => r.key);
    this.onStatement('record');
    // $1 keys; $2..$5 the values, by the key's position in $1. No join: the
    // only plan is a primary-key lookup per key.
    const rows = await this.sql.unsafe<
      { idempotency_key: string; status: ChargeStatus; response_status: number | null; response_body: string | null }[]
    >(
      `WITH upd AS (
         UPDATE charges c
            SET status = ($2::text[])[array_position($1::text[], c.idempotency_key)],
                provider_charge_id = ($3::text[])[array_position($1::text[], c.idempotency_key)],
                response_status = ($4::int2[])[array_position($1::text[], c.idempotency_key)],
                response_body = ($5::text[])[array_position($1::text[], c.idempotency_key)],
                completed_at = now(), updated_at = now(), lease_token = NULL, lease_expires_at = NULL
          WHERE c.idempotency_key = ANY($1::text[]) AND (c.status = 'started') IS TRUE
          RETURNING c.idempotency_key, c.status, c.response_status, c.response_body)
       SELECT idempotency_key, status, response_status, response_body FROM upd
       UNION ALL
       SELECT c.idempotency_key, c.status, c.response_status, c.response_body FROM charges c
        WHERE c.idempotency_key = ANY($1::text[])
          AND NOT EXISTS (SELECT 1 FROM upd WHERE upd.idempotency_key = c.idempotency_key)`,
      [
        keys,
        batch.map((r) => r.status),
        batch.map((r) => r.providerChargeId),
        batch.map((r) => r.responseStatus),
        batch.map((r) => r.responseBody),
      ],
      UNNAMED,
    );
    byOwnKey(rows, batch, 'record');
    const stored = new Map<string, { response_status: number; response_body: string }>();
    // Rows still started here are rows another statement holds and this
    // statement's snapshot predates; rows updated by us or final before are settled.
    for (const r of rows)
      if (r.status !== 'started' && r.response_status !== null && r.response_body !== null)
        stored.set(r.idempotency_key, { response_status: r.response_status, response_body: r.response_body });
    const missing = keys.filter((k) => !stored.has(k));
    if (missing.length > 0) {
      // A writer that committed while our update waited for its row lock is
      // invisible to this statement's snapshot: read its outcome anew.
      this.onStatement('record');
      const later = await this.sql.unsafe<
        {
          idempotency_key: string;
          status: ChargeStatus;
          response_status: number | null;
          response_body: string | null;
        }[]
      >(
        `SELECT idempotency_key, status, response_status, response_body FROM charges
         WHERE idempotency_key = ANY($1::text[])`,
        [missing],
        UNNAMED,
      );
      byOwnKey(
        later,
        missing.map((key) => ({ key })),
        'record',
      );
      for (const r of later)
        if (r.status !== 'started' && r.response_status !== null && r.response_body !== null)
          stored.set(r.idempotency_key, { response_status: r.response_status, response_body: r.response_body });
    }
    return reqs.map((r) => {
      const row = stored.get(r.key);
      return row
        ? { kind: 'replay', responseStatus: row.response_status, responseBody: row.response_body }
        : new RecordMissingError(`record: charge ${r.key} is missing`);
    });
  }
}
