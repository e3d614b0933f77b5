/**
 * The admission decision, before a request is dispatched (and before any key
 * is claimed, so a shed request stores nothing). Pure: every signal comes in
 * as a number, chance comes from an injected random source.
 *
 * Who goes first under overload: charges (the revenue path) over charge reads
 * over quotes. Each class may use a share of the concurrency limit (charges
 * all of it, reads 90 %, quotes 80 %), and under event-loop pressure quotes
 * are shed first and charges last.
 *
 * A charge whose remaining deadline is below the provider's fastest recent
 * answer (answer-time.ts) is shed with reason `deadline` whatever the load:
 * it could not possibly be answered in time, and sending it would only hold
 * a slot, a claim and a provider connection to produce a 504.
 *
 * A charge is also shed when the provider's bulkhead could not give it a
 * slot within its acquire timeout (see bulkhead-pressure.ts): the same 503
 * the bulkhead would send, without the wait.
 *
 * No oscillation: the limit is a cap on concurrency, so as work finishes new
 * work is admitted; event-loop shedding is probabilistic and proportional to
 * how far the loop delay is over target, capped below 100 % (Envoy admission
 * control's max rejection probability), so a burst is thinned, never cut off.
 */
import type { Random } from '../lib/random.js';

export type RequestClass = 'charge' | 'read' | 'quote';
/** Why a request was shed: the `reason` label of bulwark_shed_total (the lab reads it back from /metrics). */
export const SHED_REASONS = ['concurrency', 'event_loop', 'deadline', 'downstream'] as const;
export type ShedReason = (typeof SHED_REASONS)[number];

export interface ShedderConfig {
  /** Event-loop delay (p99 of the last interval) the gateway aims to stay under. */
  loopDelayTargetMs: number;
  /** Delay above target at which the shed probability reaches its cap. */
  loopDelaySpanMs: number;
  /** Event-loop utilization (0..1) above which shedding starts. */
  utilizationTarget: number;
  /** Highest shed probability from loop signals (keeps some traffic flowing to measure recovery). */
  maxShedProbability: number;
  /** Share of requests predicted to miss their deadline that are still admitted, to keep measuring. */
  deadlineProbeFraction: number;
  /** Share of the bulkhead's acquire timeout (or of the time left, if less) a charge may be expected to wait for a provider slot. */
  downstreamHeadroom: number;
}

export const DEFAULT_SHEDDER: ShedderConfig = {
  loopDelayTargetMs: 50,
  loopDelaySpanMs: 200,
  utilizationTarget: 0.95,
  maxShedProbability: 0.95,
  deadlineProbeFraction: 0.05,
  downstreamHeadroom: 0.5,
};

const CLASS_SHARE: Record<RequestClass, number> = { charge: 1, read: 0.9, quote: 0.8 };
/** Multiplier of the loop-pressure shed probability per class. */
const CLASS_PRESSURE: Record<RequestClass, number> = { charge: 0.5, read: 0.75, quote: 1 };

export interface Signals {
  inFlight: number;
  limit: number;
  loopDelayMs: number;
  utilization: number;
  /** Expected wait in the worker queue before the request even starts. */
  expectedMs: number;
  /** Time left before the request's deadline. */
  remainingMs: number;
  /** Charges only: expected wait for a slot of the provider's bulkhead (0 when one is free or bulkheads are off). */
  downstreamWaitMs?: number;
  /** The longest the bulkhead lets a caller wait (its acquire timeout): past it the caller is refused anyway. */
  downstreamBudgetMs?: number;
  /** Charges only: the provider's fastest recent answer (0 = none measured). Less time left than this cannot succeed. */
  downstreamFloorMs?: number;
  /**
   * Share (0..1) of the shedding on event-loop pressure and on the expected
   * worker-queue wait in force: below 1 during the slow-start window after
   * the process started, when those signals measure warm-up (JIT, pools,
   * workers booting) rather than overload. The concurrency limit, the
   * deadline floor and the bulkhead estimate (live counters of a bulkhead
   * shared with the running workers) are always in force. Default 1.
   */
  warmth?: number;
}

export function shed(
  cls: RequestClass,
  signals: Signals,
  random: Random,
  config: ShedderConfig = DEFAULT_SHEDDER,
): ShedReason | null {
  if (cls === 'charge' && signals.remainingMs < (signals.downstreamFloorMs ?? 0)) return 'deadline';
  if (atConcurrencyLimit(cls, signals.inFlight, signals.limit)) return 'concurrency';
  const overDelay = (signals.loopDelayMs - config.loopDelayTargetMs) / config.loopDelaySpanMs;
  const overUtil = (signals.utilization - config.utilizationTarget) / (1 - config.utilizationTarget);
  const pressure = Math.max(0, Math.min(1, Math.max(overDelay, overUtil)));
  const warmth = Math.max(0, Math.min(1, signals.warmth ?? 1));
  const p = Math.min(config.maxShedProbability, pressure * CLASS_PRESSURE[cls]) * warmth;
  if (p > 0 && random() < p) return 'event_loop';
  // Admitted: the probes, plus (while warming up) the share not yet in force.
  if (signals.expectedMs > signals.remainingMs && random() >= 1 - warmth * (1 - config.deadlineProbeFraction))
    return 'deadline';
  // A charge the provider's bulkhead would refuse after its acquire timeout
  // is refused now, for nothing. The estimate is a mean: callers expected
  // near the edge of the timeout would still miss it half the time, so only
  // those expected within a share of it are admitted (a few waiters are all
  // it takes to keep every slot busy).
  const waitMs = signals.downstreamWaitMs ?? 0;
  if (
    cls === 'charge' &&
    waitMs > 0 &&
    waitMs > config.downstreamHeadroom * Math.min(signals.downstreamBudgetMs ?? Infinity, signals.remainingMs)
  )
    return 'downstream';
  return null;
}

/** The hard part of the decision: the class's share of the concurrency limit is taken. No chance involved. */
export function atConcurrencyLimit(cls: RequestClass, inFlight: number, limit: number): boolean {
  return inFlight >= Math.max(1, Math.floor(limit * CLASS_SHARE[cls]));
}

/** What admission (the limit and this shedder, on the front thread) reports for /metrics and /admin/state. */
export interface AdmissionStats {
  /** The current concurrency limit; null when the limit is off. */
  limit: number | null;
  inFlight: number;
  /** Requests shed since start, by reason. */
  shed: Record<ShedReason, number>;
  expectedQueueWaitMs: number;
  loopDelayMs: number;
  loopUtilization: number;
}
