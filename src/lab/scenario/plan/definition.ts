/**
 * What a scenario is: a plan (phases with the faults each one injects, the
 * load, optional side traffic and deploys, service settings, the variants)
 * and the checks it asserts from its own run. A scenario file only states
 * these; the runner owns processes, timing, scraping and the audit, so every
 * scenario is measured the same way.
 */
import type { Faults } from '../../../simulator/index.js';
import type { LoadInput } from '../../load/index.js';
import type { ChargeOutcome, LoadResult, RetryPolicyName, Step } from '../../load/types.js';
import type {
  Calibration,
  Check,
  Phase,
  RunEvent,
  ScenarioResult,
  VariantName,
  VariantResult,
} from '../../report/types.js';
import type { Environment } from '../run/environment.js';
import type { ReplicaPair } from '../run/replica-pair.js';
import type { ScrapePoint } from '../measure/scrape.js';
import type { ServiceUnderTest } from '../run/service.js';

export type Mode = 'full' | 'quick';

export interface PhasePlan {
  name: string;
  seconds: number;
  /** Fault sets in force during the phase (both services healthy when absent), and the words for the report. */
  fault?: { provider?: Faults; fx?: Faults; text: string };
}

/** The charge load (POST /charge only, so its goodput and p99 are the charge path's). */
export interface ChargeLoad {
  /** Constant arrivals per second, or a profile over the whole run. */
  rate?: number;
  steps?: readonly Step[];
  /** `even` (default): evenly spaced; `poisson`: exponential gaps at the same mean rate (seeded), bursts and lulls as real clients make. */
  arrivals?: 'even' | 'poisson';
  retry?: RetryPolicyName;
  maxAttempts?: number;
  deadlineMs?: number;
  connections?: number;
}

/**
 * Unrelated traffic in its own load generator, so its latency is not mixed
 * into the charges' and its goodput does not inflate theirs: `read` (GET
 * /charges/:key, a Postgres read) or `quote` (GET /quote, the fx downstream).
 */
export interface SideLoad {
  cls: 'read' | 'quote';
  rate: number;
  deadlineMs?: number;
}

/** What an action may touch: the environment, the service, the run's clock and names. */
export interface ActionHandles {
  env: Environment;
  service: ServiceUnderTest | ReplicaPair;
  url: string;
  variant: VariantName;
  /** The charge load's seed and key prefix (its keys are `<runId>-<n>`). */
  seed: number;
  runId: string;
  /** Seconds since the charge load started. */
  since(): number;
  log(msg: string): void;
}

/** What an action did, for the report and the checks. */
export interface ActionReport {
  /** On the run clock; shown among the report's events. */
  events: RunEvent[];
  /** Charge keys the action sent besides the charge load, with what it was told: audited with the rest. */
  outcomes?: ChargeOutcome[];
  /** Named numbers the scenario's checks read (status counts, timings in run seconds). */
  facts: Record<string, number>;
}

/**
 * Something the lab does to the system mid-run beyond faults and deploys: a
 * crash, a misbehaving client. It starts `at` seconds into the load and
 * must end by the end of the load.
 */
export interface PlanAction {
  name: string;
  at: number;
  run(h: ActionHandles): Promise<ActionReport>;
}

/** Done once the charge load has ended, before the settle period (a client re-sending keys, say); it sees what the actions reported. */
export interface AfterLoadAction {
  name: string;
  run(
    h: ActionHandles,
    outcomes: readonly ChargeOutcome[],
    actions: Readonly<Record<string, ActionReport>>,
  ): Promise<ActionReport>;
}

export interface ScenarioPlan {
  phases: readonly PhasePlan[];
  /** Downstream behaviour for the whole run (a phase's own faults override it field by field): a provider that takes real time, say. */
  steady?: { provider?: Faults; fx?: Faults };
  load: ChargeLoad;
  side?: SideLoad;
  /** Seconds since the load started at which the service gets SIGTERM and is restarted. */
  deploys?: readonly number[];
  /**
   * `single` (default): one process per variant. `pair`: two replicas behind
   * HAProxy (deploy/haproxy/haproxy.cfg); each deploy restarts the next
   * replica in turn, a rolling restart.
   */
  topology?: 'single' | 'pair';
  actions?: readonly PlanAction[];
  afterLoad?: AfterLoadAction;
  /** Settings for every variant of this scenario (on top of the lab's defaults). */
  serviceEnv?: Record<string, string>;
  /** Settings for the gateway variants only. */
  gatewayEnv?: Record<string, string>;
  variants: readonly VariantName[];
}

