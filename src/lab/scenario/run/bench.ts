/**
 * A set of scenarios → one BenchReport: machine on top, the command line,
 * start and end times, and each scenario's result. Scenarios run one after
 * another, each in its own environment (fresh Postgres and simulator), so a
 * scenario that leaves a mess behind cannot colour the next one. With
 * `seeds` > 1 each headline scenario runs that many times (a fresh
 * environment each); the report shows the first seed's run in full, the
 * spread of the headline figures over all of them, and the scenario's
 * checks that need every seed (`seededChecks`, and the comparison with the
 * peers on the medians) among the first run's.
 */
import type { BenchReport } from '../../report/types.js';
import type { ScenarioDefinition } from '../plan/definition.js';
import { versionInfo } from '../../../runtime/version.js';
import { machineInfo } from '../measure/machine.js';
import { spreadOf } from '../measure/spread.js';
import { beatsPeersOverSeedsCheck } from '../plan/checks.js';
import { runScenario, type RunScenarioOptions, type ScenarioOutcome } from './runner.js';

/** A scenario's options (each scenario starts its own environment), plus the command line written into the report. */
export interface BenchOptions extends Omit<RunScenarioOptions, 'env'> {
  command: string;
  /** Runs of each headline scenario (one with a `headline`), seeds seed, seed+1, ...; default 1. */
  seeds?: number;
}

export interface BenchOutcome {
  report: BenchReport;
  outcomes: ScenarioOutcome[];
}

export async function runBench(defs: readonly ScenarioDefinition[], o: BenchOptions): Promise<BenchOutcome> {
  const started = new Date();
  const outcomes: ScenarioOutcome[] = [];
  for (const def of defs) {
    const { command: _command, seeds: _seeds, ...scenarioOptions } = o;
    // Only the headline scenarios are repeated: their figures are the ones a reader compares.
    const n = def.headline ? (o.seeds ?? 1) : 1;
    const seeded: ScenarioOutcome[] = [];
    for (let i = 0; i < n; i++) {
      const seed = (o.seed ?? 1) + i;
      // Every seed on the ladder the first one calibrated: the spread compares like steps.
      const calibration = seeded[0]?.result.calibration;
      const out = await runScenario(def, {
        ...scenarioOptions,
        seed,
        seeds: n,
        ...(calibration ? { calibration } : {}),
      });
      const failed = out.result.checks.filter((c) => !c.passed).length;
      o.log?.(
        `${def.name}${n > 1 ? ` (seed ${seed})` : ''}: done in ${out.elapsed_s} s, ${out.result.checks.length - failed}/${out.result.checks.length} checks passed`,
      );
      seeded.push(out);
    }
    const first = seeded[0]!;
    if (n > 1 && def.headline) {
      const phases = first.result.phases;
      const runs = seeded.map((x, i) => ({ seed: (o.seed ?? 1) + i, runs: x.runs, checks: x.result.checks }));
      first.result.spread = spreadOf(
        runs,
        phases,
        def.headline,
        phases.some((p) => p.name === 'recovery'),
      );
      // After the spread, so its per-seed counts are of each run's own checks.
      // Each run left the comparison with the peers to this point (ScenarioContext.seeds).
      first.result.checks.push(...beatsPeersOverSeedsCheck(runs));
      if (def.seededChecks) {
        const calibration = first.result.calibration;
        first.result.checks.push(
          ...def.seededChecks({ mode: o.mode, phases, seeded: runs, ...(calibration ? { calibration } : {}) }),
        );
      }
    }
    outcomes.push(first);
  }
  return {
    report: {
      machine: machineInfo(started),
      command: o.command,
      git_commit: versionInfo.git_commit,
      started_at: started.toISOString(),
      finished_at: new Date().toISOString(),
      scenarios: outcomes.map((x) => x.result),
    },
    outcomes,
  };
}
