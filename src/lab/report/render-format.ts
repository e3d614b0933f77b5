/**
 * What the Markdown and HTML renderers share: number formats, the look of
 * each variant (colour and dash, so lines read in greyscale too), short
 * labels for events, and Markdown escaping. Both renderers format through
 * here so a number reads the same in both files.
 */
import type { Calibration, RunEvent, ScenarioResult, VariantName, VariantResult } from './types.js';

const DASH = '—';

function group(intText: string): string {
  return intText.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** A magnitude: one decimal under 10, a grouped integer from 10 up; '—' for null or non-finite. */
export function fmtNumber(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return DASH;
  if (Math.abs(v) < 10) {
    const t = v.toFixed(1);
    return t === '-0.0' ? '0.0' : t;
  }
  return group(Math.round(v).toString());
}

/** Milliseconds (no unit): one decimal under 10, integers above. */
export const fmtMs = fmtNumber;

/** Per-second rates: like fmtNumber, but a whole 0 is '0'. */
export function fmtPerSecond(v: number | null | undefined): string {
  return v === 0 ? '0' : fmtNumber(v);
}

/** A count: a grouped integer. */
export function fmtCount(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return DASH;
  return group(Math.round(v).toString());
}

/** A share 0..1 as a percentage; never rounds a non-zero share to 0% or a partial one to 100%. */
export function fmtPercent(share: number | null | undefined): string {
  if (share === null || share === undefined || !Number.isFinite(share)) return DASH;
  if (share === 0) return '0%';
  if (share === 1) return '100%';
  const pct = share * 100;
  if (pct > 0 && pct < 0.1) return '<0.1%';
  if (pct > 99.9 && pct < 100) return '>99.9%';
  return `${pct.toFixed(1)}%`;
}

/** Seconds with a unit: '0 s', '0.8 s', '22.4 s', '125 s' (whole seconds stay whole). */
export function fmtSeconds(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return DASH;
  if (Number.isInteger(v) || Math.abs(v) >= 100) return `${group(Math.round(v).toString())} s`;
  return `${String(Number(v.toFixed(Math.abs(v) < 1 ? 2 : 1)))} s`;
}

/** GiB with one decimal: '62.8 GiB'. */
export function fmtGiB(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return DASH;
  return `${v >= 100 ? group(Math.round(v).toString()) : v.toFixed(1)} GiB`;
}

/** A burn rate: '0.4×', '14×'. */
export function fmtBurn(v: number | null | undefined): string {
  const n = fmtNumber(v);
  return n === DASH ? n : `${n}×`;
}

export interface VariantStyle {
  color: string;
  /** stroke-dasharray, undefined for solid. */
  dash: string | undefined;
  width: number;
  /** A darker shade of `color` for text on white (marker labels). */
  ink: string;
}

/**
 * Okabe–Ito colours (distinguishable with colour-blindness) and a distinct
 * dash per variant, so a greyscale print still tells the lines apart.
 */
const STYLES: Record<VariantName, VariantStyle> = {
  gateway: { color: '#0072B2', dash: undefined, width: 2.25, ink: '#005C91' },
  'gateway-off': { color: '#E69F00', dash: '7 4', width: 1.75, ink: '#8F6000' },
  baseline: { color: '#D55E00', dash: '2 3', width: 2, ink: '#A84A00' },
  'baseline-hardened': { color: '#009E73', dash: '9 3 2 3', width: 1.75, ink: '#00704F' },
  'baseline-cluster': { color: '#CC79A7', dash: '4 2', width: 1.75, ink: '#9C4A7C' },
  'baseline-haproxy': { color: '#56B4E9', dash: '1 2', width: 2, ink: '#1F6F9E' },
};
const FALLBACK: VariantStyle[] = [
  { color: '#CC79A7', dash: '4 2', width: 1.75, ink: '#9C4A7C' },
  { color: '#56B4E9', dash: '1 2', width: 2, ink: '#1F6F9E' },
  { color: '#555555', dash: '12 4', width: 1.75, ink: '#333333' },
];

export function variantStyle(variant: string, index: number): VariantStyle {
  return (STYLES as Record<string, VariantStyle>)[variant] ?? FALLBACK[index % FALLBACK.length]!;
}

/** A variant's display name: its label, or the variant id when the label is empty. */
export function variantLabel(v: VariantResult): string {
  return v.label.trim() !== '' ? v.label : v.variant;
}

/**
 * A short marker label for an event ("breaker open", "SIGTERM", "restart");
 * the full text stays in the event table and the marker's hover title.
 */
export function shortEventLabel(what: string): string {
  const w = what.toLowerCase();
  if (w.includes('sigterm')) return 'SIGTERM';
  if (w.includes('sigkill')) return 'SIGKILL';
  if (w.includes('breaker')) {
    const which = /\b(fx)\b/.exec(w)?.[1];
    const state = /half[- ]?open/.test(w) ? 'half-open' : /\bopen/.test(w) ? 'open' : /\bclose/.test(w) ? 'closed' : '';
    return [which, 'breaker', state].filter(Boolean).join(' ');
  }
  if (/\brestart|\bready\b|\bstarted\b/.test(w)) return 'restart';
  if (/\bdrain/.test(w)) return 'drain';
  return what.length > 18 ? `${what.slice(0, 17).trimEnd()}…` : what;
}

/** Events of all variants at one moment with one label merge into one marker. */
export interface MergedEvent {
  t: number;
  label: string;
  /** Full texts, one per variant that logged it. */
  details: string[];
  /** Indexes into the scenario's variants. */
  variants: number[];
}

export function mergeEvents(variants: readonly { events: readonly RunEvent[] }[], withinS = 0.25): MergedEvent[] {
  const all = variants.flatMap((v, vi) => v.events.map((e) => ({ ...e, vi, label: shortEventLabel(e.what) })));
  all.sort((a, b) => a.t - b.t || a.vi - b.vi);
  const merged: MergedEvent[] = [];
  for (const e of all) {
    const same = merged.find(
      (m) => m.label === e.label && Math.abs(m.t - e.t) <= withinS && !m.variants.includes(e.vi),
    );
    if (same) {
      same.details.push(e.what);
      same.variants.push(e.vi);
    } else {
      merged.push({ t: e.t, label: e.label, details: [e.what], variants: [e.vi] });
    }
  }
  return merged;
}

/**
 * Markdown-safe inline text: backslash-escapes what CommonMark would read as
 * markup (`<` opening HTML, `&` an entity, `|` a table cell, `*` emphasis, a
 * leading `#`, `>` or `-` a heading, quote or list),
 * and turns newlines into spaces so a table row stays one line.
 */
export function mdText(text: string): string {
  return (
    String(text)
      .replace(/\r?\n/g, ' ')
      .replace(/[\\`*[\]<|]/g, (c) => `\\${c}`)
      // `&` only matters where it would start an entity (`&lt;`, `&#60;`).
      .replace(/&(?=#?[A-Za-z0-9]+;)/g, '\\&')
      .replace(/^(\s*)([#+>-])(?=\s|$)/, '$1\\$2')
      .replace(/^(\s*\d+)([.)])(?=\s|$)/, '$1\\$2')
      .replace(/(^|[^A-Za-z0-9])_|_(?=[^A-Za-z0-9]|$)/g, (m) => m.replace('_', '\\_'))
  );
}

/** A fenced code block whose fence is longer than any backtick run inside. */
export function mdCodeBlock(text: string, lang = ''): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((r) => r.length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}${lang}\n${text}\n${fence}`;
}

/**
 * The phases a scenario's tables list: the scenario's own order first, then
 * any phase a variant reports that the scenario does not name.
 */
export function phaseNames(scenario: ScenarioResult): string[] {
  const names = scenario.phases.map((p) => p.name);
  for (const v of scenario.variants)
    for (const name of Object.keys(v.phases)) if (!names.includes(name)) names.push(name);
  return names;
}

/** An id-safe slug for anchors: 'slow-provider' → 'scenario-slow-provider'; index keeps duplicates apart. */
export function scenarioAnchor(scenario: ScenarioResult, index: number): string {
  const slug = scenario.scenario
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return `scenario-${index + 1}-${slug || 'unnamed'}`;
}

/** The columns of a scenario's "Audit and SLO" table, the same in report.md and report.html. */
export const AUDIT_COLUMNS: readonly string[] = [
  'Variant',
  'Offered',
  'Goodput',
  'p999 ms',
  'Client final',
  'Duplicates',
  'Lost',
  'Pending',
  'SLO good / total',
  'Error ratio',
  'Burn rate',
];

/** One line for the report: what a scenario's calibration ramp measured and what it means for the plan. */
export function describeCalibration(c: Calibration): string {
  const reach = c.reached
    ? `the top step served ${c.top_served_per_s}/s of ${c.top_per_s}/s`
    : `not reached: the top step served ${c.top_served_per_s}/s of ${c.top_per_s}/s, so the ceiling is beyond what the generator is asked for and the plan's top steps stop at ${c.top_per_s}/s`;
  const lag = c.generator_lag_max_ms === null ? '' : `; generator's worst second ${c.generator_lag_max_ms} ms late`;
  return `calibrated ceiling ${c.ceiling_per_s}/s (${c.ramp}; ${reach}${lag})`;
}
