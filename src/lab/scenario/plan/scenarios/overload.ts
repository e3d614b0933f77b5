/**
 * overload: five times the system's capacity, offered for a sustained
 * period, then back to normal.
 *
 * The capacity is set by a downstream, not by the CPU: the provider is a
 * saturating queue (16 calls at a time, 40 ms each, about 400 calls/s), as a
 * real provider's rate limit or a partner's thread pool would be. On a
 * two-core machine a CPU-bound surge also starves the load generator, so
 * "5×" could not be offered and what it measured was the generator; a
 * provider-bound capacity makes the overload the same on any machine and
 * leaves the CPU to measure the shedding itself.
 *
 * The run measures the capacity it overloads: the `ceiling` phase offers
 * 1.5× the provider's rate, and its best sustained 2 s of goodput is the
 * measured capacity (before any collapse, not a mean across it). The
 * fault then offers 5× the provider's rate. Shedding should answer the
 * excess in a few milliseconds so that what is admitted still meets its
 * deadline, the goodput should stay near the ceiling, the memory flat (no
 * queue growing for as long as the surge lasts), and service should return
 * by itself afterwards. Without the mechanisms every request joins the
 * provider's queue, each waits behind all the others, and goodput collapses:
 * asserted too, or the scenario would prove nothing.
 */
import type { Check, Phase, TimelinePoint } from '../../../report/types.js';
import {
  bestWindowGoodput,
  fmt,
  goodputNeverZeroCheck,
  label,
  mean,
  meanGoodput,
  phase,
  recoveryCheck,
  recoverySeconds,
  runOf,
  serviceChargeQuantile,
  shedFastCheck,
} from '../checks.js';
import type { ScenarioDefinition, VariantRun } from '../definition.js';
import { slice } from '../../measure/timeline.js';
import { gatewayRun, pick, variantsFor } from './common.js';

const PROVIDER_CONCURRENCY = 16;
const PROVIDER_MS = 40;
/** Calls per second the provider completes at most: 16 / 40 ms = 400/s. */
export const PROVIDER_RATE = (PROVIDER_CONCURRENCY * 1000) / PROVIDER_MS;
/** Offered during the fault, as a multiple of the provider's rate. */
export const SURGE_FACTOR = 5;
/** Offered during the ceiling phase, as a multiple of the provider's rate: past it, so its goodput is the ceiling. */
const CEILING_FACTOR = 1.5;
/**
 * Growth of resident memory allowed from the first half of the surge to the
 * second. The quick surge (8 s) is shorter than the heap takes to reach its
 * working size under it (15-20 s here), so its halves differ by that growth
 * (4-8 % measured) and get a wider bound; a leak of a few MiB a second still
 * fails either.
 */
export const MEMORY_GROWTH = { quick: 0.25, full: 0.1 };
/** The issue's bar for shed answers, as the service timed them. */
export const SHED_P99_MS = 5;

/**
 * Seconds the measured capacity must be sustained (see bestWindowGoodput).
 * Two, not three: at 1.5× an unprotected service's provider queue grows by
 * 200 calls a second, so its answers pass the 1 s deadline in the third
 * second (the committed report: 390, 397, then 114 and 0 for Fastify), and a
 * 3 s window would average that collapse in again (~300/s). The provider
 * completes at most 400 calls a second, so a 2 s window cannot credit more
 * than a service can do.
 */
const CAPACITY_WINDOW_S = 2;

/**
 * A variant's measured capacity: its best sustained window in the ceiling
 * phase. An unprotected variant already collapses there (1.5× its
 * capacity): the phase's mean would measure the collapse, not the capacity.
 */
function capacityOf(run: VariantRun, ceiling: Phase): number {
  return bestWindowGoodput(run.result.timeline, ceiling.start_s, ceiling.end_s, CAPACITY_WINDOW_S).goodput;
}

/** Mean goodput of a phase, skipping its first second (the step's transient). */
function phaseGoodput(run: VariantRun, p: Phase): number {
  return meanGoodput(slice(run.result.timeline, p.start_s + 1, p.end_s));
}

function peakRss(points: readonly TimelinePoint[]): number | null {
  const xs = points.map((p) => p.rss_mib).filter((x): x is number => x !== undefined);
  return xs.length === 0 ? null : Math.max(...xs);
}

/** Peak RSS of the surge's second half against its first half. */
export function memoryGrowth(
  run: VariantRun,
  fault: Phase,
): { first: number | null; second: number | null; growth: number | null } {
  const mid = (fault.start_s + fault.end_s) / 2;
  const first = peakRss(slice(run.result.timeline, fault.start_s, mid));
  const second = peakRss(slice(run.result.timeline, mid, fault.end_s));
  return { first, second, growth: first !== null && second !== null && first > 0 ? second / first - 1 : null };
}

