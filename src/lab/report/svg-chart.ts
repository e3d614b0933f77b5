/**
 * A small, pure SVG line chart for the lab report: time on x, one line per
 * series, shaded bands (fault windows) and labelled vertical markers (breaker
 * trips, SIGTERMs). It returns a string and reads nothing but its arguments,
 * so the report stays one self-contained file and every piece (scales, ticks,
 * paths with gaps, escaping) is testable with plain arithmetic.
 *
 * Why hand-written rather than a chart library: the report must load with no
 * script and no network, and the drawing needed is a few hundred lines.
 * Greyscale printing is handled by the caller giving each series a dash
 * pattern as well as a colour; the legend draws both.
 */

export interface LinePoint {
  x: number;
  /** null (or a non-finite number) leaves a gap in the line. */
  y: number | null;
}

export interface ChartSeries {
  label: string;
  points: readonly LinePoint[];
  color: string;
  /** SVG stroke-dasharray, e.g. '6 3'; omitted for a solid line. */
  dash?: string;
  /** Stroke width in px (default 1.75). */
  width?: number;
}

/** A shaded x range (a fault window). */
export interface ChartBand {
  from: number;
  to: number;
  /** Short text drawn inside the band when it fits. */
  label?: string;
  /** Hover text (the full fault description). */
  title?: string;
}

/** A vertical tick at x with a short label above the plot. */
export interface ChartMarker {
  x: number;
  label: string;
  /** Hover text (the full event). */
  title?: string;
  /** Tick colour (default dark grey). */
  color?: string;
  /** Label colour, when the tick colour is too light for text (default: color). */
  textColor?: string;
}

export type YScaleKind = 'linear' | 'log' | 'auto';

export interface LineChartSpec {
  /** Unique within the document: prefixes the ids the SVG defines. */
  id: string;
  title: string;
  /** Y axis label with its unit, e.g. 'p99 (ms)'. */
  yLabel: string;
  /** X axis label (default 'time (s)'). */
  xLabel?: string;
  /** 'auto' switches to log when positive values span two decades or more. */
  yScale?: YScaleKind;
  /** Drawing width in px (viewBox units; default 960). */
  width?: number;
  /** Height of the plot area alone in px (default 150). */
  plotHeight?: number;
  series: readonly ChartSeries[];
  bands?: readonly ChartBand[];
  markers?: readonly ChartMarker[];
  /** Force the x range; otherwise it covers the points, bands and markers. */
  xDomain?: readonly [number, number];
  /** Band fill colour (default a light red). */
  bandColor?: string;
  /** Legend text for the bands (default 'fault window'); '' hides it. */
  bandLegend?: string;
}