/** One variant's run, with the raw material the checks read beyond the report row. */
export interface VariantRun {
  result: VariantResult;
  /** The charge load's result, without per-key outcomes. */
  load: Omit<LoadResult, 'outcomes'>;
  side?: Omit<LoadResult, 'outcomes'>;
  /** Scrapes of /metrics (gateway variants; empty otherwise). */
  scrapes: readonly ScrapePoint[];
  /** Each deploy as the lab timed it (the drains in `result` are the service's own numbers). */
  restarts: readonly RestartTiming[];
  /** Connection errors the charge load saw (restarts make them; they are not lost charges). */
  connectionErrors: number;
  /** The settle period ended with every row final. */
  settled: boolean;
  /** The service's shutdown grace, for drain checks. */
  graceMs: number;
  /** Charge latency by final client status, per phase (by intended send time): "shed answers fast" reads it. */
  byStatus: Record<string, Record<string, StatusLatency>>;
  /** What each of the plan's actions (and its after-load action) reported, by name. */
  actions: Record<string, ActionReport>;
}

export interface RestartTiming {
  /** SIGTERM sent → the service logged `drain started`: how long the signal waited for its event loop. */
  signal_to_drain_s: number | null;
  /** SIGTERM sent → the old process exited: what an orchestrator's grace period counts. */
  signal_to_exit_s: number;
  /** SIGTERM sent → the replacement logged `listening`: the window with nobody accepting. */
  signal_to_ready_s: number | null;
}

export interface StatusLatency {
  count: number;
  p50_ms: number | null;
  p99_ms: number | null;
}

/** A scenario's calibration ramp (calibration.ts); every field has the lab's default. */
export interface CalibrationSpec {
  /** Downstream behaviour during the ramp: the scenario's own. */
  steady?: ScenarioPlan['steady'];
  /** The ramp's rates and how long each is held (tests make it tiny). */
  rates?: readonly number[];
  stepSeconds?: number;
  /** The forms that calibrate (default: the full form only; the quick form's ladders are fixed). */
  modes?: readonly Mode[];
}

export interface ScenarioContext {
  mode: Mode;
  phases: readonly Phase[];
  runs: readonly VariantRun[];
  /** What the calibration measured, when the plan was fitted to it. */
  calibration?: Calibration;
}

/** A headline scenario's runs over every seed of a bench (`--seeds N`, N > 1). */
export interface SeededContext {
  mode: Mode;
  phases: readonly Phase[];
  calibration?: Calibration;
  seeded: readonly { seed: number; runs: readonly VariantRun[] }[];
}

export interface Headline {
  goodput_per_s: number;
  /** Seconds from the end of the fault until goodput is back (null: not within the run, or no such moment). */
  recovery_s: number | null;
}

export interface ScenarioDefinition {
  name: string;
  title: string;
  /** What it demonstrates, in one sentence. */
  claim: string;
  /** The plan; in the full form of a scenario with `calibrate`, fitted to the ceiling the calibration measured (calibration.ts). */
  plan(mode: Mode, calibration?: Calibration): ScenarioPlan;
  /**
   * Fit the plan's rates to this machine: before the variants run, the
   * gateway alone is ramped (calibration.ts), and plan() gets what the ramp
   * measured.
   */
  calibrate?: CalibrationSpec;
  /**
   * Variants whose audit is reported as measured rather than judged (the
   * baselines of `crash`: what they do is the finding). The others must
   * audit clean.
   */
  auditReportedOnly?: readonly VariantName[];
  /** Invariants of this scenario, judged from its own run (ratios, never absolute speeds). */
  checks(ctx: ScenarioContext): Check[];
  /**
   * The scenario's headline figures for one variant's run, for the spread
   * over seeds (`--seeds N`): the goodput the scenario is about (a ceiling,
   * goodput through a surge) and its recovery time when it has one. Only
   * the headline scenarios define it.
   */
  headline?(run: VariantRun, phases: readonly Phase[]): Headline;
  /**
   * Checks that only several runs can decide (a latency comparison that one
   * run's noise on a shared machine swamps), judged over every seed of a
   * bench with `--seeds N`, N > 1, and added to the first seed's checks.
   * Only headline scenarios are repeated, so only they may define it.
   */
  seededChecks?(ctx: SeededContext): Check[];
}

export type { ScenarioResult, LoadInput, Calibration };
