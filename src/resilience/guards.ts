/**
 * The guards around every downstream call, in one visible order:
 *
 *   bulkhead (bounded wait) → breaker (permit) → call → breaker.record → release
 *
 * The bulkhead comes first so a call that cannot get a slot never takes a
 * half-open probe permit. The breaker records failure unless the call
 * classified itself a success, so timeouts and aborted calls feed it too.
 */
import type { Clock } from '../lib/clock.js';
import type { AttemptOutcome, Provider } from '../downstream/provider-client.js';
import type { ChargeInput } from '../charge/validate.js';
import type { RateOutcome } from '../downstream/fx-client.js';
import type { Breaker } from './breaker.js';
import type { Bulkhead } from './bulkhead.js';

export interface Guard {
  breaker?: Breaker;
  bulkhead?: Bulkhead;
  acquireTimeoutMs: number;
  clock: Clock;
  /** Time spent waiting for a bulkhead slot (ms), granted or not. */
  onWait?: (ms: number) => void;
  /** Duration of a call that was made (ms). */
  onCall?: (ms: number) => void;
}

export type Refusal = { refused: 'breaker_open' | 'bulkhead_full' };

/** Run `call` under the guard. `ok` says whether a result counts as a success for the breaker. */
export async function guarded<T>(g: Guard, timeoutMs: number, call: (timeoutMs: number) => Promise<T>, ok: (r: T) => boolean): Promise<T | Refusal> {
  const start = g.clock.now();
  if (g.bulkhead) {
    const slot = await g.bulkhead.acquire(Math.min(g.acquireTimeoutMs, timeoutMs));
    g.onWait?.(slot.waitedMs);
    if (!slot.ok) return { refused: 'bulkhead_full' };
  }
  try {
    const permit = g.breaker ? g.breaker.acquire(g.clock.epochMs()) : null;
    if (g.breaker && permit === null) return { refused: 'breaker_open' };
    const callStart = g.clock.now();
    let success = false;
    try {
      const left = timeoutMs - (callStart - start);
      const r = await call(Math.max(1, left));
      success = ok(r);
      return r;
    } finally {
      const took = g.clock.now() - callStart;
      g.onCall?.(took);
      if (g.breaker && permit) g.breaker.record(permit, g.clock.epochMs(), success, took);
    }
  } finally {
    g.bulkhead?.release();
  }
}

export function isRefusal(r: unknown): r is Refusal {
  return typeof r === 'object' && r !== null && 'refused' in r;
}

/** The provider behind its guard; a refusal becomes a `refused` outcome. */
export class GuardedProvider implements Provider {
  constructor(
    private readonly inner: Provider,
    private readonly guard: Guard,
  ) {}

  createCharge(providerKey: string, reference: string, input: ChargeInput, timeoutMs: number): Promise<AttemptOutcome> {
    return this.#run(timeoutMs, (t) => this.inner.createCharge(providerKey, reference, input, t));
  }

  getCharge(providerKey: string, timeoutMs: number): Promise<AttemptOutcome> {
    return this.#run(timeoutMs, (t) => this.inner.getCharge(providerKey, t));
  }

  async #run(timeoutMs: number, call: (t: number) => Promise<AttemptOutcome>): Promise<AttemptOutcome> {
    // Declines and rejections are the provider working: only unknown outcomes are failures.
    const r = await guarded(this.guard, timeoutMs, call, (o) => o.kind !== 'unknown');
    return isRefusal(r) ? { kind: 'refused', code: r.refused } : r;
  }
}

export async function guardedRate(g: Guard, timeoutMs: number, call: (t: number) => Promise<RateOutcome>): Promise<RateOutcome | Refusal> {
  return guarded(g, timeoutMs, call, (o) => o.ok || o.reason === 'not_found');
}
