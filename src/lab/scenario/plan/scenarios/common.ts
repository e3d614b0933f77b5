/**
 * What the scenario files share: the variant lists of the two forms, and the
 * per-variant audit checks every scenario gets from the runner. The quick
 * form (CI) runs the gateway with its mechanisms on and off, the pair every
 * invariant is judged on (the off run is what proves a fault really bit),
 * and stays well under a minute a scenario; the Fastify baselines run in the
 * contract suite and in the full form, which runs all four variants so every
 * claim has its before/after rows.
 */
import type { TimelinePoint, VariantName } from '../../../report/types.js';
import type { Mode, VariantRun } from '../definition.js';
import { runOf } from '../checks.js';

export const ALL_VARIANTS: readonly VariantName[] = ['gateway', 'gateway-off', 'baseline', 'baseline-hardened'];
export const QUICK_VARIANTS: readonly VariantName[] = ['gateway', 'gateway-off'];

export function variantsFor(mode: Mode): readonly VariantName[] {
  return mode === 'quick' ? QUICK_VARIANTS : ALL_VARIANTS;
}

/** `quick` or `full` value. */
export function pick<T>(mode: Mode, quick: T, full: T): T {
  return mode === 'quick' ? quick : full;
}

/** The gateway (mechanisms on) run: the variant most checks are about. */
export function gatewayRun(runs: readonly VariantRun[]): VariantRun | undefined {
  return runOf(runs, 'gateway');
}

/** "states closed, open; ~120 shed, ~0 bulkhead rejections, ~3 DB acquire timeouts" over scraped seconds. */
export function scrapedTotals(points: readonly TimelinePoint[]): string {
  const sum = (f: (p: TimelinePoint) => number | undefined) => Math.round(points.reduce((a, p) => a + (f(p) ?? 0), 0));
  const states = [...new Set(points.map((p) => p.breaker_provider).filter((x) => x !== undefined))];
  return (
    `provider breaker ${states.join(' / ') || 'not scraped'}; ~${sum((p) => p.shed_per_s)} shed, ` +
    `~${sum((p) => p.bulkhead_rejections_per_s)} bulkhead rejections, ~${sum((p) => p.db_acquire_timeouts_per_s)} DB acquire timeouts`
  );
}

/**
 * The quick form compresses a scenario into seconds, so the breaker's time
 * constants are compressed with it: a 10 s sliding window cannot fill with
 * failures during a 6 s fault after a healthy warm-up (the successes it
 * holds outvote them). The full form keeps the gateway's defaults.
 */
export function breakerEnvFor(mode: Mode): Record<string, string> {
  return mode === 'quick' ? { BREAKER_WINDOW_MS: '3000', BREAKER_OPEN_MS: '2000' } : {};
}
