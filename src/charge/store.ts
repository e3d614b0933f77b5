/**
 * The idempotency table, Stripe-style: every phase is one short statement and
 * no transaction or connection is held across a provider call.
 *
 * - claim: insert the key as `started` with a lease; otherwise read the row
 *   and report replay / mismatch / in progress, or take over a started row
 *   whose lease expired (same row, so the same stored provider key). Only an
 *   insert or a takeover writes: a replay takes no row lock. A new
 *   row stores the provider key derived from the request (provider-key.ts),
 *   so even a claim that replaces a lost row reuses the first one's key.
 * - record: `started` → final, first writer wins. The provider dedupes on the
 *   provider key, so every writer for one key carries the same outcome.
 * - release: give up a lease early when the outcome is unknown, so a client
 *   retry or the reconciler can finish the charge without waiting.
 * - needs_attention: a started row the reconciler gave up on (its outcome
 *   stayed unknown through every try). Nothing drives it any more: claims
 *   answer `needs_attention`, the reconciler skips it, record finds no
 *   started row; an operator resolves it.
 */
import { randomUUID } from 'node:crypto';
import type { Sql } from 'postgres';
import type { ChargeInput } from './input.js';
import type { ProviderKeyFn } from './provider-key.js';

export type FinalStatus = 'succeeded' | 'declined' | 'failed';
export type ChargeStatus = 'started' | FinalStatus | 'needs_attention';

export interface Claimed {
  kind: 'claimed';
  chargeId: string;
  providerKey: string;
  leaseToken: string;
  /** True when an expired lease was taken over (a retry after a crash or timeout). */
  takeover: boolean;
  createdAt: string;
}

export interface StoredOutcome {
  kind: 'replay';
  responseStatus: number;
  responseBody: string;
}

export type ClaimResult =
  | Claimed
  | StoredOutcome
  | { kind: 'mismatch' }
  | { kind: 'in_progress'; retryAfterMs: number }
  | { kind: 'needs_attention' };

export interface ChargeRow {
  idempotency_key: string;
  status: ChargeStatus;
  charge_id: string;
  provider_key: string;
  amount: number;
  currency: string;
  provider_charge_id: string | null;
  response_status: number | null;
  created_at: Date;
  completed_at: Date | null;
}

export interface PendingCharge {
  idempotencyKey: string;
  chargeId: string;
  providerKey: string;
  leaseToken: string;
  request: ChargeInput;
  createdAt: string;
  /** The reconciler's tries of this row so far, this one included. */
  attempt: number;
}

/** What the gauges and /admin/state show of the rows nobody has finished. */
export interface Backlog {
  /** Age of the oldest `started` row, seconds; 0 when there is none. */
  oldestStartedAgeSeconds: number;
  needsAttention: number;
  /** The oldest rows that need attention, by key (the caller hashes it before it goes anywhere). */
  oldestNeedingAttention: { key: string; createdAt: string; reconcileAttempts: number }[];
}

/** A row the claim statement returned (inserted, or a lease taken over). */
export interface ClaimedRow {
  idempotency_key: string;
  charge_id: string;
  provider_key: string;
  lease_token: string;
  inserted: boolean;
  created_at: Date;
}

export function claimedFrom(row: ClaimedRow): Claimed {
  return {
    kind: 'claimed',
    chargeId: row.charge_id,
    providerKey: row.provider_key,
    leaseToken: row.lease_token,
    takeover: !row.inserted,
    createdAt: row.created_at.toISOString(),
  };
}

/** A row a claim found in place of inserting its own. */
export interface ExistingRow {
  fingerprint: string;
  status: ChargeStatus;
  response_status: number | null;
  response_body: string | null;
  /** A started row whose lease has run out (null for final rows). */
  expired: boolean | null;
  wait_ms: number | null;
}

/** What a claim answers for a row it found; 'expired' when it may take the lease over. */
export function existingResult(cur: ExistingRow, fp: string): Exclude<ClaimResult, Claimed> | 'expired' {
  if (cur.fingerprint !== fp) return { kind: 'mismatch' };
  if (cur.status === 'needs_attention') return { kind: 'needs_attention' };
  if (cur.status !== 'started' && cur.response_status !== null && cur.response_body !== null) {
    return { kind: 'replay', responseStatus: cur.response_status, responseBody: cur.response_body };
  }
  if (cur.status === 'started' && cur.expired === true) return 'expired';
  return { kind: 'in_progress', retryAfterMs: cur.wait_ms ?? 0 };
}

