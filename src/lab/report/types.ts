/**
 * The lab's report: what `bulwark scenario NAME` and `bulwark bench` write as
 * JSON, and what the Markdown and HTML renderers draw. Every claim in a
 * report is a measured row here; renderers compute nothing but layout.
 */
import type { ShedReason } from '../../resilience/shedder.js';

export interface MachineInfo {
  cores: number;
  cpu_model: string;
  memory_gib: number;
  node: string;
  platform: string;
  /** ISO time the run started. */
  date: string;
}

/** Which service variant a row is about. */
export type VariantName =
  'gateway' | 'gateway-off' | 'baseline' | 'baseline-hardened' | 'baseline-cluster' | 'baseline-haproxy';

export const VARIANT_LABELS: Record<VariantName, string> = {
  gateway: 'bulwark (mechanisms on)',
  'gateway-off': 'bulwark (mechanisms off)',
  baseline: 'Fastify baseline',
  'baseline-hardened': 'Fastify baseline --hardened',
  'baseline-cluster': 'Fastify ×cores (node:cluster)',
  'baseline-haproxy': 'Fastify ×cores behind HAProxy (maxconn)',
};

/** One second of a run. */
export interface TimelinePoint {
  /** Seconds since the variant's load started. */
  t: number;
  offered: number;
  /** Final outcomes (201, 402, replay) answered within their deadline. */
  goodput: number;
  /** p99 latency of /charge answers in this second (ms), null when none. */
  p99_ms: number | null;
  /** 503 answers in this second. */
  rate_503: number;
  timeouts: number;
  /**
   * Of the charges *sent* (intended) in this second, the share (%) the SLO
   * counts good: not 5xx and answered within its latency threshold. By send
   * second, so a slow answer is charged to the second that suffered it; null
   * when no charge was sent then. Absent in results from before it existed.
   */
  slo_good_pct?: number | null;
  /** p99 of the unrelated reads (GET /charges/:key), when the scenario mixes them in. */
  read_p99_ms?: number | null;
  /** Scraped from /metrics in that second (gateway variants; absent otherwise). */
  breaker_provider?: string;
  breaker_fx?: string;
  shed_per_s?: number;
  /** Of shed_per_s, the reasons that shed anything in that second (absent when nothing was shed). */
  shed_reasons_per_s?: Partial<Record<ShedReason, number>>;
  bulkhead_rejections_per_s?: number;
  db_acquire_timeouts_per_s?: number;
  admission_limit?: number;
  in_flight?: number;
  /** Resident memory of the service's processes sampled in that second (MiB, every variant; Linux). */
  rss_mib?: number;
}

export interface Phase {
  name: 'warm-up' | 'fault' | 'recovery' | string;
  start_s: number;
  end_s: number;
  /** What was injected, in words ("provider latency 4 s"). */
  fault?: string;
}

/** Something that happened at a moment: a breaker trip, a SIGTERM, a restart. */
export interface RunEvent {
  t: number;
  what: string;
}

export interface PhaseTotals {
  goodput_per_s: number;
  p99_ms: number | null;
  /** Share of answers that were 503 (0..1). */
  rate_503: number;
  timeouts: number;
}

export interface Audit {
  /** Charge keys the client saw a final outcome for. */
  client_final: number;
  /** Client keys the provider charged more than once. */
  duplicates: number;
  /** Charges the provider made (or the client saw succeed) that Postgres does not hold as succeeded. */
  lost: number;
  /** Rows still `started` after the settle period. */
  pending: number;
  /** Human-readable findings, empty when clean. */
  findings: string[];
}

export interface SloBurn {
  total: number;
  good: number;
  error_ratio: number;
  burn_rate: number;
}

/**
 * What became of the charges that were not SLO-good, so a loss can be read
 * without the raw data: what the client was finally told, and (the gateway
 * only) what the service refused on the way.
 */