export const overload: ScenarioDefinition = {
  name: 'overload',
  title: `${SURGE_FACTOR}× capacity offered, the capacity set by a saturating provider`,
  claim: `At ${SURGE_FACTOR}× its capacity the gateway sheds the excess in milliseconds and keeps its goodput near the measured ceiling with flat memory, where the unprotected services queue until nothing meets its deadline.`,
  plan(mode) {
    const normal = PROVIDER_RATE / 2;
    const ceiling = PROVIDER_RATE * CEILING_FACTOR;
    const surge = PROVIDER_RATE * SURGE_FACTOR;
    // Full-form steps of at least 10 s, so a phase's mean is not its first seconds' transient (issue 14).
    const warm = pick(mode, 3, 10);
    const ceil = pick(mode, 4, 10);
    // Long enough in the full form for the heap to reach its working size
    // (15-20 s into a surge here), so a growing queue would show.
    const over = pick(mode, 8, 20);
    const rec = pick(mode, 5, 10);
    return {
      phases: [
        { name: 'warm-up', seconds: warm },
        {
          name: 'ceiling',
          seconds: ceil,
          fault: {
            text: `offered ${ceiling}/s, ${CEILING_FACTOR}× the provider's ${PROVIDER_RATE}/s: the measured capacity`,
          },
        },
        {
          name: 'fault',
          seconds: over,
          fault: { text: `offered ${surge}/s, ${SURGE_FACTOR}× the provider's ${PROVIDER_RATE}/s` },
        },
        { name: 'recovery', seconds: rec },
      ],
      steady: { provider: { concurrency: PROVIDER_CONCURRENCY, latencyMs: { dist: 'fixed', ms: PROVIDER_MS } } },
      load: {
        steps: [
          { rate: normal, durationMs: warm * 1000 },
          { rate: ceiling, durationMs: ceil * 1000 },
          { rate: surge, durationMs: over * 1000 },
          { rate: normal, durationMs: rec * 1000 },
        ],
        // Poisson arrivals: the surge comes in bursts, as real clients send it.
        arrivals: 'poisson',
        deadlineMs: 1000,
        connections: 1024,
      },
      variants: variantsFor(mode),
    };
  },
  headline(run, phases) {
    return { goodput_per_s: phaseGoodput(run, phase(phases, 'fault')), recovery_s: recoverySeconds(run, phases) };
  },
  checks({ mode, phases, runs }): Check[] {
    const fault = phase(phases, 'fault');
    const ceilingPhase = phase(phases, 'ceiling');
    const gw = gatewayRun(runs);
    if (!gw) return [];
    const others = runs.filter((r) => r !== gw);
    const checks: Check[] = [];

    const capacity = capacityOf(gw, ceilingPhase);
    const held = phaseGoodput(gw, fault);
    const offered = mean(slice(gw.result.timeline, fault.start_s + 1, fault.end_s).map((p) => p.offered));
    checks.push({
      name: `${label(gw)}: at ${SURGE_FACTOR}× capacity, goodput holds >= 90 % of the measured capacity`,
      passed: capacity > 0 && held >= 0.9 * capacity,
      detail:
        `surge ${fmt(held)}/s of ${fmt(offered, 0)}/s offered (${fmt(offered / Math.max(1, capacity), 1)}× the capacity) vs capacity ${fmt(capacity)}/s (${fmt((100 * held) / Math.max(1, capacity), 0)} %); ` +
        `elsewhere: ${others.map((r) => `${label(r)} ${fmt(phaseGoodput(r, fault))}/s of ${fmt(capacityOf(r, ceilingPhase))}/s`).join(', ')}`,
    });

    checks.push(goodputNeverZeroCheck(gw, fault));
    // The quick form (CI, a shared machine) judges shed answers against the
    // charges the same service answered; the full form holds the absolute bar.
    if (mode === 'quick') checks.push(shedFastCheck(gw, fault, 0.1));
    else checks.push(shedP99Check(gw, fault));

    const mem = memoryGrowth(gw, fault);
    const bound = MEMORY_GROWTH[mode];
    checks.push({
      name: `${label(gw)}: memory flat over the surge (peak RSS of its second half within ${bound * 100} % of the first half's)`,
      passed: mem.growth !== null && mem.growth <= bound,
      detail:
        `${fmt(mem.first)} → ${fmt(mem.second)} MiB (${fmt(mem.growth === null ? null : mem.growth * 100, 1)} %); ` +
        `elsewhere: ${others
          .map((r) => {
            const m = memoryGrowth(r, fault);
            return `${label(r)} ${fmt(m.first)} → ${fmt(m.second)} MiB`;
          })
          .join(', ')}`,
    });
    checks.push(recoveryCheck(gw, phases, 0.8, 3));

    // Proof the surge really overloads: without the mechanisms the same build collapses.
    const off = runOf(runs, 'gateway-off');
    if (off) {
      const offCap = capacityOf(off, ceilingPhase);
      const offHeld = phaseGoodput(off, fault);
      checks.push({
        name: 'gateway-off: without the mechanisms the surge collapses goodput (< 50 % of its own capacity)',
        passed: offCap > 0 && offHeld < 0.5 * offCap,
        detail: `surge ${fmt(offHeld)}/s vs capacity ${fmt(offCap)}/s (${fmt((100 * offHeld) / Math.max(1, offCap), 0)} %)`,
      });
    }
    return checks;
  },
};

/** Shed answers (5xx) at p99 within SHED_P99_MS, as the service timed them (its own /charge histogram). */
export function shedP99Check(run: VariantRun, within: Phase): Check {
  const p99 = serviceChargeQuantile(run, within, '5xx', 0.99);
  const p50 = serviceChargeQuantile(run, within, '5xx', 0.5);
  const ms = (s: number | null) => (s === null ? null : s * 1000);
  const c503 = run.byStatus[within.name]?.['503'];
  return {
    name: `${label(run)}: shed answers at p99 <= ${SHED_P99_MS} ms in the service`,
    passed: p99.count > 0 && p99.value !== null && p99.value * 1000 <= SHED_P99_MS,
    detail: `service: ${p99.count} 5xx, p50 ${fmt(ms(p50.value), 2)} ms, p99 ${fmt(ms(p99.value), 2)} ms; client: ${c503?.count ?? 0} 503, p50 ${fmt(c503?.p50_ms)} ms, p99 ${fmt(c503?.p99_ms)} ms`,
  };
}
