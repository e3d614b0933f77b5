/**
 * One way to open Postgres for every process and thread. porsager/postgres has
 * no acquire timeout, so statement_timeout bounds every query server-side and
 * callers bound their waits with their own deadline.
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
    onnotice: () => {},
    connection: { statement_timeout: o.statementTimeoutMs, application_name: 'bulwark' },
  });
}
