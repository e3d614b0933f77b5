/**
 * A scenario's charts over time (goodput/s, p99 ms, 503/s, SLO good % by send
 * second): one line per variant, the fault phases shaded, events as labelled
 * ticks. They share one x range so, stacked, a p99 spike lines up with the
 * goodput dip it caused.
 */
import type { ScenarioResult, TimelinePoint } from './types.js';
import { extent, lineChart, type ChartMarker, type YScaleKind } from './svg-chart.js';
import { fmtSeconds, mergeEvents, variantLabel, variantStyle } from './render-format.js';

export interface ChartMetric {
  key: 'goodput' | 'p99' | '503' | 'slo';
  title: string;
  yLabel: string;
  yScale: YScaleKind;
  pick: (p: TimelinePoint) => number | null;
  /** Charted only when some variant measured it (results from before it existed have none). */
  optional?: boolean;
}

export const CHART_METRICS: readonly ChartMetric[] = [
  { key: 'goodput', title: 'Goodput per second', yLabel: 'goodput/s', yScale: 'linear', pick: (p) => p.goodput },
  // p99 spans 5 ms to the deadline in one run: 'auto' goes log when it spans two decades.
  { key: 'p99', title: 'p99 latency of POST /charge', yLabel: 'p99 (ms)', yScale: 'auto', pick: (p) => p.p99_ms },
  { key: '503', title: '503 answers per second', yLabel: '503/s', yScale: 'linear', pick: (p) => p.rate_503 },
  // By send second: where a variant loses SLO-good share (slow answers as well as errors), e.g. each restart of a rolling deploy.
  {
    key: 'slo',
    title: 'SLO good % of the charges sent each second',
    yLabel: 'SLO good %',
    yScale: 'linear',
    pick: (p) => p.slo_good_pct ?? null,
    optional: true,
  },
];

/** The metrics charted for a scenario: every one but an optional one no variant measured. */
export function chartMetrics(s: ScenarioResult): readonly ChartMetric[] {
  return CHART_METRICS.filter((m) => !m.optional || s.variants.some((v) => v.timeline.some((p) => m.pick(p) !== null)));
}

/** The x range every chart of a scenario shares: 0 to the last second, phase end or event. */
export function scenarioXDomain(s: ScenarioResult): [number, number] {
  const xs: number[] = [0];
  for (const v of s.variants) {
    for (const p of v.timeline) if (Number.isFinite(p.t)) xs.push(p.t);
    for (const e of v.events) if (Number.isFinite(e.t)) xs.push(e.t);
  }
  for (const p of s.phases) xs.push(p.start_s, p.end_s);
  const [lo, hi] = extent(xs.filter(Number.isFinite));
  return [Math.min(0, lo), hi > lo ? hi : lo + 1];
}

export function scenarioMarkers(s: ScenarioResult): ChartMarker[] {
  return mergeEvents(s.variants).map((e) => {
    const only = e.variants.length === 1 ? s.variants[e.variants[0]!] : undefined;
    const who = e.variants.map((i) => variantLabel(s.variants[i]!)).join(', ');
    const details = [...new Set(e.details)].join('; ');
    return {
      x: e.t,
      label: e.label,
      title: `${fmtSeconds(e.t)}: ${details} (${who})`,
      // One variant's event takes its colour; a shared one (every variant's SIGTERM) is neutral.
      color: only ? variantStyle(only.variant, e.variants[0]!).color : '#333333',
      textColor: only ? variantStyle(only.variant, e.variants[0]!).ink : '#333333',
    };
  });
}

/** The <svg> charts of one scenario, in CHART_METRICS order (chartMetrics). */
export function scenarioCharts(s: ScenarioResult, idPrefix: string): { metric: ChartMetric; svg: string }[] {
  const xDomain = scenarioXDomain(s);
  const markers = scenarioMarkers(s);
  const bands = s.phases
    .filter((p) => p.fault)
    .map((p) => ({ from: p.start_s, to: p.end_s, label: p.name, title: `${p.name}: ${p.fault ?? ''}` }));
  return chartMetrics(s).map((metric) => ({
    metric,
    svg: lineChart({
      id: `${idPrefix}-${metric.key}`,
      title: metric.title,
      yLabel: metric.yLabel,
      yScale: metric.yScale,
      xDomain,
      bands,
      markers,
      series: s.variants.map((v, i) => {
        const style = variantStyle(v.variant, i);
        return {
          label: variantLabel(v),
          color: style.color,
          ...(style.dash ? { dash: style.dash } : {}),
          width: style.width,
          points: v.timeline.map((p) => ({ x: p.t, y: metric.pick(p) })),
        };
      }),
    }),
  }));
}

/** Where report.md's charts live, relative to it (a code host shows images by relative link). */
export const CHART_DIR = 'charts';

/**
 * The file stem of each scenario's charts: its name as a slug, with its
 * position appended only when an earlier scenario has the same slug.
 */
export function chartStems(scenarios: readonly ScenarioResult[]): string[] {
  const seen = new Set<string>();
  return scenarios.map((s, i) => {
    const slug =
      s.scenario
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, '-')
        .replace(/^-+|-+$/g, '') || 'scenario';
    const stem = seen.has(slug) ? `${slug}-${i + 1}` : slug;
    seen.add(stem);
    return stem;
  });
}

/** A chart's path relative to report.md: charts/<scenario>-<metric>.svg. */
export function chartPath(stem: string, metric: ChartMetric['key']): string {
  return `${CHART_DIR}/${stem}-${metric}.svg`;
}

export const CHART_FILE_HEADER =
  '<!-- Generated by bulwark from report.json beside report.md: do not edit (re-render with `npm run report:render DIR`). -->';

/**
 * Every chart of a report as a standalone SVG file (the same drawing the
 * HTML inlines), for the scenarios that recorded a timeline.
 */
export function reportChartFiles(scenarios: readonly ScenarioResult[]): { path: string; content: string }[] {
  const stems = chartStems(scenarios);
  return scenarios.flatMap((s, i) =>
    hasTimeline(s)
      ? scenarioCharts(s, stems[i]!).map(({ metric, svg }) => ({
          path: chartPath(stems[i]!, metric.key),
          content: `${CHART_FILE_HEADER}\n${svg}\n`,
        }))
      : [],
  );
}

export function hasTimeline(s: ScenarioResult): boolean {
  return s.variants.some((v) => v.timeline.length > 0);
}
