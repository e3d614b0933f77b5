/**
 * From a run's raw measurements to the report's rows: one TimelinePoint per
 * second (the load generator's counts, the side traffic's p99, the scraped
 * protection state), totals per phase and for the whole run. Pure.
 *
 * Seconds are the load generator's: an answer counts in the second it came
 * back. Phase p99s are taken from the per-key outcomes by *intended send
 * time* instead, so a charge sent during the fault counts for the fault even
 * when its answer (or its timeout) lands in the recovery; this is the honest
 * split when latencies reach the deadline.
 */
import { sloGood } from '../../load/outcomes.js';
import type { ChargeOutcome, LoadResult, SecondStats } from '../../load/types.js';
import type { Phase, PhaseTotals, TimelinePoint, VariantResult } from '../../report/types.js';
import type { MemoryPoint } from './proc-stats.js';
import type { ScrapePoint } from './scrape.js';
import { SHED_REASONS } from '../../../resilience/shedder.js';

/** Nearest-rank percentile of unsorted values; null when empty. */
export function percentile(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

export function count503(s: Pick<SecondStats, 'statuses'>): number {
  return s.statuses['503'] ?? 0;
}

/** The last scrape inside second t. */
function scrapeIn(scrapes: readonly ScrapePoint[], t: number): ScrapePoint | undefined {
  let found: ScrapePoint | undefined;
  for (const p of scrapes) if (Math.floor(p.t) === t) found = p;
  return found;
}

/** What the SLO share per send second needs: every charge's outcome and the SLO's latency threshold. */
export interface SloInput {
  outcomes: readonly Pick<ChargeOutcome, 'status' | 'intended_ms' | 'latency_ms'>[];
  thresholdMs: number;
}

/** Per intended-send second: charges sent, and of those the SLO-good ones (not 5xx, within the threshold). */
function sloBySendSecond(slo: SloInput): Map<number, { sent: number; good: number }> {
  const by = new Map<number, { sent: number; good: number }>();
  for (const o of slo.outcomes) {
    const sec = Math.floor(o.intended_ms / 1000);
    let c = by.get(sec);
    if (!c) by.set(sec, (c = { sent: 0, good: 0 }));
    c.sent++;
    if (sloGood(o.status, o.latency_ms, slo.thresholdMs)) c.good++;
  }
  return by;
}

export function buildTimeline(
  main: readonly SecondStats[],
  scrapes: readonly ScrapePoint[],
  reads?: readonly SecondStats[],
  memory: readonly MemoryPoint[] = [],
  slo?: SloInput,
): TimelinePoint[] {
  const readBy = new Map((reads ?? []).map((s) => [s.second, s]));
  const sloBy = slo ? sloBySendSecond(slo) : undefined;
  // The last sample inside each second.
  const rssBy = new Map(memory.map((m) => [Math.floor(m.t), m.rssBytes]));
  return main.map((s) => {
    const point: TimelinePoint = {
      t: s.second,
      offered: s.offered,
      goodput: s.goodput,
      p99_ms: s.latency_ms.charge?.p99 ?? null,
      rate_503: count503(s),
      timeouts: s.timeouts,
    };
    if (reads) point.read_p99_ms = readBy.get(s.second)?.latency_ms.read?.p99 ?? null;
    if (sloBy) {
      const c = sloBy.get(s.second);
      point.slo_good_pct = c && c.sent > 0 ? round((100 * c.good) / c.sent, 1) : null;
    }
    const rss = rssBy.get(s.second);
    if (rss !== undefined) point.rss_mib = Math.round((rss / 2 ** 20) * 10) / 10;
    const sc = scrapeIn(scrapes, s.second);
    if (sc) {
      const snap = sc.snapshot;
      if (snap.breaker.provider !== undefined) point.breaker_provider = snap.breaker.provider;
      if (snap.breaker.fx !== undefined) point.breaker_fx = snap.breaker.fx;
      point.shed_per_s = sc.rates.shed;
      const reasons = SHED_REASONS.filter((r) => sc.rates[`shed_${r}`] > 0);
      if (reasons.length > 0)
        point.shed_reasons_per_s = Object.fromEntries(reasons.map((r) => [r, sc.rates[`shed_${r}`]]));
      point.bulkhead_rejections_per_s =
        Math.round((sc.rates.bulkhead_rejections_provider + sc.rates.bulkhead_rejections_fx) * 10) / 10;
      point.db_acquire_timeouts_per_s = sc.rates.db_acquire_timeouts;
      if (snap.admissionLimit !== undefined) point.admission_limit = snap.admissionLimit;
      if (snap.inFlight !== undefined) point.in_flight = snap.inFlight;
    }
    return point;
  });
}

/** Seconds of the timeline inside [from, to). */
export function slice(points: readonly TimelinePoint[], from: number, to: number): TimelinePoint[] {
  return points.filter((p) => p.t >= from && p.t < to);
}

export function totalsOver(
  points: readonly TimelinePoint[],
  seconds: number,
  completed: number,
  latencies: readonly number[],
): PhaseTotals {
  const goodput = points.reduce((a, p) => a + p.goodput, 0);
  const r503 = points.reduce((a, p) => a + p.rate_503, 0);
  return {
    goodput_per_s: round(goodput / Math.max(1, seconds)),
    p99_ms: roundOrNull(percentile(latencies, 0.99)),
    rate_503: completed > 0 ? round(r503 / completed, 4) : 0,
    timeouts: points.reduce((a, p) => a + p.timeouts, 0),
  };
}

export function phaseTotals(
  phases: readonly Phase[],
  points: readonly TimelinePoint[],
  seconds: readonly SecondStats[],
  outcomes: readonly Pick<ChargeOutcome, 'intended_ms' | 'latency_ms'>[],
): Record<string, PhaseTotals> {
  const out: Record<string, PhaseTotals> = {};
  for (const ph of phases) {
    const inPhase = (t: number) => t >= ph.start_s && t < ph.end_s;
    const completed = seconds.filter((s) => inPhase(s.second)).reduce((a, s) => a + s.completed, 0);
    const latencies = outcomes.filter((o) => inPhase(o.intended_ms / 1000)).map((o) => o.latency_ms);
    out[ph.name] = totalsOver(slice(points, ph.start_s, ph.end_s), ph.end_s - ph.start_s, completed, latencies);
  }
  return out;
}

/** Per phase, per final status: how many charge keys and how fast (from intended send). */
export function latencyByStatus(
  phases: readonly Phase[],
  outcomes: readonly Pick<ChargeOutcome, 'intended_ms' | 'latency_ms' | 'status'>[],
): Record<string, Record<string, { count: number; p50_ms: number | null; p99_ms: number | null }>> {
  const out: Record<string, Record<string, { count: number; p50_ms: number | null; p99_ms: number | null }>> = {};
  for (const ph of phases) {
    const groups = new Map<string, number[]>();
    for (const o of outcomes) {
      const t = o.intended_ms / 1000;
      if (t < ph.start_s || t >= ph.end_s) continue;
      const k = String(o.status);
      let g = groups.get(k);
      if (!g) groups.set(k, (g = []));
      g.push(o.latency_ms);
    }
    out[ph.name] = Object.fromEntries(
      [...groups].map(([k, v]) => [
        k,
        { count: v.length, p50_ms: roundOrNull(percentile(v, 0.5)), p99_ms: roundOrNull(percentile(v, 0.99)) },
      ]),
    );
  }
  return out;
}

export function runTotals(load: LoadResult, points: readonly TimelinePoint[]): VariantResult['totals'] {
  const charge = load.classes.charge?.latency_ms;
  const r503 = points.reduce((a, p) => a + p.rate_503, 0);
  return {
    goodput_per_s: load.totals.goodput_per_second,
    p99_ms: charge && charge.count > 0 ? charge.p99 : null,
    rate_503: load.totals.completed > 0 ? round(r503 / load.totals.completed, 4) : 0,
    timeouts: load.totals.timeouts,
    offered: load.totals.offered,
    goodput: load.totals.goodput,
    p999_ms: charge && charge.count > 0 ? charge.p999 : null,
  };
}

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function roundOrNull(x: number | null): number | null {
  return x === null ? null : round(x);
}
