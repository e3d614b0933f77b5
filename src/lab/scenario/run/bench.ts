/**
 * A set of scenarios → one BenchReport: machine on top, the command line,
 * start and end times, and each scenario's result. Scenarios run one after
 * another, each in its own environment (fresh Postgres and simulator), so a
 * scenario that leaves a mess behind cannot colour the next one.
 */
import type { BenchReport } from '../../report/types.js';
import type { ScenarioDefinition } from '../plan/definition.js';
import { versionInfo } from '../../../runtime/version.js';
import { machineInfo } from '../measure/machine.js';
import { runScenario, type RunScenarioOptions, type ScenarioOutcome } from './runner.js';

/** A scenario's options (each scenario starts its own environment), plus the command line written into the report. */
export interface BenchOptions extends Omit<RunScenarioOptions, 'env'> {
  command: string;
}

export interface BenchOutcome {
  report: BenchReport;
  outcomes: ScenarioOutcome[];
}

export async function runBench(defs: readonly ScenarioDefinition[], o: BenchOptions): Promise<BenchOutcome> {
  const started = new Date();
  const outcomes: ScenarioOutcome[] = [];
  for (const def of defs) {
    const { command: _command, ...scenarioOptions } = o;
    const out = await runScenario(def, scenarioOptions);
    const failed = out.result.checks.filter((c) => !c.passed).length;
    o.log?.(
      `${def.name}: done in ${out.elapsed_s} s, ${out.result.checks.length - failed}/${out.result.checks.length} checks passed`,
    );
    outcomes.push(out);
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
