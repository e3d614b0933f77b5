/**
 * Admission on the front thread: the concurrency limit (static or adaptive)
 * and the shedder, fed by the loop monitor and by what admitted requests
 * took. Counts in-flight requests exactly (one front thread sees them all).
 */
import type { GatewayConfig } from '../config/service.js';
import type { Clock } from '../lib/clock.js';
import type { Random } from '../lib/random.js';
import { FixedLimit, GradientLimit, type Limit } from '../resilience/limit.js';
import { DEFAULT_SLO } from '../slo/burn.js';
import {
  atConcurrencyLimit,
  DEFAULT_SHEDDER,
  shed,
  type AdmissionStats,
  type RequestClass,
  type ShedReason,
} from '../resilience/shedder.js';

export interface AdmissionSettings {
  shedding: boolean;
  limit: 'adaptive' | 'static' | 'off';
  staticLimit: number;
  minLimit: number;
  maxLimit: number;
  loopDelayTargetMs: number;
  /**
   * Slow start: for this long after start-up (ms) shedding on the event loop
   * and on the expected worker-queue wait ramps in linearly from nothing, as
   * HAProxy's `slowstart` ramps a server's weight. 0 or absent: in force at
   * once.
   */
  slowStartMs?: number;
}

/** The gateway's settings as admission takes them; MECHANISMS=false turns shedding and the limit off. */
export function admissionSettings(c: GatewayConfig): AdmissionSettings {
  const on = c.mechanisms;
  return {
    shedding: on && c.shedding,
    limit: on ? c.concurrencyLimit : 'off',
    staticLimit: c.concurrencyLimitStatic,
    minLimit: c.concurrencyLimitMin,
    maxLimit: c.concurrencyLimitMax,
    loopDelayTargetMs: c.loopDelayTargetMs,
    slowStartMs: c.sheddingSlowStartMs,
  };
}

/**
 * The adaptive limit's shape (the bounds come from the settings): a tenth of
 * each new gradient is taken (a fifth swung ±27-34 % around its mean in the
 * closed-loop model of test/resilience/limit-surge.test.ts, a tenth
 * ±16-22 %), answers up to 1.5× the baseline RTT or up to 50 ms over it (a
 * sixth of the SLO's 300 ms), whichever is more, are no queueing, the
 * baseline spans 600 samples and the short RTT 50. A short RTT of 10
 * answers read a few slow ones as queueing and shed 2-7 % of a healthy
 * 1 600-2 400/s (docs/mechanisms.md has the runs). Without the
 * 50 ms, a baseline of a few ms made any 1.5× a queue: the committed bench
 * at b2c4ab4 cut the limit to 87-178 at 4 050/s, two thirds of the
 * ceiling, and shed 700-900 charges there with p99 at 38-46 ms.
 */
export const GRADIENT_SHAPE = {
  smoothing: 0.1,
  tolerance: 1.5,
  allowanceMs: DEFAULT_SLO.latencyThresholdMs / 6,
  longWindow: 600,
  shortWindow: 50,
} as const;

export interface LoopSignals {
  delayMs: number;
  utilization: number;
}

/** Expected wait in the worker queue for a task dispatched now. */
export type QueueEstimate = () => number;

/** Expected wait for a provider bulkhead slot for a charge dispatched now (given the charges in flight), and the bulkhead's acquire timeout. */
export interface DownstreamEstimate {
  waitMs: (chargesInFlight: number) => number;
  budgetMs: number;
}

export class Admission {
  inFlight = 0;
  /** Of inFlight, the charges (the provider's callers). */
  chargesInFlight = 0;
  readonly limit: Limit;
  readonly shed: Record<ShedReason, number> = { concurrency: 0, event_loop: 0, deadline: 0, downstream: 0 };
  readonly #shedder = { ...DEFAULT_SHEDDER };
  readonly #startedAt: number;
  /** Set once the slow-start window is over, so the hot path stops reading the clock for it. */
  #warm: boolean;

  constructor(
    private readonly settings: AdmissionSettings,
    private readonly loop: LoopSignals,
    private readonly queue: QueueEstimate,
    private readonly random: Random,
    private readonly clock: Clock,
    /** Absent when bulkheads are off. */
    private readonly downstream?: DownstreamEstimate,
    /** The provider's fastest recent answer (ms, 0 = unknown): a charge with less time left is refused. */
    private readonly providerFloorMs?: () => number,
  ) {
    this.#shedder.loopDelayTargetMs = settings.loopDelayTargetMs;
    this.#startedAt = clock.now();
    this.#warm = !(settings.slowStartMs && settings.slowStartMs > 0);
    this.limit =
      settings.limit === 'adaptive'
        ? new GradientLimit({
            initial: settings.staticLimit,
            min: settings.minLimit,
            max: settings.maxLimit,
            ...GRADIENT_SHAPE,
          })
        : new FixedLimit(settings.limit === 'static' ? settings.staticLimit : Number.MAX_SAFE_INTEGER);
  }