// ---------------------------------------------------------------- escaping

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escape text for XML/HTML content and attribute values. */
export function escapeXml(text: string): string {
  return String(text).replace(/[&<>"']/g, (c) => XML_ESCAPES[c] ?? c);
}

// ------------------------------------------------------------------ scales

export type Scale = (v: number) => number;

/** Maps [d0, d1] onto [r0, r1]; a degenerate domain maps to the middle of the range. */
export function linearScale(d0: number, d1: number, r0: number, r1: number): Scale {
  if (d1 === d0) return () => (r0 + r1) / 2;
  const k = (r1 - r0) / (d1 - d0);
  return (v) => r0 + (v - d0) * k;
}

/**
 * Log10 scale on [d0, d1] (both > 0). Values at or below zero clamp to the
 * bottom of the domain: a log axis has no place for them.
 */
export function logScale(d0: number, d1: number, r0: number, r1: number): Scale {
  if (!(d0 > 0) || !(d1 > 0)) throw new RangeError(`log scale domain must be positive, got [${d0}, ${d1}]`);
  const inner = linearScale(Math.log10(d0), Math.log10(d1), r0, r1);
  return (v) => inner(Math.log10(Math.max(v, d0)));
}

/** The step of about `count` intervals over a span: 1, 2 or 5 times a power of ten. */
export function niceStep(span: number, count: number): number {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const nice = norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10;
  return nice * mag;
}

/** Round multiples of a nice step inside [min, max], about `count` of them. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (max < min) [min, max] = [max, min];
  if (max === min) return [min];
  const step = niceStep(max - min, count);
  const first = Math.ceil(min / step - 1e-9);
  const last = Math.floor(max / step + 1e-9);
  const ticks: number[] = [];
  for (let i = first; i <= last; i++) {
    // Multiply rather than accumulate so 0.1 steps do not drift (0.30000000000000004).
    ticks.push(Number((i * step).toPrecision(12)));
  }
  return ticks;
}

/** [0, max] widened to the next nice tick, so the top gridline sits on a round number. */
export function niceLinearDomain(maxValue: number, count = 4): [number, number] {
  if (!(maxValue > 0) || !Number.isFinite(maxValue)) return [0, 1];
  const step = niceStep(maxValue, count);
  return [0, Number((Math.ceil(maxValue / step - 1e-9) * step).toPrecision(12))];
}

/** Whole decades covering [min, max] (both > 0). */
export function logDomain(minValue: number, maxValue: number): [number, number] {
  const lo = 10 ** Math.floor(Math.log10(minValue));
  let hi = 10 ** Math.ceil(Math.log10(maxValue));
  if (hi <= lo) hi = lo * 10;
  return [lo, hi];
}

/** Decades on a log axis; with three decades or fewer also the 2s and 5s between them. */
export function logTicks(d0: number, d1: number): number[] {
  const e0 = Math.floor(Math.log10(d0) + 1e-9);
  const e1 = Math.ceil(Math.log10(d1) - 1e-9);
  const withSubs = e1 - e0 <= 3;
  const ticks: number[] = [];
  for (let e = e0; e <= e1; e++) {
    for (const m of withSubs ? [1, 2, 5] : [1]) {
      const v = Number((m * 10 ** e).toPrecision(12));
      if (v >= d0 * (1 - 1e-9) && v <= d1 * (1 + 1e-9)) ticks.push(v);
    }
  }
  return ticks;
}

/** Should 'auto' use a log axis: positive values spanning at least two decades. */
export function prefersLog(values: readonly number[]): boolean {
  const pos = values.filter((v) => v > 0 && Number.isFinite(v));
  if (pos.length < 2) return false;
  const [lo, hi] = extent(pos);
  return hi / lo >= 100;
}

/** Compact tick text: 950, 1.5k, 12k, 3M, 0.25. */
export function formatTick(v: number): string {
  const a = Math.abs(v);
  if (a === 0) return '0';
  const units: [number, string][] = [
    [1e12, 'T'],
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ];
  for (const [size, suffix] of units) {
    if (a >= size) return `${trimNumber(v / size)}${suffix}`;
  }
  return trimNumber(v);
}

function trimNumber(v: number): string {
  const a = Math.abs(v);
  const digits = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
  return String(Number(v.toFixed(digits)));
}

// ------------------------------------------------------------------- paths

const r1 = (v: number): string => String(Math.round(v * 10) / 10);

export interface LinePath {
  /** SVG path data; each run of defined points is its own M…L… subpath. */
  d: string;
  /** Points with no defined neighbour: a path cannot show them, a dot can. */
  isolated: [number, number][];
}

/** Path data for a line that breaks at every null or non-finite y. */
export function linePath(points: readonly LinePoint[], sx: Scale, sy: Scale): LinePath {
  const runs: [number, number][][] = [];
  let run: [number, number][] = [];
  for (const p of points) {
    if (p.y === null || !Number.isFinite(p.y) || !Number.isFinite(p.x)) {
      if (run.length > 0) runs.push(run);
      run = [];
      continue;
    }
    run.push([sx(p.x), sy(p.y)]);
  }
  if (run.length > 0) runs.push(run);
  const parts: string[] = [];
  const isolated: [number, number][] = [];
  for (const r of runs) {
    if (r.length === 1) {
      isolated.push(r[0]!);
      continue;
    }
    parts.push(r.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${r1(x)} ${r1(y)}`).join(''));
  }
  return { d: parts.join(''), isolated };
}

// ------------------------------------------------------------------ layout

/**
 * Rough width of sans-serif text at a font size. The default 0.6 em per
 * character over-estimates on purpose (marker labels must never collide);
 * the legend, laid out on one line, can use a closer figure.
 */
export function textWidth(text: string, fontPx: number, emPerChar = 0.6): number {
  return text.length * fontPx * emPerChar;
}

export interface PlacedLabel {
  index: number;
  /** Row from 0, or -1 when no row had room (draw the tick, skip the text). */
  row: number;
  /** Left edge of the text. */
  left: number;
  anchor: 'start' | 'end';
}

/**
 * Greedy rows for labels that start at their tick (or end at it near the right
 * edge): each label takes the first row where it overlaps nothing.
 */
export function placeLabels(
  items: readonly { x: number; width: number }[],
  maxRows: number,
  rightEdge: number,
  gap = 6,
): PlacedLabel[] {
  const order = items.map((it, index) => ({ ...it, index })).sort((a, b) => a.x - b.x);
  const rows: [number, number][][] = Array.from({ length: maxRows }, () => []);
  const placed: PlacedLabel[] = [];
  for (const it of order) {
    const anchor = it.x + 3 + it.width > rightEdge ? 'end' : 'start';
    const left = anchor === 'start' ? it.x + 3 : it.x - 3 - it.width;
    const right = left + it.width;
    const row = rows.findIndex((taken) => taken.every(([l, r]) => right + gap <= l || left >= r + gap));
    if (row >= 0) rows[row]!.push([left, right]);
    placed.push({ index: it.index, row, left, anchor });
  }
  return placed.sort((a, b) => a.index - b.index);
}

// ------------------------------------------------------------------- chart

const FONT = 11;
const SMALL = 10;
const MARKER_ROWS = 3;
const ROW_H = 13;
const TITLE_H = 22;
const LEFT = 60;
const RIGHT = 14;
/** Average character width of the legend font (system sans, mixed case). */
const LEGEND_EM = 0.54;
const LEGEND_GAP = 16;
const LEGEND_ROW_H = 16;
const DEFAULT_STROKE = 1.75;

interface LegendItem {
  label: string;
  /** The series it keys, or none for the band swatch. */
  series?: ChartSeries;
  width: number;
}

/** Where everything goes: computed once, read by each drawing step. */
interface Layout {
  id: string;
  width: number;
  height: number;
  top: number;
  bottom: number;
  plotW: number;
  x0: number;
  x1: number;
  sx: Scale;
  sy: Scale;
  xTicks: number[];
  yTicks: number[];
  useLog: boolean;
  hasData: boolean;
  placed: PlacedLabel[];
  usedRows: number;
  legendRows: LegendItem[][];
  legendTop: number;
  bandColor: string;
}

/** One self-contained <svg> element. */
export function lineChart(spec: LineChartSpec): string {
  const bands = (spec.bands ?? []).filter((b) => Number.isFinite(b.from) && Number.isFinite(b.to) && b.to > b.from);
  const markers = (spec.markers ?? []).filter((m) => Number.isFinite(m.x));
  const L = layout(spec, bands, markers);
  const xLabel = spec.xLabel ?? 'time (s)';
  const yLabel = L.useLog ? `${spec.yLabel}, log scale` : spec.yLabel;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="${L.id}" viewBox="0 0 ${L.width} ${r1(L.height)}" width="${L.width}" height="${r1(L.height)}" role="img" aria-labelledby="${L.id}-title" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif" font-size="${FONT}">`,
    `<title id="${L.id}-title">${escapeXml(spec.title)}</title>`,
    `<text class="chart-title" x="${LEFT}" y="15" font-size="13" font-weight="600" fill="#111">${escapeXml(spec.title)}</text>`,
    // Bands first, under everything else.
    ...drawBands(L, bands),
    ...drawAxes(L, xLabel, yLabel),
    ...drawMarkers(L, markers),
    ...drawSeries(L, spec.series),
    ...drawLegend(L),
    '</svg>',
  ].join('');
}

function layout(spec: LineChartSpec, bands: readonly ChartBand[], markers: readonly ChartMarker[]): Layout {
  const width = spec.width ?? 960;
  const plotH = spec.plotHeight ?? 150;
  const plotW = width - LEFT - RIGHT;
  const [x0, xEnd] = spec.xDomain ?? autoXDomain(spec.series, bands, markers);
  const x1 = xEnd > x0 ? xEnd : x0 + 1;
  const sx = linearScale(x0, x1, LEFT, LEFT + plotW);

  // Marker labels take rows above the plot, as many as they need (max 3).
  const placed = placeLabels(
    markers.map((m) => ({ x: sx(clamp(m.x, x0, x1)), width: textWidth(m.label, SMALL) })),
    MARKER_ROWS,
    LEFT + plotW,
  );
  const usedRows = placed.reduce((n, p) => Math.max(n, p.row + 1), 0);
  const top = TITLE_H + usedRows * ROW_H + (usedRows > 0 ? 4 : 2);
  const bottom = top + plotH;

  // Legend: one entry per series, and the band swatch; wrapped to the plot width.
  const bandLegend = spec.bandLegend ?? 'fault window';
  const items: LegendItem[] = spec.series.map((s) => ({
    label: s.label,
    series: s,
    width: 28 + textWidth(s.label, FONT, LEGEND_EM),
  }));
  if (bands.length > 0 && bandLegend !== '')
    items.push({ label: bandLegend, width: 20 + textWidth(bandLegend, FONT, LEGEND_EM) });
  const legendRows: LegendItem[][] = [];
  let rowW = Infinity;
  for (const item of items) {
    if (rowW + item.width > plotW) {
      legendRows.push([]);
      rowW = 0;
    }
    legendRows.at(-1)!.push(item);
    rowW += item.width + LEGEND_GAP;
  }
  const legendTop = bottom + 50;

  // y: log when asked (or when 'auto' sees decades), else linear from 0.
  const ys: number[] = [];
  for (const s of spec.series) for (const p of s.points) if (p.y !== null && Number.isFinite(p.y)) ys.push(p.y);
  const hasData = ys.length > 0;
  const useLog = spec.yScale === 'log' ? ys.some((v) => v > 0) : spec.yScale === 'auto' ? prefersLog(ys) : false;
  let sy: Scale;
  let yTicks: number[];
  if (useLog) {
    const [lo, hi] = logDomain(...extent(ys.filter((v) => v > 0)));
    sy = logScale(lo, hi, bottom, top);
    yTicks = logTicks(lo, hi);
  } else {
    const [dataMin, dataMax] = hasData ? extent(ys) : [0, 1];
    const hi = niceLinearDomain(dataMax)[1];
    const lo = dataMin < 0 ? -niceLinearDomain(-dataMin)[1] : 0;
    sy = linearScale(lo, hi, bottom, top);
    // With nothing measured, ticks would only invent a scale.
    yTicks = hasData ? niceTicks(lo, hi, 4) : [];
  }

  return {
    id: spec.id.replace(/[^A-Za-z0-9_-]/g, '_'),
    width,
    height: legendTop + legendRows.length * LEGEND_ROW_H + 4,
    top,
    bottom,
    plotW,
    x0,
    x1,
    sx,
    sy,
    xTicks: niceTicks(x0, x1, Math.max(2, Math.floor(plotW / 80))),
    yTicks,
    useLog,
    hasData,
    placed,
    usedRows,
    legendRows,
    legendTop,
    bandColor: escapeXml(spec.bandColor ?? '#d62728'),
  };
}

function bandStyle(color: string): string {
  return `fill="${color}" fill-opacity="0.13" stroke="${color}" stroke-opacity="0.35" stroke-dasharray="3 3"`;
}

function drawBands(L: Layout, bands: readonly ChartBand[]): string[] {
  const out: string[] = [];
  for (const b of bands) {
    const bx0 = L.sx(clamp(b.from, L.x0, L.x1));
    const bx1 = L.sx(clamp(b.to, L.x0, L.x1));
    if (bx1 - bx0 <= 0) continue;
    const title = b.title ? `<title>${escapeXml(b.title)}</title>` : '';
    out.push(
      `<rect class="band" x="${r1(bx0)}" y="${r1(L.top)}" width="${r1(bx1 - bx0)}" height="${r1(L.bottom - L.top)}" ${bandStyle(L.bandColor)}>${title}</rect>`,
    );
    if (b.label && textWidth(b.label, SMALL) + 6 < bx1 - bx0) {
      // A white halo keeps the label legible where a line crosses it.
      out.push(
        `<text x="${r1(bx0 + 4)}" y="${r1(L.top + 12)}" font-size="${SMALL}" fill="#9b1c1c" font-style="italic" stroke="#fff" stroke-width="3" stroke-opacity="0.85" paint-order="stroke">${escapeXml(b.label)}</text>`,
      );
    }
  }
  return out;
}

function drawAxes(L: Layout, xLabel: string, yLabel: string): string[] {
  const out: string[] = [];
  const right = LEFT + L.plotW;
  for (const t of L.yTicks) {
    const y = r1(L.sy(t));
    out.push(`<line x1="${LEFT}" x2="${right}" y1="${y}" y2="${y}" stroke="#e3e3e3" stroke-width="1"/>`);
    out.push(
      `<text x="${LEFT - 6}" y="${r1(L.sy(t) + 3.5)}" text-anchor="end" fill="#444">${escapeXml(formatTick(t))}</text>`,
    );
  }
  out.push(`<line x1="${LEFT}" x2="${LEFT}" y1="${r1(L.top)}" y2="${r1(L.bottom)}" stroke="#888"/>`);
  out.push(`<line x1="${LEFT}" x2="${right}" y1="${r1(L.bottom)}" y2="${r1(L.bottom)}" stroke="#888"/>`);
  const mid = r1((L.top + L.bottom) / 2);
  out.push(
    `<text x="14" y="${mid}" transform="rotate(-90 14 ${mid})" text-anchor="middle" fill="#333">${escapeXml(yLabel)}</text>`,
  );
  for (const t of L.xTicks) {
    const x = r1(L.sx(t));
    out.push(`<line x1="${x}" x2="${x}" y1="${r1(L.bottom)}" y2="${r1(L.bottom + 4)}" stroke="#888"/>`);
    out.push(
      `<text x="${x}" y="${r1(L.bottom + 16)}" text-anchor="middle" fill="#444">${escapeXml(formatTick(t))}</text>`,
    );
  }
  out.push(
    `<text x="${r1(LEFT + L.plotW / 2)}" y="${r1(L.bottom + 30)}" text-anchor="middle" fill="#333">${escapeXml(xLabel)}</text>`,
  );
  return out;
}

/** A thin tick through the plot, its label in a row above; a label with no room keeps its tick and a hover title. */
function drawMarkers(L: Layout, markers: readonly ChartMarker[]): string[] {
  return markers.map((m, i) => {
    const p = L.placed[i]!;
    const x = L.sx(clamp(m.x, L.x0, L.x1));
    const color = escapeXml(m.color ?? '#333');
    const rowY = TITLE_H + p.row * ROW_H + 10;
    const tickTop = p.row < 0 ? L.top - 3 : rowY + 2;
    const title = m.title || p.row < 0 ? `<title>${escapeXml(m.title ?? m.label)}</title>` : '';
    const tick = `<line x1="${r1(x)}" x2="${r1(x)}" y1="${r1(tickTop)}" y2="${r1(L.bottom)}" stroke="${color}" stroke-width="1" stroke-dasharray="2 2" stroke-opacity="0.8"/>`;
    const text =
      p.row < 0
        ? ''
        : `<text x="${r1(p.anchor === 'start' ? x + 3 : x - 3)}" y="${r1(rowY)}" text-anchor="${p.anchor}" font-size="${SMALL}" fill="${escapeXml(m.textColor ?? m.color ?? '#333')}">${escapeXml(m.label)}</text>`;
    return `<g class="marker">${title}${tick}${text}</g>`;
  });
}

function drawSeries(L: Layout, series: readonly ChartSeries[]): string[] {
  const out: string[] = [];
  if (!L.hasData) {
    out.push(
      `<text x="${r1(LEFT + L.plotW / 2)}" y="${r1((L.top + L.bottom) / 2)}" text-anchor="middle" fill="#777" font-style="italic">no data</text>`,
    );
  }
  // Points outside a caller's x range must not spill over the axes.
  out.push(
    `<clipPath id="${L.id}-plot"><rect x="${LEFT - 3}" y="${r1(L.top - 3)}" width="${L.plotW + 6}" height="${r1(L.bottom - L.top + 6)}"/></clipPath>`,
  );
  out.push(`<g clip-path="url(#${L.id}-plot)">`);
  for (const s of series) {
    const { d, isolated } = linePath(s.points, L.sx, L.sy);
    const w = s.width ?? DEFAULT_STROKE;
    const color = escapeXml(s.color);
    const dash = s.dash ? ` stroke-dasharray="${escapeXml(s.dash)}"` : '';
    out.push(`<g class="series"><title>${escapeXml(s.label)}</title>`);
    if (d !== '')
      out.push(
        `<path d="${d}" fill="none" stroke="${color}" stroke-width="${w}"${dash} stroke-linejoin="round" stroke-linecap="round"/>`,
      );
    for (const [x, y] of isolated) out.push(`<circle cx="${r1(x)}" cy="${r1(y)}" r="${w + 0.75}" fill="${color}"/>`);
    out.push('</g>');
  }
  out.push('</g>');
  return out;
}

function drawLegend(L: Layout): string[] {
  const out: string[] = [];
  L.legendRows.forEach((row, ri) => {
    let x = LEFT;
    const y = L.legendTop + ri * LEGEND_ROW_H;
    for (const item of row) {
      const s = item.series;
      if (s) {
        const dash = s.dash ? ` stroke-dasharray="${escapeXml(s.dash)}"` : '';
        out.push(
          `<line x1="${r1(x)}" x2="${r1(x + 24)}" y1="${r1(y - 4)}" y2="${r1(y - 4)}" stroke="${escapeXml(s.color)}" stroke-width="${(s.width ?? DEFAULT_STROKE) + 0.5}"${dash}/>`,
        );
        out.push(`<text x="${r1(x + 28)}" y="${r1(y)}" fill="#222">${escapeXml(item.label)}</text>`);
      } else {
        out.push(`<rect x="${r1(x)}" y="${r1(y - 10)}" width="16" height="12" ${bandStyle(L.bandColor)}/>`);
        out.push(`<text x="${r1(x + 20)}" y="${r1(y)}" fill="#222">${escapeXml(item.label)}</text>`);
      }
      x += item.width + LEGEND_GAP;
    }
  });
  return out;
}

/** [min, max] without spreading (a long run would overflow the argument stack). */
export function extent(values: readonly number[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

function autoXDomain(
  series: readonly ChartSeries[],
  bands: readonly ChartBand[],
  markers: readonly ChartMarker[],
): [number, number] {
  const xs: number[] = [];
  for (const s of series) for (const p of s.points) if (Number.isFinite(p.x)) xs.push(p.x);
  for (const b of bands) xs.push(b.from, b.to);
  for (const m of markers) xs.push(m.x);
  if (xs.length === 0) return [0, 1];
  const [lo, hi] = extent(xs);
  return [Math.min(0, lo), hi];
}
