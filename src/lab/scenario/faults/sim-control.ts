/**
 * The simulator's control API over HTTP (`/_faults`, `/_ledger`), used by the
 * scenario exactly as any operator would: the simulator runs as its own
 * process, so the load generator and the downstreams never share an event
 * loop and the lab cannot peek at state a real provider would not expose.
 *
 * The audit asks the ledger one reference (client Idempotency-Key) at a
 * time, thousands of times: that goes through one keep-alive undici Pool with
 * a few connections and bounded parallelism, and every body is read.
 */
import { Pool } from 'undici';
import type { Charge, Faults, LedgerSummary } from '../../../simulator/index.js';

export type ServiceName = 'provider' | 'fx';

export class SimulatorControl {
  readonly providerUrl: string;
  readonly fxUrl: string;
  readonly #pools: Record<ServiceName, Pool>;

  constructor(providerUrl: string, fxUrl: string) {
    this.providerUrl = providerUrl;
    this.fxUrl = fxUrl;
    const pool = (url: string) =>
      new Pool(url, {
        connections: 8,
        pipelining: 1,
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
        keepAliveTimeout: 10_000,
      });
    this.#pools = { provider: pool(providerUrl), fx: pool(fxUrl) };
  }

  /** Replace a service's fault set; `undefined` (or {}) heals it. */
  async setFaults(service: ServiceName, faults: Faults | undefined): Promise<void> {
    if (faults === undefined || Object.keys(faults).length === 0) await this.#send(service, 'DELETE', '/_faults');
    else await this.#send(service, 'PUT', '/_faults', JSON.stringify(faults));
  }

  async healAll(): Promise<void> {
    await Promise.all([this.setFaults('provider', undefined), this.setFaults('fx', undefined)]);
  }

  async ledger(): Promise<LedgerSummary> {
    return (await this.#send('provider', 'GET', '/_ledger')) as LedgerSummary;
  }

  async clearLedger(): Promise<void> {
    await this.#send('provider', 'DELETE', '/_ledger');
  }

  /** Every charge the provider created for one client reference. */
  async chargesFor(reference: string): Promise<Charge[]> {
    const r = (await this.#send('provider', 'GET', `/_ledger?reference=${encodeURIComponent(reference)}`)) as {
      charges: Charge[];
    };
    return r.charges;
  }

  /** chargesFor over many references, `parallel` at a time. */
  async chargesForAll(references: readonly string[], parallel = 16): Promise<Map<string, Charge[]>> {
    const out = new Map<string, Charge[]>();
    let next = 0;
    const worker = async () => {
      while (next < references.length) {
        const ref = references[next++]!;
        out.set(ref, await this.chargesFor(ref));
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallel, references.length) }, worker));
    return out;
  }

  async close(): Promise<void> {
    await Promise.all([this.#pools.provider.destroy(), this.#pools.fx.destroy()]);
  }

  async #send(service: ServiceName, method: 'GET' | 'PUT' | 'DELETE', path: string, body?: string): Promise<unknown> {
    const res = await this.#pools[service].request({
      method,
      path,
      ...(body !== undefined ? { body, headers: { 'content-type': 'application/json' } } : {}),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.body.text();
    if (res.statusCode !== 200)
      throw new Error(`simulator ${service}: ${method} ${path} answered ${res.statusCode}: ${text.slice(0, 300)}`);
    return JSON.parse(text) as unknown;
  }
}
