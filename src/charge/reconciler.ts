/**
 * The reconciler finishes every `started` charge whose lease expired (a
 * crash, SIGKILL, a timed-out request, an unknown provider outcome). It asks
 * the provider with the row's own provider key — a create-or-get that the
 * provider dedupes — so a charge that reached the provider is found, and one
 * that never did is completed exactly once. Row leases (SKIP LOCKED) let many
 * replicas reconcile at once without doing the same row twice.
 */
import type { Provider } from '../downstream/provider-client.js';
import type { RetryEnv } from '../resilience/retry.js';
import { callProvider, finalAnswer, gateOf, type DbGate, type LifecycleSettings } from './lifecycle.js';
import { ChargeStore } from './store.js';

export interface ReconcileReport {
  leased: number;
  succeeded: number;
  declined: number;
  failed: number;
  /** Still unknown: lease released with a delay, tried again later. */
  deferred: number;
}

export interface ReconcilerDeps extends RetryEnv {
  store: ChargeStore;
  provider: Provider;
  settings: LifecycleSettings;
  /** The global DB bound, as for charges; unset: statements on `store` bounded by their budget alone. */
  db?: DbGate;
}

/** Delay before a charge whose outcome is still unknown is tried again. */
const DEFER_MS = 1000;

export async function reconcileOnce(deps: ReconcilerDeps, batch: number): Promise<ReconcileReport> {
  const report: ReconcileReport = { leased: 0, succeeded: 0, declined: 0, failed: 0, deferred: 0 };
  const db = gateOf(deps);
  // Each statement gets the charge path's settle budget (one provider
  // attempt's timeout): a stalled database costs a pass that long, and the
  // rows it may have leased are picked up again when their lease expires.
  const budget = () => deps.clock.epochMs() + deps.settings.providerRetry.attemptTimeoutMs;
  const release = (row: { idempotencyKey: string; leaseToken: string }) =>
    db(budget(), (sql) => new ChargeStore(sql).release(row.idempotencyKey, row.leaseToken, DEFER_MS)).catch(() => {});
  const rows = await db(budget(), (sql) => new ChargeStore(sql).leaseExpired(batch, deps.settings.leaseMs));
  report.leased = rows.length;
  await Promise.all(
    rows.map(async (row) => {
      const policy = deps.settings.providerRetry;
      const deadline = deps.clock.epochMs() + policy.attemptTimeoutMs * policy.maxAttempts + policy.capMs * (policy.maxAttempts - 1);
      const outcome = await callProvider(deps, row.providerKey, row.idempotencyKey, row.request, deadline);
      if (outcome.kind === 'unknown' || outcome.kind === 'refused') {
        report.deferred++;
        await release(row);
        return;
      }
      const answer = finalAnswer(row.chargeId, row.request, row.createdAt, outcome);
      try {
        await db(budget(), (sql) => new ChargeStore(sql).record(row.idempotencyKey, answer.status, answer.providerChargeId, answer.reply.status, answer.reply.body));
        report[answer.status]++;
      } catch {
        report.deferred++;
        await release(row);
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
 * never runs unbounded). The totals of all passes are returned.
 */
export async function reconcileBacklog(pass: () => Promise<ReconcileReport>, batch: number, maxPasses = 20): Promise<ReconcileReport> {
  const total: ReconcileReport = { leased: 0, succeeded: 0, declined: 0, failed: 0, deferred: 0 };
  for (let i = 0; i < maxPasses; i++) {
    const r = await pass();
    total.leased += r.leased;
    total.succeeded += r.succeeded;
    total.declined += r.declined;
    total.failed += r.failed;
    total.deferred += r.deferred;
    if (r.leased < batch || r.succeeded + r.declined + r.failed === 0) break;
  }
  return total;
}
