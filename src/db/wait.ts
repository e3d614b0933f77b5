/**
 * Waiting for Postgres at start-up. A supervisor restarts a crashed pod at
 * once, and a database restarted with it may still be replaying its WAL, so
 * the first connection is refused ("connection refused", "the database system
 * is starting up / in recovery"). Exiting then turns one crash into a crash
 * loop; waiting forever hides a misconfiguration. So: a real connection and
 * `SELECT 1`, retried with capped exponential backoff (equal jitter, so
 * replicas starting together do not knock in step) for a bounded time, one
 * log line per wait; only an answer counts as up.
 *
 * Authentication errors are not retried: a wrong password does not heal.
 */
import postgres from 'postgres';
import { systemClock, type Clock } from '../lib/clock.js';
import { systemRandom, type Random } from '../lib/random.js';

export interface DbWaitOptions {
  /** Give up after this long (ms) in total. */
  timeoutMs: number;
  /** Timeout of one connection attempt (ms). */
  connectTimeoutMs: number;
  /** First backoff (ms); doubles per failed attempt up to capMs. */
  baseMs?: number;
  capMs?: number;
  /** One line per failed attempt: what failed and how long until the next try. */
  onWait?: (w: DbWait) => void;
  clock?: Clock;
  random?: Random;
  sleep?: (ms: number) => Promise<void>;
  /** Checked after each failed attempt: true stops the wait with DbWaitError. */
  giveUp?: () => Promise<boolean> | boolean;
  /** One probe; default: connect to `url` and run SELECT 1. */
  probe?: (url: string, connectTimeoutMs: number) => Promise<void>;
  /** Which failures are worth another try; absent: all but a refused login. Others are rethrown as they are. */
  retryable?: (e: unknown) => boolean;
}

export interface DbWait {
  attempt: number;
  waitedMs: number;
  retryInMs: number;
  /** host:port only: a URL may carry a password. */
  target: string;
  error: string;
}

export class DbWaitError extends Error {
  override readonly name = 'DbWaitError';
}

/** SQLSTATEs that a retry cannot fix (28000 invalid authorization, 28P01 invalid password). */
const FATAL = new Set(['28000', '28P01']);

