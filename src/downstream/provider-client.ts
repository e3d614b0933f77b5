/**
 * The payment provider client: one keep-alive undici Pool, every timeout set
 * (undici's defaults are 300 s and unbounded connections), every response body
 * consumed. It classifies each attempt; it does not retry — the retry policy
 * lives with the caller, which knows the deadline.
 */
import type { Pool } from 'undici';
import { requestText } from './pool.js';
import { systemClock, type Clock } from '../lib/clock.js';

/**
 * What the provider is asked to charge: the fields it is sent. The charge
 * domain's ChargeInput has this shape; the client declares its own so the
 * downstream layer does not reach up into the domain for a type.
 */
export interface ProviderChargeRequest {
  amount: number;
  currency: string;
  source: string;
  description?: string;
  metadata?: Record<string, string>;
}

export interface ProviderCharge {
  id: string;
  status: 'succeeded' | 'declined';
  decline_code?: string;
}

/**
 * Only the provider's explicit answers are final; everything else is unknown.
 *
 * - succeeded: 2xx with a well-formed charge body (`id`, `status: "succeeded"`).
 * - declined: 402 (or 2xx, as a retrieve answers) with a well-formed declined
 *   charge body: the provider's explicit decline.
 * - rejected: 400/422 in the provider's own error shape
 *   (`{"error":{"type":"invalid_request","message":…}}`): it refused the request
 *   itself and created nothing. Kept final (stored as `failed`, replayed as
 *   402 charge_rejected) because the answer is explicit and deterministic: the
 *   provider validated the same bytes the reconciler would send again, so
 *   leaving the row `started` would only re-drive a request that cannot succeed
 *   while the client is told "try again" forever. Its message is for our logs,
 *   never for the client.
 * - unknown: the charge may or may not exist; only the same provider key may
 *   ask again. Timeouts, resets, 5xx, 409 (in progress or key mismatch), 429,
 *   and every answer whose meaning is uncertain: 401/403/404/408 and other
 *   4xx (a wrong URL or credentials, a proxy in the way), non-JSON bodies (a
 *   proxy's HTML page), JSON without the fields above. Storing any of these as
 *   final would turn a misconfiguration into permanent declines.
 * - refused: a guard in front of the client did not send the request.
 */
export type AttemptOutcome =
  | { kind: 'succeeded'; providerChargeId: string }
  | { kind: 'declined'; providerChargeId: string; declineCode: string }
  /** `message`: the provider's words, for logs only (truncated); never sent to clients. */
  | { kind: 'rejected'; status: number; message: string }
  | { kind: 'unknown'; reason: UnknownReason; status?: number }
  /** A guard refused to call (breaker open, bulkhead full): nothing was sent. */
  | { kind: 'refused'; code: 'breaker_open' | 'bulkhead_full' };

type UnknownReason =
  | 'timeout'
  | 'connection'
  | 'status_5xx'
  | 'status_409'
  | 'status_429'
  | 'status_4xx'
  | 'bad_response'
  /** A validation refusal after an earlier request under the same key may have been charged (lifecycle.ts). */
  | 'rejected_after_unknown';

/** What a provider answer means, and (when it is not understood) why, for the log. */
export type Classified = AttemptOutcome & { kind: 'succeeded' | 'declined' | 'rejected' | 'unknown' };

/** Longest piece of a provider's body or message that reaches a log line. */
export const LOGGED_BODY_CHARS = 200;

