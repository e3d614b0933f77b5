/**
 * Figures the docs quote from the committed lab report are filled in from
 * docs/lab/report.json, so a doc cannot drift from the report it cites:
 * `npm run docs:figures` rewrites them, and test/scripts/report-figures.test.ts
 * fails when a marked figure differs from what report.json gives.
 *
 * A figure is marked in place, the value between the two comments:
 *
 *   <!-- report: v:overload:gateway:totals.goodput_per_s:1 -->338.5<!-- /report -->
 *
 * Queries (fields separated by `:`):
 * - `command`, `commit` (first 7 hex digits), `minutes` (the bench's wall time), `runs` (variant runs);
 * - `sum:PATH[:FORMAT]`: PATH summed over every variant run of every scenario;
 * - `v:SCENARIO:VARIANT:PATH[:FORMAT]`: a field of one variant's row; PATH is
 *   dot-separated keys into it (`phases.fault.p99_ms`, `slo.burn_rate`), plus
 *   `good_pct` (SLO good %); a key `#N` is an object's Nth entry, counted
 *   from 0, or from the end when negative (`phases.#-1.p99_ms`: the last
 *   phase's), for phases named after rates fitted to the machine;
 * - `phase:SCENARIO:VARIANT:N`: the name of that variant's Nth phase (`#N` as above);
 * - `spread:SCENARIO:VARIANT:PATH[:FORMAT]`: a field of one variant's row of
 *   a seeded scenario's spread (`goodput_per_s.min`, `slo_good_pct.median`);
 * - `check:SCENARIO:NAME:REGEX`: the first group REGEX captures in the detail
 *   of the first check of SCENARIO whose name contains NAME (the numbers a
 *   check measured, as it wrote them); NAME written `VARIANT@TEXT` picks the
 *   check of that variant (its name starts `VARIANT: `, which a NAME cannot
 *   spell since `:` separates fields) whose name contains TEXT.
 * Any query may end in ` | FORMAT` (after a check's REGEX, say). FORMAT: `int` (rounded, thousands grouped by a space, as the docs write
 * them), `0`, `1`, `2` (decimals), `s` (milliseconds as seconds, one
 * decimal), `num` (0, one decimal under 10, else `int`); none: the value as stored.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchReport, VariantResult } from '../src/lab/report/types.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const REPORT_JSON = path.join(ROOT, 'docs', 'lab', 'report.json');

/** README.md and every docs/*.md (not the generated ones under docs/lab). */
export function docFiles(root = ROOT): string[] {
  const docs = readdirSync(path.join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => path.join(root, 'docs', f));
  return [path.join(root, 'README.md'), ...docs];
}

const MARKER = /<!-- report: (.+?) -->([^<\n]*)<!-- \/report -->/g;

function group(intText: string): string {
  return intText.replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
}

function format(value: unknown, fmt: string | undefined): string {
  if (fmt === undefined || fmt === '') return String(value);
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`not a number: ${String(value)}`);
  switch (fmt) {
    case 'int':
      return `${value < 0 ? '-' : ''}${group(Math.round(Math.abs(value)).toString())}`;
    case '0':
    case '1':
    case '2':
      return value.toFixed(Number(fmt));
    case 's':
      return (value / 1000).toFixed(1);
    case 'num':
      // A magnitude as the docs write one: 0, one decimal under 10, a grouped integer from 10 up.
      if (value === 0) return '0';
      return Math.abs(value) < 10 ? value.toFixed(1) : format(value, 'int');
    default:
      throw new Error(`unknown format ${fmt}`);
  }
}

/** The name of `obj`'s entry `key` stands for: `#N` is the Nth, from the end when negative. */
function entryName(obj: object, key: string): string {
  const nth = /^#(-?\d+)$/.exec(key);
  if (!nth) return key;
  const names = Object.keys(obj);
  const n = Number(nth[1]);
  const name = names[n < 0 ? names.length + n : n];
  if (name === undefined) throw new Error(`no entry ${key} among ${names.length}`);
  return name;
}

