/**
 * The report's opening verdict: per scenario, each variant's SLO good % and
 * goodput side by side, and, in words, every scenario where a peer beat the
 * gateway. A sceptical reader looks for where the system loses first, so the
 * losses are stated before any check, and the section is never empty by
 * construction: when nothing wins it names the closest peer and its margin.
 *
 * The only derivation the renderers share (both must say the same thing):
 * comparisons are made on the values as displayed, so a "win" is never a
 * difference the table cannot show.
 * Variants are whatever the report holds, in order of first appearance with
 * the gateway first; nothing here names a peer. A scenario run over several
 * seeds is judged on each variant's medians over them (its spread), not on
 * the first seed's run: one run of `deploy` moved 16 points between runs of
 * the same code.
 */
import type { BenchReport, NotGood, VariantResult } from './types.js';
import type { ShedReason } from '../../resilience/shedder.js';
import { fmtCount, fmtPerSecond, variantLabel } from './render-format.js';

export const GATEWAY = 'gateway';

export type VerdictMetric = 'good' | 'goodput';

export interface VerdictCell {
  /** SLO good share 0..1 (good / total); null when the SLO saw no request. */
  good: number | null;
  /** Final answers within the deadline per second of the run. */
  goodput: number;
}

export interface VerdictRow {
  scenario: string;
  /** By variant id; absent when the variant did not run in this scenario. */
  cells: Record<string, VerdictCell>;
  /** Variant ids holding the best value of each metric (ties share it). */
  best: Record<VerdictMetric, string[]>;
  /** The gateway's charges that were not SLO-good, and of how many (absent in older reports); the first seed's run when `seeds`. */
  gatewayNotGood?: { of: number; notGood: NotGood };
  /** The seeds whose medians the cells are, when the scenario ran over several. */
  seeds?: number[];
}

/** A peer ahead of the gateway (margin > 0) or, for `closest`, the smallest lead the gateway held (margin <= 0). */
export interface Comparison {
  scenario: string;
  peer: string;
  peerLabel: string;
  metric: VerdictMetric;
  gateway: number;
  other: number;
  /** other − gateway, in the metric's display unit (percentage points, or per second). */
  margin: number;
  /** margin relative to the gateway's value (0.05 = 5 % of it); Infinity when the gateway's is 0. */
  relative: number;
}

