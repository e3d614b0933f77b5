/**
 * The gateway's protection state in one place: which mechanisms are on, and
 * the shared regions behind them. The front thread allocates and initialises
 * the layout once; every thread (front and workers) opens the same regions,
 * so there is one breaker, one bulkhead and one retry budget per downstream
 * for the whole process.
 */
import { systemClock, type Clock } from '../lib/clock.js';
import { AnswerTime, ANSWER_TIME_REGION, initAnswerTimeRegion } from './answer-time.js';
import type { GatewayConfig } from '../config/service.js';
import { probeTimeoutMs } from '../config/service.js';
import {
  Breaker,
  BREAKER_BUCKETS,
  breakerRegionSpec,
  initBreakerRegion,
  type BreakerConfig,
  type Transition,
} from './breaker.js';
import { Bulkhead, BULKHEAD_REGION, initBulkheadRegion, type BulkheadConfig, type Reclaimed } from './bulkhead.js';
import { SharedCounters } from '../shm/counters.js';
import {
  initRetryBudgetRegion,
  RetryBudget,
  retryBudgetMaxTokens,
  RETRY_BUDGET_REGION,
  type RetryBudgetConfig,
} from './retry-budget.js';
import { allocateShared, openRegion, type SharedLayout } from '../shm/regions.js';
import { QueueWait, QUEUE_WAIT_REGION } from './queue-wait.js';
import { claimThreadSlot, freeThreadSlot, SHARED_SLOT, slotOf, THREAD_SLOTS_REGION } from './thread-slots.js';
import type { Region } from '../shm/regions.js';

export type Downstream = 'provider' | 'fx';
export const DOWNSTREAMS: readonly Downstream[] = ['provider', 'fx'];

/** Plain, cloneable: crosses into worker threads. */
export interface ProtectionSettings {
  breakers: boolean;
  breaker: BreakerConfig;
  bulkheads: boolean;
  providerBulkhead: BulkheadConfig;
  fxBulkhead: BulkheadConfig;
  /** Longest wait for a downstream bulkhead slot. */
  bulkheadAcquireTimeoutMs: number;
  /** Global bound on concurrent DB phases (the DB pool's in-use limit). */
  db: BulkheadConfig;
  dbAcquireTimeoutMs: number;
  retryBudget: boolean;
  budget: RetryBudgetConfig;
}

/** The gateway's settings as the shared protection takes them; MECHANISMS=false switches every mechanism off. */
export function protectionSettings(c: GatewayConfig): ProtectionSettings {
  const on = c.mechanisms;
  return {
    breakers: on && c.breakers,
    breaker: {
      windowMs: c.breakerWindowMs,
      buckets: BREAKER_BUCKETS,
      minCalls: c.breakerMinCalls,
      failureRateThreshold: c.breakerFailureRate,
      slowCallMs: c.breakerSlowCallMs,
      slowCallRateThreshold: c.breakerSlowCallRate,
      openMs: c.breakerOpenMs,
      minOpenMs: Math.min(c.breakerMinOpenMs, c.breakerOpenMs),
      halfOpenProbes: c.breakerHalfOpenProbes,
      halfOpenSuccessRatio: c.breakerHalfOpenSuccessRatio,
      probeTimeoutMs: probeTimeoutMs(c),
    },
    bulkheads: on && c.bulkheads,
    providerBulkhead: { limit: c.providerBulkhead, maxWaiting: c.bulkheadMaxWaiting },
    fxBulkhead: { limit: c.fxBulkhead, maxWaiting: c.bulkheadMaxWaiting },
    bulkheadAcquireTimeoutMs: c.bulkheadAcquireTimeoutMs,
    db: { limit: c.dbPoolMax, maxWaiting: c.bulkheadMaxWaiting },
    dbAcquireTimeoutMs: c.dbAcquireTimeoutMs,
    retryBudget: on && c.retryBudget,
    budget: {
      ratio: c.retryBudgetRatio,
      minPerSecond: c.retryBudgetMinPerSecond,
      maxTokens: retryBudgetMaxTokens(c.retryBudgetMinPerSecond),
    },
  };
}

const EVENT_COUNTERS = [
  'retry_provider_status_5xx',
  'retry_provider_timeout',
  'retry_provider_connection',
  'retry_provider_other',
  'retry_suppressed_budget',
  'retry_suppressed_deadline',
  'retry_suppressed_attempts',
  'retry_suppressed_breaker_open',
  'timeout_claim',
  'timeout_provider',
  'timeout_fx',
  'db_acquire_timeout',
  'db_statement_timeout',
  'db_pool_replaced',
  'reconcile_succeeded',
  'reconcile_declined',
  'reconcile_failed',
  'reconcile_deferred',
  'reconcile_needs_attention',
  // Unexpected errors by stage (src/charge/error-report.ts): logged and counted.
  'error_claim',
  'error_record',
  'error_release',
  'error_read',
  'error_ping',
  'error_reconcile',
  'error_reap',
  'error_backlog',
  'error_health',
  'group_commit_claim_statements',
  'group_commit_claim_requests',
  'group_commit_record_statements',
  'group_commit_record_requests',
] as const;
export type EventCounter = (typeof EVENT_COUNTERS)[number];