function truncate(text: string, max = LOGGED_BODY_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} chars)`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/** Classify one HTTP answer of the provider. Pure: status and body text in, outcome out. */
export function classifyAnswer(statusCode: number, text: string): Classified {
  if (statusCode >= 500) return { kind: 'unknown', reason: 'status_5xx', status: statusCode };
  if (statusCode === 409) return { kind: 'unknown', reason: 'status_409', status: statusCode };
  if (statusCode === 429) return { kind: 'unknown', reason: 'status_429', status: statusCode };
  const explicit =
    (statusCode >= 200 && statusCode < 300) || statusCode === 402 || statusCode === 400 || statusCode === 422;
  if (!explicit)
    return { kind: 'unknown', reason: statusCode >= 400 ? 'status_4xx' : 'bad_response', status: statusCode };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { kind: 'unknown', reason: 'bad_response', status: statusCode };
  }
  if (!isObject(parsed)) return { kind: 'unknown', reason: 'bad_response', status: statusCode };
  if (statusCode < 300 || statusCode === 402) {
    if (!nonEmpty(parsed.id)) return { kind: 'unknown', reason: 'bad_response', status: statusCode };
    if (statusCode < 300 && parsed.status === 'succeeded') return { kind: 'succeeded', providerChargeId: parsed.id };
    if (parsed.status === 'declined') {
      const code = parsed.decline_code;
      if (code !== undefined && !nonEmpty(code)) return { kind: 'unknown', reason: 'bad_response', status: statusCode };
      return { kind: 'declined', providerChargeId: parsed.id, declineCode: code ?? 'card_declined' };
    }
    return { kind: 'unknown', reason: 'bad_response', status: statusCode };
  }
  // 400 / 422: final only in the provider's own validation-error shape.
  const error = parsed.error;
  if (isObject(error) && error.type === 'invalid_request' && typeof error.message === 'string') {
    return { kind: 'rejected', status: statusCode, message: truncate(error.message) };
  }
  return { kind: 'unknown', reason: 'bad_response', status: statusCode };
}

/** What a provider needs of a logger: one line for an answer it did not understand. */
export interface ProviderLog {
  warn(fields: Record<string, unknown>, msg: string): void;
}

/** A misconfigured provider makes every call answer nonsense: one line per interval, with the count left out. */
const LOG_INTERVAL_MS = 5000;

/** What the lifecycle needs of a provider; decorators (breakers, bulkheads) implement it too. */
export interface Provider {
  createCharge(
    providerKey: string,
    reference: string,
    input: ProviderChargeRequest,
    timeoutMs: number,
  ): Promise<AttemptOutcome>;
  getCharge(providerKey: string, timeoutMs: number): Promise<AttemptOutcome>;
}

/** The provider's error shape: a JSON object with an `error` object in it. */
function isProviderError(text: string): boolean {
  try {
    const body = JSON.parse(text) as { error?: unknown };
    return typeof body.error === 'object' && body.error !== null;
  } catch {
    return false;
  }
}

/** The key a health check looks up: no charge has it (ours are keyed hashes, see provider-key.ts). */
export const HEALTH_CHECK_KEY = 'bulwark-health-check';

export class ProviderClient implements Provider {
  #lastLogAt = -Infinity;
  #suppressed = 0;

  constructor(
    private readonly pool: Pool,
    private readonly log?: ProviderLog,
    private readonly clock: Clock = systemClock,
  ) {}

  async createCharge(
    providerKey: string,
    reference: string,
    input: ProviderChargeRequest,
    timeoutMs: number,
  ): Promise<AttemptOutcome> {
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

  /** Ask for a key's outcome without creating anything; a 404 is unknown like any other. */
  async getCharge(providerKey: string, timeoutMs: number): Promise<AttemptOutcome> {
    return this.#send('GET', `/v1/charges/${encodeURIComponent(providerKey)}`, providerKey, undefined, timeoutMs);
  }

  /**
   * Is the provider answering? A lookup of a key no charge ever uses: a 404
   * carrying the provider's own error object (`{ "error": { ... } }`), or a
   * 200, within `timeoutMs` says it reads and answers. Anything else says
   * no: a proxy's or ingress's 404 page for a backend that is gone is not the
   * provider. Nothing is created, nothing is logged (it runs every 100 ms
   * while a breaker is open).
   */
  async healthCheck(timeoutMs: number): Promise<boolean> {
    const answer = await requestText(this.pool, { method: 'GET', path: `/v1/charges/${HEALTH_CHECK_KEY}` }, timeoutMs);
    if ('failed' in answer) return false;
    return answer.statusCode === 200 || (answer.statusCode === 404 && isProviderError(answer.text));
  }

  async #send(
    method: 'GET' | 'POST',
    path: string,
    providerKey: string,
    body: string | undefined,
    timeoutMs: number,
  ): Promise<AttemptOutcome> {
    const answer = await requestText(
      this.pool,
      { method, path, headers: { 'content-type': 'application/json', 'idempotency-key': providerKey }, body },
      timeoutMs,
    );
    if ('failed' in answer) return { kind: 'unknown', reason: answer.failed };
    const { statusCode, text } = answer;
    const outcome = classifyAnswer(statusCode, text);
    // Timeouts and 5xx are the provider being down, counted elsewhere; an
    // answer we could not read, or a refusal, is worth the body in the log.
    if (
      outcome.kind === 'rejected' ||
      (outcome.kind === 'unknown' && (outcome.reason === 'status_4xx' || outcome.reason === 'bad_response'))
    ) {
      this.#logAnswer(method, statusCode, outcome, text);
    }
    return outcome;
  }

  #logAnswer(method: string, status: number, outcome: Classified, text: string): void {
    if (!this.log) return;
    const now = this.clock.now();
    if (now - this.#lastLogAt < LOG_INTERVAL_MS) {
      this.#suppressed++;
      return;
    }
    this.#lastLogAt = now;
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    const meaning =
      outcome.kind === 'rejected' ? 'rejected' : `unknown (${outcome.kind === 'unknown' ? outcome.reason : ''})`;
    this.log.warn(
      { method, status, outcome: meaning, body: truncate(text), similar_answers_not_logged: suppressed },
      outcome.kind === 'rejected'
        ? 'provider refused the request'
        : 'provider answer not understood; the charge stays started for the reconciler',
    );
  }
}
