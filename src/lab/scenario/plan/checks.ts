/**
 * Building blocks of scenario checks. Every check compares numbers measured
 * in the same run (a phase against another phase, the gateway against its
 * peers, a variant against the fault it was given), never against an
 * absolute speed: the lab runs on shared two-core machines where only ratios
 * hold. Each check's detail carries the measured numbers behind its verdict.
 */
import type { Check, Phase, TimelinePoint } from '../../report/types.js';
import { auditClean } from '../audit/audit.js';
import type { Headline, VariantRun } from './definition.js';
import { firstEvent } from '../measure/events.js';
import { quantileBetween } from '../measure/scrape.js';
import { minMedianMax } from '../measure/spread.js';
import { slice } from '../measure/timeline.js';
import { GATEWAY_VARIANTS } from '../run/service.js';

export function phase(phases: readonly Phase[], name: string): Phase {
  const p = phases.find((x) => x.name === name);
  if (!p) throw new Error(`no phase named ${name}`);
  return p;
}

export function label(run: VariantRun): string {
  return run.result.variant;
}

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
}

export function meanGoodput(points: readonly TimelinePoint[]): number {
  return mean(points.map((p) => p.goodput));
}

export function fmt(x: number | null | undefined, digits = 1): string {
  return x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(digits);
}

/** Zero lost, duplicated and pending charges, and no other finding; one check per variant. */
export function auditCheck(run: VariantRun): Check {
  const a = run.result.audit;
  return {
    name: `${label(run)}: no charge lost, duplicated or left pending`,
    passed: auditClean(a) && run.settled,
    detail:
      `lost ${a.lost}, duplicates ${a.duplicates}, pending ${a.pending}, other findings ${a.findings.length}; ` +
      `${a.client_final} of ${run.load.classes.charge?.offered ?? 0} keys final at the client` +
      (run.settled ? '' : '; the reconciler did not settle in time') +
      (a.findings.length > 0 ? `; first: ${a.findings[0]}` : ''),
  };
}

/**
 * A variant whose audit is the finding rather than a pass mark (the
 * baselines through a crash): the counts are reported as measured; the check
 * only asks that the audit ran on a settled table, so the counts mean
 * something.
 */
export function auditReportedCheck(run: VariantRun): Check {
  const a = run.result.audit;
  return {
    name: `${label(run)}: the audit ran on a settled table (counts reported as measured, not judged)`,
    passed: run.settled,
    detail:
      `lost ${a.lost}, duplicates ${a.duplicates}, pending ${a.pending}, other findings ${a.findings.length}; ` +
      `${a.client_final} of ${run.load.classes.charge?.offered ?? 0} keys final at the client` +
      (run.settled ? '' : '; the reconciler did not settle in time') +
      (a.findings.length > 0 ? `; first: ${a.findings[0]}` : ''),
  };
}

/** The provider breaker opened during `within` (a phase), per the service's own transition log. */
export function breakerOpenedCheck(run: VariantRun, within: Phase): Check {
  const at = firstEvent(run.result.events, 'provider breaker opened', within.start_s);
  const passed = at !== undefined && at < within.end_s;
  return {
    name: `${label(run)}: the provider breaker opens during the ${within.name}`,
    passed,
    detail:
      at === undefined
        ? `no "provider breaker opened" event after ${within.start_s} s`
        : `opened at ${fmt(at)} s, ${fmt(at - within.start_s)} s after the ${within.name} began (${within.start_s}-${within.end_s} s)`,
  };
}

/**
 * Recovery by itself: mean goodput over the last `tailS` seconds of the
 * recovery phase is at least `fraction` of the warm-up's (same offered rate),
 * with no operator action.
 */
export function recoveryCheck(
  run: VariantRun,
  phases: readonly Phase[],
  fraction: number,
  tailS: number,
  warmSkipS = 1,
): Check {
  const warm = phase(phases, 'warm-up');
  const rec = phase(phases, 'recovery');
  const warmGood = meanGoodput(slice(run.result.timeline, warm.start_s + warmSkipS, warm.end_s));
  const tailGood = meanGoodput(slice(run.result.timeline, rec.end_s - tailS, rec.end_s));
  const ratio = warmGood > 0 ? tailGood / warmGood : 0;
  return {
    name: `${label(run)}: goodput recovers by itself to >= ${Math.round(fraction * 100)} % of the warm-up`,
    passed: warmGood > 0 && ratio >= fraction,
    detail: `last ${tailS} s of recovery ${fmt(tailGood)}/s vs warm-up ${fmt(warmGood)}/s (${fmt(ratio * 100, 0)} %)`,
  };
}

