/**
 * One way to open Postgres for every process and thread. porsager/postgres has
 * no acquire timeout, so statement_timeout bounds every query server-side and
 * the services bound every statement client-side too (src/db/database.ts):
 * a partitioned network never delivers the server's timeout.
 */
import postgres, { type Sql } from 'postgres';

export interface DbOptions {
  url: string;
  /** Connections this pool may open. */
  max: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  /** Idle connections close after this long. */
  idleTimeoutS?: number;
}

export function connect(o: DbOptions): Sql {
  return postgres(o.url, {
    max: o.max,
    connect_timeout: Math.max(1, Math.ceil(o.connectTimeoutMs / 1000)),
    idle_timeout: o.idleTimeoutS ?? 60,
    max_lifetime: 60 * 30,
    // TCP keepalive from 10 s of idleness (postgres.js's default is 60 s), so
    // the kernel notices a dead path under an idle pooled connection sooner.
    // It cannot see a path that dies under a query in flight (unacknowledged
    // data suspends keepalive): Database's client-side bound covers that.
    keep_alive: 10,
    onnotice: () => {},
    connection: { statement_timeout: o.statementTimeoutMs, application_name: 'bulwark' },
  });
}