/** A statement's answer that is not about the key it was sent for. */
export class WrongRowError extends Error {
  override readonly name = 'WrongRowError';
}

/**
 * The first row of a statement sent for `key`, checked to be that key's.
 * Measured: during a Postgres immediate stop, postgres.js resolved claims
 * with rows of other keys' statements pipelined on the same connection, and
 * the charge went to the provider under another key's provider key (a
 * second charge for both). Pipelining is now off (db/connect.ts); this check
 * stays so that no answer about another key can ever reach the provider or a
 * client, whatever the driver does.
 */
export function ownRow<R extends { idempotency_key: string }>(
  rows: readonly R[],
  key: string,
  phase: string,
): R | undefined {
  for (const r of rows)
    if (r.idempotency_key !== key) throw new WrongRowError(`${phase}: the database answered about another key`);
  return rows[0];
}

export function newChargeId(): string {
  return `ch_${randomUUID().replaceAll('-', '')}`;
}

/**
 * Postgres access for the charge lifecycle, one key per statement.
 *
 * A statement about one key tests its status as `(status = 'started') IS
 * TRUE`, never `status = 'started'`: the planner can match the plain test to
 * the partial index of started rows (charges_pending_idx) and walk every
 * started row to find the key, and a prepared statement keeps that plan.
 * With the statistics of a healthy table (almost nothing started) it did,
 * and after an outage's backlog of 20 000 started rows one record read
 * 20 020 index entries (test/charge/batch-store-plans.test.ts). The
 * reaper's and the backlog's scans use the plain test on purpose.
 */
export class ChargeStore {
  constructor(
    readonly sql: Sql,
    /** The provider key of a new claim; existing rows keep the key they stored. */
    private readonly providerKey: ProviderKeyFn,
  ) {}

  /** The same store on another pool (the DB gate's current one: it is replaced after a partition). */
  on(sql: Sql): ChargeStore {
    return sql === this.sql ? this : new ChargeStore(sql, this.providerKey);
  }

  async claim(key: string, fp: string, input: ChargeInput, leaseMs: number): Promise<ClaimResult> {
    // Two rounds at most: the second covers a row reaped between the
    // conflicting insert and the read, and a takeover another claim won.
    for (let round = 0; round < 2; round++) {
      const chargeId = newChargeId();
      const token = randomUUID();
      // ON CONFLICT with no target: the row has two keys a twin claim shares
      // (idempotency_key, and provider_key, derived from the key and the
      // body). With only idempotency_key named, two processes inserting the
      // same key at once could meet on provider_key first, and the loser's
      // insert failed with 23505 (503 db_unavailable, and in a batch every
      // other key of the statement with it) instead of reading the row
      // (test/charge/claim-race.test.ts). A conflict on either is the same
      // claim; the read below finds it by its idempotency key.
      //
      // DO NOTHING, not DO UPDATE: an ON CONFLICT DO UPDATE locks the existing
      // row even when its WHERE is false, so every replay and every "in
      // progress" would take a row lock, get a transaction id and wait for a
      // durable commit, one after another for one key. A burst of retries of
      // one key then queued past the DB acquire budget (503 db_unavailable).
      const rows = await this.sql<ClaimedRow[]>`
        INSERT INTO charges (idempotency_key, fingerprint, status, charge_id, provider_key, amount, currency, request, lease_token, lease_expires_at)
        VALUES (${key}, ${fp}, 'started', ${chargeId}, ${this.providerKey(key, fp)}, ${input.amount}, ${input.currency},
                ${this.sql.json(input as never)}, ${token}, now() + make_interval(secs => ${leaseMs / 1000}))
        ON CONFLICT DO NOTHING
        RETURNING idempotency_key, charge_id, provider_key, lease_token, true AS inserted, created_at`;
      const row = ownRow(rows, key, 'claim');
      if (row) return claimedFrom(row);
      const existing = await this.sql<(ExistingRow & { idempotency_key: string })[]>`
        SELECT idempotency_key, fingerprint, status, response_status, response_body, lease_expires_at < now() AS expired,
               GREATEST(0, EXTRACT(EPOCH FROM (lease_expires_at - now())) * 1000)::float8 AS wait_ms
        FROM charges WHERE idempotency_key = ${key}`;
      const cur = ownRow(existing, key, 'claim');
      if (!cur) continue;
      const seen = existingResult(cur, fp);
      if (seen !== 'expired') return seen;
      // Only a started row whose lease expired is written: the same row, so
      // the same charge id and stored provider key. The WHERE repeats the
      // read's test, so of two claims racing for it one wins.
      const taken = await this.sql<ClaimedRow[]>`
        UPDATE charges SET lease_token = ${token}, lease_expires_at = now() + make_interval(secs => ${leaseMs / 1000}),
               attempts = attempts + 1, updated_at = now()
        WHERE idempotency_key = ${key} AND (status = 'started') IS TRUE AND lease_expires_at < now() AND fingerprint = ${fp}
        RETURNING idempotency_key, charge_id, provider_key, lease_token, false AS inserted, created_at`;
      const own = ownRow(taken, key, 'claim');
      if (own) return claimedFrom(own);
    }
    // The row vanished or was taken over twice in a row: only a reaper or
    // another client racing this one does that; tell the client to come back.
    return { kind: 'in_progress', retryAfterMs: 0 };
  }

