/**
 * The fx-rates client: one GET per pair, classified, body always consumed.
 */
import type { Pool } from 'undici';
import { requestText } from './pool.js';

export type RateOutcome =
  | { ok: true; rate: number; asOf: string }
  | {
      ok: false;
      reason: 'timeout' | 'connection' | 'status' | 'bad_response' | 'not_found' | 'breaker_open' | 'bulkhead_full';
      status?: number;
    };

export class FxClient {
  constructor(private readonly pool: Pool) {}

  async getRate(from: string, to: string, timeoutMs: number): Promise<RateOutcome> {
    const answer = await requestText(this.pool, { method: 'GET', path: `/v1/rates/${from}-${to}` }, timeoutMs);
    if ('failed' in answer) return { ok: false, reason: answer.failed };
    const { statusCode, text } = answer;
    if (statusCode === 404) return { ok: false, reason: 'not_found', status: statusCode };
    if (statusCode !== 200) return { ok: false, reason: 'status', status: statusCode };
    try {
      const parsed = JSON.parse(text) as { rate?: unknown; as_of?: unknown };
      if (typeof parsed.rate !== 'number' || !(parsed.rate > 0))
        return { ok: false, reason: 'bad_response', status: statusCode };
      return {
        ok: true,
        rate: parsed.rate,
        asOf: typeof parsed.as_of === 'string' ? parsed.as_of : new Date().toISOString(),
      };
    } catch {
      return { ok: false, reason: 'bad_response', status: statusCode };
    }
  }
}
