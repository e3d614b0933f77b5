/**
 * Ladders fitted to the machine. A scenario whose question is "what happens
 * below, at and past the gateway's own ceiling" cannot plan its rates in
 * advance: the same two cores gave Fastify a ceiling of 832/s one evening
 * and 2 816/s another, and a fixed ladder that reached every ceiling on a
 * slow evening ended below all of them on a fast one, so its checks passed
 * on healthy load alone (the committed bench at 35388a5: capacity's top step
 * of 2 400/s and cpu-overload's 2 800/s both served in full).
 *
 * So the full form of such a scenario first ramps the gateway alone, with
 * the scenario's own downstream behaviour and Poisson arrivals, and takes
 * its best sustained goodput as the ceiling; the scenario then plans its
 * ladder (and surge) as fractions of that ceiling, the same rates for every
 * variant. The ramp's top is the most the load generator is asked for
 * anywhere (RAMP_RATES). When the ceiling is beyond the ramp's reach the
 * calibration says so, and the checks that need a ceiling fail and say why.
 * The quick form (CI) keeps its fixed ladders.
 */
import type { Phase } from '../../report/types.js';
import { bestWindowGoodput, CEILING_REACHED } from './checks.js';
import type { Calibration, CalibrationSpec, ScenarioPlan, VariantRun } from './definition.js';
import { generatorPriority } from './scenarios/generator-priority.js';
import { slice } from '../measure/timeline.js';

/**
 * The calibration ramp's rates, each held RAMP_STEP_S. Its top is what the
 * generator kept at nice -10 against the gateway on this machine's two
 * cores: 9 000/s Poisson for 3 s, send lag p99 60 ms (docs/performance.md).
 */
export const RAMP_RATES: readonly number[] = [1500, 3000, 4500, 6000, 7500, 9000];
export const RAMP_STEP_S = 3;
/** Seconds of the window whose best mean goodput is the calibrated ceiling. */
const RAMP_WINDOW_S = 2;
/** The generator's nice value during the ramp, as in cpu-overload. */
const RAMP_NICE = -10;
/** Fitted rates are rounded to this step, so the report's phase names stay readable. */
const ROUND_TO = 50;

/** The gateway-only ramp a scenario's calibration runs, with its own downstream behaviour (`steady`). */
export function rampPlan(spec: CalibrationSpec = {}): ScenarioPlan {
  const rates = spec.rates ?? RAMP_RATES;
  const stepS = spec.stepSeconds ?? RAMP_STEP_S;
  const total = rates.length * stepS;
  return {
    phases: rates.map((r) => ({ name: `ramp ${r}/s`, seconds: stepS })),
    ...(spec.steady ? { steady: spec.steady } : {}),
    load: {
      steps: rates.map((rate) => ({ rate, durationMs: stepS * 1000 })),
      arrivals: 'poisson',
      deadlineMs: 1000,
      connections: 1024,
    },
    actions: [generatorPriority(total, RAMP_NICE)],
    variants: ['gateway'],
  };
}

/** What the ramp measured: the best sustained goodput, whether the top step was past it, the generator's worst second. */
export function calibrationOf(run: VariantRun, phases: readonly Phase[]): Calibration {
  const first = phases[0]!;
  const top = phases.at(-1)!;
  const best = bestWindowGoodput(run.result.timeline, first.start_s, top.end_s, RAMP_WINDOW_S);
  const topPts = slice(run.result.timeline, top.start_s, top.end_s);
  const topGood = topPts.reduce((a, p) => a + p.goodput, 0) / Math.max(1, topPts.length);
  const topOffered = topPts.reduce((a, p) => a + p.offered, 0) / Math.max(1, topPts.length);
  const lags = run.load.seconds.map((s) => s.generator?.lag_max_ms ?? 0);
  return {
    ceiling_per_s: Math.round(best.goodput),
    top_per_s: Math.round(topOffered),
    top_served_per_s: Math.round(topGood),
    reached: topGood < CEILING_REACHED * topOffered,
    generator_lag_max_ms: lags.length > 0 ? Math.round(Math.max(...lags)) : null,
    ramp: `gateway alone, Poisson, ${phases.map((p) => p.name.replace(/^ramp /, '')).join(', ')} × ${top.end_s - top.start_s} s, best ${RAMP_WINDOW_S} s window`,
  };
}

/**
 * Rates at `fractions` of the calibrated ceiling, rounded to ROUND_TO, at
 * most the ramp's top (the most the generator is asked for anywhere),
 * strictly rising (a fraction that rounds or caps onto the rate before it
 * is dropped).
 */
export function fittedRates(
  c: Pick<Calibration, 'ceiling_per_s' | 'top_per_s'>,
  fractions: readonly number[],
): number[] {
  const round = (x: number) => Math.max(ROUND_TO, Math.round(x / ROUND_TO) * ROUND_TO);
  const out: number[] = [];
  for (const f of fractions) {
    const r = Math.min(round(c.top_per_s), round(f * c.ceiling_per_s));
    if (out.length === 0 || r > out.at(-1)!) out.push(r);
  }
  return out;
}
