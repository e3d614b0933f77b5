/**
 * One charge, claim → provider → record, bounded by the request deadline.
 *
 * Invariants (the reason this file exists):
 * - The provider is only ever called with the provider key derived from the
 *   claimed row, so retries, takeovers and the reconciler can never charge
 *   twice.
 * - No DB transaction or connection is held across the provider call.
 * - Only final outcomes (201, 402) are stored and replayed. An unknown outcome
 *   leaves the row `started` and releases its lease so a client retry or the
 *   reconciler finishes it.
 * - With group commit (`commits`), a claim or record may share its statement
 *   with other requests, but each request waits for its own commit and gets
 *   the answer a statement of its own would have given.
 */
import type { Sql } from 'postgres';
import { json, problem, type Reply } from '../errors/catalogue.js';
import { beforeDeadline, isDeadline } from '../lib/deadline.js';
import type { AttemptOutcome, Provider } from '../downstream/provider-client.js';
import type { Clock } from '../lib/clock.js';
import { withRetries, type RetryEnv, type RetryPolicy } from '../resilience/retry.js';
import type { ReportError } from './error-report.js';
import { fingerprint } from './fingerprint.js';
import { ChargeStore, type ClaimResult, type FinalStatus, type StoredOutcome } from './store.js';
import type { ChargeInput } from './input.js';

export interface LifecycleSettings {
  leaseMs: number;
  providerRetry: RetryPolicy;
}

export { DbBusyError } from '../db/database.js';
export { beforeDeadline, DeadlineError, isDeadline } from '../lib/deadline.js';

/**
 * Runs one DB phase within the global DB bound and by a deadline (epoch ms;
 * Infinity: none): DbBusyError when no slot frees in time (nothing sent),
 * DeadlineError when the deadline passes (the slot is back and the phase's
 * statements cancelled, but it may have taken effect). The phase issues its
 * statements through the `sql` it is given. Database.run is the real one.
 */
export type DbGate = <T>(deadlineEpochMs: number, phase: (sql: Sql) => Promise<T>) => Promise<T>;

/** No shared bound, only the deadline (tests, and callers that bring no gate). */
export function ungated(sql: Sql, clock: Clock): DbGate {
  return (deadlineEpochMs, phase) => beforeDeadline(clock, deadlineEpochMs, phase(sql));
}

/**
 * The claim and record statements, shared by many requests (group commit).
 * The implementation takes DB slots per statement, so callers do not hold a
 * slot of their own; each caller's promise settles with its own commit.
 */
export interface ChargeCommits {
  /**
   * As ChargeStore.claim, bounded by the deadline: rejects with DeadlineError
   * when it passes; a claim not yet sent by then is never sent.
   */
  claim(key: string, fp: string, input: ChargeInput, leaseMs: number, deadlineEpochMs: number): Promise<ClaimResult>;
  /** As ChargeStore.record, bounded by `waitMs` from now: rejects with DeadlineError when it passes. */
  record(
    key: string,
    status: FinalStatus,
    providerChargeId: string | null,
    responseStatus: number,
    responseBody: string,
    waitMs: number,
  ): Promise<StoredOutcome>;
}

export interface LifecycleDeps extends RetryEnv<AttemptOutcome> {
  /** Statements run on `store`'s pool when no `db` gate is given. */
  store: ChargeStore;
  provider: Provider;
  settings: LifecycleSettings;
  /** The global DB bound with client-side deadlines; unset: ungated(store.sql). */
  db?: DbGate;
  /** Group commit of claims and records; unset: one statement per call, each within `db`. */
  commits?: ChargeCommits;
  /** Stage timings, in ms. */
  observe?: (stage: 'claim' | 'record', ms: number) => void;
  /** A request ran out of time in this stage. */
  onTimeout?: (stage: 'claim' | 'provider') => void;
  /** A caught error: counted and logged once (expected refusals are left out). */
  onError?: ReportError;
}

/** The gate of `deps`: its own, or the deadline alone over the store's pool. */
export function gateOf(deps: { db?: DbGate; store: ChargeStore; clock: Clock }): DbGate {
  return deps.db ?? ungated(deps.store.sql, deps.clock);
}

function replayReply(o: StoredOutcome, replayed: boolean): Reply {
  return {
    status: o.responseStatus,
    body: o.responseBody,
    contentType: o.responseStatus >= 400 ? 'application/problem+json' : 'application/json',
    ...(replayed ? { headers: { 'Idempotent-Replayed': 'true' } } : {}),
  };
}

