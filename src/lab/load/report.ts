/**
 * The human-readable view of a LoadResult: a header (what ran, whether the
 * generator kept its schedule), one row per second, totals, per-class
 * latency and the SLO line. Status columns group *final* outcomes by class;
 * the raw per-attempt counts (what a storm really sent) are listed below.
 * Pure: result in, text out.
 */
import { REQUEST_CLASSES, type Counts, type LoadResult, type RequestClass } from './types.js';

function statusClasses(statuses: Record<string, number>): { s2: number; s4: number; s5: number } {
  let s2 = 0;
  let s4 = 0;
  let s5 = 0;
  for (const [label, n] of Object.entries(statuses)) {
    const code = Number(label);
    if (code >= 200 && code < 300) s2 += n;
    else if (code >= 400 && code < 500) s4 += n;
    else if (code >= 500) s5 += n;
  }
  return { s2, s4, s5 };
}

function table(rows: (string | number)[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => String(r[i] ?? '').length)));
  return rows
    .map((r) => r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]!) : String(c).padStart(widths[i]!))).join('  '))
    .join('\n');
}

function fmt(ms: number | undefined): string {
  if (ms === undefined) return '-';
  return ms >= 100 ? ms.toFixed(0) : ms.toFixed(1);
}

function sortedCounts(map: Record<string, number>): string {
  const entries = Object.entries(map).sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }));
  return entries.length === 0 ? 'none' : entries.map(([k, v]) => `${k} ${v}`).join(', ');
}

function countsRow(
  head: string,
  c: Counts,
  p50: number | undefined,
  p99: number | undefined,
  p999: number | undefined,
): (string | number)[] {
  const { s2, s4, s5 } = statusClasses(c.statuses);
  return [
    head,
    c.offered,
    c.sent,
    c.retries,
    c.goodput,
    s2,
    s4,
    s5,
    c.timeouts,
    c.connection_errors,
    fmt(p50),
    fmt(p99),
    fmt(p999),
  ];
}

export function renderReport(r: LoadResult): string {
  const lines: string[] = [];
  const lag = r.schedule_lag;
  lines.push(`bulwark load  ${r.url}  run ${r.run_id}  seed ${r.seed}  started ${r.started_at}`);
  lines.push(
    `schedule ${r.schedule}, ${r.duration_seconds} s, retry ${r.retry}, deadline ${r.deadline_ms} ms; ` +
      `elapsed ${r.elapsed_seconds} s, stopped by ${r.stopped_by}`,
  );
  const verdict = r.behind_schedule
    ? `BEHIND SCHEDULE (worst lag ${fmt(lag.max_ms)} ms at ${(lag.max_at_ms / 1000).toFixed(2)} s; thresholds p99 > ${lag.threshold_p99_ms} ms or max > ${lag.threshold_max_ms} ms): latencies include the generator's own delay`
    : 'on schedule';
  lines.push(`send lag p50 ${fmt(lag.p50_ms)} ms, p99 ${fmt(lag.p99_ms)} ms, max ${fmt(lag.max_ms)} ms: ${verdict}`);
  lines.push('');

  // Per-second latency of the main class: charge when present, else the first class that ran.
  const main: RequestClass = REQUEST_CLASSES.find((c) => r.classes[c] !== undefined) ?? 'charge';
  const head = [
    'sec',
    'offered',
    'sent',
    'retries',
    'goodput',
    '2xx',
    '4xx',
    '5xx',
    'timeout',
    'conn-err',
    `p50 ms`,
    `p99 ms`,
    `p999 ms`,
  ];
  const rows: (string | number)[][] = [head];
  for (const s of r.seconds) {
    const l = s.latency_ms[main];
    rows.push(countsRow(String(s.second), s, l?.p50, l?.p99, l?.p999));
  }
  const tl = r.classes[main]?.latency_ms;
  rows.push(countsRow('total', r.totals, tl?.p50, tl?.p99, tl?.p999));
  lines.push(`per second (events in the second they happened; latency of ${main} from intended send):`);
  lines.push(table(rows));
  lines.push('');

  const crows: (string | number)[][] = [
    ['class', 'offered', 'completed', 'goodput', 'retries', 'p50 ms', 'p99 ms', 'p999 ms', 'max ms'],
  ];
  for (const c of REQUEST_CLASSES) {
    const s = r.classes[c];
    if (!s) continue;
    crows.push([
      c,
      s.offered,
      s.completed,
      s.goodput,
      s.retries,
      fmt(s.latency_ms.p50),
      fmt(s.latency_ms.p99),
      fmt(s.latency_ms.p999),
      fmt(s.latency_ms.max),
    ]);
  }
  lines.push(table(crows));
  lines.push('');
  lines.push(
    `goodput ${r.totals.goodput} (${r.totals.goodput_per_second}/s); sent ${r.totals.sent} + ${r.totals.retries} retries; abandoned at the end ${r.totals.abandoned}`,
  );
  lines.push(`final outcomes: ${sortedCounts(r.totals.statuses)}`);
  lines.push(`every attempt:  ${sortedCounts(r.totals.attempt_statuses)}`);
  const pct = r.slo.total === 0 ? '-' : `${((100 * r.slo.good) / r.slo.total).toFixed(2)} %`;
  lines.push(
    `slo ${r.slo.route}: ${r.slo.good}/${r.slo.total} good (${pct}) = non-5xx within ${r.slo.latency_threshold_ms} ms`,
  );
  return lines.join('\n');
}

/** One progress line for a finished second (stderr while running). */
export function renderSecond(s: { second: number } & Counts, p99?: number): string {
  const { s2, s4, s5 } = statusClasses(s.statuses);
  return `[load] t=${s.second}s offered ${s.offered} sent ${s.sent}+${s.retries} goodput ${s.goodput} 2xx ${s2} 4xx ${s4} 5xx ${s5} timeout ${s.timeouts} err ${s.connection_errors} p99 ${fmt(p99)} ms`;
}