  /**
   * Store the final outcome. Returns the outcome that is stored: ours, or the
   * one another writer (a takeover, the reconciler) stored first.
   */
  async record(
    key: string,
    status: FinalStatus,
    providerChargeId: string | null,
    responseStatus: number,
    responseBody: string,
  ): Promise<StoredOutcome> {
    type Outcome = { idempotency_key: string; response_status: number; response_body: string };
    const rows = await this.sql<Outcome[]>`
      WITH upd AS (
        UPDATE charges SET status = ${status}, provider_charge_id = ${providerChargeId},
               response_status = ${responseStatus}, response_body = ${responseBody},
               completed_at = now(), updated_at = now(), lease_token = NULL, lease_expires_at = NULL
        WHERE idempotency_key = ${key} AND (status = 'started') IS TRUE
        RETURNING idempotency_key, response_status, response_body)
      SELECT idempotency_key, response_status, response_body FROM upd
      UNION ALL
      SELECT idempotency_key, response_status, response_body FROM charges
        WHERE idempotency_key = ${key} AND completed_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM upd)`;
    let row = ownRow(rows, key, 'record');
    if (!row) {
      // A writer that committed while our update waited for its row lock is
      // invisible to this statement's snapshot: read its outcome anew.
      const later = await this.sql<Outcome[]>`
        SELECT idempotency_key, response_status, response_body FROM charges WHERE idempotency_key = ${key} AND completed_at IS NOT NULL`;
      row = ownRow(later, key, 'record');
    }
    if (!row) throw new Error(`record: charge ${key} is missing`);
    return { kind: 'replay', responseStatus: row.response_status, responseBody: row.response_body };
  }

  /** Give the lease up now (outcome unknown) so a retry or the reconciler can proceed. */
  async release(key: string, leaseToken: string, delayMs = 0): Promise<void> {
    await this.sql`
      UPDATE charges SET lease_expires_at = now() + make_interval(secs => ${delayMs / 1000}), updated_at = now()
      WHERE idempotency_key = ${key} AND (status = 'started') IS TRUE AND lease_token = ${leaseToken}`;
  }

  /**
   * Forget a claim that never reached the provider: only our own fresh
   * insert (attempts = 1, our lease), still started. A refused call (open
   * breaker, full bulkhead) then means "nothing happened", and a retry starts
   * clean instead of the reconciler charging later what the client was told
   * was refused.
   */
  async abandon(key: string, leaseToken: string): Promise<boolean> {
    const rows = await this.sql`
      DELETE FROM charges
      WHERE idempotency_key = ${key} AND (status = 'started') IS TRUE AND lease_token = ${leaseToken} AND attempts = 1`;
    return rows.count === 1;
  }

  async get(key: string): Promise<ChargeRow | undefined> {
    const rows = await this.sql<ChargeRow[]>`
      SELECT idempotency_key, status, charge_id, provider_key, amount, currency, provider_charge_id,
             response_status, created_at, completed_at
      FROM charges WHERE idempotency_key = ${key}`;
    return ownRow(rows, key, 'get');
  }

