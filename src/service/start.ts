/**
 * How both servers stand up, in one order so the two are comparable: the
 * starting listener (/health 200, /ready 503 while the database is waited
 * for), the dependencies (an embedded Postgres, the simulator), the
 * migrations, then the server's own start.
 *
 * A start that fails at any step stops the dependencies it started before
 * the error goes up: an embedded Postgres is no child that dies with us, so
 * left running it would hold its port and data directory against the next
 * start (and against a second server pointed at the same directory).
 */
import { ConfigError, parseOptions, type Specs, type Values } from '../config/options.js';
import type { CommonConfig } from '../config/service.js';
import { connect } from '../db/connect.js';
import { migrate } from '../db/migrations.js';
import { retryStartupStep } from '../db/wait.js';
import { dbWaitLog, startDependencies, type Dependencies } from '../runtime/dependencies.js';
import type { Logger } from '../runtime/logger.js';
import { listenWhileStarting, type StartingListener } from '../runtime/starting.js';

export type ServiceConfig = CommonConfig & { port: number };

/** A migration may rewrite a large table: bounded, but far above a request's statements. */
const MIGRATION_STATEMENT_TIMEOUT_MS = 60_000;
/** Seconds the migration connection is given to close before it is dropped. */
const MIGRATOR_CLOSE_TIMEOUT_S = 2;

/**
 * A server command's settings (flag > environment > default), validated by
 * `check`; undefined when --help was asked for (the help is printed). A
 * setting that is not allowed throws ConfigError.
 */
export function serviceConfig<S extends Specs>(
  specs: S,
  argv: string[],
  env: NodeJS.ProcessEnv,
  help: () => string,
  check: (c: Values<S>) => string | undefined,
): Values<S> | undefined {
  const { values: c, help: helpAsked } = parseOptions(specs, argv, env);
  if (helpAsked) {
    console.log(help());
    return undefined;
  }
  const invalid = check(c);
  if (invalid) throw new ConfigError(invalid);
  return c;
}

/** What a service starts before the migrations (see startService), closed if the start fails after. */
export interface Prepared {
  close(): Promise<void>;
}

/**
 * Start the dependencies, `prepare` what needs no migrated database, migrate, then `start` the server on the port the
 * starting listener holds (`start` closes it right before it listens). A
 * failure anywhere stops the dependencies and rethrows.
 */
export async function startService<P extends Prepared | undefined = undefined>(
  c: ServiceConfig,
  log: Logger,
  start: (deps: Dependencies, starting: StartingListener, prepared: P) => Promise<void>,
  prepare?: (deps: Dependencies) => P,
): Promise<void> {
  const starting = await listenWhileStarting(c.host, c.port);
  let deps: Dependencies;
  try {
    // Stops what it started itself when it fails half-way.
    deps = await startDependencies(c, log);
  } catch (e) {
    await starting.close();
    throw e;
  }
  let prepared: P | undefined;
  try {
    // Started before the migrations, so what it starts (the gateway's
    // worker threads loading their modules) overlaps them.
    prepared = prepare?.(deps);
    // Retried while Postgres restarts under it: the migrations run in one transaction under an advisory lock.
    await retryStartupStep(
      deps.databaseUrl,
      {
        timeoutMs: c.dbStartupTimeoutMs,
        connectTimeoutMs: c.dbConnectTimeoutMs,
        onWait: dbWaitLog(log),
      },
      () => migrateDatabase(deps.databaseUrl, c.dbConnectTimeoutMs, log),
    );
    await start(deps, starting, prepared as P);
  } catch (e) {
    await starting.close(); // a no-op when `start` closed it already
    await prepared?.close();
    await deps.stop();
    throw e;
  }
}

/** Apply the pending migrations over one connection of its own, outside DB_POOL_MAX, closed before the server opens its pool. */
async function migrateDatabase(url: string, connectTimeoutMs: number, log: Logger): Promise<void> {
  const migrator = connect({
    url,
    max: 1,
    connectTimeoutMs,
    statementTimeoutMs: MIGRATION_STATEMENT_TIMEOUT_MS,
  });
  try {
    const applied = await migrate(migrator);
    if (applied.length > 0) log.info({ applied }, 'migrations applied');
  } finally {
    await migrator.end({ timeout: MIGRATOR_CLOSE_TIMEOUT_S });
  }
}
