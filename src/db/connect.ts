/**
 * One way to open Postgres for every process and thread. porsager/postgres has
 * no acquire timeout, so statement_timeout bounds every query server-side and
 * the services bound every statement client-side too (src/db/database.ts):
 * a partitioned network never delivers the server's timeout.
 */
import postgres, { type Sql } from 'postgres';
import { systemRandom, type Random } from '../lib/random.js';

export interface DbOptions {
  url: string;
  /** Connections this pool may open. */
  max: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  /** Idle connections close after this long. */
  idleTimeoutS?: number;
  /** Jitter of the reconnect backoff. */
  random?: Random;
}

/**
 * Longest wait before a closed connection reconnects, in seconds.
 * postgres.js's own backoff grows as 3^n / 100 s up to 20 s, where n counts
 * failed connections across the whole pool and is reset only by a successful
 * one: an immediate stop closes every connection at once and each attempt
 * while the server is down adds one (under load n passed 19 within 0.4 s of
 * the stop), so the first connects after the server is back are scheduled
 * 10-20 s later.
 * Every statement meanwhile waits its whole deadline on a pool that will not
 * connect (seen as 16 DB slots held to the deadline, goodput 0, until a
 * restart). An attempt against a server that is down costs one refused
 * connect; with this cap the pool is serving within a second of the server
 * accepting connections again.
 */
export const RECONNECT_BACKOFF_CAP_S = 0.5;

/** postgres.js's curve (3^n / 100 s, half to full jitter), capped at RECONNECT_BACKOFF_CAP_S. */
export function reconnectBackoffS(retries: number, random: Random): number {
  return (0.5 + random() / 2) * Math.min(3 ** retries / 100, RECONNECT_BACKOFF_CAP_S);
}

export function connect(o: DbOptions): Sql {
  const random = o.random ?? systemRandom;
  return postgres(o.url, {
    max: o.max,
    connect_timeout: Math.max(1, Math.ceil(o.connectTimeoutMs / 1000)),
    idle_timeout: o.idleTimeoutS ?? 60,
    max_lifetime: 60 * 30,
    backoff: (retries: number) => reconnectBackoffS(retries, random),
    // TCP keepalive from 10 s of idleness (postgres.js's default is 60 s), so
    // the kernel notices a dead path under an idle pooled connection sooner.
    // It cannot see a path that dies under a query in flight (unacknowledged
    // data suspends keepalive): Database's client-side bound covers that.
    keep_alive: 10,
    // One statement per connection at a time. With postgres.js's default
    // (100 pipelined), a Postgres immediate stop under load resolved
    // statements with the rows of others sent on the same connection: the
    // lab's crash scenario charged 4-37 keys twice on the baseline, each
    // under another key's provider key (measured). Every statement is bounded
    // by the DB gate at the pool's size anyway, so nothing had to pipeline.
    // (A documented option, missing from the package's types.)
    ...({ max_pipeline: 1 } as object),
    onnotice: () => {},
    connection: { statement_timeout: o.statementTimeoutMs, application_name: 'bulwark' },
  });
}
