/**
 * The one error catalogue. Every error a client can see has a stable `code`,
 * an HTTP status and a title; bodies are RFC 9457 problem details plus that
 * code (and the offending field for validation errors). Across the worker
 * boundary errors travel as plain `{ code, detail }` values, never as Error
 * instances (which do not survive postMessage).
 */

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

interface Entry {
  readonly status: number;
  readonly title: string;
  /** Seconds for Retry-After, for the codes a client should retry later. */
  readonly retryAfterS?: number;
}

export const catalogue = {
  invalid_json: { status: 400, title: 'Request body is not valid JSON' },
  validation_failed: { status: 400, title: 'Request body failed validation' },
  missing_idempotency_key: { status: 400, title: 'Idempotency-Key header is required' },
  invalid_idempotency_key: { status: 400, title: 'Idempotency-Key header is invalid' },
  invalid_header: { status: 400, title: 'A request header is invalid' },
  invalid_query: { status: 400, title: 'A query parameter is invalid' },
  invalid_encoding: { status: 400, title: 'Request body is not valid UTF-8' },
  deadline_too_short: { status: 400, title: 'X-Request-Timeout-Ms is too short to serve the request' },
  card_declined: { status: 402, title: 'The card was declined' },
  charge_rejected: { status: 402, title: 'The payment provider rejected the charge' },
  unauthorized: { status: 401, title: 'Authentication required' },
  forbidden: { status: 403, title: 'Forbidden' },
  not_found: { status: 404, title: 'Not found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  request_timeout: { status: 408, title: 'The request body did not arrive in time' },
  idempotency_in_progress: { status: 409, title: 'A request with this Idempotency-Key is in progress', retryAfterS: 1 },
  // No Retry-After: retrying does not help until an operator has resolved the
  // charge; after that the same key returns its final outcome.
  charge_needs_attention: {
    status: 409,
    title:
      'The outcome of this charge is unknown and an operator must resolve it; it will not be charged again automatically',
  },
  payload_too_large: { status: 413, title: 'Request body is too large' },
  unsupported_media_type: { status: 415, title: 'Content-Type must be application/json' },
  idempotency_key_reused: { status: 422, title: 'Idempotency-Key was used with a different request' },
  request_header_too_large: { status: 431, title: 'The request header section is too large' },
  internal_error: { status: 500, title: 'Internal error' },
  overloaded: { status: 503, title: 'The service is overloaded', retryAfterS: 1 },
  breaker_open: { status: 503, title: 'A downstream circuit breaker is open', retryAfterS: 5 },
  bulkhead_full: { status: 503, title: 'A downstream bulkhead is full', retryAfterS: 1 },
  // Retry at once, on a new connection (the answer closes this one): the
  // request was not started, and the instance is going away, so waiting for
  // it helps nobody. Behind a balancer the retry reaches another instance;
  // a lone instance's clients back off on their own while its replacement
  // starts. A whole second made every client refused by a drain come back
  // together on the replacement's first second (deploy: 60-76 of them, 503
  // again on its provider bulkhead, and again a second later: 84-90 % SLO
  // good against 87-92 % at 0).
  draining: { status: 503, title: 'The instance is shutting down', retryAfterS: 0 },
  starting: { status: 503, title: 'The instance is starting (waiting for its database)', retryAfterS: 1 },
  db_unavailable: { status: 503, title: 'The database is unavailable; the charge may complete later', retryAfterS: 1 },
  provider_unavailable: {
    status: 503,
    title: 'The payment provider is unavailable; the charge may complete later',
    retryAfterS: 2,
  },
  fx_unavailable: { status: 503, title: 'The fx-rates service is unavailable and no rate is cached', retryAfterS: 1 },
  deadline_exceeded: { status: 504, title: 'The request deadline passed; the charge may still complete' },
} as const satisfies Record<string, Entry>;

export type ErrorCode = keyof typeof catalogue;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(catalogue, value);
}

/** A finished HTTP answer: what the front thread writes. Plain data, cloneable. */
export interface Reply {
  status: number;
  /** Serialized body. */
  body: string;
  contentType: string;
  /** Extra headers, e.g. Retry-After, Idempotent-Replayed, Allow. */
  headers?: Record<string, string>;
}

export interface ProblemExtras {
  detail?: string;
  field?: string;
  headers?: Record<string, string>;
  /** RFC 9457 extension members, after the standard ones (a stored charge's id and amount, readiness checks). */
  members?: Record<string, unknown>;
}

export function problem(code: ErrorCode, extras: ProblemExtras = {}): Reply {
  const entry: Entry = catalogue[code];
  const body: Record<string, unknown> = {
    type: `urn:bulwark:problem:${code}`,
    title: entry.title,
    status: entry.status,
    detail: extras.detail ?? entry.title,
    code,
  };
  if (extras.field !== undefined) body.field = extras.field;
  if (extras.members !== undefined) Object.assign(body, extras.members);
  const headers: Record<string, string> = { ...extras.headers };
  if (entry.retryAfterS !== undefined && headers['Retry-After'] === undefined)
    headers['Retry-After'] = String(entry.retryAfterS);
  return { status: entry.status, body: JSON.stringify(body), contentType: PROBLEM_CONTENT_TYPE, headers };
}

export function json(status: number, value: unknown, headers?: Record<string, string>): Reply {
  return { status, body: JSON.stringify(value), contentType: 'application/json', ...(headers ? { headers } : {}) };
}