  /**
   * Lease up to `limit` started charges whose lease expired, skipping rows
   * another reconciler (another replica) is leasing right now.
   */
  async leaseExpired(limit: number, leaseMs: number): Promise<PendingCharge[]> {
    const token = randomUUID();
    // A try is counted when it is leased, not when it ends: a row whose
    // reconciliation never finishes (a worker dying on it) still runs out of tries.
    const rows = await this.sql<
      {
        idempotency_key: string;
        charge_id: string;
        provider_key: string;
        request: ChargeInput;
        created_at: Date;
        reconcile_attempts: number;
      }[]
    >`
      UPDATE charges SET lease_token = ${token}, lease_expires_at = now() + make_interval(secs => ${leaseMs / 1000}),
             attempts = attempts + 1, reconcile_attempts = reconcile_attempts + 1, updated_at = now()
      WHERE idempotency_key IN (
        SELECT idempotency_key FROM charges
        WHERE status = 'started' AND lease_expires_at < now()
        ORDER BY lease_expires_at LIMIT ${limit}
        FOR UPDATE SKIP LOCKED)
      RETURNING idempotency_key, charge_id, provider_key, request, created_at, reconcile_attempts`;
    return rows.map((r) => ({
      idempotencyKey: r.idempotency_key,
      chargeId: r.charge_id,
      providerKey: r.provider_key,
      leaseToken: token,
      request: r.request,
      createdAt: r.created_at.toISOString(),
      attempt: r.reconcile_attempts,
    }));
  }

  /**
   * The reconciler's lease ends with the outcome still unknown: the row is
   * due again in `delayMs`. `uncount`: this try never reached the provider
   * (an open breaker, a full bulkhead), so it is not one of the row's tries.
   */
  async defer(key: string, leaseToken: string, delayMs: number, uncount = false): Promise<void> {
    await this.sql`
      UPDATE charges SET lease_expires_at = now() + make_interval(secs => ${delayMs / 1000}), updated_at = now(),
             reconcile_attempts = GREATEST(0, reconcile_attempts - ${uncount ? 1 : 0})
      WHERE idempotency_key = ${key} AND (status = 'started') IS TRUE AND lease_token = ${leaseToken}`;
  }

  /** The reconciler's last try left the outcome unknown: hand the row to an operator. False when our lease was lost. */
  async giveUp(key: string, leaseToken: string): Promise<boolean> {
    const rows = await this.sql`
      UPDATE charges SET status = 'needs_attention', lease_token = NULL, lease_expires_at = NULL, updated_at = now()
      WHERE idempotency_key = ${key} AND (status = 'started') IS TRUE AND lease_token = ${leaseToken}`;
    return rows.count === 1;
  }

  /**
   * The unfinished rows, in one cheap statement: both scans read partial
   * indexes of the few rows that are not final (charges_pending_idx,
   * charges_needs_attention_idx), never the table of completed keys.
   */
  async backlog(sample = 5): Promise<Backlog> {
    const rows = await this.sql<
      {
        oldest_started_s: number | null;
        needs_attention: number;
        oldest: { key: string; created_at: string; reconcile_attempts: number }[];
      }[]
    >`
      SELECT
        (SELECT EXTRACT(EPOCH FROM (now() - min(created_at)))::float8 FROM charges WHERE status = 'started') AS oldest_started_s,
        (SELECT count(*)::int FROM charges WHERE status = 'needs_attention') AS needs_attention,
        (SELECT coalesce(json_agg(o ORDER BY o.created_at), '[]'::json) FROM (
           SELECT idempotency_key AS key, created_at, reconcile_attempts FROM charges
           WHERE status = 'needs_attention' ORDER BY created_at LIMIT ${sample}) o) AS oldest`;
    const r = rows[0]!;
    return {
      oldestStartedAgeSeconds: Math.max(0, r.oldest_started_s ?? 0),
      needsAttention: r.needs_attention,
      oldestNeedingAttention: r.oldest.map((o) => ({
        key: o.key,
        createdAt: new Date(o.created_at).toISOString(),
        reconcileAttempts: o.reconcile_attempts,
      })),
    };
  }

  /** Delete completed keys older than the retention period, in bounded batches. */
  async reap(retentionHours: number, batch = 1000): Promise<number> {
    const rows = await this.sql`
      DELETE FROM charges WHERE idempotency_key IN (
        SELECT idempotency_key FROM charges
        WHERE status <> 'started' AND completed_at < now() - make_interval(hours => ${retentionHours})
        LIMIT ${batch})`;
    return rows.count;
  }

  async ping(): Promise<void> {
    await this.sql`SELECT 1`;
  }
}