export interface Protection {
  settings: ProtectionSettings;
  breakers: Partial<Record<Downstream, Breaker>>;
  bulkheads: Partial<Record<Downstream | 'db', Bulkhead>>;
  budget?: RetryBudget;
  events: SharedCounters<EventCounter>;
  queueWait: QueueWait;
  /** This thread's slot in the holdings tables; SHARED_SLOT when untracked. */
  threadSlot: number;
  /** The slot table (which thread owns which slot). */
  threads: Region;
  /** Fastest recent useful answer of each downstream (admission's deadline floor). */
  answers: Record<Downstream, AnswerTime>;
}

export function createProtectionLayout(s: ProtectionSettings, nowEpochMs: number): SharedLayout {
  const layout = allocateShared({
    'breaker:provider': breakerRegionSpec(s.breaker),
    'breaker:fx': breakerRegionSpec(s.breaker),
    'bulkhead:provider': BULKHEAD_REGION,
    'bulkhead:fx': BULKHEAD_REGION,
    'bulkhead:db': BULKHEAD_REGION,
    budget: RETRY_BUDGET_REGION,
    events: SharedCounters.spec(EVENT_COUNTERS.length),
    queue: QUEUE_WAIT_REGION,
    threads: THREAD_SLOTS_REGION,
    'answers:provider': ANSWER_TIME_REGION,
    'answers:fx': ANSWER_TIME_REGION,
  });
  for (const d of DOWNSTREAMS) initAnswerTimeRegion(openRegion(layout, `answers:${d}`));
  for (const d of DOWNSTREAMS) initBreakerRegion(openRegion(layout, `breaker:${d}`), s.breaker);
  initBulkheadRegion(openRegion(layout, 'bulkhead:provider'), s.providerBulkhead);
  initBulkheadRegion(openRegion(layout, 'bulkhead:fx'), s.fxBulkhead);
  initBulkheadRegion(openRegion(layout, 'bulkhead:db'), s.db);
  initRetryBudgetRegion(openRegion(layout, 'budget'), s.budget, nowEpochMs);
  return layout;
}

/**
 * Open the shared state on this thread. A worker passes its threadId: it gets
 * a thread slot, so what it holds can be given back if it dies
 * (`reclaimThread`); the front thread passes nothing.
 */
export function openProtection(
  layout: SharedLayout,
  s: ProtectionSettings,
  onTransition?: (name: Downstream, t: Transition) => void,
  threadId?: number,
  clock: Clock = systemClock,
): Protection {
  const threads = openRegion(layout, 'threads');
  const slot = threadId === undefined ? SHARED_SLOT : claimThreadSlot(threads, threadId);
  const p: Protection = {
    settings: s,
    breakers: {},
    bulkheads: {},
    events: new SharedCounters(openRegion(layout, 'events'), EVENT_COUNTERS),
    queueWait: new QueueWait(openRegion(layout, 'queue')),
    threadSlot: slot,
    threads,
    answers: {
      provider: new AnswerTime(openRegion(layout, 'answers:provider')),
      fx: new AnswerTime(openRegion(layout, 'answers:fx')),
    },
  };
  if (s.breakers) {
    for (const d of DOWNSTREAMS)
      p.breakers[d] = new Breaker(d, openRegion(layout, `breaker:${d}`), s.breaker, (t) => onTransition?.(d, t));
  }
  if (s.bulkheads) {
    p.bulkheads.provider = new Bulkhead('provider', openRegion(layout, 'bulkhead:provider'), clock, slot);
    p.bulkheads.fx = new Bulkhead('fx', openRegion(layout, 'bulkhead:fx'), clock, slot);
  }
  // The DB bound is the pool itself: always on, like any bounded pool.
  p.bulkheads.db = new Bulkhead('db', openRegion(layout, 'bulkhead:db'), clock, slot);
  if (s.retryBudget) p.budget = new RetryBudget(openRegion(layout, 'budget'), s.budget);
  return p;
}

/** What a dead thread held, per bulkhead, now given back; null when it had no slot. */
export type ThreadHoldings = Partial<Record<Downstream | 'db', Reclaimed>>;

/**
 * Give back everything the exited thread `threadId` held on every bulkhead
 * (in use and waiting), then free its slot. Call it only once the thread has
 * exited: a live thread would release the same slots again.
 */
export function reclaimThread(p: Protection, threadId: number): ThreadHoldings | null {
  const slot = slotOf(p.threads, threadId);
  if (slot === SHARED_SLOT) return null;
  const out: ThreadHoldings = {};
  for (const [name, b] of Object.entries(p.bulkheads) as [Downstream | 'db', Bulkhead][]) out[name] = b.reclaim(slot);
  freeThreadSlot(p.threads, slot, threadId);
  return out;
}
