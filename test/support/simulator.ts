/**
 * Thin wrappers over the simulator's control API (`/_faults`, `/_ledger`),
 * used over HTTP exactly as a scenario would, so contract tests do not
 * depend on the simulator's internals.
 */
import type { Charge, LedgerSummary } from '../../src/simulator/index.js';

async function send(url: string, method: string, body?: unknown): Promise<unknown> {
  const res = await fetch(url, {
    method,
    ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${method} ${url} answered ${res.status}: ${text}`);
  return JSON.parse(text);
}

/** Replace the fault set of one simulated service (provider or fx base URL). */
export async function setFaults(serviceUrl: string, faults: Record<string, unknown>): Promise<void> {
  await send(`${serviceUrl}/_faults`, 'PUT', faults);
}

export async function clearFaults(serviceUrl: string): Promise<void> {
  await send(`${serviceUrl}/_faults`, 'DELETE');
}

export async function ledger(providerUrl: string): Promise<LedgerSummary> {
  return (await send(`${providerUrl}/_ledger`, 'GET')) as LedgerSummary;
}

/** Every charge the provider created for a client reference (the gateway's Idempotency-Key). */
export async function ledgerForReference(providerUrl: string, reference: string): Promise<Charge[]> {
  const r = (await send(`${providerUrl}/_ledger?reference=${encodeURIComponent(reference)}`, 'GET')) as {
    charges: Charge[];
  };
  return r.charges;
}
