/**
 * A set of scenarios → one BenchReport: machine on top, the command line,
 * start and end times, and each scenario's result. Scenarios run one after
 * another, each in its own environment (fresh Postgres and simulator), so a
 * scenario that leaves a mess behind cannot colour the next one.
 */
import type { SecondStats } from '../load/types.js';
import type { BenchReport, VariantName } from '../report/types.js';
import type { Mode, ScenarioDefinition } from './definition.js';
import { versionInfo } from '../../runtime/version.js';
import { machineInfo } from './machine.js';
import { runScenario, type ScenarioOutcome } from './runner.js';

export interface BenchOptions {
  mode: Mode;
  /** The command line, as written into the report. */
  command: string;
  variants?: readonly VariantName[];
  seed?: number;
  scrapeIntervalMs?: number;
  log?: (msg: string) => void;
  onSecond?: (variant: VariantName, s: SecondStats) => void;
}

export interface BenchOutcome {
  report: BenchReport;
  outcomes: ScenarioOutcome[];
}

export async function runBench(defs: readonly ScenarioDefinition[], o: BenchOptions): Promise<BenchOutcome> {
  const started = new Date();
  const outcomes: ScenarioOutcome[] = [];
  for (const def of defs) {
    const out = await runScenario(def, {
      mode: o.mode,
      ...(o.variants ? { variants: o.variants } : {}),
      ...(o.seed !== undefined ? { seed: o.seed } : {}),
      ...(o.scrapeIntervalMs !== undefined ? { scrapeIntervalMs: o.scrapeIntervalMs } : {}),
      ...(o.log ? { log: o.log } : {}),
      ...(o.onSecond ? { onSecond: o.onSecond } : {}),
    });
    const failed = out.result.checks.filter((c) => !c.passed).length;
    o.log?.(`${def.name}: done in ${out.elapsed_s} s, ${out.result.checks.length - failed}/${out.result.checks.length} checks passed`);
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
