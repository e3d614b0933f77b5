/**
 * The scenario lab as a library: run one scenario (`runScenario`) or several
 * into one report (`runBench`), write the report files, and the audit on its
 * own for anyone holding a client log, a `charges` table and a ledger.
 */
export { runScenario, phasesOf, PREWARM_SECONDS, type RunScenarioOptions, type ScenarioOutcome } from './runner.js';
export { runBench, type BenchOptions, type BenchOutcome } from './bench.js';
export { writeReport, defaultReportDir, type WrittenReport } from './report-files.js';
export { startEnvironment, type Environment, type EnvironmentOptions } from './environment.js';
export { auditRun, auditClean, type AuditInput, type AuditRow, type ProviderCharge } from './audit.js';
export { SCENARIOS, scenarioNamed } from './scenarios/index.js';
export { problemsOf } from './verdict.js';
export { LAB_SERVICE_DEFAULTS } from './run-variant.js';
export type { Mode, ScenarioDefinition, ScenarioPlan, PhasePlan, VariantRun, ScenarioContext } from './definition.js';
