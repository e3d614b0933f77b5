/**
 * The periodic jobs both servers run: the database check behind /ready, the
 * reconciler (finishes charges left `started`) and the reaper (prunes
 * completed keys past their retention).
 *
 * A pass that throws is reported (the charge path's error report: logged,
 * rate-limited, counted where the server has counters) and the next
 * interval runs again: a reconciler that stopped on its first error would
 * leave every later crash's charges unfinished, silently.
 */
import { reconcileBacklog, type ReconcileReport } from '../charge/reconciler.js';
import { errorReporter, type ErrorStage } from '../charge/error-report.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../runtime/logger.js';
import { every, type Periodic } from '../runtime/process.js';
import type { ServiceState } from './state.js';

/** How often /ready's database check is refreshed (it is fresh for DB_CHECK_FRESH_MS). */
export const DB_CHECK_INTERVAL_MS = 1000;

export interface ServiceJobs {
  /** True when the database answers. */
  ping(): Promise<unknown>;
  /** One reconciler pass over at most a batch. */
  reconcile(): Promise<ReconcileReport>;
  /** Prune completed keys; how many were removed. */
  reap(): Promise<number>;
}

export interface ServiceTimerSettings {
  reconcileIntervalMs: number;
  /** Passes per run stop once a pass leases fewer than this. */
  reconcileBatch: number;
  reapIntervalMs: number;
}

export type TimerStage = Extract<ErrorStage, 'reconcile' | 'reap' | 'backlog' | 'health'>;

/** The error handler of a periodic job, by stage. */
export type TimerFailed = (stage: TimerStage) => (e: unknown) => void;

export interface TimerErrorOptions {
  clock: Clock;
  log: Logger;
  /** Counts one failed run (the gateway's bulwark_charge_errors_total); the baseline has no counters. */
  count?: (stage: ErrorStage) => void;
  /** Failures that are not errors of ours (the gateway's full worker queue: overload, already shed and counted). */
  expected?: (e: unknown) => boolean;
}

/** Failed runs are logged (rate-limited like the charge path's reports) and counted. */
export function timerErrors(o: TimerErrorOptions): TimerFailed {
  const report = errorReporter({
    clock: o.clock,
    log: o.log,
    ...(o.count ? { count: o.count } : {}),
  });
  return (stage) => (e) => {
    if (!o.expected?.(e)) report(stage, e);
  };
}

export interface ServiceTimers {
  /** No further runs; resolves when the runs in progress have finished. */
  stop(): Promise<void>;
}

/** Start the database check, the reconciler and the reaper; resolves after the first database check. */
export async function startServiceTimers(
  s: ServiceTimerSettings,
  state: ServiceState,
  jobs: ServiceJobs,
  log: Logger,
  failed: TimerFailed,
): Promise<ServiceTimers> {
  const timers: Periodic[] = [
    every(DB_CHECK_INTERVAL_MS, () => state.refreshDbCheck(() => jobs.ping())),
    every(
      s.reconcileIntervalMs,
      async (stopping) => {
        const r = await reconcileBacklog(() => jobs.reconcile(), s.reconcileBatch, undefined, stopping);
        if (r.leased > 0) log.info({ reconcile: r }, 'reconciler finished charges');
      },
      failed('reconcile'),
    ),
    every(
      s.reapIntervalMs,
      async () => {
        const n = await jobs.reap();
        if (n > 0) log.info({ reaped: n }, 'reaper pruned completed keys');
      },
      failed('reap'),
    ),
  ];
  await state.refreshDbCheck(() => jobs.ping());
  return { stop: async () => void (await Promise.all(timers.map((t) => t.stop()))) };
}