function dbTarget(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}${u.pathname}`;
  } catch {
    return '(unparseable DATABASE_URL)';
  }
}

async function probeDatabase(url: string, connectTimeoutMs: number): Promise<void> {
  const sql = postgres(url, {
    max: 1,
    connect_timeout: Math.max(1, Math.ceil(connectTimeoutMs / 1000)),
    idle_timeout: 1,
    onnotice: () => {},
  });
  try {
    await sql`SELECT 1`;
  } finally {
    await sql.end({ timeout: 0 }).catch(() => {});
  }
}

function describe(e: unknown): { text: string; fatal: boolean } {
  const err = e as { code?: unknown; message?: unknown };
  const code = typeof err?.code === 'string' ? err.code : undefined;
  const message = typeof err?.message === 'string' ? err.message : String(e);
  return {
    text: code && !message.includes(code) ? `${code}: ${message}` : message,
    fatal: code !== undefined && FATAL.has(code),
  };
}

/** Resolves once Postgres at `url` answers SELECT 1; throws DbWaitError after timeoutMs. */
export async function waitForDatabase(url: string, o: DbWaitOptions): Promise<void> {
  const clock = o.clock ?? systemClock;
  const random = o.random ?? systemRandom;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const probe = o.probe ?? probeDatabase;
  const base = o.baseMs ?? 100;
  const cap = o.capMs ?? 2000;
  const started = clock.now();
  const target = dbTarget(url);
  for (let attempt = 1; ; attempt++) {
    const left = o.timeoutMs - (clock.now() - started);
    try {
      await probe(url, Math.max(1, Math.min(o.connectTimeoutMs, left)));
      return;
    } catch (e) {
      const { text, fatal } = describe(e);
      const waitedMs = Math.round(clock.now() - started);
      if (fatal) throw new DbWaitError(`postgres at ${target} refused us: ${text}`);
      if (o.retryable && !o.retryable(e)) throw e;
      if (await o.giveUp?.()) throw new DbWaitError(`gave up waiting for postgres at ${target}: ${text}`);
      const ceiling = Math.min(cap, base * 2 ** (attempt - 1));
      const retryInMs = Math.round(Math.min(ceiling / 2 + random() * (ceiling / 2), o.timeoutMs - waitedMs));
      if (retryInMs <= 0)
        throw new DbWaitError(
          `postgres at ${target} did not answer within ${Math.round(o.timeoutMs)} ms (${attempt} attempts; last: ${text})`,
        );
      o.onWait?.({ attempt, waitedMs, retryInMs, target, error: text });
      await sleep(retryInMs);
    }
  }
}

/** postgres.js's own codes for a connection that went away or never came, and Node's. */
const CONNECTION_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
]);

/**
 * A failure a restarting or briefly unreachable Postgres causes, which a
 * later try need not meet: a lost or refused connection, SQLSTATE class 08
 * (connection exception), 57 (operator intervention: shutting down, starting
 * up, terminated by an immediate stop), 53 (too many connections), and a
 * serialization failure or deadlock. Anything else (a migration's own error,
 * a refused setting) is not retried.
 */
export function isTransientDbError(e: unknown): boolean {
  const code = (e as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string') return false;
  return CONNECTION_CODES.has(code) || /^(08|57|53)/.test(code) || code === '40001' || code === '40P01';
}

/**
 * Run a start-up step against Postgres (the durability check, the
 * migrations), retried as waitForDatabase waits while it fails the way a
 * restarting server fails. Only the first `SELECT 1` used to be retried: a
 * Postgres restarted in the ~100 ms after it answered failed the next step,
 * and `serve` exited 1 (an attack restarted it 20-90 ms into start-up: 14
 * exits in 25 trials) instead of waiting as it does for a slow first answer.
 */
export async function retryStartupStep<T>(
  url: string,
  o: Omit<DbWaitOptions, 'probe' | 'retryable'>,
  step: () => Promise<T>,
): Promise<T> {
  let out: { value: T } | undefined;
  await waitForDatabase(url, {
    ...o,
    retryable: isTransientDbError,
    probe: async () => {
      out = { value: await step() };
    },
  });
  return out!.value;
}

export interface DurabilitySetting {
  name: 'synchronous_commit' | 'fsync' | 'full_page_writes';
  value: string;
  /** False when the setting lets an acknowledged commit be lost or corrupted in a crash. */
  durable: boolean;
}

/**
 * The server settings an acknowledged charge relies on, as our sessions see
 * them (a DATABASE_URL server is configured by someone else).
 */
export async function durabilitySettings(url: string, connectTimeoutMs: number): Promise<DurabilitySetting[]> {
  const sql = postgres(url, {
    max: 1,
    connect_timeout: Math.max(1, Math.ceil(connectTimeoutMs / 1000)),
    idle_timeout: 1,
    onnotice: () => {},
  });
  try {
    const [row] = await sql<{ synchronous_commit: string; fsync: string; full_page_writes: string }[]>`
      SELECT current_setting('synchronous_commit') AS synchronous_commit, current_setting('fsync') AS fsync,
             current_setting('full_page_writes') AS full_page_writes`;
    return [
      // 'local', 'remote_write', 'remote_apply' and 'on' all flush the local WAL before the commit returns.
      { name: 'synchronous_commit', value: row!.synchronous_commit, durable: row!.synchronous_commit !== 'off' },
      { name: 'fsync', value: row!.fsync, durable: row!.fsync === 'on' },
      { name: 'full_page_writes', value: row!.full_page_writes, durable: row!.full_page_writes === 'on' },
    ];
  } finally {
    await sql.end({ timeout: 0 }).catch(() => {});
  }
}

/**
 * `url` with startup parameters that make our sessions' commits durable
 * whatever the server's default: `synchronous_commit=on` when our session
 * reports `off`. 'local', 'remote_write', 'remote_apply' and 'on' all flush
 * the local WAL first and are an operator's synchronous-replication choice,
 * so they are kept. Carried in the URL because postgres.js sends unknown
 * query parameters as startup parameters (a later one overrides an earlier
 * one): every pool opened from it gets it, the workers', the migrations'
 * and the baseline's cluster processes' (they receive DATABASE_URL).
 * fsync and full_page_writes are server-wide and cannot be set per session.
 */
export function durableSessionUrl(url: string, settings: readonly DurabilitySetting[]): string {
  const commit = settings.find((s) => s.name === 'synchronous_commit');
  if (!commit || commit.durable) return url;
  return `${url}${url.includes('?') ? '&' : '?'}synchronous_commit=on`;
}
