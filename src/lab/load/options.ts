/**
 * `bulwark load` options: one spec per flag through the shared option
 * machinery (flag > LOAD_* environment > default, frozen, one-line errors),
 * then the cross-field rules the machinery cannot express (steps need
 * --steps; the duration of a steps run defaults to the steps' total).
 * `resolveLoadOptions` gives the scenario runner the same defaults and
 * checks without going through argv.
 */
import { randomInt } from 'node:crypto';
import { ConfigError, int, num, oneOf, parseOptions, str, url, type OptionSpec } from '../../config/options.js';
import { parseMix } from './requests.js';
import { parseSteps, totalMs } from './schedule.js';
import type { LoadOptions, RetryPolicyName, ScheduleKind } from './types.js';

/** An optional number: unset means "derive it" (seed: pick one; duration: 10 s or the steps' total). */
function optionalNum(
  o: Omit<OptionSpec<number>, 'parse' | 'isSwitch' | 'default'> & { min?: number; max?: number; integer?: boolean },
): OptionSpec<number | undefined> {
  const base = (o.integer ? int : num)({ ...o, default: 0 });
  return { ...o, default: undefined, parse: (raw) => base.parse(raw) };
}

export const LOAD_SPECS = {
  url: url({
    flag: 'url',
    env: 'LOAD_URL',
    default: 'http://127.0.0.1:8080',
    doc: 'Target base URL (the gateway or the baseline).',
  }),
  schedule: oneOf({
    flag: 'schedule',
    env: 'LOAD_SCHEDULE',
    default: 'constant',
    values: ['constant', 'steps', 'poisson'] as const,
    doc: 'Arrivals: evenly spaced at --rate, evenly spaced per --steps, or Poisson (exponential gaps; over --steps when given).',
  }),
  rate: num({
    flag: 'rate',
    env: 'LOAD_RATE',
    default: 100,
    min: 0,
    unit: 'requests/s',
    doc: 'Arrival rate for constant and poisson.',
  }),
  steps: str({
    flag: 'steps',
    env: 'LOAD_STEPS',
    default: '',
    doc: 'Rate profile RATExDURATION,... e.g. 100x10s,500x10s,100x10s (units ms, s, m).',
  }),
  duration: optionalNum({
    flag: 'duration',
    env: 'LOAD_DURATION',
    min: 0.001,
    max: 86_400,
    unit: 's',
    doc: "Schedule length; unset: 10, or the steps' total.",
  }),
  maxRequests: int({
    flag: 'max-requests',
    env: 'LOAD_MAX_REQUESTS',
    default: 1_000_000,
    min: 1,
    doc: 'Hard cap on sends (retries included); the schedule stops when reached.',
  }),
  deadlineMs: int({
    flag: 'deadline-ms',
    env: 'LOAD_DEADLINE_MS',
    default: 1000,
    min: 1,
    max: 600_000,
    unit: 'ms',
    doc: 'Per-request deadline, sent as X-Request-Timeout-Ms; answers later than this are not goodput.',
  }),
  graceMs: int({
    flag: 'grace-ms',
    env: 'LOAD_GRACE_MS',
    default: 200,
    min: 0,
    max: 60_000,
    unit: 'ms',
    doc: 'The client abandons an attempt this long after its deadline (counted as timeout).',
  }),
  connections: int({
    flag: 'connections',
    env: 'LOAD_CONNECTIONS',
    default: 256,
    min: 1,
    max: 65_536,
    doc: 'Keep-alive connections in the pool (pipelining 1).',
  }),
  mix: str({
    flag: 'mix',
    env: 'LOAD_MIX',
    default: 'charge=100',
    doc: 'Request classes by weight: charge (POST /charge), read (GET /charges/:key), quote (GET /quote).',
  }),
  retry: oneOf({
    flag: 'retry',
    env: 'LOAD_RETRY',
    default: 'none',
    values: ['none', 'capped', 'storm'] as const,
    doc: 'Client retry policy: none; capped (3 attempts, backoff with full jitter, Retry-After); storm (naive: immediate, up to 10 attempts, timeouts included, each with the full deadline).',
  }),
  maxAttempts: int({
    flag: 'max-attempts',
    env: 'LOAD_MAX_ATTEMPTS',
    default: 0,
    min: 0,
    max: 1000,
    doc: "Attempts per request including the first; 0 = the policy's default.",
  }),
  retryBaseMs: int({
    flag: 'retry-base-ms',
    env: 'LOAD_RETRY_BASE_MS',
    default: 50,
    min: 0,
    unit: 'ms',
    doc: 'Backoff base of capped retries (full jitter over base*2^(n-1)).',
  }),
  retryCapMs: int({
    flag: 'retry-cap-ms',
    env: 'LOAD_RETRY_CAP_MS',
    default: 1000,
    min: 0,
    unit: 'ms',
    doc: 'Longest capped backoff, and longest Retry-After honoured.',
  }),
  seed: optionalNum({
    flag: 'seed',
    env: 'LOAD_SEED',
    integer: true,
    min: 0,
    max: 4_294_967_295,
    doc: 'Seed for keys, amounts, mix, Poisson gaps and jitter; unset: a random one (reported).',
  }),
  runId: str({
    flag: 'run-id',
    env: 'LOAD_RUN_ID',
    default: '',
    pattern: /^$|^[A-Za-z0-9._:-]{1,200}$/,
    allowed: '1-200 characters of A-Z a-z 0-9 . _ : -',
    doc: 'Idempotency-Key prefix (<run-id>-<n>); empty: derived from the seed.',
  }),
  sloLatencyMs: int({
    flag: 'slo-latency-ms',
    env: 'LOAD_SLO_LATENCY_MS',
    default: 300,
    min: 1,
    unit: 'ms',
    doc: 'SLO threshold: a charge is good when answered non-5xx within this.',
  }),
  behindP99Ms: num({
    flag: 'behind-p99-ms',
    env: 'LOAD_BEHIND_P99_MS',
    default: 10,
    min: 0,
    unit: 'ms',
    doc: 'Flag behind_schedule when the p99 of send lag exceeds this...',
  }),
  behindMaxMs: num({
    flag: 'behind-max-ms',
    env: 'LOAD_BEHIND_MAX_MS',
    default: 100,
    min: 0,
    unit: 'ms',
    doc: '...or any send lags more than this.',
  }),
  json: str({
    flag: 'json',
    env: 'LOAD_JSON',
    default: '',
    doc: 'Write the result as JSON to this file (without per-key outcomes).',
  }),
  outcomes: str({
    flag: 'outcomes',
    env: 'LOAD_OUTCOMES',
    default: '',
    doc: 'Write one JSON line per charge key (final status, attempts, charge ids) to this file.',
  }),
  progress: oneOf({
    flag: 'progress',
    env: 'LOAD_PROGRESS',
    default: 'on',
    values: ['on', 'off'] as const,
    doc: 'A line per second on stderr while running.',
  }),
};

