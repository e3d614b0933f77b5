/**
 * No silent failure in the charge path, the reconciler and the reaper: an
 * unexpected error is counted (by stage, shared memory, /metrics) and logged
 * once, where it is caught, as one structured line with the key's hash.
 *
 * - Expected refusals — a deadline that passed, a DB slot that did not free
 *   in time — are not errors of ours: they are counted where they happen
 *   (bulwark_timeouts_total, bulwark_db_pool_acquire_timeouts_total) and not
 *   logged per request.
 * - Everything else is: a Postgres error, a lost connection, a programming
 *   error (a TypeError in our own code becomes a 503 for the client, so the
 *   log is the only place anyone learns of it).
 * - A dead database fails every request at once: per stage, at most `burst`
 *   lines per window are written, and the next line after the window says
 *   how many were left out. The counter counts every one.
 * - What a line carries: the stage, the key's hash, the error's type,
 *   message and SQLSTATE code — never the error object itself. A Postgres
 *   error's `detail` can hold the failing row (card token, request body)
 *   and the raw key. Some messages of our own name the key (`record: charge
 *   KEY is missing`): the key is replaced wherever it appears.
 */
import type { Clock } from '../lib/clock.js';
import { keyHash } from './key-hash.js';
import { DbBusyError } from '../db/database.js';
import { isDeadline } from '../lib/deadline.js';

export const ERROR_STAGES = [
  'claim',
  'record',
  'release',
  'read',
  'ping',
  'reconcile',
  'reap',
  'backlog',
  'health',
] as const;
export type ErrorStage = (typeof ERROR_STAGES)[number];

/** Reports one caught error; `key`, when the error concerns one charge. */
/** `requestId`: the request's X-Request-Id, so its log line can be found from what the client saw. */
export type ReportError = (stage: ErrorStage, e: unknown, key?: string, requestId?: string) => void;

/** Refusals the charge path expects under load: counted where they happen, never logged per request. */
function isExpectedRefusal(e: unknown): boolean {
  return isDeadline(e) || e instanceof DbBusyError;
}

interface SafeError {
  type: string;
  message: string;
  /** SQLSTATE of a Postgres error, or a Node error code (ECONNREFUSED). */
  code?: string;
  stack?: string;
}

/** What of an error may be logged: type, message, code, stack; the raw key, if the message holds it, replaced. */
export function safeError(e: unknown, key?: string): SafeError {
  const scrub = (s: string) => (key !== undefined && key.length >= 4 ? s.replaceAll(key, '[idempotency-key]') : s);
  if (!(e instanceof Error)) return { type: typeof e, message: scrub(String(e)) };
  const code = (e as { code?: unknown }).code;
  return {
    type: e.name,
    message: scrub(e.message),
    ...(typeof code === 'string' ? { code } : {}),
    ...(e.stack !== undefined ? { stack: scrub(e.stack) } : {}),
  };
}

/** The part of a pino logger the reporter uses. */
export interface ErrorLog {
  error(obj: object, msg: string): void;
}

export interface ErrorReporterOptions {
  clock: Clock;
  log?: ErrorLog;
  count?: (stage: ErrorStage) => void;
  /** Lines per stage per window at most. Default 5. */
  burst?: number;
  /** Default 10 s. */
  windowMs?: number;
}

export function errorReporter(options: ErrorReporterOptions): ReportError {
  const burst = options.burst ?? 5;
  const windowMs = options.windowMs ?? 10_000;
  const windows = new Map<ErrorStage, { start: number; logged: number; suppressed: number }>();
  return (stage, e, key, requestId) => {
    if (isExpectedRefusal(e)) return;
    options.count?.(stage);
    const log = options.log;
    if (!log) return;
    const now = options.clock.now();
    let window = windows.get(stage);
    if (!window || now - window.start >= windowMs) {
      if (window && window.suppressed > 0)
        log.error(
          { stage, not_logged: window.suppressed, window_seconds: windowMs / 1000 },
          `${stage} errors not logged (rate limit; bulwark_charge_errors_total counts them all)`,
        );
      window = { start: now, logged: 0, suppressed: 0 };
      windows.set(stage, window);
    }
    if (window.logged >= burst) {
      window.suppressed++;
      return;
    }
    window.logged++;
    log.error(
      {
        stage,
        ...(key !== undefined ? { key_hash: keyHash(key) } : {}),
        ...(requestId !== undefined ? { request_id: requestId } : {}),
        error: safeError(e, key),
      },
      `${stage} failed`,
    );
  };
}
