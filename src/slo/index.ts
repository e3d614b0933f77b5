/**
 * What the lab and other callers import: the SLO's arithmetic, the result
 * contract, the gate's verdict, the rules generator and the Prometheus
 * source. No process state, no exits; the CLI in command.ts is the only
 * caller that prints.
 */
export {
  computeBurn,
  errorBudget,
  DEFAULT_SLO,
  SECONDS_PER_DAY,
  type Burn,
  type SliCounts,
  type SloTarget,
} from './burn.js';
export { parseLoadTestResult, sliCountsOf, ResultError, type LoadTestResult, type SloResultBlock } from './result.js';
export { gateVerdict, formatShare, type GateInput, type GateVerdict } from './gate.js';
export {
  renderRules,
  leLabelFor,
  RECORDS,
  BURN_ALERTS,
  ALERT_WINDOWS,
  DEFAULT_RULES_CONFIG,
  type SloRulesConfig,
  type BurnAlert,
} from './rules.js';
export {
  budgetRemainingFromPrometheus,
  queryInstant,
  promString,
  PrometheusSourceError,
  type BudgetReading,
  type InstantSample,
} from './prometheus-source.js';
