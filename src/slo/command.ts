/**
 * `bulwark slo burn | gate | rules`: wiring only — options, files and the
 * Prometheus source in, the pure functions of this folder in between, one
 * answer out. Exit codes of `gate` are its contract with CI: 0 the budget is
 * at or above the threshold, 1 below, 2 the gate could not decide (bad
 * usage, an unreadable or invalid result file, Prometheus unreachable or
 * without the recorded series) — a broken gate must not look like a pass.
 */
import { readFile } from 'node:fs/promises';
import {
  ConfigError,
  int,
  num,
  oneOf,
  parseOptions,
  renderHelp,
  str,
  url,
  type OptionSpec,
  type Specs,
} from '../config/options.js';
import { LE_SECONDS } from '../metrics/prometheus.js';
import { computeBurn, DEFAULT_SLO, type Burn } from './burn.js';
import { formatShare, gateVerdict } from './gate.js';
import { budgetRemainingFromPrometheus, PrometheusSourceError } from './prometheus-source.js';
import { parseLoadTestResult, ResultError, sliCountsOf, type SloResultBlock } from './result.js';
import { DEFAULT_RULES_CONFIG, renderRules } from './rules.js';

const objective: OptionSpec<number> = {
  flag: 'objective',
  env: 'SLO_OBJECTIVE',
  default: DEFAULT_SLO.objective,
  doc: 'Share of /charge requests that must be good (non-5xx within the latency threshold).',
  parse: (raw) => {
    const n = Number(raw);
    return raw.trim() !== '' && n > 0 && n < 1
      ? { ok: true, value: n }
      : { ok: false, allowed: 'a number greater than 0 and less than 1' };
  },
};

const latencyThresholdMs: OptionSpec<number> = {
  flag: 'latency-threshold-ms',
  env: 'SLO_LATENCY_THRESHOLD_MS',
  default: DEFAULT_SLO.latencyThresholdMs,
  unit: 'ms',
  doc: 'A good answer is non-5xx within this.',
  parse: (raw) => {
    const n = Number(raw);
    return raw.trim() !== '' && Number.isFinite(n) && n > 0
      ? { ok: true, value: n }
      : { ok: false, allowed: 'a number > 0' };
  },
};

const windowDays = int({
  flag: 'window-days',
  env: 'SLO_WINDOW_DAYS',
  default: DEFAULT_SLO.windowDays,
  min: 1,
  max: 366,
  unit: 'days',
  doc: 'SLO window the error budget belongs to.',
});
const result = str({
  flag: 'result',
  default: '',
  doc: 'Load-test result file (JSON with an "slo" block, see src/slo/result.ts).',
});
const job = str({
  flag: 'job',
  env: 'SLO_JOB',
  default: DEFAULT_RULES_CONFIG.job,
  pattern: /^\S+$/,
  allowed: 'a Prometheus job name',
  doc: 'Scrape job of the gateway in Prometheus.',
});

const BURN_SPECS = {
  result,
  objective,
  windowDays,
  latencyThresholdMs,
  format: oneOf({
    flag: 'format',
    default: 'text',
    values: ['text', 'json'] as const,
    doc: 'text for people, json for the lab.',
  }),
} satisfies Specs;

const GATE_SPECS = {
  result,
  prometheus: url({
    flag: 'prometheus',
    default: undefined,
    doc: 'Prometheus base URL; reads the budget the SLO recording rules keep (their objective and window apply).',
  }),
  minRemaining: num({
    flag: 'min-remaining',
    env: 'SLO_MIN_REMAINING',
    default: 0,
    min: 0,
    max: 1,
    doc: 'Lowest share of the error budget left that passes (0: pass until the budget is spent).',
  }),
  job,
  basis: oneOf({
    flag: 'basis',
    default: 'projected',
    values: ['projected', 'run'] as const,
    doc: 'With --result: projected = budget a window burning like the run would leave (1 - burn rate); run = budget left after this run alone (1 - burn x duration / window).',
  }),
  objective: { ...objective, doc: `${objective.doc} With --result only.` },
  windowDays: { ...windowDays, doc: `${windowDays.doc} With --result only.` },
  latencyThresholdMs: {
    ...latencyThresholdMs,
    doc: `${latencyThresholdMs.doc} With --result only; must match the file's slo.latency_threshold_ms.`,
  },
  timeoutMs: int({ flag: 'timeout-ms', default: 5000, min: 1, unit: 'ms', doc: 'Bound on the Prometheus query.' }),
} satisfies Specs;

