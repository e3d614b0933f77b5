/**
 * Exponential backoff with full jitter (AWS architecture blog's "full
 * jitter"): attempt n (1-based, the attempt that just failed) waits a uniform
 * time in [0, min(cap, base * 2^(n-1))]. Pure: the random source is injected.
 */
import type { Random } from '../lib/random.js';

export function fullJitterDelayMs(attempt: number, baseMs: number, capMs: number, random: Random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return random() * ceiling;
}