/** The stored, replayable answer for a final provider outcome. */
export function finalAnswer(
  chargeId: string,
  input: ChargeInput,
  createdAt: string,
  outcome: Extract<AttemptOutcome, { kind: 'succeeded' | 'declined' | 'rejected' }>,
): { status: FinalStatus; providerChargeId: string | null; reply: Reply } {
  if (outcome.kind === 'succeeded') {
    return {
      status: 'succeeded',
      providerChargeId: outcome.providerChargeId,
      reply: json(201, {
        id: chargeId,
        status: 'succeeded',
        amount: input.amount,
        currency: input.currency,
        provider_charge_id: outcome.providerChargeId,
        created_at: createdAt,
      }),
    };
  }
  if (outcome.kind === 'declined') {
    const reply = problem('card_declined', {
      detail: `The provider declined the charge (${outcome.declineCode})`,
      members: {
        id: chargeId,
        charge_status: 'declined',
        decline_code: outcome.declineCode,
        amount: input.amount,
        currency: input.currency,
        provider_charge_id: outcome.providerChargeId,
        created_at: createdAt,
      },
    });
    return { status: 'declined', providerChargeId: outcome.providerChargeId, reply };
  }
  // The provider's own words stay in our logs (the client logs them): they
  // may name internals, and a client cannot act on them anyway.
  const reply = problem('charge_rejected', {
    detail: `The payment provider refused the request (${outcome.status}); nothing was charged`,
    members: {
      id: chargeId,
      charge_status: 'failed',
      amount: input.amount,
      currency: input.currency,
      created_at: createdAt,
    },
  });
  return { status: 'failed', providerChargeId: null, reply };
}

/**
 * A validation refusal (400/422 `invalid_request`) says "nothing was
 * charged" only about a key no earlier request may have charged. After an
 * attempt under the same provider key ended unknown (a timeout, a reset, a
 * 5xx: it may have charged), or for a row another request or the reconciler
 * already drove, a refusal contradicts what may have happened: storing it as
 * `failed` and replaying "nothing was charged" would hide a real charge. It
 * counts as unknown instead: the row stays `started`, the reconciler asks
 * again with the same key, and a row still unknown after its last try goes
 * to an operator (`needs_attention`). Found by an attack whose provider
 * charged, answered 500, then refused the retry as invalid.
 */
function trustRejection(outcome: AttemptOutcome, mayHaveCharged: boolean): AttemptOutcome {
  if (outcome.kind !== 'rejected' || !mayHaveCharged) return outcome;
  return { kind: 'unknown', reason: 'rejected_after_unknown', status: outcome.status };
}

/**
 * Provider call with capped, deadline-aware retries, always on the same key.
 * `chargedBefore`: an earlier request under this key may have charged (see
 * trustRejection).
 */
export async function callProvider(
  deps: RetryEnv<AttemptOutcome> & { provider: Provider; settings: LifecycleSettings },
  providerKey: string,
  reference: string,
  input: ChargeInput,
  deadlineEpochMs: number,
  chargedBefore: boolean,
): Promise<AttemptOutcome> {
  return (await callProviderCounted(deps, providerKey, reference, input, deadlineEpochMs, chargedBefore)).outcome;
}

/** As callProvider, also saying whether any request may have reached the provider. */
async function callProviderCounted(
  deps: RetryEnv<AttemptOutcome> & { provider: Provider; settings: LifecycleSettings },
  providerKey: string,
  reference: string,
  input: ChargeInput,
  deadlineEpochMs: number,
  chargedBefore: boolean,
): Promise<{ outcome: AttemptOutcome; sent: boolean }> {
  let mayHaveCharged = chargedBefore;
  let previous: AttemptOutcome | undefined;
  const r = await withRetries(
    deps,
    deps.settings.providerRetry,
    deadlineEpochMs,
    async (timeoutMs) => {
      if (previous?.kind === 'unknown') mayHaveCharged = true;
      previous = await deps.provider.createCharge(providerKey, reference, input, timeoutMs);
      return previous;
    },
    // A refusal (open breaker, full bulkhead) is not retried: retrying into
    // an open breaker is how retry storms keep a provider down.
    (o) => o.kind === 'unknown',
  );
  if (r.result?.kind === 'refused' && r.attempts > 1) deps.onSuppressed?.('breaker_open');
  // A refusal on the first attempt means no request was sent at all.
  const sent = !(r.attempts === 0 || (r.attempts === 1 && r.result?.kind === 'refused'));
  return { outcome: trustRejection(r.result ?? { kind: 'unknown', reason: 'timeout' }, mayHaveCharged), sent };
}

