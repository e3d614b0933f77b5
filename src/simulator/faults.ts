/**
 * A fault set: what a simulated downstream does wrong, validated once when it
 * is set (control API or scenario file) so the hot path only reads fields.
 * Parsing is pure and reports the first bad field by name, because a scenario
 * author fixing a JSON file needs to know which line to look at.
 */
import type { Random } from '../lib/random.js';
import { parseLatency, type LatencyDist } from './latency.js';

export type ServiceName = 'provider' | 'fx';
/** How an ambiguous answer is lost: a 500, a reset, or the `errorStatus`/`errorBody` answer (e.g. a proxy's 404 page). */
export type AmbiguousMode = '500' | 'reset' | 'error';

export interface Faults {
  /** Delay before answering; a bare number in JSON becomes `{ dist: 'fixed', ms }`. */
  readonly latencyMs?: LatencyDist;
  /** Share of requests answered `errorStatus` without doing any work (0..1). */
  readonly errorRate?: number;
  /** Status for `errorRate` answers. Default 503. */
  readonly errorStatus?: number;
  /** Body of `errorRate` answers, sent as is (e.g. a proxy's HTML page). Default: the simulator's JSON error. */
  readonly errorBody?: string;
  /** Content-Type of `errorRate` answers. Default application/json. */
  readonly errorContentType?: string;
  /** Share of requests never answered (0..1). */
  readonly hangRate?: number;
  /** Never answer any request (same as `hangRate: 1`). */
  readonly hang?: boolean;
  /** Share of connections destroyed without an answer and without work (0..1). */
  readonly resetRate?: number;
  /** Share of new charges declined (0..1). Provider only. */
  readonly declineRate?: number;
  /** Share of requests whose work is done but whose answer is lost (0..1). */
  readonly ambiguousRate?: number;
  /** How an ambiguous answer is lost: a 500, a reset connection, or the `errorStatus`/`errorBody` answer. Default '500'. */
  readonly ambiguousMode?: AmbiguousMode;
  /** Requests processed at once; the rest queue FIFO without bound. */
  readonly concurrency?: number;
}

export type FaultsResult = { ok: true; faults: Faults } | { ok: false; field: string; message: string };

export const NO_FAULTS: Faults = Object.freeze({});

export const DEFAULT_ERROR_STATUS = 503;
const MAX_CONCURRENCY = 1_000_000;
const MAX_ERROR_BODY_CHARS = 64 * 1024;

const RATE_FIELDS = ['errorRate', 'hangRate', 'resetRate', 'declineRate', 'ambiguousRate'] as const;
const KNOWN_FIELDS: ReadonlySet<string> = new Set([
  ...RATE_FIELDS,
  'latencyMs',
  'errorStatus',
  'errorBody',
  'errorContentType',
  'hang',
  'ambiguousMode',
  'concurrency',
]);
const PROVIDER_ONLY: ReadonlySet<string> = new Set(['declineRate']);

/**
 * Validate a JSON value into a frozen fault set. `service` rejects fields that
 * mean nothing there (a decline rate on fx-rates is a mistake, not a no-op).
 */
export function parseFaults(json: unknown, service: ServiceName = 'provider'): FaultsResult {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return fail(
      '(faults)',
      `a fault set must be a JSON object; got ${json === null ? 'null' : Array.isArray(json) ? 'an array' : typeof json}`,
    );
  }
  const o = json as Record<string, unknown>;
  const out: { -readonly [K in keyof Faults]: Faults[K] } = {};
  for (const k of Object.keys(o)) {
    if (!KNOWN_FIELDS.has(k)) return fail(k, `${k} is not a fault field (allowed: ${[...KNOWN_FIELDS].join(', ')})`);
    if (service !== 'provider' && PROVIDER_ONLY.has(k)) return fail(k, `${k} applies to the provider only`);
  }
  for (const k of RATE_FIELDS) {
    const v = o[k];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !(v >= 0 && v <= 1))
      return fail(k, `${k} must be a number from 0 to 1; got ${JSON.stringify(v)}`);
    out[k] = v;
  }
  if (o['latencyMs'] !== undefined) {
    const r = parseLatency(o['latencyMs']);
    if (!r.ok) return r;
    out.latencyMs = r.latency;
  }
  const status = o['errorStatus'];
  if (status !== undefined) {
    if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 599) {
      return fail(
        'errorStatus',
        `errorStatus must be an integer HTTP status from 400 to 599; got ${JSON.stringify(status)}`,
      );
    }
    out.errorStatus = status;
  }
  const body = o['errorBody'];
  if (body !== undefined) {
    if (typeof body !== 'string' || body.length > MAX_ERROR_BODY_CHARS) {
      return fail(
        'errorBody',
        `errorBody must be a string of at most ${MAX_ERROR_BODY_CHARS} characters; got ${typeof body === 'string' ? `${body.length} characters` : JSON.stringify(body)}`,
      );
    }
    out.errorBody = body;
  }
  const type = o['errorContentType'];
  if (type !== undefined) {
    // It becomes a header value: printable ASCII only, or the answer itself breaks.
    if (typeof type !== 'string' || !/^[\x20-\x7e]{1,200}$/.test(type)) {
      return fail(
        'errorContentType',
        `errorContentType must be 1-200 printable ASCII characters; got ${JSON.stringify(type)}`,
      );
    }
    out.errorContentType = type;
  }
  const hang = o['hang'];
  if (hang !== undefined) {
    if (typeof hang !== 'boolean') return fail('hang', `hang must be true or false; got ${JSON.stringify(hang)}`);
    out.hang = hang;
  }
  const mode = o['ambiguousMode'];
  if (mode !== undefined) {
    // 500 as a number is what people type; keep one canonical spelling.
    if (mode !== '500' && mode !== 500 && mode !== 'reset' && mode !== 'error') {
      return fail('ambiguousMode', `ambiguousMode must be "500", "reset" or "error"; got ${JSON.stringify(mode)}`);
    }
    out.ambiguousMode = mode === 500 ? '500' : mode;
  }
  const c = o['concurrency'];
  if (c !== undefined) {
    if (typeof c !== 'number' || !Number.isInteger(c) || c < 1 || c > MAX_CONCURRENCY) {
      return fail(
        'concurrency',
        `concurrency must be an integer from 1 to ${MAX_CONCURRENCY}; got ${JSON.stringify(c)}`,
      );
    }
    out.concurrency = c;
  }
  return { ok: true, faults: Object.freeze(out) };
}

/**
 * One die: true with probability `rate`. Draws from `random` only when the
 * outcome is uncertain, so a fault set without a given fault does not shift
 * the sequence the other dice see.
 */
export function roll(random: Random, rate: number | undefined): boolean {
  if (rate === undefined || rate <= 0) return false;
  if (rate >= 1) return true;
  return random() < rate;
}

function fail(field: string, message: string): { ok: false; field: string; message: string } {
  return { ok: false, field, message };
}
