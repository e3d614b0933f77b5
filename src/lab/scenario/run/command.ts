/**
 * `bulwark scenario NAME` and `bulwark bench`: options → scenarios → one
 * report (report.json, report.md, report.html) in --out. Progress goes to
 * stderr; stdout gets the verdict per check and the files written. The exit
 * code is 1 when any check failed, so CI can gate on it; the report is
 * written either way, because a failing run is the one worth reading.
 */
import { ConfigError, bool, int, oneOf, parseOptions, renderHelp, str, type Values } from '../../../config/options.js';
import { VARIANT_LABELS, type BenchReport, type VariantName } from '../../report/types.js';
import { runBench } from './bench.js';
import type { ScenarioDefinition } from '../plan/definition.js';
import { defaultReportDir, writeReport } from '../write/report-files.js';
import { SCENARIOS, scenarioNamed } from '../plan/scenarios/index.js';
import { problemsOf } from '../audit/verdict.js';

const SPECS = {
  quick: bool({
    flag: 'quick',
    env: 'LAB_QUICK',
    default: false,
    doc: 'The short form of every scenario (what CI runs): fewer seconds, lower rates, the gateway with mechanisms on and off only.',
  }),
  out: str({
    flag: 'out',
    env: 'LAB_OUT',
    default: '',
    doc: 'Directory for report.json, report.md and report.html; empty: reports/<date-time>[-<scenario>].',
  }),
  variants: str({
    flag: 'variants',
    env: 'LAB_VARIANTS',
    default: '',
    pattern: /^$|^[a-z-]+(,[a-z-]+)*$/,
    allowed:
      'a comma-separated list of gateway, gateway-off, baseline, baseline-hardened, baseline-cluster, baseline-haproxy',
    doc: "Variants to run, in order; empty: the scenario's own (all four in the full form).",
  }),
  seed: int({
    flag: 'seed',
    env: 'LAB_SEED',
    default: 1,
    min: 0,
    max: 4_294_967_295,
    doc: "Seed of keys, amounts, jitter and the simulator's dice.",
  }),
  seeds: int({
    flag: 'seeds',
    env: 'LAB_SEEDS',
    default: 1,
    min: 1,
    max: 20,
    doc: 'Run each headline scenario (capacity, slow-provider, overload, retry-storm, deploy, rolling-restart) this many times, with seeds --seed, --seed+1, ...; the report adds the min-median-max of goodput, SLO good % and recovery time per variant, and compares the gateway with its peers on the medians.',
  }),
  scrapeMs: int({
    flag: 'scrape-ms',
    env: 'LAB_SCRAPE_MS',
    default: 1000,
    min: 200,
    max: 60_000,
    unit: 'ms',
    doc: "How often the gateway's /metrics is scraped into the timeline (each scrape costs the gateway's front thread a render).",
  }),
  outcomes: str({
    flag: 'outcomes',
    env: 'LAB_OUTCOMES',
    default: '',
    doc: "Directory for every run's per-charge outcomes as JSON lines (key, status, every attempt's status, latency, intended send time), one file per scenario, variant and seed: SCENARIO-VARIANT-seedN.ndjson; empty: none. The calibration ramp's runs are written too.",
  }),
  progress: oneOf({
    flag: 'progress',
    env: 'LAB_PROGRESS',
    default: 'on',
    values: ['on', 'off'] as const,
    doc: 'Progress lines on stderr (one every 5 s of load per variant).',
  }),
};

const SCENARIO_SUMMARY =
  'Runs one fault-injection scenario against each variant (bulwark with mechanisms on and off, the Fastify baseline, ' +
  'the hardened baseline, Fastify per core behind node:cluster and behind HAProxy): an embedded Postgres and the simulator on loopback, phases warm-up / fault / recovery with ' +
  "faults set through the simulator's control API, open-loop load, /metrics scraped every second, and an audit of " +
  'Postgres against the provider ledger and the client log. Scenarios: ' +
  SCENARIOS.map((s) => s.name).join(', ') +
  '.';

