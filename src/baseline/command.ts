/**
 * `bulwark baseline`: wiring only, in the order of `bulwark serve` so the two
 * are comparable: config → dependencies → migrations → charge service (one
 * for the process: the whole DB pool and connection budgets) → Fastify →
 * timers → signals.
 */
import cluster from 'node:cluster';
import { ConfigError, parseOptions, renderHelp } from '../config/options.js';
import {
  baselineSpecs,
  checkCommon,
  checkProduction,
  SERVICE_HELP_GROUPS,
  type BaselineConfig,
} from '../config/service.js';
import { reconcileBacklog } from '../charge/reconciler.js';
import { chargeServiceSettings, createChargeService } from '../charge/service.js';
import { connect } from '../db/connect.js';
import { migrate } from '../db/migrations.js';
import { startDependencies, type Dependencies } from '../runtime/dependencies.js';
import { listenWhileStarting, type StartingListener } from '../runtime/starting.js';
import { createLogger, type Logger } from '../runtime/logger.js';
import { every, installShutdown } from '../runtime/process.js';
import { buildBaselineApp } from './app.js';
import { processCount, startClusterPrimary } from './cluster.js';
import { serveClusterWorker } from './cluster-worker.js';
import { breakerOptionsFor, createProviderBreaker, registerUnderPressure } from './hardened.js';
import { ServiceState } from './state.js';

export const baselineHelp = (): string =>
  renderHelp(
    'bulwark baseline [options]',
    "Run the conventional Fastify baseline doing the gateway's job: one Postgres pool per process, plain retries; --processes N runs N Fastify processes behind node:cluster (default one per core). --hardened adds @fastify/under-pressure (with a DB health check) and an opossum breaker with a capacity around the provider.",
    baselineSpecs,
    SERVICE_HELP_GROUPS,
  );

export async function baselineCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const { values: c, help } = parseOptions(baselineSpecs, argv, env);
  if (help) {
    console.log(baselineHelp());
    return;
  }
  const invalid = checkCommon(c) ?? checkProduction(c, env.NODE_ENV);
  if (invalid) throw new ConfigError(invalid);

  const log = createLogger(c.logLevel, 'bulwark-baseline');
  // A cluster worker serves only; the primary below owns the rest.
  if (cluster.isWorker) return serveClusterWorker(c, log, processCount(c));
  // /health 200 and /ready 503 while the database is waited for.
  const starting = await listenWhileStarting(c.host, c.port);
  const deps = await startDependencies(c, log);
  try {
    await start(c, deps, log, starting);
  } catch (e) {
    // Do not leave an embedded Postgres or a simulator behind a failed start.
    await starting.close();
    await deps.stop();
    throw e;
  }
}

async function start(c: BaselineConfig, deps: Dependencies, log: Logger, starting: StartingListener): Promise<void> {
  const migrator = connect({
    url: deps.databaseUrl,
    max: 1,
    connectTimeoutMs: c.dbConnectTimeoutMs,
    statementTimeoutMs: 60_000,
  });
  try {
    const applied = await migrate(migrator);
    if (applied.length > 0) log.info({ applied }, 'migrations applied');
  } finally {
    await migrator.end({ timeout: 2 });
  }
  if (processCount(c) > 1) return startClusterPrimary(c, deps, log, starting);

  const settings = chargeServiceSettings(c, deps);
  const breaker = c.hardened ? createProviderBreaker(log, breakerOptionsFor(settings.providerConnections)) : undefined;
  const service = createChargeService(settings, {
    log,
    ...(breaker ? { decorateProvider: breaker.decorateProvider } : {}),
  });
  const state = new ServiceState();
  const app = buildBaselineApp({
    settings: c,
    service,
    state,
    log,
    ...(c.hardened ? { plugins: (a) => registerUnderPressure(a, state, () => service.ping()) } : {}),
  });
  await starting.close();
  await app.listen({ host: c.host, port: starting.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : c.port;

  const timers = [
    every(1000, () => state.refreshDbCheck(() => service.ping())),
    every(
      c.reconcileIntervalMs,
      async () => {
        const r = await reconcileBacklog(() => service.reconcile(), c.reconcileBatch);
        if (r.leased > 0) log.info({ reconcile: r }, 'reconciler finished charges');
      },
      (e) => log.error({ err: e }, 'reconcile failed'),
    ),
    every(
      c.reapIntervalMs,
      async () => {
        const n = await service.reap();
        if (n > 0) log.info({ reaped: n }, 'reaper pruned completed keys');
      },
      (e) => log.error({ err: e }, 'reap failed'),
    ),
  ];
  await state.refreshDbCheck(() => service.ping());
  log.info({ port, pid: process.pid, hardened: c.hardened }, 'listening');

  installShutdown(log, c.shutdownGraceMs, {
    stopAccepting() {
      state.draining = true;
      // Closes the listener (and idle keep-alive connections); busy ones close
      // as they answer, since every answer while draining says Connection: close.
      app.server.close();
    },
    whenIdle: (ms) => state.whenIdle(ms),
    inFlight: () => state.inFlight,
    async close() {
      await Promise.all(timers.map((t) => t.stop()));
      await app.close();
      await service.close();
      breaker?.shutdown();
      await deps.stop();
    },
  });
}
