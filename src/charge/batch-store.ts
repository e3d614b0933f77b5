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
 * Callers pass distinct keys: Postgres refuses an ON CONFLICT DO UPDATE that
 * touches one row twice in a statement, and an update would take the values
 * of the first of two writers. Claims insert in sorted key order and the
 * record's index scan visits keys in index order, so batches of one kind
 * take row locks in one order; should a deadlock still occur, Postgres
 * aborts one statement and its callers see an error, as with any failed
 * statement.
 */
import { randomUUID } from 'node:crypto';
import type { Sql } from 'postgres';
import {
  ChargeStore,
  claimedFrom,
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

function assertDistinct(keys: readonly string[]): void {
  if (new Set(keys).size !== keys.length) throw new Error('batch-store: keys in one batch must be distinct');
}

/** Indices of `keys` in code-unit order (the lock order). */
function sortedOrder(keys: readonly string[]): number[] {
  return keys.map((_, i) => i).sort((a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : 0));
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
  async claimMany(reqs: readonly ClaimRequest[]): Promise<ClaimResult[]> {
    if (reqs.length === 1) {
      const r = reqs[0]!;
      this.onStatement('claim');
      return [await this.#single.claim(r.key, r.fp, r.input, r.leaseMs)];
    }
    assertDistinct(reqs.map((r) => r.key));
    const results: (ClaimResult | undefined)[] = new Array(reqs.length);
    let pending = sortedOrder(reqs.map((r) => r.key));
    for (let round = 0; round < 2 && pending.length > 0; round++) {
      const batch = pending.map((i) => reqs[i]!);
      const ids = batch.map(() => newChargeId());
      this.onStatement('claim');
      const rows = await this.sql<
        {
          idempotency_key: string;
          charge_id: string;
          provider_key: string;
          lease_token: string;
          inserted: boolean;
          created_at: Date;
        }[]
      >`
        INSERT INTO charges (idempotency_key, fingerprint, status, charge_id, provider_key, amount, currency, request, lease_token, lease_expires_at)
        SELECT b.key, b.fp, 'started', b.charge_id, b.provider_key, b.amount, b.currency, b.request::jsonb, b.token::uuid,
               now() + make_interval(secs => b.lease_s)
        FROM unnest(${batch.map((r) => r.key)}::text[], ${batch.map((r) => r.fp)}::text[], ${ids}::text[],
                    ${batch.map((r) => this.providerKey(r.key, r.fp))}::text[], ${batch.map((r) => r.input.amount)}::int4[],
                    ${batch.map((r) => r.input.currency)}::text[], ${batch.map((r) => JSON.stringify(r.input))}::text[],
                    ${batch.map(() => randomUUID())}::text[], ${batch.map((r) => r.leaseMs / 1000)}::float8[])
             AS b(key, fp, charge_id, provider_key, amount, currency, request, token, lease_s)
        ON CONFLICT (idempotency_key) DO UPDATE
          SET lease_token = EXCLUDED.lease_token, lease_expires_at = EXCLUDED.lease_expires_at,
              attempts = charges.attempts + 1, updated_at = now()
          WHERE charges.status = 'started' AND charges.lease_expires_at < now()
            AND charges.fingerprint = EXCLUDED.fingerprint
        RETURNING idempotency_key, charge_id, provider_key, lease_token, (xmax = 0) AS inserted, created_at`;
      const claimed = new Map(rows.map((r) => [r.idempotency_key, r]));
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
      // Rows the insert found and did not take over: one read for all of them,
      // in a new statement so it sees what the conflicting writers committed.
      this.onStatement('claim');
      const existing = await this.sql<
        {
          idempotency_key: string;
          fingerprint: string;
          status: ChargeStatus;
          response_status: number | null;
          response_body: string | null;
          wait_ms: number | null;
        }[]
      >`
        SELECT idempotency_key, fingerprint, status, response_status, response_body,
               GREATEST(0, EXTRACT(EPOCH FROM (lease_expires_at - now())) * 1000)::float8 AS wait_ms
        FROM charges WHERE idempotency_key = ANY(${unsettled.map((i) => reqs[i]!.key)}::text[])`;
      const found = new Map(existing.map((r) => [r.idempotency_key, r]));
      for (const i of unsettled) {
        const r = reqs[i]!;
        const cur = found.get(r.key);
        if (!cur) pending.push(i);
        else if (cur.fingerprint !== r.fp) results[i] = { kind: 'mismatch' };
        else if (cur.status === 'needs_attention') results[i] = { kind: 'needs_attention' };
        else if (cur.status !== 'started' && cur.response_status !== null && cur.response_body !== null)
          results[i] = { kind: 'replay', responseStatus: cur.response_status, responseBody: cur.response_body };
        else results[i] = { kind: 'in_progress', retryAfterMs: cur.wait_ms ?? 0 };
      }
    }
    // A row that vanished twice in a row: only a reaper racing a client does
    // that; tell the client to come back.
    for (const i of pending) results[i] = { kind: 'in_progress', retryAfterMs: 0 };
    return results as ClaimResult[];
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
    const batch = sortedOrder(reqs.map((r) => r.key)).map((i) => reqs[i]!);
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
      { prepare: true },
    );
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
      const later = await this.sql<
        {
          idempotency_key: string;
          status: ChargeStatus;
          response_status: number | null;
          response_body: string | null;
        }[]
      >`
        SELECT idempotency_key, status, response_status, response_body FROM charges
        WHERE idempotency_key = ANY(${missing}::text[])`;
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