export interface NotGood {
  /** The SLO latency threshold the charges were held to, ms. */
  threshold_ms: number;
  /** Final answer 5xx (a 503 shed or refusal, a 504, a 500). */
  failed_5xx: number;
  /** No answer within the client's deadline and grace. */
  timeout: number;
  /** A connection error (refused, reset), e.g. while a process restarts. */
  error: number;
  /** Answered below 500, but over the SLO latency threshold. */
  slow: number;
  /** Of `slow`, the ones answered on a second or later attempt (the client retried after a 5xx, a 409 or 429, a timeout or a connection error). */
  slow_after_retry: number;
  /**
   * From the service's /metrics, the gateway alone (not a replica pair): the
   * requests of every class it shed at admission, by reason, and the calls
   * its provider bulkhead refused (full, or after the acquire timeout), from
   * its first scrape (about a second in) to the end of the run. Requests, not
   * charges: a charge retried after a refusal counts once per refusal, and a
   * scenario's reads and quotes count too.
   */
  shed?: Record<ShedReason, number>;
  bulkhead_refusals?: number;
}

export interface VariantResult {
  variant: VariantName;
  label: string;
  timeline: TimelinePoint[];
  phases: Record<string, PhaseTotals>;
  totals: PhaseTotals & { offered: number; goodput: number; p999_ms: number | null };
  audit: Audit;
  slo: SloBurn;
  /** Absent in reports written before it was recorded. */
  not_good?: NotGood;
  events: RunEvent[];
  /** Drain durations logged by the service (deploy scenarios), seconds. */
  drains?: { duration_s: number; abandoned: number }[];
  /** The load generator fell behind its schedule (results less trustworthy). */
  behind_schedule: boolean;
}

export interface Check {
  name: string;
  passed: boolean;
  /** The measured numbers behind the verdict. */
  detail: string;
}

export interface ScenarioResult {
  scenario: string;
  title: string;
  /** What the scenario demonstrates, in one sentence. */
  claim: string;
  phases: Phase[];
  variants: VariantResult[];
  checks: Check[];
  /** Variants whose audit is reported as measured, not judged (the baselines of `crash`). */
  audit_reported_only?: VariantName[];
  /** Headline figures over several seeds (`--seeds N`); the rest of this result is the first seed's run. */
  spread?: ScenarioSpread;
  /** The ramp the plan's rates were fitted to (full form of capacity and cpu-overload; shared by every seed). */
  calibration?: Calibration;
}

/** A gateway-only ramp before a scenario's variants: the ceiling its ladder is fitted to (src/lab/scenario/plan/calibration.ts). */
export interface Calibration {
  /** The gateway's best sustained goodput over the ramp, per second. */
  ceiling_per_s: number;
  /** The ramp's top rate, and what the gateway served of it. */
  top_per_s: number;
  top_served_per_s: number;
  /** The top step served less than CEILING_REACHED of its rate: the ramp went past the ceiling. */
  reached: boolean;
  /** The generator's worst second of the ramp (ms behind its schedule); null when not measured. */
  generator_lag_max_ms: number | null;
  /** The ramp in words. */
  ramp: string;
}

/** Lowest, median and highest of one figure over the seeds. */
export interface MinMedianMax {
  min: number;
  median: number;
  max: number;
}

export interface SpreadRow {
  variant: VariantName;
  /** Seeds this variant ran under (fewer than the scenario's when it failed to run under some). */
  runs: number;
  /** The scenario's headline goodput (its ceiling, or goodput through its surge), per second. */
  goodput_per_s: MinMedianMax;
  /** Charges answered non-5xx within the SLO threshold, percent of all. */
  slo_good_pct: MinMedianMax;
  /** The run's goodput (final answers within their deadline per second of the run), for the verdict table; absent in older reports. */
  run_goodput_per_s?: MinMedianMax;
  /** Seconds to recover, over the seeds that recovered; null when none did or the scenario has no recovery. */
  recovery_s: MinMedianMax | null;
  /** Seeds whose run did not recover within its recovery phase (scenarios with a recovery only). */
  not_recovered?: number;
}

export interface ScenarioSpread {
  /** Every seed run, the first being the one the rest of the result shows. */
  seeds: number[];
  /**
   * Checks passed per seed, in seed order: a seed's failures are not hidden
   * by showing another seed's run. `failed` names them (reports before it
   * had counts only).
   */
  checks_passed: { seed: number; passed: number; total: number; failed?: string[] }[];
  rows: SpreadRow[];
}

export interface BenchReport {
  machine: MachineInfo;
  /** The command that produced the report. */
  command: string;
  /** The commit the measured build was made from (dist/build-info.json), when known. */
  git_commit?: string;
  started_at: string;
  finished_at: string;
  scenarios: ScenarioResult[];
}
