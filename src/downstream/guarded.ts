/**
 * The two downstream clients behind their guards (bulkhead → breaker → call,
 * src/resilience/guards.ts), each saying how its answers count for the
 * breaker: only what the downstream itself did is a failure.
 */
import { guarded, isRefusal, type Guard, type Refusal } from '../resilience/guards.js';
import type { RateOutcome } from './fx-client.js';
import type { AttemptOutcome, Provider, ProviderChargeRequest } from './provider-client.js';

/** The provider behind its guard; a refusal becomes a `refused` outcome. */
export class GuardedProvider implements Provider {
  constructor(
    private readonly inner: Provider,
    private readonly guard: Guard,
  ) {}

  createCharge(
    providerKey: string,
    reference: string,
    input: ProviderChargeRequest,
    timeoutMs: number,
  ): Promise<AttemptOutcome> {
    return this.#run(timeoutMs, (t) => this.inner.createCharge(providerKey, reference, input, t));
  }

  getCharge(providerKey: string, timeoutMs: number): Promise<AttemptOutcome> {
    return this.#run(timeoutMs, (t) => this.inner.getCharge(providerKey, t));
  }

  async #run(timeoutMs: number, call: (t: number) => Promise<AttemptOutcome>): Promise<AttemptOutcome> {
    // Declines and rejections are the provider working: only unknown outcomes are failures.
    const outcome = await guarded(this.guard, timeoutMs, call, (o) =>
      o.kind !== 'unknown' ? 'success' : o.reason === 'timeout' ? 'timeout' : 'failure',
    );
    return isRefusal(outcome) ? { kind: 'refused', code: outcome.refused } : outcome;
  }
}

/** The fx client behind its guard; a not-found pair is the service working, not a failure. */
export async function guardedRate(
  guard: Guard,
  timeoutMs: number,
  call: (t: number) => Promise<RateOutcome>,
): Promise<RateOutcome | Refusal> {
  return guarded(guard, timeoutMs, call, (o) =>
    o.ok || o.reason === 'not_found' ? 'success' : o.reason === 'timeout' ? 'timeout' : 'failure',
  );
}
