/**
 * The reconciler finishes every `started` charge whose lease expired (a
 * crash, SIGKILL, a timed-out request, an unknown provider outcome). It asks
 * the provider with the row's own provider key — a create-or-get that the
 * provider dedupes — so a charge that reached the provider is found, and one
 * that never did is completed exactly once. Row leases (SKIP LOCKED) let many
 * replicas reconcile at once without doing the same row twice.
 *
 * A row whose outcome stays unknown is asked again with a growing, capped
 * gap, and after a bounded number of tries it is handed to an operator as
 * `needs_attention` (reconcile-policy.ts has the schedule and the why).
 */
import type { AttemptOutcome, Provider } from '../downstream/provider-client.js';
import type { RetryEnv } from '../resilience/retry.js';
import type { ReportError } from './error-report.js';
import { keyHash } from './key-hash.js';
import { callProvider, finalAnswer, gateOf, type DbGate, type LifecycleSettings } from './lifecycle.js';
import { afterUnknown, DEFAULT_RECONCILE_POLICY, reconcileDelayMs, type ReconcilePolicy } from './reconcile-policy.js';
import { ChargeStore } from './store.js';

export interface ReconcileReport {
  leased: number;
  succeeded: number;
  declined: number;
  failed: number;
  /** Still unknown: lease released with a delay, tried again later. */
  deferred: number;
  /** Still unknown after the last try: handed to an operator. */
  needsAttention: number;
}

export const emptyReport = (): ReconcileReport => ({
  leased: 0,
  succeeded: 0,
  declined: 0,
  failed: 0,
  deferred: 0,
  needsAttention: 0,
});

/** The part of a logger the reconciler uses for a row it gives up on. */
interface AttentionLog {
  error(obj: object, msg: string): void;
}

export interface ReconcilerDeps extends RetryEnv<AttemptOutcome> {
  store: ChargeStore;
  provider: Provider;
  settings: LifecycleSettings;
  /** Backoff and give-up; default DEFAULT_RECONCILE_POLICY. */
  reconcile?: ReconcilePolicy;
  onError?: ReportError;
  /** Where a row handed to an operator is announced (one line per row). */
  log?: AttentionLog;
  /** The global DB bound, as for charges; unset: statements on `store` bounded by their budget alone. */
  db?: DbGate;
}

export async function reconcileOnce(deps: ReconcilerDeps, batch: number): Promise<ReconcileReport> {
  const report = emptyReport();
  const rp = deps.reconcile ?? DEFAULT_RECONCILE_POLICY;
  const db = gateOf(deps);
  // Each statement gets the charge path's settle budget (one provider
  // attempt's timeout): a stalled database costs a pass that long, and the
  // rows it may have leased are picked up again when their lease expires.
  const budget = () => deps.clock.epochMs() + deps.settings.providerRetry.attemptTimeoutMs;
  const rows = await db(budget(), (sql) => deps.store.on(sql).leaseExpired(batch, deps.settings.leaseMs));
  report.leased = rows.length;
  await Promise.all(
    rows.map(async (row) => {
      const key = row.idempotencyKey;
      const failed = (e: unknown) => deps.onError?.('reconcile', e, key);
      const defer = (uncount: boolean) => {
        report.deferred++;
        return db(budget(), (sql) =>
          deps.store.on(sql).defer(key, row.leaseToken, reconcileDelayMs(row.attempt, rp, deps.random), uncount),
        ).catch(failed);
      };
      const policy = deps.settings.providerRetry;
      const deadline =
        deps.clock.epochMs() + policy.attemptTimeoutMs * policy.maxAttempts + policy.capMs * (policy.maxAttempts - 1);
      // An expired lease: the request that claimed the row may have reached the provider.
      const outcome = await callProvider(deps, row.providerKey, key, row.request, deadline, true);
      // Nothing reached the provider: not one of the row's tries.
      if (outcome.kind === 'refused') return defer(true);
      if (outcome.kind === 'unknown') {
        if (afterUnknown(row.attempt, rp) === 'retry') return defer(false);
        try {
          if (await db(budget(), (sql) => deps.store.on(sql).giveUp(key, row.leaseToken))) {
            report.needsAttention++;
            deps.log?.error(
              {
                key_hash: keyHash(key),
                charge_id: row.chargeId,
                reconcile_attempts: row.attempt,
                created_at: row.createdAt,
                reason: outcome.reason,
              },
              'charge needs attention: its outcome is still unknown after the last reconcile try; it will not be retried (docs/runbook.md#charges-need-attention)',
            );
          }
        } catch (e) {
          failed(e);
        }
        return;
      }
      const answer = finalAnswer(row.chargeId, row.request, row.createdAt, outcome);
      try {
        await db(budget(), (sql) =>
          deps.store
            .on(sql)
            .record(key, answer.status, answer.providerChargeId, answer.reply.status, answer.reply.body),
        );
        report[answer.status]++;
      } catch (e) {
        failed(e);
        await defer(false);
      }
    }),
  );
  return report;
}

/**
 * Passes back to back while the backlog lasts: after an incident thousands
 * of leases expire at once, and one batch per interval would take minutes
 * to finish them while clients wait for their final outcome. It stops when
 * a pass finds less than a full batch (the backlog is gone), when a pass
 * finishes nothing (the provider is still failing: its rows are deferred,
 * and looping would only churn leases), or after `maxPasses` (one tick
 * never runs unbounded), or before the next pass once `stopping()` says the
 * process is shutting down: a drain must not wait for up to `maxPasses`
 * provider round trips (measured: a deploy's old process exited 7.19 s after
 * SIGTERM, its drain done at 1.46 s, while the backlog its collapse left ran
 * pass after pass). What it leaves is leased until the lease expires, then
 * the next process finishes it. The totals of all passes are returned.
 */
export async function reconcileBacklog(
  pass: () => Promise<ReconcileReport>,
  batch: number,
  maxPasses = 20,
  stopping: () => boolean = () => false,
): Promise<ReconcileReport> {
  const total = emptyReport();
  for (let i = 0; i < maxPasses && !stopping(); i++) {
    const r = await pass();
    total.leased += r.leased;
    total.succeeded += r.succeeded;
    total.declined += r.declined;
    total.failed += r.failed;
    total.deferred += r.deferred;
    total.needsAttention += r.needsAttention;
    if (r.leased < batch || r.succeeded + r.declined + r.failed === 0) break;
  }
  return total;
}