/** Goodput above zero in every second of a phase. */
export function goodputNeverZeroCheck(run: VariantRun, within: Phase): Check {
  const points = slice(run.result.timeline, within.start_s, within.end_s);
  const zero = points.filter((p) => p.goodput === 0).map((p) => p.t);
  const min = Math.min(...points.map((p) => p.goodput));
  return {
    name: `${label(run)}: goodput never falls to zero during the ${within.name}`,
    passed: points.length > 0 && zero.length === 0,
    detail:
      zero.length === 0
        ? `lowest second ${fmt(min, 0)}/s over ${points.length} s (mean ${fmt(meanGoodput(points))}/s)`
        : `zero goodput at t = ${zero.join(', ')} s`,
  };
}

/**
 * Every deploy's drain ended, by the service's own `drain finished` log
 * line, inside the grace period. The lab's own clock rides along: SIGTERM to
 * the handler running (a saturated event loop delays it), to the exit, and
 * to the replacement listening.
 */
export function drainsCheck(run: VariantRun, expected: number): Check {
  const drains = run.result.drains ?? [];
  const graceS = run.graceMs / 1000;
  const bad = drains.filter((d) => !(Number.isFinite(d.duration_s) && d.duration_s <= graceS));
  // The orchestrator's grace counts from SIGTERM to exit, after-drain cleanup included.
  const late = run.restarts.filter((r) => r.signal_to_exit_s > graceS);
  const list = (f: (r: VariantRun['restarts'][number]) => number | null) =>
    run.restarts.map((r) => fmt(f(r), 2)).join(', ') || '-';
  return {
    name: `${label(run)}: every drain ends, and the process exits, inside the ${graceS} s grace period`,
    passed: drains.length === expected && bad.length === 0 && late.length === 0,
    detail:
      `${drains.length} of ${expected} drains logged; durations ${drains.map((d) => `${fmt(d.duration_s, 2)} s`).join(', ') || 'none'}; ` +
      `abandoned ${drains.map((d) => d.abandoned).join(', ') || '-'}; from SIGTERM: handler ${list((r) => r.signal_to_drain_s)} s, exit ${list((r) => r.signal_to_exit_s)} s, ` +
      `replacement listening ${list((r) => r.signal_to_ready_s)} s; ${run.connectionErrors} connection errors seen by the load generator`,
  };
}

/**
 * Shed answers are fast relative to admitted ones, as the service itself
 * measured them over the phase (its /charge duration histogram, scraped at
 * the phase's edges): the p50 of 5xx at most `fraction` of the p50 of 2xx,
 * with at least one 503 seen by the client. The histogram is
 * by status class, so its 5xx also hold admitted charges that failed late (a
 * DB acquire timeout after 250 ms, a 504 at the deadline): shed answers are
 * most of them, hence the median, and the p99 and the scraped DB acquire
 * timeouts ride along in the detail. The client's p50s ride along too but
 * are not asserted: they carry the load generator's own lag on a saturated
 * two-core machine, and when only a few hundred requests are shed, all in
 * the first second of a surge, they measure that second's queue, not the
 * shed path (seen in a full bench: 449 shed, 0.5 ms in the service, 16 ms
 * at the client).
 */
export function shedFastCheck(run: VariantRun, within: Phase, fraction: number): Check {
  const st = run.byStatus[within.name] ?? {};
  const c503 = st['503'];
  const c201 = st['201'];
  const s5 = serviceChargeQuantile(run, within, '5xx', 0.5);
  const s5p99 = serviceChargeQuantile(run, within, '5xx', 0.99);
  const s2 = serviceChargeQuantile(run, within, '2xx', 0.5);
  const dbTimeouts = Math.round(
    sumOver(slice(run.result.timeline, within.start_s, within.end_s), (p) => p.db_acquire_timeouts_per_s),
  );
  const ms = (s: number | null) => (s === null ? null : s * 1000);
  const server = s5.value !== null && s2.value !== null && s5.value <= fraction * s2.value;
  return {
    name: `${label(run)}: shed answers are fast (in the service, p50 of 5xx <= ${Math.round(fraction * 100)} % of the p50 of 2xx)`,
    passed: (c503?.count ?? 0) > 0 && server,
    detail:
      `service: ${s5.count} 5xx p50 ${fmt(ms(s5.value), 2)} ms (p99 ${fmt(ms(s5p99.value), 2)} ms; ~${dbTimeouts} DB acquire timeouts scraped) vs ${s2.count} 2xx p50 ${fmt(ms(s2.value), 2)} ms; ` +
      `client: ${c503?.count ?? 0} 503 p50 ${fmt(c503?.p50_ms)} ms vs 201 p50 ${fmt(c201?.p50_ms)} ms`,
  };
}

/**
 * A quantile (seconds) of POST /charge durations of one status class over a
 * phase, as the service timed them: the difference of its own histogram
 * between the last scrapes at the phase's start and end.
 */