export interface Verdict {
  variants: { id: string; label: string }[];
  rows: VerdictRow[];
  /** Every (scenario, peer, metric) where the peer's displayed value beats the gateway's. */
  losses: Comparison[];
  /** When nothing beats the gateway: the comparison with the smallest relative lead. */
  closest: Comparison | undefined;
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

/**
 * The value a metric is compared on, as displayed: good % to 0.1 point,
 * goodput as fmtPerSecond shows it (0.1/s under 10, whole numbers above).
 */
export function metricValue(cell: VerdictCell, metric: VerdictMetric): number | null {
  if (metric === 'good') return cell.good === null ? null : round1(cell.good * 100);
  if (!Number.isFinite(cell.goodput)) return null;
  return Math.abs(cell.goodput) < 10 ? round1(cell.goodput) : Math.round(cell.goodput);
}

function cellOf(v: VariantResult): VerdictCell {
  return { good: v.slo.total > 0 ? v.slo.good / v.slo.total : null, goodput: v.totals.goodput_per_s };
}

export function verdictOf(report: BenchReport): Verdict {
  const labels = new Map<string, string>();
  for (const s of report.scenarios)
    for (const v of s.variants) if (!labels.has(v.variant)) labels.set(v.variant, variantLabel(v));
  const ids = [...labels.keys()].sort((a, b) => Number(b === GATEWAY) - Number(a === GATEWAY));
  const rows: VerdictRow[] = report.scenarios.map((s) => {
    const cells: Record<string, VerdictCell> = {};
    const spread = s.spread && s.spread.seeds.length > 1 ? s.spread : undefined;
    const medians = new Map(
      (spread?.rows ?? []).flatMap((r) =>
        r.run_goodput_per_s
          ? [[r.variant, { good: r.slo_good_pct.median / 100, goodput: r.run_goodput_per_s.median }]]
          : [],
      ),
    );
    for (const v of s.variants) cells[v.variant] ??= medians.get(v.variant) ?? cellOf(v);
    const seeds = spread && s.variants.every((v) => medians.has(v.variant)) ? spread.seeds : undefined;
    const best = (metric: VerdictMetric): string[] => {
      const vals = Object.entries(cells)
        .map(([id, c]) => [id, metricValue(c, metric)] as const)
        .filter((x): x is readonly [string, number] => x[1] !== null);
      const top = Math.max(...vals.map(([, x]) => x));
      return vals.filter(([, x]) => x === top).map(([id]) => id);
    };
    const gw = s.variants.find((v) => v.variant === GATEWAY);
    return {
      scenario: s.scenario,
      cells,
      best: { good: best('good'), goodput: best('goodput') },
      ...(gw?.not_good ? { gatewayNotGood: { of: gw.slo.total, notGood: gw.not_good } } : {}),
      ...(seeds ? { seeds } : {}),
    };
  });

  const all: Comparison[] = [];
  for (const row of rows) {
    const gw = row.cells[GATEWAY];
    if (!gw) continue;
    for (const [peer, cell] of Object.entries(row.cells)) {
      if (peer === GATEWAY) continue;
      for (const metric of ['good', 'goodput'] as const) {
        const g = metricValue(gw, metric);
        const o = metricValue(cell, metric);
        if (g === null || o === null) continue;
        const margin = round1(o - g);
        all.push({
          scenario: row.scenario,
          peer,
          peerLabel: labels.get(peer) ?? peer,
          metric,
          gateway: g,
          other: o,
          margin,
          relative: g === 0 ? (margin === 0 ? 0 : Infinity) : margin / g,
        });
      }
    }
  }
  const losses = all.filter((c) => c.margin > 0);
  const closest =
    losses.length > 0
      ? undefined
      : all.reduce<Comparison | undefined>((a, c) => (!a || c.relative > a.relative ? c : a), undefined);
  return { variants: ids.map((id) => ({ id, label: labels.get(id)! })), rows, losses, closest };
}

function metricText(c: Comparison): string {
  if (c.metric === 'good') {
    if (c.margin === 0) return `SLO good % (${c.other.toFixed(1)} % for both)`;
    return `SLO good % (${c.other.toFixed(1)} % vs bulwark's ${c.gateway.toFixed(1)} %, ${Math.abs(c.margin).toFixed(1)} points ${c.margin > 0 ? 'more' : 'less'})`;
  }
  if (c.margin === 0) return `goodput (${fmtPerSecond(c.other)}/s for both)`;
  const pct = Number.isFinite(c.relative)
    ? `, ${Math.abs(c.relative * 100).toFixed(1)} % ${c.margin > 0 ? 'more' : 'less'}`
    : '';
  return `goodput (${fmtPerSecond(c.other)}/s vs bulwark's ${fmtPerSecond(c.gateway)}/s${pct})`;
}

/** A row's first cell: the scenario, and whether its cells are medians. */
export function rowLabel(row: VerdictRow): string {
  return row.seeds ? `${row.scenario} (median of ${row.seeds.length} seeds)` : row.scenario;
}

/** A cell as displayed: good % and goodput/s, each bold when best in its row. */
export function cellText(row: VerdictRow, id: string, bold: (s: string) => string): string {
  const c = row.cells[id];
  if (!c) return '—';
  const good = metricValue(c, 'good');
  const goodput = metricValue(c, 'goodput');
  const g = good === null ? '—' : `${good.toFixed(1)} %`;
  const p = goodput === null ? '—' : `${fmtPerSecond(goodput)}/s`;
  return `${row.best.good.includes(id) ? bold(g) : g} · ${row.best.goodput.includes(id) ? bold(p) : p}`;
}

export const VERDICT_LEGEND =
  'Each cell: SLO good % (answers that are not 5xx and come within the SLO latency threshold, of all charge requests) · goodput (final answers, 201, 402 or a replay, within their deadline, per second of the run). The best of each row is in bold. A scenario run over several seeds shows the medians of each variant over them.';

/**
 * "Where bulwark loses" in plain words: a lead sentence, then one sentence
 * per scenario with a loss (every peer ahead in it, the widest lead first,
 * and on which metric by how much); or a lead saying nothing won and naming
 * the closest peer and its margin. The lead is never empty.
 */
export function lossReport(v: Verdict): { lead: string; items: string[] } {
  const [lead, ...items] = lossSentences(v);
  return { lead: lead!, items };
}

function lossSentences(v: Verdict): string[] {
  if (v.losses.length > 0) {
    const compared = new Set(
      v.rows.filter((r) => r.cells[GATEWAY] && Object.keys(r.cells).length > 1).map((r) => r.scenario),
    );
    const byScenario = new Map<string, Map<string, Comparison[]>>();
    for (const c of v.losses) {
      const peers = byScenario.get(c.scenario) ?? new Map<string, Comparison[]>();
      peers.set(c.peer, [...(peers.get(c.peer) ?? []), c]);
      byScenario.set(c.scenario, peers);
    }
    const worst = (cs: readonly Comparison[]) => Math.max(...cs.map((c) => c.relative));
    return [
      `bulwark (mechanisms on) is beaten in ${byScenario.size} of ${compared.size} scenarios it ran against peers:`,
      ...[...byScenario].map(([scenario, peers]) => {
        const parts = [...peers.values()]
          .sort((a, b) => worst(b) - worst(a))
          .map((cs) => `${cs[0]!.peerLabel} is ahead on ${cs.map(metricText).join(' and ')}`);
        const row = v.rows.find((r) => r.scenario === scenario);
        const seedRun = row?.seeds ? `In seed ${row.seeds[0]}'s run: ` : '';
        const why = row?.gatewayNotGood
          ? ` ${seedRun}${notGoodText(row.gatewayNotGood.of, row.gatewayNotGood.notGood)}`
          : '';
        return `In ${scenario}, ${parts.join('; ')}.${why}`;
      }),
    ];
  }
  if (v.closest) {
    const c = v.closest;
    return [
      `No peer beats bulwark (mechanisms on) on SLO good % or goodput in any scenario. The closest is ${c.peerLabel} in ${c.scenario}, on ${metricText(c)}.`,
    ];
  }
  return ['No scenario ran bulwark (mechanisms on) next to a peer, so there is nothing to compare.'];
}

const SHED_WORDS: Record<ShedReason, string> = {
  concurrency: 'the concurrency limit',
  event_loop: 'event-loop pressure',
  deadline: 'deadlines it could not meet',
  downstream: "the provider bulkhead's expected wait",
};

/**
 * What bulwark's charges that were not good met, in one sentence: the
 * client's side (5xx, no answer, connection errors, slow answers and how
 * many of those came on a retry), then what the service refused on the way.
 */
export function notGoodText(of: number, n: NotGood): string {
  const notGood = n.failed_5xx + n.timeout + n.error + n.slow;
  if (notGood === 0) return `Every one of bulwark's ${fmtCount(of)} charges was good.`;
  const were = (k: number) => (k === 1 ? 'was' : 'were');
  const parts: string[] = [];
  if (n.failed_5xx > 0) parts.push(`${fmtCount(n.failed_5xx)} ended in a 5xx`);
  if (n.timeout > 0) parts.push(`${fmtCount(n.timeout)} got no answer in time`);
  if (n.error > 0) parts.push(`${fmtCount(n.error)} ended in a connection error`);
  if (n.slow > 0)
    parts.push(
      `${fmtCount(n.slow)} ${were(n.slow)} answered over ${fmtCount(n.threshold_ms)} ms` +
        (n.slow_after_retry > 0 ? ` (${fmtCount(n.slow_after_retry)} of them on a retry)` : ''),
    );
  let text = `Of bulwark's ${fmtCount(of)} charges, ${fmtCount(notGood)} ${were(notGood)} not good: ${parts.join(', ')}.`;
  if (n.shed) {
    const reasons = (Object.entries(n.shed) as [ShedReason, number][])
      .filter(([, k]) => k > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([r, k]) => `${fmtCount(k)} on ${SHED_WORDS[r]}`);
    const shed = Object.values(n.shed).reduce((a, k) => a + k, 0);
    const refused = n.bulkhead_refusals ?? 0;
    text +=
      ` The service shed ${shed === 0 ? 'no request' : `${fmtCount(shed)} ${shed === 1 ? 'request' : 'requests'}`} at admission` +
      (reasons.length > 0 ? ` (${reasons.join(', ')})` : '') +
      ` and its provider bulkhead refused ${refused === 0 ? 'no call' : `${fmtCount(refused)} ${refused === 1 ? 'call' : 'calls'}`}.`;
  }
  return text;
}
