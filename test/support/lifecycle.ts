/**
 * What the charge-lifecycle tests against a real Postgres share: a provider
 * that answers from a script and records every call's key, and the
 * lifecycle's dependencies with instant retries. The attempt timeout is the
 * default PROVIDER_TIMEOUT_MS (800 ms), not a test-sized 100 ms: the reconciler
 * bounds each of its statements by it, and a busy CI machine's Postgres can
 * take longer than 100 ms for one statement.
 */
import type { DbGate, LifecycleDeps } from '../../src/charge/lifecycle.js';
import type { ChargeStore } from '../../src/charge/store.js';
import type { GroupCommit } from '../../src/charge/group-commit.js';
import type { AttemptOutcome, Provider } from '../../src/downstream/provider-client.js';
import { systemClock, type Clock } from '../../src/lib/clock.js';

export class ScriptedProvider implements Provider {
  calls: string[] = [];
  constructor(public next: () => AttemptOutcome) {}
  async createCharge(providerKey: string): Promise<AttemptOutcome> {
    this.calls.push(providerKey);
    return this.next();
  }
  async getCharge(providerKey: string): Promise<AttemptOutcome> {
    this.calls.push(providerKey);
    return this.next();
  }
}

export function lifecycleDeps(
  store: ChargeStore,
  provider: Provider,
  o: { leaseMs?: number; commits?: GroupCommit; db?: DbGate; clock?: Clock } = {},
): LifecycleDeps {
  return {
    clock: o.clock ?? systemClock,
    random: () => 0,
    sleep: async () => {},
    store,
    provider,
    ...(o.commits ? { commits: o.commits } : {}),
    ...(o.db ? { db: o.db } : {}),
    settings: {
      leaseMs: o.leaseMs ?? 60_000,
      providerRetry: { maxAttempts: 3, baseMs: 1, capMs: 1, attemptTimeoutMs: 800, minAttemptMs: 1 },
    },
  };
}