const RULES_SPECS = {
  objective,
  latencyThresholdMs: {
    ...latencyThresholdMs,
    doc: `${latencyThresholdMs.doc} Must be a histogram bucket bound (${LE_SECONDS.map((s) => s * 1000).join(', ')}).`,
  },
  windowDays,
  job: { ...job, doc: `${job.doc} Used by the scrape-failure alert.` },
  runbookUrl: str({
    flag: 'runbook-url',
    default: DEFAULT_RULES_CONFIG.runbookUrl,
    pattern: /^https?:\/\/[^\s#]+$/,
    allowed: 'an absolute http(s) URL without spaces or #',
    doc: 'Absolute URL where docs/runbook.md is served; each alert links its #section (Alertmanager cannot follow a relative path). The default is a placeholder to replace.',
  }),
} satisfies Specs;

const SUBCOMMANDS = {
  burn: 'Print the burn of a load-test result: error ratio, burn rate, budget spent and left.',
  gate: 'Exit 0 when the remaining error budget is at or above --min-remaining, 1 when below, 2 when it cannot tell.',
  rules: 'Print the Prometheus recording and alerting rules for the SLO (deploy/prometheus/bulwark-rules.yml).',
} as const;

function usage(): string {
  const lines = [
    'Usage: bulwark slo <burn|gate|rules> [options]',
    '',
    `The /charge SLO: ${DEFAULT_SLO.objective * 100} % of charges answered non-5xx within ${DEFAULT_SLO.latencyThresholdMs} ms over ${DEFAULT_SLO.windowDays} days by default.`,
    '',
    'Subcommands:',
  ];
  for (const [name, summary] of Object.entries(SUBCOMMANDS)) lines.push(`  ${name.padEnd(6)} ${summary}`);
  lines.push('', 'Run `bulwark slo <subcommand> --help` for its options.');
  return lines.join('\n');
}

export async function sloCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(`${usage()}\n`);
    return;
  }
  if (sub === undefined) throw new ConfigError('needs a subcommand: burn, gate or rules (see bulwark slo --help)');
  if (sub === 'burn') return burnCommand(rest, env);
  if (sub === 'gate') return gateCommand(rest, env);
  if (sub === 'rules') return rulesCommand(rest, env);
  throw new ConfigError(`unknown subcommand "${sub}" (allowed: burn, gate, rules)`);
}

function noPositionals(positionals: string[]): void {
  if (positionals.length > 0)
    throw new ConfigError(
      `unexpected argument ${JSON.stringify(positionals[0])} (options take the form --name value; see --help)`,
    );
}

async function readResult(
  file: string,
  thresholdMs: number,
): Promise<SloResultBlock & { counts: ReturnType<typeof sliCountsOf> }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ConfigError(
      `--result cannot read ${JSON.stringify(file)}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`--result ${JSON.stringify(file)} is not valid JSON: ${(e as Error).message}`);
  }
  try {
    const { slo } = parseLoadTestResult(json);
    if (!slo)
      throw new ConfigError(
        `--result ${JSON.stringify(file)} has no "slo" block; the lab's report writes { "slo": { "route", "total", "good", "duration_seconds" } }`,
      );
    return { ...slo, counts: sliCountsOf(slo, thresholdMs) };
  } catch (e) {
    if (e instanceof ResultError) throw new ConfigError(`--result ${JSON.stringify(file)}: ${e.message}`);
    throw e;
  }
}

const days = (seconds: number): string =>
  seconds === Infinity
    ? 'forever'
    : seconds >= 2 * 86_400
      ? `${formatShare(seconds / 86_400)} days`
      : `${formatShare(seconds / 3600)} hours`;

function describeBurn(
  file: string,
  r: SloResultBlock,
  thresholdMs: number,
  o: { objective: number; windowDays: number },
  b: Burn,
): string {
  return [
    `${r.route} (${file}): ${b.total} requests over ${formatShare(r.duration_seconds)} s, ${b.good} good (non-5xx within ${thresholdMs} ms), ${b.bad} bad`,
    `error ratio ${formatShare(b.errorRatio)} against a budget of ${formatShare(b.errorBudget)} (objective ${formatShare(o.objective * 100)} %): burn rate ${formatShare(b.burnRate)}x`,
    `this run spent ${formatShare(b.budgetConsumed * 100)} % of the ${o.windowDays}-day error budget; left after it: ${formatShare(b.remainingAfterRun)}`,
    `at this burn rate a full budget lasts ${days(b.exhaustionSeconds)}; a ${o.windowDays}-day window burning like this run would end ${
      b.projectedRemaining >= 0
        ? `with ${formatShare(b.projectedRemaining)} of its budget left`
        : `${formatShare(-b.projectedRemaining)} budgets overspent`
    }`,
  ].join('\n');
}

