/**
 * The scenario lab as a library: run one scenario (`runScenario`) or several
 * into one report (`runBench`), write the report files, and the audit on its
 * own for anyone holding a client log, a `charges` table and a ledger.
 */
export { runScenario, phasesOf, PREWARM_SECONDS, type RunScenarioOptions, type ScenarioOutcome } from './run/runner.js';
export { runBench, type BenchOptions, type BenchOutcome } from './run/bench.js';
export { writeReport, defaultReportDir, type WrittenReport } from './write/report-files.js';
export { startEnvironment, type Environment, type EnvironmentOptions } from './run/environment.js';
export { auditRun, auditClean, type AuditInput, type AuditRow, type ProviderCharge } from './audit/audit.js';
export { SCENARIOS, scenarioNamed } from './plan/scenarios/index.js';
export { problemsOf } from './audit/verdict.js';
export { LAB_SERVICE_DEFAULTS } from './run/run-variant.js';
export type {
  Mode,
  ScenarioDefinition,
  ScenarioPlan,
  PhasePlan,
  VariantRun,
  ScenarioContext,
} from './plan/definition.js';