const BENCH_SUMMARY =
  'Runs every scenario (' +
  SCENARIOS.map((s) => s.name).join(', ') +
  ') and writes one report: report.json, report.md, report.html.';

export async function scenarioCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const { values: v, help, positionals } = parseOptions(SPECS, argv, env);
  if (help) {
    process.stdout.write(`${renderHelp('bulwark scenario NAME [options]', SCENARIO_SUMMARY, SPECS)}\n`);
    return;
  }
  if (positionals.length !== 1)
    throw new ConfigError(
      `bulwark scenario needs one scenario NAME (one of ${SCENARIOS.map((s) => s.name).join(', ')}); got ${positionals.length === 0 ? 'none' : positionals.join(' ')}`,
    );
  const def = scenarioNamed(positionals[0]!);
  if (!def)
    throw new ConfigError(
      `unknown scenario ${JSON.stringify(positionals[0])} (allowed: ${SCENARIOS.map((s) => s.name).join(', ')})`,
    );
  await run([def], v, ['scenario', ...argv], def.name);
}

export async function benchCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const { values: v, help, positionals } = parseOptions(SPECS, argv, env);
  if (help) {
    process.stdout.write(`${renderHelp('bulwark bench [options]', BENCH_SUMMARY, SPECS)}\n`);
    return;
  }
  if (positionals.length > 0)
    throw new ConfigError(`unexpected argument ${JSON.stringify(positionals[0])} (see --help)`);
  await run(SCENARIOS, v, ['bench', ...argv], '');
}

function parseVariants(spec: string): VariantName[] | undefined {
  if (spec === '') return undefined;
  const names = spec.split(',');
  for (const n of names) {
    if (!(n in VARIANT_LABELS))
      throw new ConfigError(
        `--variants: ${JSON.stringify(n)} is not a variant (allowed: ${Object.keys(VARIANT_LABELS).join(', ')})`,
      );
  }
  return names as VariantName[];
}

async function run(
  defs: readonly ScenarioDefinition[],
  v: Values<typeof SPECS>,
  args: string[],
  suffix: string,
): Promise<void> {
  const variants = parseVariants(v.variants);
  const t0 = performance.now();
  const progress = v.progress === 'on';
  const log = (msg: string) => {
    if (progress) process.stderr.write(`[lab ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${msg}\n`);
  };
  const { report } = await runBench(defs, {
    mode: v.quick ? 'quick' : 'full',
    command: ['bulwark', ...args].map(shellQuote).join(' '),
    seed: v.seed,
    seeds: v.seeds,
    scrapeIntervalMs: v.scrapeMs,
    ...(variants ? { variants } : {}),
    ...(v.outcomes !== '' ? { outcomesDir: v.outcomes } : {}),
    log,
    onSecond: (variant, s) => {
      if (s.second % 5 !== 4) return;
      const st = Object.entries(s.statuses)
        .map(([k, n]) => `${k}:${n}`)
        .join(' ');
      log(
        `  ${variant} t=${s.second + 1}s offered ${s.offered} goodput ${s.goodput} p99 ${s.latency_ms.charge?.p99 ?? '-'} ms [${st}]`,
      );
    },
  });
  const dir = v.out !== '' ? v.out : defaultReportDir(new Date(), suffix);
  const files = await writeReport(dir, report);
  process.stdout.write(`${summary(report)}\n\nwrote ${files.json}\n      ${files.markdown}\n      ${files.html}\n`);
  process.stdout.write(`elapsed ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
  if (report.scenarios.some((s) => problemsOf(s).length > 0)) process.exitCode = 1;
}

function summary(report: BenchReport): string {
  const lines: string[] = [];
  for (const s of report.scenarios) {
    lines.push(`${s.scenario}:`);
    for (const c of s.checks) lines.push(`  ${c.passed ? 'pass' : 'FAIL'}  ${c.name} (${c.detail})`);
  }
  return lines.join('\n');
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=,@%+-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`;
}
