/**
 * Arrivals: when each request is *meant* to leave, decided before the run
 * and independent of how the target answers. This is what makes the
 * generator open-loop: a slow answer never delays the next send (the
 * closed-loop mistake, "coordinated omission", that hides stalls), and a
 * latency is measured from the intended time below, so a generator that
 * falls behind charges its own lag to the latency instead of hiding it.
 *
 * Two pure parts: `Arrivals` yields intended offsets (ms from the start) for
 * a rate profile, evenly spaced or Poisson; `pace` walks them against an
 * injected clock and sleep, so tests drive it with a ManualClock.
 */
import type { Clock } from '../../lib/clock.js';
import { exponential, type Random } from '../../lib/random.js';
import type { ScheduleKind, Step } from './types.js';

/** `100x10s,500x500ms,0x2s` → steps. Throws with the offending part. */
export function parseSteps(spec: string): Step[] {
  const steps: Step[] = [];
  for (const part of spec.split(',')) {
    const m = /^\s*(\d+(?:\.\d+)?)\s*x\s*(\d+(?:\.\d+)?)(ms|s|m)?\s*$/.exec(part);
    if (!m) throw new RangeError(`step ${JSON.stringify(part)} is not RATExDURATION (e.g. 100x10s, 50x500ms)`);
    const unit = m[3] === 'ms' ? 1 : m[3] === 'm' ? 60_000 : 1000;
    const durationMs = Number(m[2]) * unit;
    if (!(durationMs > 0)) throw new RangeError(`step ${JSON.stringify(part)} needs a duration > 0`);
    steps.push({ rate: Number(m[1]), durationMs });
  }
  return steps;
}

export function totalMs(steps: readonly Step[]): number {
  return steps.reduce((sum, s) => sum + s.durationMs, 0);
}

/**
 * The rate profile a schedule walks: one step at `rate` for constant and
 * plain Poisson, the given steps (cut at durationMs) otherwise.
 */
export function profile(kind: ScheduleKind, rate: number, steps: readonly Step[], durationMs: number): Step[] {
  if (kind === 'constant' || steps.length === 0) return [{ rate, durationMs }];
  const out: Step[] = [];
  let left = durationMs;
  for (const s of steps) {
    if (left <= 0) break;
    out.push({ rate: s.rate, durationMs: Math.min(s.durationMs, left) });
    left -= s.durationMs;
  }
  return out;
}

/**
 * Intended send offsets (ms from the start of the schedule), in order.
 * Even spacing computes start + k·gap from an integer k, so ten thousand
 * arrivals do not accumulate floating-point drift. Poisson gaps are
 * exponential with mean 1000/rate; at a step boundary the process restarts
 * at the new rate, which is exact because the exponential is memoryless.
 */
export class Arrivals {
  readonly #steps: readonly Step[];
  readonly #poisson: boolean;
  readonly #random: Random;
  #step = 0;
  #stepStart = 0;
  #k = 0;
  #t = 0;

  constructor(steps: readonly Step[], poisson: boolean, random: Random) {
    this.#steps = steps;
    this.#poisson = poisson;
    this.#random = random;
  }

  next(): number | undefined {
    for (;;) {
      const s = this.#steps[this.#step];
      if (!s) return undefined;
      const end = this.#stepStart + s.durationMs;
      if (s.rate > 0) {
        let t: number;
        if (this.#poisson) {
          t = this.#t + exponential(this.#random, 1000 / s.rate);
          this.#t = t;
        } else {
          t = this.#stepStart + (this.#k++ * 1000) / s.rate;
        }
        if (t < end) return t;
      }
      this.#step++;
      this.#stepStart = end;
      this.#t = end;
      this.#k = 0;
    }
  }
}

/** Every intended offset of a schedule, for tests and previews. */
export function allArrivals(steps: readonly Step[], poisson: boolean, random: Random): number[] {
  const a = new Arrivals(steps, poisson, random);
  const out: number[] = [];
  for (let t = a.next(); t !== undefined; t = a.next()) out.push(t);
  return out;
}

export interface PaceDeps {
  readonly clock: Clock;
  /** Resolves after about `ms`; `sleep(0)` yields to I/O. */
  sleep(ms: number): Promise<void>;
}

export const realSleep = (ms: number): Promise<void> =>
  new Promise((resolve) => (ms <= 0 ? setImmediate(resolve) : setTimeout(resolve, ms)));

/** Overdue arrivals dispatched back to back before yielding, so answers still get read while catching up. */
const BURST = 64;

/**
 * Dispatch each arrival at its intended time (clock.now() scale, `startMs`
 * being offset 0). `dispatch(intendedMs, actualMs)` gets both offsets; it
 * returns false to stop the schedule (cap reached, signal). Never waits for a
 * dispatched request. Resolves with how it ended.
 */
export async function pace(
  arrivals: Arrivals,
  startMs: number,
  deps: PaceDeps,
  dispatch: (intendedMs: number, actualMs: number) => boolean,
): Promise<'done' | 'stopped'> {
  let burst = 0;
  for (let intended = arrivals.next(); intended !== undefined; intended = arrivals.next()) {
    let now = deps.clock.now() - startMs;
    // A loop, not one sleep: timers may fire a little early.
    while (now < intended) {
      await deps.sleep(intended - now);
      burst = 0;
      now = deps.clock.now() - startMs;
    }
    if (!dispatch(intended, now)) return 'stopped';
    if (++burst >= BURST) {
      await deps.sleep(0);
      burst = 0;
    }
  }
  return 'done';
}

/**
 * The behind-schedule rule: a generator that lags its own schedule measures
 * itself, not the target. Flag a run when the p99 lag exceeds `p99Ms`
 * (sustained lag: the generator is saturated) or any single send lags more
 * than `maxMs` (a stall: GC, a blocked loop). Defaults 10 ms and 100 ms: below
 * the 300 ms SLO threshold by enough that a flagged run's tail is suspect, and
 * above the ~1-2 ms timer jitter of an idle Node process.
 */
export function isBehind(lagP99Ms: number, lagMaxMs: number, p99Ms: number, maxMs: number): boolean {
  return lagP99Ms > p99Ms || lagMaxMs > maxMs;
}
