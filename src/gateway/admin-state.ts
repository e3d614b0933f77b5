/**
 * GET /admin/state: one JSON snapshot of what an operator needs during an
 * incident (recent RED per route, drain, the settings in force, admission,
 * breakers, bulkheads, retry budget, counters, the charge backlog, workers,
 * which mechanisms are on), built from the parts serve.ts wires together.
 * Names are snake_case like the rest of the admin and metrics surface.
 */
import type { GatewayConfig } from '../config/service.js';
import type { Clock } from '../lib/clock.js';
import { recentRed } from '../metrics/red.js';
import type { Telemetry } from '../metrics/telemetry.js';
import type { RecentWindow } from '../metrics/window.js';
import type { Protection, ProtectionSettings } from '../resilience/protection.js';
import { drainElapsedSeconds, type DrainState } from '../runtime/process.js';
import type { ServiceState } from '../service/state.js';
import type { Admission } from './admission.js';
import type { BacklogReading } from './backlog.js';

export interface AdminStateSources {
  config: Pick<
    GatewayConfig,
    | 'mechanisms'
    | 'shedding'
    | 'concurrencyLimit'
    | 'loopDelayTargetMs'
    | 'bulkheadAcquireTimeoutMs'
    | 'dbAcquireTimeoutMs'
  >;
  protectionSettings: ProtectionSettings;
  protection: Protection;
  telemetry: Telemetry;
  window: RecentWindow;
  state: ServiceState;
  admission: Admission;
  workers: () => { threads: number; queue_size: number; utilization: number };
  drain: () => DrainState;
  backlog: BacklogReading;
  clock: Clock;
}

/** The routes whose recent RED the snapshot shows. */
const RED_ROUTES = ['/charge', '/charges/:key', '/quote'];

export function adminState(s: AdminStateSources): () => unknown {
  const { config: c, protectionSettings: ps, protection } = s;
  const on = c.mechanisms;
  return () => {
    const now = s.clock.epochMs();
    const drain = s.drain();
    const backlog = s.backlog.stats;
    return {
      red: recentRed(s.telemetry, s.window, RED_ROUTES),
      draining: s.state.draining,
      drain: { elapsed_seconds: drainElapsedSeconds(drain), abandoned: drain.abandoned },
      settings: {
        loop_delay_target_ms: c.loopDelayTargetMs,
        breaker: ps.breaker,
        retry_budget: ps.budget,
        bulkhead_acquire_timeout_ms: c.bulkheadAcquireTimeoutMs,
        db_acquire_timeout_ms: c.dbAcquireTimeoutMs,
      },
      in_flight_requests: s.state.inFlight,
      admission: s.admission.stats(),
      breakers: Object.fromEntries(Object.entries(protection.breakers).map(([n, b]) => [n, b.stats(now)])),
      bulkheads: Object.fromEntries(Object.entries(protection.bulkheads).map(([n, b]) => [n, b.stats()])),
      retry_budget: protection.budget?.stats() ?? null,
      events: protection.events.snapshot(),
      charges: {
        checked_at: s.backlog.readAt === null ? null : new Date(s.backlog.readAt).toISOString(),
        oldest_started_age_seconds: backlog?.oldestStartedAgeSeconds ?? null,
        needs_attention: backlog
          ? {
              count: backlog.needsAttention,
              oldest: backlog.oldestNeedingAttention.map((o) => ({
                key_hash: o.keyHash,
                created_at: o.createdAt,
                reconcile_attempts: o.reconcileAttempts,
              })),
            }
          : null,
      },
      workers: s.workers(),
      mechanisms: {
        shedding: on && c.shedding,
        concurrency_limit: on ? c.concurrencyLimit : 'off',
        breakers: ps.breakers,
        bulkheads: ps.bulkheads,
        retry_budget: ps.retryBudget,
      },
    };
  };
}
