/**
 * Randomness is injected (`Random`) so chance-based behaviour (jitter, fault
 * injection, sampling) replays exactly under a seed. The generator is
 * mulberry32: 32-bit state, fast, statistically fine for jitter and fault
 * dice, and not for anything secret.
 */
export type Random = () => number;

export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const systemRandom: Random = Math.random;

/** Exponentially distributed sample with the given mean (for Poisson gaps). */
export function exponential(random: Random, mean: number): number {
  return -Math.log(1 - random()) * mean;
}

/** Standard normal sample (Box–Muller). */
export function standardNormal(random: Random): number {
  const u = 1 - random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