export async function runCharge(
  deps: LifecycleDeps,
  key: string,
  input: ChargeInput,
  deadlineEpochMs: number,
  fp = fingerprint(input),
): Promise<Reply> {
  const { clock } = deps;
  const db = gateOf(deps);
  let claim;
  const claimStart = clock.now();
  try {
    const leaseMs = deps.settings.leaseMs;
    claim = deps.commits
      ? await deps.commits.claim(key, fp, input, leaseMs, deadlineEpochMs)
      : await db(deadlineEpochMs, (sql) => deps.store.on(sql).claim(key, fp, input, leaseMs));
    deps.observe?.('claim', clock.now() - claimStart);
  } catch (e) {
    // A claim that committed after we gave up leaves a started row with a
    // lease: the reconciler finishes it, as the 504 promises.
    if (!isDeadline(e)) {
      deps.onError?.('claim', e, key);
      return problem('db_unavailable');
    }
    deps.onTimeout?.('claim');
    return problem('deadline_exceeded');
  }
  switch (claim.kind) {
    case 'replay':
      return replayReply(claim, true);
    case 'mismatch':
      return problem('idempotency_key_reused', {
        field: 'Idempotency-Key',
        detail: 'This Idempotency-Key was used with a different request body',
      });
    case 'in_progress':
      return problem('idempotency_in_progress', {
        headers: { 'Retry-After': String(Math.max(1, Math.ceil(claim.retryAfterMs / 1000))) },
      });
    case 'needs_attention':
      // The reconciler gave up on this charge: its outcome is unknown and only
      // an operator may decide it. Nothing is charged or replayed.
      return problem('charge_needs_attention');
    case 'claimed':
      break;
  }
  const releaseFailed = (e: unknown) => deps.onError?.('release', e, key);
  // A takeover inherits a row an earlier request drove: it may have charged.
  const { outcome, sent } = await callProviderCounted(
    deps,
    claim.providerKey,
    key,
    input,
    deadlineEpochMs,
    claim.takeover,
  );
  // Releasing and recording may run past the request deadline: the provider
  // was called, and the sooner the row reflects it the better. They are
  // bounded by this settle budget instead, so the task (and the front
  // thread's admission slot and in-flight key) ends within it.
  const settleMs = deps.settings.providerRetry.attemptTimeoutMs;
  const settleBy = () => clock.epochMs() + settleMs;
  // Best effort (an expired lease frees the row anyway), but awaited: a
  // client that retries on our answer must find the lease already released.
  const release = (): Promise<void> =>
    db(settleBy(), (sql) => deps.store.on(sql).release(key, claim.leaseToken)).catch(releaseFailed);
  if (outcome.kind === 'refused') {
    // Nothing reached the provider for a claim we just inserted: forget it, so
    // this 503 truly means "not charged". Otherwise (a takeover, or an earlier
    // attempt that may have arrived) leave it to the reconciler.
    const forgotten =
      !sent &&
      !claim.takeover &&
      (await db(settleBy(), (sql) => deps.store.on(sql).abandon(key, claim.leaseToken)).catch(
        (e: unknown) => (releaseFailed(e), false),
      ));
    if (forgotten) return problem(outcome.code);
    // The row stays, and the reconciler (or a retry) will call the provider
    // for it: this charge may complete later. The refusal's own code says
    // "not charged", which would be false, so the answer is the one for an
    // outcome still open. Cases: a takeover, an earlier attempt of this
    // request that may have arrived, or a database that failed the abandon.
    await release();
    return problem('provider_unavailable');
  }
  if (outcome.kind === 'unknown') {
    await release();
    if (clock.epochMs() < deadlineEpochMs - deps.settings.providerRetry.minAttemptMs)
      return problem('provider_unavailable');
    deps.onTimeout?.('provider');
    return problem('deadline_exceeded');
  }
  const answer = finalAnswer(claim.chargeId, input, claim.createdAt, outcome);
  try {
    // Recording is allowed past the deadline: the provider has answered, and
    // writing the outcome now saves the reconciler a provider call.
    const recordStart = clock.now();
    const { status, providerChargeId, reply } = answer;
    const stored = deps.commits
      ? await deps.commits.record(key, status, providerChargeId, reply.status, reply.body, settleMs)
      : await db(settleBy(), (sql) =>
          deps.store.on(sql).record(key, status, providerChargeId, reply.status, reply.body),
        );
    deps.observe?.('record', clock.now() - recordStart);
    return replayReply(stored, false);
  } catch (e) {
    // Never 201/402 without the record committed. A record abandoned at its
    // budget may still commit, and the reconciler finishes it otherwise: the
    // charge "may still complete" (504), it did not fail. No release then: a
    // database that just stalled for a whole budget would stall it too, and
    // the lease's expiry frees the row anyway.
    if (isDeadline(e)) return problem('deadline_exceeded');
    // The provider has answered, so this charge may well be made: the row
    // stays `started` and a retry or the reconciler records the outcome.
    // db_unavailable says "may complete later" (its catalogue title), never
    // "not charged", for this reason and for a claim whose reply was lost.
    deps.onError?.('record', e, key);
    await release();
    return problem('db_unavailable');
  }
}