function at(obj: unknown, keys: readonly string[], what: string): unknown {
  let cur: unknown = obj;
  for (const key of keys) {
    if (cur === null || typeof cur !== 'object') throw new Error(`${what}: no ${key}`);
    const k = entryName(cur, key);
    if (!(k in cur)) throw new Error(`${what}: no ${k}`);
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

function variantField(v: VariantResult, pathText: string): unknown {
  if (pathText === 'good_pct') return v.slo.total > 0 ? (100 * v.slo.good) / v.slo.total : null;
  return at(v, pathText.split('.'), `${v.variant}`);
}

/** The text a query stands for in `report`; throws with what is missing. */
export function resolve(report: BenchReport, query: string): string {
  const piped = / \| (\w+)$/.exec(query);
  if (piped) return format(Number(resolve(report, query.slice(0, piped.index))), piped[1]);
  const [kind, ...rest] = query.split(':');
  const scenario = (name: string) => {
    const s = report.scenarios.find((x) => x.scenario === name);
    if (!s) throw new Error(`no scenario ${name}`);
    return s;
  };
  const variantRow = (s: string | undefined, variant: string | undefined) => {
    const v = scenario(s ?? '').variants.find((x) => x.variant === variant);
    if (!v) throw new Error(`no variant ${variant} in ${s}`);
    return v;
  };
  switch (kind) {
    case 'command':
      return report.command;
    case 'commit':
      if (!report.git_commit) throw new Error('the report names no commit');
      return report.git_commit.slice(0, 7);
    case 'minutes':
      return ((Date.parse(report.finished_at) - Date.parse(report.started_at)) / 60_000).toFixed(1);
    case 'runs':
      return String(report.scenarios.reduce((a, s) => a + s.variants.length, 0));
    case 'sum': {
      const [p, fmt] = rest;
      const total = report.scenarios
        .flatMap((s) => s.variants)
        .reduce((a, v) => a + Number(variantField(v, p ?? '')), 0);
      return format(total, fmt);
    }
    case 'v': {
      const [s, variant, p, fmt] = rest;
      return format(variantField(variantRow(s, variant), p ?? ''), fmt);
    }
    case 'phase': {
      const [s, variant, n] = rest;
      if (!/^-?\d+$/.test(n ?? '')) throw new Error(`phase wants a number, not "${n ?? ''}"`);
      return entryName(variantRow(s, variant).phases, `#${n}`);
    }
    case 'spread': {
      const [s, variant, p, fmt] = rest;
      const row = scenario(s ?? '').spread?.rows.find((x) => x.variant === variant);
      if (!row) throw new Error(`no spread row ${variant} in ${s}`);
      return format(at(row, (p ?? '').split('.'), `${s} spread ${variant}`), fmt);
    }
    case 'check': {
      const [s, name, ...re] = rest;
      const [variant, text] = name?.includes('@') ? name.split('@', 2) : [undefined, name ?? ''];
      const c = scenario(s ?? '').checks.find(
        (x) => (variant === undefined || x.name.startsWith(`${variant}: `)) && x.name.includes(text ?? ''),
      );
      if (!c) throw new Error(`no check of ${s} named like "${name}"`);
      const m = new RegExp(re.join(':')).exec(c.detail);
      if (!m?.[1]) throw new Error(`/${re.join(':')}/ captures nothing in "${c.detail}"`);
      return m[1];
    }
    default:
      throw new Error(`unknown query kind ${kind}`);
  }
}

export interface Filled {
  text: string;
  markers: number;
  /** Queries that did not resolve, with why. */
  problems: string[];
}

/** `text` with every marked figure replaced by what the report gives (unresolvable ones left as they are). */
export function fillFigures(text: string, report: BenchReport): Filled {
  const problems: string[] = [];
  let markers = 0;
  const out = text.replace(MARKER, (whole, query: string) => {
    markers++;
    try {
      const value = resolve(report, query);
      if (value.includes('<') || value.includes('\n')) throw new Error(`value "${value}" cannot sit in a marker`);
      return `<!-- report: ${query} -->${value}<!-- /report -->`;
    } catch (e) {
      problems.push(`${query}: ${(e as Error).message}`);
      return whole;
    }
  });
  return { text: out, markers, problems };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const write = process.argv.includes('--write');
  const report = JSON.parse(readFileSync(REPORT_JSON, 'utf8')) as BenchReport;
  let bad = 0;
  for (const file of docFiles()) {
    const before = readFileSync(file, 'utf8');
    const f = fillFigures(before, report);
    for (const p of f.problems) process.stderr.write(`${path.relative(ROOT, file)}: ${p}\n`);
    bad += f.problems.length;
    if (f.text !== before) {
      if (write) writeFileSync(file, f.text);
      else bad++;
      process.stdout.write(`${path.relative(ROOT, file)}: ${write ? 'updated' : 'differs from the report'}\n`);
    }
  }
  process.exitCode = bad > 0 ? 1 : 0;
}