  /** Admit (returns null and counts the request in flight) or say why not. */
  tryAdmit(cls: RequestClass, remainingMs: number): ShedReason | null {
    let reason: ShedReason | null = null;
    if (this.settings.limit !== 'off' || this.settings.shedding) {
      reason = shed(
        cls,
        {
          inFlight: this.inFlight,
          limit: this.settings.limit === 'off' ? Number.MAX_SAFE_INTEGER : this.limit.current,
          loopDelayMs: this.settings.shedding ? this.loop.delayMs : 0,
          utilization: this.settings.shedding ? this.loop.utilization : 0,
          expectedMs: this.settings.shedding ? this.queue() : 0,
          remainingMs,
          downstreamWaitMs:
            this.settings.shedding && this.downstream && cls === 'charge'
              ? this.downstream.waitMs(this.chargesInFlight)
              : 0,
          downstreamBudgetMs: this.downstream?.budgetMs ?? Infinity,
          downstreamFloorMs:
            this.settings.shedding && this.providerFloorMs && cls === 'charge' ? this.providerFloorMs() : 0,
          warmth: this.#warmth(),
        },
        this.random,
        this.#shedder,
      );
    }
    if (reason) {
      this.shed[reason]++;
      return reason;
    }
    this.inFlight++;
    if (cls === 'charge') this.chargesInFlight++;
    return null;
  }

  /**
   * Share of the event-loop and queue-wait shedding in force (slow start). A
   * fresh process's loop is busy warming up (JIT, worker and DB pools) and
   * its queue-wait average comes from tasks that waited for a worker to
   * boot: shedding on them turned every deploy into seconds of 503s at
   * healthy load. The concurrency limit, the deadline floor and the
   * bulkhead estimate protect meanwhile.
   */
  #warmth(): number {
    if (this.#warm) return 1;
    const w = (this.clock.now() - this.#startedAt) / this.settings.slowStartMs!;
    if (w < 1) return Math.max(0, w);
    this.#warm = true;
    return 1;
  }

  /**
   * Take a slot again for a request tryAdmit() admitted, which gave its slot
   * back meanwhile (gateway: a charge whose body did not come with its
   * headers holds no slot while it uploads). The decision was made once, at
   * the headers: a second probabilistic shed would refuse a body sent in a
   * later packet with probability 1 − (1 − p)² instead of p. Only the
   * deterministic rules apply: the hard concurrency limit, so slots never
   * exceed it, and (with shedding on) a deadline already spent during the
   * upload, or below the provider's fastest answer, which could only end in
   * a 504 after a claim.
   */
  readmit(cls: RequestClass, remainingMs: number): ShedReason | null {
    let reason: ShedReason | null = null;
    if (this.settings.limit !== 'off' && atConcurrencyLimit(cls, this.inFlight, this.limit.current))
      reason = 'concurrency';
    else if (
      this.settings.shedding &&
      (remainingMs <= 0 || (cls === 'charge' && remainingMs < (this.providerFloorMs?.() ?? 0)))
    )
      reason = 'deadline';
    if (reason) {
      this.shed[reason]++;
      return reason;
    }
    this.inFlight++;
    if (cls === 'charge') this.chargesInFlight++;
    return null;
  }

  /** An admitted request ended before any work was done (invalid, refused, client gone): no latency sample. */
  cancel(cls: RequestClass): void {
    this.inFlight--;
    if (cls === 'charge') this.chargesInFlight--;
  }

  /**
   * An admitted request finished after startedAt (clock.now() ms); dropped =
   * it timed out or was refused downstream. Only charges teach the limit: it
   * compares answer times with their own baseline, and a read (Postgres,
   * ~2 ms) beside a charge (the provider, 100-300 ms) made every run of
   * charges among the reads look like queueing: modelled, 300 charges/s
   * beside 900 reads/s shed 2 800 charges in 20 s with nothing wrong
   * (test/gateway/admission.test.ts). Reads and quotes still count in flight
   * against the limit and keep their class shares; traffic of reads or
   * quotes alone leaves the limit where it is.
   */
  done(cls: RequestClass, startedAt: number, dropped: boolean): void {
    if (cls === 'charge') this.limit.onSample(this.clock.now() - startedAt, this.inFlight, dropped);
    this.inFlight--;
    if (cls === 'charge') this.chargesInFlight--;
  }

  stats(): AdmissionStats {
    return {
      limit: this.settings.limit === 'off' ? null : this.limit.current,
      inFlight: this.inFlight,
      shed: { ...this.shed },
      expectedQueueWaitMs: this.queue(),
      loopDelayMs: this.loop.delayMs,
      loopUtilization: this.loop.utilization,
    };
  }
}