export function serviceChargeQuantile(
  run: VariantRun,
  within: Phase,
  cls: '2xx' | '5xx',
  q: number,
): { value: number | null; count: number } {
  const at = (t: number) => [...run.scrapes].reverse().find((p) => p.t <= t + 0.05);
  return quantileBetween(
    at(within.start_s)?.snapshot.chargeBuckets[cls],
    at(within.end_s)?.snapshot.chargeBuckets[cls],
    q,
  );
}

/** The run of a variant, when it ran. */
export function runOf(runs: readonly VariantRun[], variant: string): VariantRun | undefined {
  return runs.find((r) => r.result.variant === variant);
}

/** Sum of a per-second timeline field over a phase. */
export function sumOver(
  points: readonly TimelinePoint[],
  pick: (p: TimelinePoint) => number | undefined | null,
): number {
  return points.reduce((a, p) => a + (pick(p) ?? 0), 0);
}

/**
 * Seconds from the start of the recovery phase until goodput first holds
 * `fraction` of the warm-up mean for two seconds in a row; null when it never
 * does before the run ends.
 */
export function recoverySeconds(
  run: VariantRun,
  phases: readonly Phase[],
  fraction = 0.8,
  warmSkipS = 1,
): number | null {
  const warm = phase(phases, 'warm-up');
  const rec = phase(phases, 'recovery');
  const target = fraction * meanGoodput(slice(run.result.timeline, warm.start_s + warmSkipS, warm.end_s));
  const pts = slice(run.result.timeline, rec.start_s, rec.end_s);
  for (let i = 0; i + 1 < pts.length; i++) {
    if (pts[i]!.goodput >= target && pts[i + 1]!.goodput >= target) return pts[i]!.t - rec.start_s;
  }
  return null;
}

/**
 * The headline (`--seeds N`) of a scenario with a recovery phase: each
 * run's mean goodput through the named phase, and its seconds to recover
 * (recoverySeconds).
 */
export function goodputThrough(phaseName: string): (run: VariantRun, phases: readonly Phase[]) => Headline {
  return (run, phases) => {
    const p = phase(phases, phaseName);
    return {
      goodput_per_s: meanGoodput(slice(run.result.timeline, p.start_s, p.end_s)),
      recovery_s: recoverySeconds(run, phases),
    };
  };
}

/** "gateway 2 s, gateway-off never, ...": every variant's recovery time, for a check's detail. */
export function recoveryTimes(runs: readonly VariantRun[], phases: readonly Phase[], fraction = 0.8): string {
  return runs
    .map((r) => {
      const s = recoverySeconds(r, phases, fraction);
      return `${label(r)} ${s === null ? 'not within the recovery phase' : `${s} s`}`;
    })
    .join(', ');
}

/**
 * The runs a scenario compares the gateway with: every variant that is not a
 * bulwark build. Mechanisms off is the before/after control of the same
 * build, not something a team would ship instead, so it is not a peer; any
 * other variant is, however many the plan lists.
 */
export function peerRuns(runs: readonly VariantRun[]): VariantRun[] {
  return runs.filter((r) => !GATEWAY_VARIANTS.has(r.result.variant));
}

/** SLO good share (0..1) of a run's charges; null when the SLO saw none. */
export function sloGood(run: VariantRun): number | null {
  return run.result.slo.total > 0 ? run.result.slo.good / run.result.slo.total : null;
}

/**
 * The gateway's SLO good % is at least the best peer's, less
 * `tolerancePoints` percentage points (one run's noise): the claim a
 * sceptic tests first, that the protection is worth having against what a
 * team would ship instead. No check when the gateway or every peer is
 * missing (the quick form runs no peer): nothing to compare is not a pass.
 * The runner adds it to every scenario's checks (runner.ts), except when the
 * bench runs the scenario over several seeds: then beatsPeersOverSeedsCheck
 * judges it on the medians, as one run of the same code on this machine
 * moved 16 points (gateway) and 27 (Fastify) in `deploy`
 * (docs/mechanisms.md §5).
 */
export function beatsPeersCheck(runs: readonly VariantRun[], tolerancePoints = 1): Check[] {
  const gw = runOf(runs, 'gateway');
  const peers = peerRuns(runs);
  if (!gw || peers.length === 0) return [];
  const mine = sloGoodPct(gw);
  const best = peers.reduce((a, r) => ((sloGoodPct(r) ?? -1) > (sloGoodPct(a) ?? -1) ? r : a));
  const bestPct = sloGoodPct(best);
  const all = runs
    .map((r) => `${label(r)} ${fmt(sloGoodPct(r))} % at ${fmt(r.result.totals.goodput_per_s)}/s`)
    .join(', ');
  return [
    {
      name: `gateway: SLO good % >= the best peer's${toleranceText(tolerancePoints)}`,
      passed: mine !== null && bestPct !== null && mine >= bestPct - tolerancePoints,
      detail:
        `gateway ${fmt(mine)} % vs best peer ${label(best)} ${fmt(bestPct)} % (${fmt(mine === null || bestPct === null ? null : mine - bestPct)} points); ` +
        `SLO good % and goodput: ${all}`,
    },
  ];
}

