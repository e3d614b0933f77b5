/**
 * The spread of a headline scenario over several seeds: one run says little
 * on a shared machine, so `--seeds N` repeats it and the report gives each
 * variant's min, median and max of the figures a reader compares (the
 * scenario's headline goodput, SLO good %, recovery time). Pure: runs in,
 * rows out.
 */
import type { MinMedianMax, Phase, ScenarioSpread, SpreadRow } from '../../report/types.js';
import type { Headline, VariantRun } from '../plan/definition.js';

export interface SeededRuns {
  seed: number;
  runs: readonly VariantRun[];
  checks: { passed: boolean; name: string }[];
}

/** Min, median (mean of the middle two for an even count) and max; null when empty. */
export function minMedianMax(xs: readonly number[]): MinMedianMax | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { min: r2(s[0]!), median: r2(median), max: r2(s.at(-1)!) };
}

/**
 * One row per variant, in the order they first ran, over the seeds it ran
 * under (a variant that failed to run under a seed has fewer, and the row
 * says how many). `hasRecovery` says whether the scenario's headline has a
 * recovery time at all (capacity has none): then seeds that never recovered
 * are counted apart rather than dropped silently.
 */
export function spreadOf(
  seeded: readonly SeededRuns[],
  phases: readonly Phase[],
  headline: (run: VariantRun, phases: readonly Phase[]) => Headline,
  hasRecovery: boolean,
): ScenarioSpread {
  const variants = [...new Set(seeded.flatMap((s) => s.runs.map((r) => r.result.variant)))];
  const rows: SpreadRow[] = [];
  for (const v of variants) {
    const runs = seeded
      .map((s) => s.runs.find((r) => r.result.variant === v))
      .filter((r): r is VariantRun => r !== undefined);
    const hs = runs.map((r) => ({ h: headline(r, phases), slo: r.result.slo }));
    const recovered = hs.map((x) => x.h.recovery_s).filter((x): x is number => x !== null);
    rows.push({
      variant: v,
      runs: runs.length,
      goodput_per_s: minMedianMax(hs.map((x) => x.h.goodput_per_s))!,
      slo_good_pct: minMedianMax(hs.map((x) => (x.slo.total > 0 ? (100 * x.slo.good) / x.slo.total : 0)))!,
      run_goodput_per_s: minMedianMax(runs.map((r) => r.result.totals.goodput_per_s))!,
      recovery_s: minMedianMax(recovered),
      ...(hasRecovery ? { not_recovered: hs.length - recovered.length } : {}),
    });
  }
  return {
    seeds: seeded.map((s) => s.seed),
    checks_passed: seeded.map((s) => ({
      seed: s.seed,
      passed: s.checks.filter((c) => c.passed).length,
      total: s.checks.length,
      failed: s.checks.filter((c) => !c.passed).map((c) => c.name),
    })),
    rows,
  };
}

function r2(x: number): number {
  return Math.round(x * 100) / 100;
}
