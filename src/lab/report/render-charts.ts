/**
 * A scenario's three charts over time (goodput/s, p99 ms, 503/s): one line
 * per variant, the fault phases shaded, events as labelled ticks. The three
 * share one x range so, stacked, a p99 spike lines up with the goodput dip
 * it caused.
 */
import type { ScenarioResult, TimelinePoint } from './types.js';
import { extent, lineChart, type ChartMarker, type YScaleKind } from './svg-chart.js';
import { fmtSeconds, mergeEvents, variantLabel, variantStyle } from './render-format.js';

export interface ChartMetric {
  key: 'goodput' | 'p99' | '503';
  title: string;
  yLabel: string;
  yScale: YScaleKind;
  pick: (p: TimelinePoint) => number | null;
}

export const CHART_METRICS: readonly ChartMetric[] = [
  { key: 'goodput', title: 'Goodput per second', yLabel: 'goodput/s', yScale: 'linear', pick: (p) => p.goodput },
  // p99 spans 5 ms to the deadline in one run: 'auto' goes log when it spans two decades.
  { key: 'p99', title: 'p99 latency of POST /charge', yLabel: 'p99 (ms)', yScale: 'auto', pick: (p) => p.p99_ms },
  { key: '503', title: '503 answers per second', yLabel: '503/s', yScale: 'linear', pick: (p) => p.rate_503 },
];

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

/** The three <svg> charts of one scenario, in CHART_METRICS order. */
export function scenarioCharts(s: ScenarioResult, idPrefix: string): { metric: ChartMetric; svg: string }[] {
  const xDomain = scenarioXDomain(s);
  const markers = scenarioMarkers(s);
  const bands = s.phases
    .filter((p) => p.fault)
    .map((p) => ({ from: p.start_s, to: p.end_s, label: p.name, title: `${p.name}: ${p.fault ?? ''}` }));
  return CHART_METRICS.map((metric) => ({
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
