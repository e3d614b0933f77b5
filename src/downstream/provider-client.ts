/**
 * The payment provider client: one keep-alive undici Pool, every timeout set
 * (undici's defaults are 300 s and unbounded connections), every response body
 * consumed. It classifies each attempt; it does not retry — the retry policy
 * lives with the caller, which knows the deadline.
 */
import { Pool } from 'undici';
import type { ChargeInput } from '../charge/validate.js';

export interface DownstreamPoolOptions {
  url: string;
  connections: number;
  keepAliveMs: number;
  connectTimeoutMs: number;
}

export function createPool(o: DownstreamPoolOptions): Pool {
  return new Pool(o.url, {
    connections: o.connections,
    keepAliveTimeout: o.keepAliveMs,
    keepAliveMaxTimeout: o.keepAliveMs,
    connectTimeout: o.connectTimeoutMs,
    // Per-request deadlines are enforced with an AbortSignal; these are the
    // backstops for a request sent without one.
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
    pipelining: 1,
  });
}

export interface ProviderCharge {
  id: string;
  status: 'succeeded' | 'declined';
  decline_code?: string;
}

/**
 * - succeeded / declined: the provider's final answer.
 * - rejected: the provider refused the request itself (4xx): final, nothing charged.
 * - unknown: timeout, reset, 5xx, 409 in-progress: the charge may or may not
 *   exist; only the same provider key may ask again.
 * - refused: a guard in front of the client did not send the request.
 */
export type AttemptOutcome =
  | { kind: 'succeeded'; providerChargeId: string }
  | { kind: 'declined'; providerChargeId: string; declineCode: string }
  | { kind: 'rejected'; status: number; message: string }
  | { kind: 'unknown'; reason: 'timeout' | 'connection' | 'status_5xx' | 'status_409' | 'status_429' | 'bad_response'; status?: number }
  /** A guard refused to call (breaker open, bulkhead full): nothing was sent. */
  | { kind: 'refused'; code: 'breaker_open' | 'bulkhead_full' };

export type UnknownReason = Extract<AttemptOutcome, { kind: 'unknown' }>['reason'];

/** What the lifecycle needs of a provider; decorators (breakers, bulkheads) implement it too. */
export interface Provider {
  createCharge(providerKey: string, reference: string, input: ChargeInput, timeoutMs: number): Promise<AttemptOutcome>;
  getCharge(providerKey: string, timeoutMs: number): Promise<AttemptOutcome>;
}

export class ProviderClient implements Provider {
  constructor(private readonly pool: Pool) {}

  async createCharge(providerKey: string, reference: string, input: ChargeInput, timeoutMs: number): Promise<AttemptOutcome> {
    const body = JSON.stringify({
      amount: input.amount,
      currency: input.currency,
      source: input.source,
      description: input.description,
      metadata: input.metadata,
      reference,
    });
    return this.#send('POST', '/v1/charges', providerKey, body, timeoutMs);
  }

  /** Ask for a key's outcome without creating anything; 404 → rejected(404). */
  async getCharge(providerKey: string, timeoutMs: number): Promise<AttemptOutcome> {
    return this.#send('GET', `/v1/charges/${encodeURIComponent(providerKey)}`, providerKey, undefined, timeoutMs);
  }

  async #send(method: 'GET' | 'POST', path: string, providerKey: string, body: string | undefined, timeoutMs: number): Promise<AttemptOutcome> {
    let statusCode: number;
    let text: string;
    try {
      const res = await this.pool.request({
        method,
        path,
        headers: { 'content-type': 'application/json', 'idempotency-key': providerKey },
        body,
        signal: AbortSignal.timeout(Math.max(1, Math.ceil(timeoutMs))),
      });
      statusCode = res.statusCode;
      text = await res.body.text();
    } catch (e) {
      const name = (e as Error).name;
      return { kind: 'unknown', reason: name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'connection' };
    }
    if (statusCode >= 500) return { kind: 'unknown', reason: 'status_5xx', status: statusCode };
    if (statusCode === 409) return { kind: 'unknown', reason: 'status_409', status: statusCode };
    if (statusCode === 429) return { kind: 'unknown', reason: 'status_429', status: statusCode };
    let parsed: Partial<ProviderCharge> & { error?: { message?: string } };
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      return statusCode < 300 ? { kind: 'unknown', reason: 'bad_response', status: statusCode } : { kind: 'rejected', status: statusCode, message: 'unparseable provider error' };
    }
    if (statusCode < 300 && parsed.status === 'succeeded' && typeof parsed.id === 'string') {
      return { kind: 'succeeded', providerChargeId: parsed.id };
    }
    if ((statusCode === 402 || statusCode < 300) && parsed.status === 'declined' && typeof parsed.id === 'string') {
      return { kind: 'declined', providerChargeId: parsed.id, declineCode: parsed.decline_code ?? 'card_declined' };
    }
    if (statusCode < 300) return { kind: 'unknown', reason: 'bad_response', status: statusCode };
    return { kind: 'rejected', status: statusCode, message: parsed.error?.message ?? `provider answered ${statusCode}` };
  }
}
