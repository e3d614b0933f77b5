/**
 * `bulwark serve`: wiring only. Config → dependencies → migrations → worker
 * pool → front thread → timers → signals.
 */
import { Piscina } from 'piscina';
import { ConfigError, parseOptions, renderHelp } from '../config/options.js';
import { checkCommon, gatewaySpecs, type GatewayConfig } from '../config/service.js';
import type { ChargeServiceSettings } from '../charge/service.js';
import { connect } from '../db/connect.js';
import { migrate } from '../db/migrations.js';
import { systemClock } from '../lib/clock.js';
import { startDependencies } from '../runtime/dependencies.js';
import { createLogger } from '../runtime/logger.js';
import { installShutdown, every } from '../runtime/process.js';
import { nativeUws } from './native.js';
import { Gateway } from './server.js';
import type { Task } from './tasks.js';

export const serveHelp = (): string =>
  renderHelp('bulwark serve [options]', 'Run the charge gateway (uWebSockets.js front thread + piscina workers).', gatewaySpecs);

export async function serveCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const { values: c, help } = parseOptions(gatewaySpecs, argv, env);
  if (help) {
    console.log(serveHelp());
    return;
  }
  const problem = checkCommon(c);
  if (problem) throw new ConfigError(problem);
  nativeUws(); // refuse to start on the pure-JS fallback, before anything else starts

  const log = createLogger(c.logLevel, 'bulwark');
  const deps = await startDependencies(c, log);
  const migrator = connect({ url: deps.databaseUrl, max: 1, connectTimeoutMs: c.dbConnectTimeoutMs, statementTimeoutMs: 60_000 });
  try {
    const applied = await migrate(migrator);
    if (applied.length > 0) log.info({ applied }, 'migrations applied');
  } finally {
    await migrator.end({ timeout: 2 });
  }

  const pool = new Piscina<Task, unknown>({
    filename: new URL('./worker.js', import.meta.url).href,
    minThreads: c.workers,
    maxThreads: c.workers,
    idleTimeout: Infinity,
    concurrentTasksPerWorker: c.workerConcurrency,
    maxQueue: c.workerQueueMax,
    // Workers do async I/O; Atomics.wait would block their event loops.
    atomics: 'disabled',
    workerData: { settings: workerSettings(c, deps) },
  });
  const gateway = new Gateway(c, { run: (t) => pool.run(t), threads: () => pool.threads.length, expectedThreads: c.workers }, systemClock, log);
  const port = await gateway.listen();

  const timers = [
    every(1000, () => gateway.refreshDbCheck()),
    every(c.reconcileIntervalMs, async () => {
      const r = (await pool.run({ op: 'reconcile' })) as { leased: number };
      if (r.leased > 0) log.info({ reconcile: r }, 'reconciler finished charges');
    }),
    every(c.reapIntervalMs, async () => {
      const n = (await pool.run({ op: 'reap' })) as number;
      if (n > 0) log.info({ reaped: n }, 'reaper pruned completed keys');
    }),
  ];
  await gateway.refreshDbCheck();
  log.info({ port, workers: c.workers, pid: process.pid }, 'listening');

  installShutdown(log, c.shutdownGraceMs, {
    stopAccepting: () => gateway.stopAccepting(),
    whenIdle: (ms) => gateway.whenIdle(ms),
    inFlight: () => gateway.inFlight,
    async close() {
      for (const t of timers) t.stop();
      gateway.close();
      await pool.destroy();
      await deps.stop();
    },
  });
}

function workerSettings(c: GatewayConfig, deps: { databaseUrl: string; providerUrl: string; fxUrl: string }): ChargeServiceSettings {
  const per = (total: number) => Math.max(1, Math.ceil(total / c.workers));
  return {
    databaseUrl: deps.databaseUrl,
    providerUrl: deps.providerUrl,
    fxUrl: deps.fxUrl,
    dbPoolMax: Math.max(1, Math.floor(c.dbPoolMax / c.workers)),
    dbConnectTimeoutMs: c.dbConnectTimeoutMs,
    dbStatementTimeoutMs: c.dbStatementTimeoutMs,
    leaseMs: c.leaseMs,
    providerTimeoutMs: c.providerTimeoutMs,
    providerConnections: per(c.providerConnections),
    providerMaxAttempts: c.providerMaxAttempts,
    retryBaseMs: c.retryBaseMs,
    retryMaxMs: c.retryMaxMs,
    fxTimeoutMs: c.fxTimeoutMs,
    fxConnections: per(c.fxConnections),
    keepAliveMs: c.keepAliveMs,
    reconcileBatch: c.reconcileBatch,
    retentionHours: c.retentionHours,
  };
}
