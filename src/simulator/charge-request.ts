/**
 * Validation of `POST /v1/charges` bodies. Loose where the gateway is strict
 * (the gateway owns the public contract), strict only where a bad value would
 * make the ledger lie: amount, currency and source are the key's fingerprint.
 */

export interface ChargeRequest {
  readonly amount: number;
  readonly currency: string;
  readonly source: string;
  readonly description?: string;
  readonly metadata?: Record<string, unknown>;
  /** The client's idempotency key, for the duplicate audit. */
  readonly reference: string | null;
}

export type ChargeRequestResult = { ok: true; request: ChargeRequest } | { ok: false; param: string; message: string };

const MAX_KEY_LENGTH = 255;

export function parseChargeRequest(text: string): ChargeRequestResult {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, param: '(body)', message: 'the body is not valid JSON' };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { ok: false, param: '(body)', message: 'the body must be a JSON object' };
  }
  const o = json as Record<string, unknown>;
  const { amount, currency, source, description, metadata, reference } = o;
  if (typeof amount !== 'number' || !Number.isSafeInteger(amount) || amount < 1) {
    return { ok: false, param: 'amount', message: 'amount must be a positive integer (minor units)' };
  }
  if (typeof currency !== 'string' || !/^[A-Za-z]{3}$/.test(currency)) {
    return { ok: false, param: 'currency', message: 'currency must be a three-letter ISO 4217 code' };
  }
  if (typeof source !== 'string' || source.length === 0) {
    return { ok: false, param: 'source', message: 'source must be a non-empty string' };
  }
  if (description !== undefined && typeof description !== 'string') {
    return { ok: false, param: 'description', message: 'description must be a string' };
  }
  if (metadata !== undefined && (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata))) {
    return { ok: false, param: 'metadata', message: 'metadata must be an object' };
  }
  if (reference !== undefined && reference !== null && typeof reference !== 'string') {
    return { ok: false, param: 'reference', message: 'reference must be a string' };
  }
  return {
    ok: true,
    request: {
      amount,
      currency,
      source,
      ...(description !== undefined ? { description } : {}),
      ...(metadata !== undefined ? { metadata: metadata as Record<string, unknown> } : {}),
      reference: reference ?? null,
    },
  };
}

/** The provider key header, or undefined when missing, empty or too long. */
export function idempotencyKey(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string' || header.length === 0 || header.length > MAX_KEY_LENGTH) return undefined;
  return header;
}