export interface ParsedLoadArgs {
  help: boolean;
  options: LoadOptions;
  /** Empty when not asked for. */
  jsonFile: string;
  outcomesFile: string;
  progress: boolean;
}

/** argv (after `load`) and env → validated, frozen options. Throws ConfigError. */
export function parseLoadArgs(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedLoadArgs {
  const { values: v, help, positionals } = parseOptions(LOAD_SPECS, argv, env);
  if (positionals.length > 0)
    throw new ConfigError(`unexpected argument ${JSON.stringify(positionals[0])} (see --help)`);
  const options = resolveLoadOptions({
    url: v.url ?? LOAD_SPECS.url.default,
    schedule: v.schedule,
    rate: v.rate,
    stepsSpec: v.steps,
    durationSeconds: v.duration,
    maxRequests: v.maxRequests,
    deadlineMs: v.deadlineMs,
    graceMs: v.graceMs,
    connections: v.connections,
    mixSpec: v.mix,
    retry: v.retry,
    maxAttempts: v.maxAttempts,
    retryBaseMs: v.retryBaseMs,
    retryCapMs: v.retryCapMs,
    seed: v.seed,
    runId: v.runId === '' ? undefined : v.runId,
    sloLatencyMs: v.sloLatencyMs,
    behindP99Ms: v.behindP99Ms,
    behindMaxMs: v.behindMaxMs,
  });
  return { help, options, jsonFile: v.json, outcomesFile: v.outcomes, progress: v.progress === 'on' };
}

/** Library input: any LoadOptions field, with `mixSpec`/`stepsSpec` as text alternatives. */
export type LoadInput = Partial<Omit<LoadOptions, 'seed' | 'runId' | 'durationSeconds'>> & {
  seed?: number | undefined;
  runId?: string | undefined;
  durationSeconds?: number | undefined;
  mixSpec?: string;
  stepsSpec?: string;
};

/** Fill defaults and check cross-field rules; the scenario runner's entry point. Throws ConfigError. */
export function resolveLoadOptions(input: LoadInput): LoadOptions {
  const d = (k: keyof typeof LOAD_SPECS) => LOAD_SPECS[k].default;
  let steps = input.steps ?? [];
  let mix = input.mix;
  try {
    if (input.stepsSpec) steps = parseSteps(input.stepsSpec);
    if (input.mixSpec !== undefined) mix = parseMix(input.mixSpec);
  } catch (e) {
    const flag = e instanceof Error && e.message.startsWith('mix') ? '--mix' : '--steps';
    throw new ConfigError(`${flag}: ${(e as Error).message}`);
  }
  mix ??= parseMix(String(d('mix')));
  const schedule: ScheduleKind = input.schedule ?? 'constant';
  if (schedule === 'steps' && steps.length === 0)
    throw new ConfigError('--schedule steps needs --steps (e.g. 100x10s,500x10s)');
  // A profile that would be silently ignored is a mistake worth one line.
  if (schedule === 'constant' && steps.length > 0)
    throw new ConfigError('--steps applies to --schedule steps or poisson, not constant');
  const durationSeconds =
    input.durationSeconds ?? (schedule !== 'constant' && steps.length > 0 ? totalMs(steps) / 1000 : 10);
  const seed = input.seed ?? randomInt(0, 2 ** 32);
  const options: LoadOptions = {
    url: input.url ?? String(d('url')),
    schedule,
    rate: input.rate ?? Number(d('rate')),
    steps,
    durationSeconds,
    maxRequests: input.maxRequests ?? Number(d('maxRequests')),
    deadlineMs: input.deadlineMs ?? Number(d('deadlineMs')),
    graceMs: input.graceMs ?? Number(d('graceMs')),
    connections: input.connections ?? Number(d('connections')),
    mix,
    retry: input.retry ?? (d('retry') as RetryPolicyName),
    maxAttempts: input.maxAttempts ?? Number(d('maxAttempts')),
    retryBaseMs: input.retryBaseMs ?? Number(d('retryBaseMs')),
    retryCapMs: input.retryCapMs ?? Number(d('retryCapMs')),
    seed,
    // Derived from the seed: a rerun with --seed replays the same keys (and gets replays from the same gateway).
    runId: input.runId ?? `load-${seed.toString(36)}`,
    sloLatencyMs: input.sloLatencyMs ?? Number(d('sloLatencyMs')),
    behindP99Ms: input.behindP99Ms ?? Number(d('behindP99Ms')),
    behindMaxMs: input.behindMaxMs ?? Number(d('behindMaxMs')),
  };
  if (!(options.durationSeconds > 0)) throw new ConfigError(`--duration must be > 0; got ${options.durationSeconds}`);
  return Object.freeze(options);
}
