/**
 * The load generator's public shapes: the options a run takes and the result
 * it returns. The result uses snake_case because it *is* the JSON contract:
 * `--json FILE` writes this object as is, and other tools (the scenario
 * report, `bulwark slo burn --result FILE`) read those names, so there is no
 * second, hand-mapped shape to drift from this one.
 */

export type RequestClass = 'charge' | 'read' | 'quote';
export const REQUEST_CLASSES: readonly RequestClass[] = ['charge', 'read', 'quote'];

export type RetryPolicyName = 'none' | 'capped' | 'storm';
export type ScheduleKind = 'constant' | 'steps' | 'poisson';

/** One segment of an arrival profile: `rate` arrivals per second for `durationMs`. */
export interface Step {
  readonly rate: number;
  readonly durationMs: number;
}

export interface LoadOptions {
  /** Gateway base URL, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  /** constant: evenly spaced at `rate`; steps: evenly spaced per step; poisson: exponential gaps (over `steps` when given, else at `rate`). */
  readonly schedule: ScheduleKind;
  /** Arrivals per second for constant and poisson. */
  readonly rate: number;
  /** The profile for `steps` (and optionally `poisson`); empty otherwise. */
  readonly steps: readonly Step[];
  /** Schedule length in seconds; arrivals stop after it. */
  readonly durationSeconds: number;
  /** Hard cap on sends (first attempts and retries); the schedule stops when it is reached. */
  readonly maxRequests: number;
  /** Per-request deadline sent as X-Request-Timeout-Ms; also the goodput bound. */
  readonly deadlineMs: number;
  /** The client abandons an attempt at deadlineMs + graceMs after sending it. */
  readonly graceMs: number;
  /** undici Pool connections (pipelining 1). */
  readonly connections: number;
  /** Relative weights of the request classes (at least one > 0). */
  readonly mix: Readonly<Record<RequestClass, number>>;
  readonly retry: RetryPolicyName;
  /** Attempts per request including the first; 0 = the policy's default (capped 3, storm 10). */
  readonly maxAttempts: number;
  /** Backoff base for capped retries (full jitter over base·2^(n-1)). */
  readonly retryBaseMs: number;
  /** Ceiling of one backoff, and of how long a Retry-After is honoured. */
  readonly retryCapMs: number;
  /** Seeds key names, amounts, the mix, Poisson gaps and jitter. */
  readonly seed: number;
  /** Prefix of Idempotency-Keys: `<runId>-<n>`. */
  readonly runId: string;
  /** The SLO's latency threshold for /charge. */
  readonly sloLatencyMs: number;
  /** behind_schedule when the p99 of send lag exceeds this... */
  readonly behindP99Ms: number;
  /** ...or any single send lags more than this. */
  readonly behindMaxMs: number;
}

/** Latency percentiles in milliseconds, measured from the intended send time. */
export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

/** Counters shared by a second, a class and the totals. */
export interface Counts {
  /** Scheduled arrivals (by intended send time). */
  offered: number;
  /** First attempts sent. */
  sent: number;
  /** Extra attempts sent by the retry policy. */
  retries: number;
  /** Requests that ended (any outcome), by the time of their final answer. */
  completed: number;
  /** Requests answered with a final outcome within their deadline. */
  goodput: number;
  /** Final client-visible outcome per request: HTTP status, or `timeout` / `error`. */
  statuses: Record<string, number>;
  /** Every attempt's outcome, retries included (shows what a storm sent). */
  attempt_statuses: Record<string, number>;
  /** Requests whose final outcome was a client-side timeout. */
  timeouts: number;
  /** Requests whose final outcome was a connection error. */
  connection_errors: number;
}

export interface ClassStats extends Counts {
  latency_ms: LatencySummary;
}

export interface SecondStats extends Counts {
  /** Seconds since the start of the schedule (0-based). */
  second: number;
  latency_ms: Partial<Record<RequestClass, LatencySummary>>;
  /**
   * The generator measuring itself, so a run can tell "the target was slow"
   * from "the generator could not keep up": the worst send lag of the
   * arrivals intended in this second, and the CPU this process used in it
   * (all its threads; ms of CPU per second of wall time, so 1000 = one core
   * busy). Absent when nothing was measured for the second.
   */
  generator?: { lag_max_ms: number; cpu_ms?: number };
}

export interface ScheduleLag {
  /** Lag of the actual send behind the intended send time, ms. */
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  /** Intended offset (ms from start) of the worst-lagging send. */
  max_at_ms: number;
  threshold_p99_ms: number;
  threshold_max_ms: number;
}

/** What `bulwark slo burn --result FILE` reads. */
export interface SloBlock {
  route: '/charge';
  /** Charge requests that ended (timeouts and errors included). */
  total: number;
  /** Of those, answered with a non-5xx status within latency_threshold_ms of the intended send. */
  good: number;
  duration_seconds: number;
  latency_threshold_ms: number;
}

/** The client-visible outcome of one charge key, for the audit. */
export interface ChargeOutcome {
  key: string;
  /** Final HTTP status, or `timeout` / `error` when no answer came. */
  status: number | 'timeout' | 'error';
  attempts: number;
  /** Every attempt's outcome in order. */
  history: (number | 'timeout' | 'error')[];
  /**
   * Each attempt's problem `code` ('' for an attempt without one), in the
   * order of `history`; absent when no attempt had one. Tells a refusal on
   * the way up (`starting`) from one by the running service (`overloaded`,
   * `bulkhead_full`) where the status alone cannot.
   */
  codes?: string[];
  /** From intended send to the final answer, ms. */
  latency_ms: number;
  /** Intended send, ms from the start of the schedule. */
  intended_ms: number;
  /** True when the final answer carried Idempotent-Replayed: true. */
  replayed: boolean;
  charge_id?: string;
  provider_charge_id?: string;
  /** The connection error code when status is `error`. */
  error?: string;
  /** True when the run ended before the retry policy was done with the key. */
  abandoned?: boolean;
}

export interface LoadResult {
  run_id: string;
  seed: number;
  url: string;
  /** Wall-clock start, ISO 8601. */
  started_at: string;
  schedule: ScheduleKind;
  retry: RetryPolicyName;
  deadline_ms: number;
  /** Seconds the schedule actually ran (shorter than asked when max_requests stopped it). */
  duration_seconds: number;
  /** Seconds from start until the last straggler ended or was abandoned. */
  elapsed_seconds: number;
  stopped_by: 'duration' | 'max_requests' | 'signal';
  behind_schedule: boolean;
  schedule_lag: ScheduleLag;
  /** CPU seconds this process used from the start to the end of the run (all threads). */
  generator_cpu_s: number;
  totals: Counts & { goodput_per_second: number; abandoned: number };
  classes: Partial<Record<RequestClass, ClassStats>>;
  seconds: SecondStats[];
  slo: SloBlock;
  /** Per charge key, in key order. Not written by --json (see --outcomes). */
  outcomes: ChargeOutcome[];
}

export interface LoadHooks {
  /** Called once per elapsed second with that second's stats. */
  onSecond?(stats: SecondStats): void;
  /** Stops the schedule early (stragglers still get their deadline). */
  signal?: AbortSignal;
}