/**
 * beatsPeersCheck over every seed of a bench: the median of the gateway's
 * SLO good % over the seeds is at least the best peer's median, less
 * `tolerancePoints`. Each variant's median is over the seeds it ran under
 * (one that failed to run under a seed has fewer, and the detail says so).
 * No check without the gateway and a peer.
 */
export function beatsPeersOverSeedsCheck(
  seeded: readonly { seed: number; runs: readonly VariantRun[] }[],
  tolerancePoints = 1,
): Check[] {
  const variants = [...new Set(seeded.flatMap((s) => s.runs.map((r) => r.result.variant)))];
  const figures = variants.map((variant) => {
    const pcts = seeded
      .map((s) => s.runs.find((r) => r.result.variant === variant))
      .map((r) => (r ? sloGoodPct(r) : null))
      .filter((x): x is number => x !== null);
    return { variant, pcts, median: minMedianMax(pcts)?.median ?? null };
  });
  const gw = figures.find((f) => f.variant === 'gateway');
  const peers = figures.filter((f) => !GATEWAY_VARIANTS.has(f.variant));
  if (!gw || peers.length === 0) return [];
  const best = peers.reduce((a, f) => ((f.median ?? -1) > (a.median ?? -1) ? f : a));
  const n = seeded.length;
  return [
    {
      name: `gateway: over ${n} seeds, the median SLO good % >= the best peer's median${toleranceText(tolerancePoints)}`,
      passed:
        gw.median !== null && best.median !== null && gw.pcts.length >= 2 && gw.median >= best.median - tolerancePoints,
      detail:
        `gateway median ${fmt(gw.median)} % vs best peer ${best.variant} ${fmt(best.median)} % ` +
        `(${fmt(gw.median === null || best.median === null ? null : gw.median - best.median)} points); ` +
        `SLO good % by seed ${seeded.map((s) => s.seed).join(', ')}: ` +
        figures
          .map(
            (f) =>
              `${f.variant} ${f.pcts.map((x) => fmt(x)).join(', ')}${f.pcts.length < n ? ` (${f.pcts.length} of ${n} seeds)` : ''}`,
          )
          .join('; '),
    },
  ];
}

function sloGoodPct(run: VariantRun): number | null {
  const g = sloGood(run);
  return g === null ? null : g * 100;
}

function toleranceText(points: number): string {
  return points > 0 ? ` (less ${points} point${points === 1 ? '' : 's'})` : '';
}

/**
 * A variant's capacity: its best sustained window, the highest mean goodput
 * over `windowS` consecutive seconds within [from, to). Taken before a
 * collapse, not averaged across it: an unprotected service that serves 395/s
 * for two seconds and then 0 had a capacity near 395/s, and what follows is
 * the collapse the overload checks are about. Seconds missing from the
 * timeline count as zero goodput; a range shorter than the window is one
 * window.
 */
export function bestWindowGoodput(
  points: readonly TimelinePoint[],
  from: number,
  to: number,
  windowS = 3,
): { goodput: number; from: number } {
  const start = Math.ceil(from);
  const end = Math.floor(to);
  const by = new Map(points.map((p) => [p.t, p.goodput]));
  const at = (t: number) => by.get(t) ?? 0;
  const w = Math.max(1, Math.min(windowS, end - start));
  let best = { goodput: 0, from: start };
  for (let t = start; t + w <= Math.max(end, start + w); t++) {
    let sum = 0;
    for (let k = 0; k < w; k++) sum += at(t + k);
    if (sum / w > best.goodput) best = { goodput: sum / w, from: t };
  }
  return best;
}

/** A ladder's top step reached the service's ceiling when it served less than this share of what it offered. */
export const CEILING_REACHED = 0.95;

/**
 * A ladder's top step, read from one run: mean goodput against mean offered,
 * and whether the step saturated the service (served < CEILING_REACHED of
 * it). When it did not, the ladder's "ceiling" is only its top step, and the
 * checks below or past the ceiling test healthy load only.
 */
export function topStep(run: VariantRun, top: Phase): { good: number; offered: number; reached: boolean } {
  const pts = slice(run.result.timeline, top.start_s, top.end_s);
  const good = meanGoodput(pts);
  const offered = mean(pts.map((p) => p.offered));
  return { good, offered, reached: offered > 0 && good < CEILING_REACHED * offered };
}
