/**
 * The part of a load-test result file that `bulwark slo burn` and
 * `bulwark slo gate --result` read. The lab's report writes this block
 * (`bulwark load --json FILE` does, as `slo`, see src/lab/load/types.ts): the
 * load generator counts, for one route, every request it sent that got an
 * answer or was given up on (`total`) and those answered with a non-5xx
 * status within the latency threshold (`good`), over the run's length.
 * Keeping the contract here, validated, lets the lab be written against it
 * and lets a malformed report stop the gate with a message naming the field
 * instead of a wrong verdict.
 *
 * A result file is a JSON object; keys other than `slo` belong to the rest of
 * the report and are ignored. Inside `slo` every key is checked and unknown
 * keys are refused, so a misspelt field (`durationSeconds`) cannot pass as
 * absent.
 */
import { DEFAULT_SLO, type SliCounts } from './burn.js';

/** The `slo` block of a load-test result (snake_case, as the report writes JSON). */
export interface SloResultBlock {
  /** Route the counts are for, e.g. "/charge". */
  route: string;
  /** Requests sent during the run that got an answer or were given up on by the load generator (a timeout is not good). Integer >= 0. */
  total: number;
  /** Of those, the answers with a non-5xx status within latency_threshold_ms. Integer from 0 to total. */
  good: number;
  /** Length of the run, seconds (> 0). */
  duration_seconds: number;
  /** Latency threshold the lab used to count `good`, ms (> 0). Absent: the SLO default, 300. */
  latency_threshold_ms?: number;
}

export interface LoadTestResult {
  slo?: SloResultBlock;
}

export class ResultError extends Error {
  override readonly name = 'ResultError';
  /** Path of the offending field, e.g. "slo.good". */
  readonly field: string;

  constructor(field: string, message: string) {
    super(message);
    this.field = field;
  }
}

const SLO_KEYS = ['route', 'total', 'good', 'duration_seconds', 'latency_threshold_ms'] as const;

const show = (v: unknown): string => (v === undefined ? 'nothing' : (JSON.stringify(v) ?? String(v)));

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function count(block: Record<string, unknown>, key: 'total' | 'good', max: number): number {
  const v = block[key];
  const range = max === Infinity ? 'an integer >= 0' : `an integer from 0 to slo.total (${max})`;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max)
    throw new ResultError(`slo.${key}`, `slo.${key} must be ${range}; got ${show(v)}`);
  return v;
}

function positive(block: Record<string, unknown>, key: 'duration_seconds' | 'latency_threshold_ms'): number {
  const v = block[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
    throw new ResultError(`slo.${key}`, `slo.${key} must be a number > 0; got ${show(v)}`);
  return v;
}

/** Validates a parsed result file; throws ResultError naming the first bad field. */
export function parseLoadTestResult(value: unknown): LoadTestResult {
  if (!isObject(value))
    throw new ResultError('', `a result must be a JSON object; got ${Array.isArray(value) ? 'an array' : show(value)}`);
  if (value.slo === undefined) return {};
  const block = value.slo;
  if (!isObject(block))
    throw new ResultError(
      'slo',
      `slo must be an object { route, total, good, duration_seconds, latency_threshold_ms? }; got ${show(block)}`,
    );
  for (const key of Object.keys(block)) {
    if (!(SLO_KEYS as readonly string[]).includes(key))
      throw new ResultError(
        `slo.${key}`,
        `slo.${key} is not a field of the slo block (allowed: ${SLO_KEYS.join(', ')})`,
      );
  }
  const route = block.route;
  if (typeof route !== 'string' || !route.startsWith('/'))
    throw new ResultError('slo.route', `slo.route must be a route path such as "/charge"; got ${show(route)}`);
  const total = count(block, 'total', Infinity);
  const good = count(block, 'good', total);
  const slo: SloResultBlock = { route, total, good, duration_seconds: positive(block, 'duration_seconds') };
  if (block.latency_threshold_ms !== undefined) slo.latency_threshold_ms = positive(block, 'latency_threshold_ms');
  return { slo };
}

/**
 * The counts of a validated block, checked against the threshold the SLO is
 * judged with: `good` counted at 250 ms says nothing about a 300 ms SLO.
 */
export function sliCountsOf(block: SloResultBlock, latencyThresholdMs: number): SliCounts {
  const used = block.latency_threshold_ms ?? DEFAULT_SLO.latencyThresholdMs;
  if (used !== latencyThresholdMs) {
    throw new ResultError(
      'slo.latency_threshold_ms',
      `slo.latency_threshold_ms is ${used} ms but the SLO is judged at ${latencyThresholdMs} ms (set --latency-threshold-ms ${used}, or rerun the lab with the SLO's threshold)`,
    );
  }
  return { total: block.total, good: block.good, durationSeconds: block.duration_seconds };
}