async function burnCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const { values: v, help, positionals } = parseOptions(BURN_SPECS, argv, env);
  if (help) {
    process.stdout.write(`${renderHelp('bulwark slo burn --result FILE [options]', SUBCOMMANDS.burn, BURN_SPECS)}\n`);
    return;
  }
  noPositionals(positionals);
  if (v.result === '') throw new ConfigError('--result is required (a load-test result file)');
  const r = await readResult(v.result, v.latencyThresholdMs);
  const b = computeBurn(r.counts, v);
  if (v.format === 'json') {
    const out = {
      source: v.result,
      route: r.route,
      latencyThresholdMs: v.latencyThresholdMs,
      objective: v.objective,
      windowDays: v.windowDays,
      durationSeconds: r.duration_seconds,
      ...b,
    };
    process.stdout.write(`${JSON.stringify(out, (_k, x: unknown) => (x === Infinity ? null : x), 2)}\n`);
  } else {
    process.stdout.write(`${describeBurn(v.result, r, v.latencyThresholdMs, v, b)}\n`);
  }
}

async function gateCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const { values: v, help, positionals } = parseOptions(GATE_SPECS, argv, env);
  if (help) {
    process.stdout.write(
      `${renderHelp('bulwark slo gate (--result FILE | --prometheus URL) [--min-remaining SHARE] [options]', SUBCOMMANDS.gate, GATE_SPECS)}\n`,
    );
    return;
  }
  noPositionals(positionals);
  if ((v.result === '') === (v.prometheus === undefined))
    throw new ConfigError('give exactly one of --result FILE or --prometheus URL');
  if (v.prometheus !== undefined && !/^https?:$/.test(new URL(v.prometheus).protocol))
    throw new ConfigError(`--prometheus must be an http(s) URL; got ${JSON.stringify(v.prometheus)}`);
  let remaining: number;
  let source: string;
  if (v.prometheus !== undefined) {
    try {
      const reading = await budgetRemainingFromPrometheus(v.prometheus, v.job, { timeoutMs: v.timeoutMs });
      remaining = reading.remaining ?? 1;
      source = `prometheus ${v.prometheus}, ${reading.query}${reading.remaining === null ? ' (no /charge requests in the window: nothing spent)' : ''}`;
    } catch (e) {
      if (e instanceof PrometheusSourceError) throw new ConfigError(e.message);
      throw e;
    }
  } else {
    const r = await readResult(v.result, v.latencyThresholdMs);
    const b = computeBurn(r.counts, v);
    remaining = v.basis === 'projected' ? b.projectedRemaining : b.remainingAfterRun;
    const basis =
      v.basis === 'projected'
        ? `projected over a ${v.windowDays}-day window burning like the run`
        : `left in a ${v.windowDays}-day window after this run`;
    source = `result file ${v.result} (${r.route}, ${b.total} requests over ${formatShare(r.duration_seconds)} s, burn rate ${formatShare(b.burnRate)}x, ${basis})`;
  }
  const verdict = gateVerdict({ remaining, minRemaining: v.minRemaining, source });
  process.stdout.write(`slo gate: ${verdict.line}\n`);
  if (!verdict.pass) process.exitCode = 1;
}

function rulesCommand(argv: string[], env: NodeJS.ProcessEnv): void {
  const { values: v, help, positionals } = parseOptions(RULES_SPECS, argv, env);
  if (help) {
    process.stdout.write(
      `${renderHelp('bulwark slo rules [options] > deploy/prometheus/bulwark-rules.yml', SUBCOMMANDS.rules, RULES_SPECS)}\n`,
    );
    return;
  }
  noPositionals(positionals);
  if (!LE_SECONDS.some((le) => Math.abs(le * 1000 - v.latencyThresholdMs) < 1e-9)) {
    throw new ConfigError(
      `--latency-threshold-ms must be a histogram bucket bound (one of ${LE_SECONDS.map((s) => s * 1000).join(', ')}); got ${v.latencyThresholdMs}`,
    );
  }
  process.stdout.write(renderRules(v));
}
