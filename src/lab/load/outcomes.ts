/**
 * The client's side of the audit: for every charge key, what the client was
 * finally told. A scenario compares it with Postgres and the provider
 * ledger: a key the client saw succeed must exist once in both; a key that
 * timed out may have been charged, but only once. One entry per key, written
 * as JSON lines in key order so two runs with one seed diff cleanly.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { ChargeOutcome } from './types.js';

/**
 * The SLO's rule for one charge (the load report's `slo.good` and the
 * timeline's per-second share both use it): answered, not 5xx, and within
 * the latency threshold of its intended send time.
 */
export function sloGood(
  status: number | 'timeout' | 'error' | undefined,
  latencyMs: number,
  thresholdMs: number,
): boolean {
  return typeof status === 'number' && status < 500 && latencyMs <= thresholdMs;
}

export class OutcomeLog {
  readonly #byN = new Map<number, ChargeOutcome>();

  /** Record the final outcome of charge number n (one entry per key: a second call replaces the first). */
  set(n: number, outcome: ChargeOutcome): void {
    this.#byN.set(n, outcome);
  }

  get size(): number {
    return this.#byN.size;
  }

  /** Every entry in charge-number (key) order. */
  list(): ChargeOutcome[] {
    return [...this.#byN.entries()].sort((a, b) => a[0] - b[0]).map(([, o]) => o);
  }
}

/** Write outcomes as JSON lines, honouring backpressure so a million keys do not sit in one string. */
export async function writeOutcomes(file: string, outcomes: readonly ChargeOutcome[]): Promise<void> {
  const out = createWriteStream(file, { encoding: 'utf8' });
  const failed = once(out, 'error').then(([e]) => Promise.reject(e as Error));
  failed.catch(() => undefined);
  for (const o of outcomes) {
    if (!out.write(`${JSON.stringify(o)}\n`)) await Promise.race([once(out, 'drain'), failed]);
  }
  out.end();
  await Promise.race([once(out, 'finish'), failed]);
}

/** Parse a file written by writeOutcomes. */
export function parseOutcomes(text: string): ChargeOutcome[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as ChargeOutcome);
}
