/**
 * Runs one scenario: its environment (unless the caller shares one), then
 * each variant in turn on that same Postgres and simulator so their ratios
 * hold, then the checks: the audit of every variant plus the scenario's own.
 *
 * A variant that cannot run (its service does not start, say) does not end
 * the bench: it becomes a failing check naming the error, and the other
 * variants still run and report.
 */
import type { SecondStats } from '../../load/types.js';
import type { Calibration, Check, Phase, ScenarioResult, VariantName } from '../../report/types.js';
import { calibrationOf, rampPlan } from '../plan/calibration.js';
import { describeCalibration } from '../../report/render-format.js';
import { auditCheck, auditReportedCheck, beatsPeersCheck } from '../plan/checks.js';
import type { Mode, ScenarioDefinition, ScenarioPlan, VariantRun } from '../plan/definition.js';
import { startEnvironment, type Environment } from './environment.js';
import { runVariant } from './run-variant.js';

export interface RunScenarioOptions {
  mode: Mode;
  /** Run these variants instead of the plan's. */
  variants?: readonly VariantName[];
  /** A running environment to use (tests share one); otherwise one is started and stopped here. */
  env?: Environment;
  /** How often the gateway's /metrics is scraped. Default 1000 ms. */
  scrapeIntervalMs?: number;
  /** Seed of the load (keys, amounts, jitter) and of the simulator. Default 1. */
  seed?: number;
  log?: (msg: string) => void;
  onSecond?: (variant: VariantName, s: SecondStats) => void;
  /** Fit the plan to this instead of calibrating (the later seeds of a bench reuse the first seed's). */
  calibration?: Calibration;
  /** Write each variant run's per-key outcomes under this directory (see runVariant). */
  outcomesDir?: string;
  /** Seeds the bench runs this scenario under; with more than one, the bench compares the peers on the medians, not this run. Default 1. */
  seeds?: number;
}

export interface ScenarioOutcome {
  result: ScenarioResult;
  runs: VariantRun[];
  /** Wall time of the whole scenario, seconds. */
  elapsed_s: number;
}

/** Unmeasured warm traffic before each variant's run (see runVariant). */
export const PREWARM_SECONDS: Readonly<Record<Mode, number>> = { quick: 1.5, full: 2 };

/**
 * Longest wait for the reconciler to finish every started row after the
 * load. An unprotected variant that collapsed under a long storm leaves the
 * provider a deep backlog of abandoned calls, and its reconciler needs
 * tens of seconds to get through it; that is slow, not lost, so the full form
 * waits long enough to tell the two apart.
 */
export const SETTLE_TIMEOUT_MS: Readonly<Record<Mode, number>> = { quick: 20_000, full: 60_000 };

/** Phases on the run's clock from the plan's durations. */
export function phasesOf(plan: ScenarioPlan): Phase[] {
  let at = 0;
  return plan.phases.map((p) => {
    const ph: Phase = { name: p.name, start_s: at, end_s: at + p.seconds, ...(p.fault ? { fault: p.fault.text } : {}) };
    at += p.seconds;
    return ph;
  });
}

export async function runScenario(def: ScenarioDefinition, o: RunScenarioOptions): Promise<ScenarioOutcome> {
  const started = performance.now();
  const log = o.log ?? (() => {});
  const seed = o.seed ?? 1;
  const env = o.env ?? (await startEnvironment({ seed: 42 + seed, log }));
  const runs: VariantRun[] = [];
  const failures: Check[] = [];
  // One variant's run of a plan on this scenario's environment: the calibration ramp's and each variant's.
  const runOn = (scenario: string, plan: ScenarioPlan, phases: Phase[], variant: VariantName) =>
    runVariant({
      env,
      scenario,
      plan,
      phases,
      variant,
      seed,
      log,
      prewarmSeconds: PREWARM_SECONDS[o.mode],
      settleTimeoutMs: SETTLE_TIMEOUT_MS[o.mode],
      ...(o.scrapeIntervalMs !== undefined ? { scrapeIntervalMs: o.scrapeIntervalMs } : {}),
      ...(o.onSecond ? { onSecond: o.onSecond } : {}),
      ...(o.outcomesDir !== undefined ? { outcomesDir: o.outcomesDir } : {}),
    });
  let calibration = o.calibration;
  let plan = def.plan(o.mode, calibration);
  let phases = phasesOf(plan);
  try {
    if (calibration === undefined && def.calibrate && (def.calibrate.modes ?? ['full']).includes(o.mode)) {
      try {
        calibration = await calibrate(def, runOn, log);
        plan = def.plan(o.mode, calibration);
        phases = phasesOf(plan);
      } catch (e) {
        log(`${def.name}: the calibration ramp failed: ${(e as Error).stack ?? String(e)}`);
        failures.push({
          name: 'the calibration ramp ran (the ladder is the fixed one instead)',
          passed: false,
          detail: (e as Error).message.split('\n')[0] ?? String(e),
        });
      }
    }
    const variants = o.variants ?? plan.variants;
    for (const variant of variants) {
      log(`${def.name}: ${variant} (${phases.at(-1)!.end_s} s of load)`);
      try {
        runs.push(await runOn(def.name, plan, phases, variant));
      } catch (e) {
        log(`${def.name}: ${variant} failed: ${(e as Error).stack ?? String(e)}`);
        failures.push({
          name: `${variant}: the variant ran to the end`,
          passed: false,
          detail: (e as Error).message.split('\n')[0] ?? String(e),
        });
      }
    }
  } finally {
    if (!o.env) await env.close();
  }
  let own: Check[];
  try {
    own = runs.length > 0 ? def.checks({ mode: o.mode, phases, runs, ...(calibration ? { calibration } : {}) }) : [];
    // Every scenario compares the gateway with its peers; over several seeds
    // the bench does it on the medians instead (beatsPeersOverSeedsCheck).
    if ((o.seeds ?? 1) <= 1) own.push(...beatsPeersCheck(runs));
  } catch (e) {
    own = [{ name: 'the scenario checks could be evaluated', passed: false, detail: (e as Error).message }];
  }
  const reportedOnly = def.auditReportedOnly ?? [];
  const audits = runs.map((r) => (reportedOnly.includes(r.result.variant) ? auditReportedCheck(r) : auditCheck(r)));
  const checks = [...failures, ...audits, ...own];
  const measuredOnly = reportedOnly.filter((v) => runs.some((r) => r.result.variant === v));
  return {
    result: {
      scenario: def.name,
      title: def.title,
      claim: def.claim,
      phases,
      variants: runs.map((r) => r.result),
      checks,
      ...(measuredOnly.length > 0 ? { audit_reported_only: measuredOnly } : {}),
      ...(calibration ? { calibration } : {}),
    },
    runs,
    elapsed_s: Math.round((performance.now() - started) / 100) / 10,
  };
}

/** The calibration ramp (calibration.ts): the gateway alone, on this scenario's environment, before its variants. */
async function calibrate(
  def: ScenarioDefinition,
  runOn: (scenario: string, plan: ScenarioPlan, phases: Phase[], variant: VariantName) => Promise<VariantRun>,
  log: (msg: string) => void,
): Promise<Calibration> {
  const plan = rampPlan(def.calibrate);
  const phases = phasesOf(plan);
  log(`${def.name}: calibration ramp (${phases.at(-1)!.end_s} s of load)`);
  const c = calibrationOf(await runOn(`${def.name}-calibration`, plan, phases, 'gateway'), phases);
  log(`${def.name}: ${describeCalibration(c)}`);
  return c;
}
