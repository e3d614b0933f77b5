/**
 * The downstream simulator: a payment provider and an fx-rates service, each
 * on its own port with its own fault set and its own seeded dice (traffic to
 * one never shifts the other's sequence).
 */
import type { Server } from 'node:http';
import { systemClock, type Clock } from '../lib/clock.js';
import { seededRandom } from '../lib/random.js';
import { FxSim } from './fx.js';
import { closeServer, listen, serverPort, serverUrl } from './http.js';
import type { Faults } from './faults.js';
import { ProviderSim } from './provider.js';

export { parseFaults, NO_FAULTS, type Faults, type FaultsResult, type ServiceName } from './faults.js';
export { parseLatency, sampleLatencyMs, type LatencyDist } from './latency.js';
export { FxSim, USD_RATES } from './fx.js';
export { ProviderSim, DECLINING_SOURCE } from './provider.js';
export type { Charge, LedgerSummary, Duplicate } from './ledger.js';
export type { PipelineStats } from './pipeline.js';

export interface SimulatorOptions {
  /** Interface to bind. Default 127.0.0.1. */
  host?: string;
  /** Provider port; 0 picks an ephemeral port. Default 0. */
  providerPort?: number;
  /** fx-rates port; 0 picks an ephemeral port. Default 0. */
  fxPort?: number;
  /** Seed for fault dice, latency samples and rate drift. Default 42. */
  seed?: number;
  /** Timestamps and rate drift. Default the system clock. */
  clock?: Clock;
  /** Peak relative drift of fx rates (0 = fixed). Default 0.002. */
  fxDriftFraction?: number;
  /** Fault sets in force before the first request can arrive. Default none. */
  faults?: { provider?: Faults; fx?: Faults };
}

export interface Simulator {
  readonly providerUrl: string;
  readonly fxUrl: string;
  /** The bound ports (useful when 0 asked for ephemeral ones). */
  readonly providerPort: number;
  readonly fxPort: number;
  readonly provider: ProviderSim;
  readonly fx: FxSim;
  /** Closes both servers and destroys open sockets, hung requests included. Idempotent. */
  close(): Promise<void>;
}

export const DEFAULT_SEED = 42;
export const DEFAULT_HOST = '127.0.0.1';

export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  const host = opts.host ?? DEFAULT_HOST;
  const seed = opts.seed ?? DEFAULT_SEED;
  const clock = opts.clock ?? systemClock;
  const provider = new ProviderSim({ random: seededRandom(seed), clock });
  const fx = new FxSim({
    random: seededRandom(seed + 1),
    clock,
    seed,
    ...(opts.fxDriftFraction !== undefined ? { driftFraction: opts.fxDriftFraction } : {}),
  });
  if (opts.faults?.provider) provider.setFaults(opts.faults.provider);
  if (opts.faults?.fx) fx.setFaults(opts.faults.fx);
  const providerServer = await listen(provider.handle, host, opts.providerPort ?? 0);
  let fxServer: Server;
  try {
    fxServer = await listen(fx.handle, host, opts.fxPort ?? 0);
  } catch (err) {
    await closeServer(providerServer);
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    providerUrl: serverUrl(providerServer, host),
    fxUrl: serverUrl(fxServer, host),
    providerPort: serverPort(providerServer),
    fxPort: serverPort(fxServer),
    provider,
    fx,
    close() {
      closing ??= (async () => {
        provider.close();
        fx.close();
        await Promise.all([closeServer(providerServer), closeServer(fxServer)]);
      })();
      return closing;
    },
  };
}
