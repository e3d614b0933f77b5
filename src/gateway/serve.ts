/**
 * `bulwark serve`: wiring only. Config → dependencies → migrations → worker
 * pool → front thread → timers → signals.
 */
import { Piscina } from 'piscina';
import { ConfigError, parseOptions, renderHelp } from '../config/options.js';
import {
  checkGateway,
  checkProduction,
  gatewaySpecs,
  probeTimeoutMs,
  SERVICE_HELP_GROUPS,
  type GatewayConfig,
} from '../config/service.js';
import { BulkheadPressure } from '../resilience/bulkhead-pressure.js';
import { reconcileBacklog, type ReconcileReport } from '../charge/reconciler.js';
import { BACKLOG_REFRESH_MS, chargeServiceSettings, type BacklogStats } from '../charge/service.js';
import { errorReporter } from '../charge/error-report.js';
import { connect } from '../db/connect.js';
import { migrate } from '../db/migrations.js';
import { systemClock } from '../lib/clock.js';
import { startDependencies } from '../runtime/dependencies.js';
import { listenWhileStarting } from '../runtime/starting.js';
import { createLogger } from '../runtime/logger.js';
import { installShutdown, every, type DrainState } from '../runtime/process.js';
import { versionInfo } from '../runtime/version.js';
import { createTelemetryLayout, Telemetry } from '../metrics/telemetry.js';
import { RecentWindow } from '../metrics/window.js';
import { recentRed } from '../metrics/red.js';
import { renderGatewayMetrics } from '../metrics/gateway-metrics.js';
import { createProcessMetrics } from '../metrics/process-metrics.js';
import { systemRandom } from '../lib/random.js';
import { createProtectionLayout, openProtection, type ProtectionSettings } from '../resilience/protection.js';
import { AdminServer, parseAllowedHosts } from './admin.js';
import { MetricsListener } from './metrics-listener.js';
import { Admission } from './admission.js';
import { LoopMonitor } from './loop-monitor.js';
import { nativeUws, uwsInfo } from './native.js';
import { Gateway, isQueueFull } from './server.js';
import { reclaimOnWorkerExit } from './worker-exits.js';
import type { Task } from './tasks.js';
import type { WorkerData } from './worker.js';

export const serveHelp = (): string =>
  renderHelp(
    'bulwark serve [options]',
    'Run the charge gateway (uWebSockets.js front thread + piscina workers).',
    gatewaySpecs,
    SERVICE_HELP_GROUPS,
  );

export async function serveCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const { values: c, help } = parseOptions(gatewaySpecs, argv, env);
  if (help) {
    console.log(serveHelp());
    return;
  }
  const problem = checkGateway(c) ?? checkProduction(c, env.NODE_ENV);
  if (problem) throw new ConfigError(problem);
  nativeUws(); // refuse to start on the pure-JS fallback, before anything else starts

  const log = createLogger(c.logLevel, 'bulwark');
  // /health 200 and /ready 503 while the database is waited for.
  const starting = await listenWhileStarting(c.host, c.port);
  const deps = await startDependencies(c, log);
  // Outside DB_POOL_MAX: one connection, closed before the workers open theirs.
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

  const protectionSettings = protectionFrom(c);
  const layout = createProtectionLayout(protectionSettings, systemClock.epochMs());
  const protection = openProtection(layout, protectionSettings, (name, t) =>
    log.warn({ breaker: name, from: t.from, to: t.to }, 'breaker transition'),
  );
  const telemetryLayout = createTelemetryLayout();
  const telemetry = new Telemetry(telemetryLayout);
  const window = new RecentWindow(() => telemetry.http);
  const data: WorkerData = {
    settings: chargeServiceSettings(c, deps, 1 / c.workers),
    protection: { layout, settings: protectionSettings },
    telemetry: telemetryLayout,
    logLevel: c.logLevel,
  };
  const pool = new Piscina<Task, unknown>({
    filename: new URL('./worker.js', import.meta.url).href,
    minThreads: c.workers,
    maxThreads: c.workers,
    idleTimeout: Infinity,
    concurrentTasksPerWorker: c.workerConcurrency,
    maxQueue: c.workerQueueMax,
    // Workers do async I/O; Atomics.wait would block their event loops.
    atomics: 'disabled',
    workerData: data,
  });
  reclaimOnWorkerExit(pool, protection, log, { closing: () => drain.draining });
  const loop = new LoopMonitor();
  const on = c.mechanisms;
  const providerBulkhead = protection.bulkheads.provider;
  const providerPressure = new BulkheadPressure();
  const admission = new Admission(
    {
      shedding: on && c.shedding,
      limit: on ? c.concurrencyLimit : 'off',
      staticLimit: c.concurrencyLimitStatic,
      minLimit: c.concurrencyLimitMin,
      maxLimit: c.concurrencyLimitMax,
      loopDelayTargetMs: c.loopDelayTargetMs,
      slowStartMs: c.sheddingSlowStartMs,
    },
    loop,
    () => protection.queueWait.expectedMs(systemClock.epochMs()),
    systemRandom,
    systemClock,
    providerBulkhead
      ? {
          waitMs: (inFlight) => providerPressure.expectedWaitMs(providerBulkhead, systemClock.now(), inFlight),
          budgetMs: c.bulkheadAcquireTimeoutMs,
        }
      : undefined,
    () => protection.answers.provider.floorMs(systemClock.epochMs()),
  );
  let drain: DrainState = { draining: false, startedAt: null, abandoned: 0 };
  const processMetrics = createProcessMetrics();
  // The unfinished charges, as a worker last read them (the front thread does no DB I/O).
  let backlog: BacklogStats | null = null;
  let backlogAt: number | null = null;
  const refreshBacklog = async () => {
    const b = (await pool.run({ op: 'backlog' })) as BacklogStats | null;
    if (b) {
      backlog = b;
      backlogAt = systemClock.epochMs();
    }
  };
  // A failed run of a periodic task (a worker lost, the pool closed) is logged
  // (rate-limited like the workers' own reports) and counted; errors inside a
  // task are the worker's to report. A full worker queue is overload, already
  // shed and counted: the next run comes soon.
  const frontErrors = errorReporter({
    clock: systemClock,
    log,
    count: (stage) => protection.events.inc(`error_${stage}`),
  });
  const timerFailed = (stage: 'reconcile' | 'reap' | 'backlog') => (e: unknown) => {
    if (!isQueueFull(e)) frontErrors(stage, e);
  };
  const renderMetrics = async (): Promise<string> =>
    renderGatewayMetrics({
      build: {
        version: versionInfo.version,
        git_commit: versionInfo.git_commit,
        node: versionInfo.node,
        uws: uwsInfo.native ? `native ${uwsInfo.version}` : 'fallback',
      },
      telemetry,
      protection,
      window,
      admission: () => admission.stats(),
      pool: () => ({ threads: pool.threads.length, queueSize: pool.queueSize }),
      drain: () => ({
        draining: drain.draining,
        elapsedMs: drain.startedAt === null ? 0 : performance.now() - drain.startedAt,
        abandoned: drain.abandoned,
      }),
      backlog: () => backlog,
      front: () => gateway.frontStats(),
      nowEpochMs: () => systemClock.epochMs(),
    }) + (await processMetrics.render());
  const gateway = new Gateway(
    { ...c, port: starting.port },
    { run: (t) => pool.run(t), threads: () => pool.threads.length, expectedThreads: c.workers },
    systemClock,
    log,
    { admission, breakers: protection.breakers },
    telemetry,
    renderMetrics,
  );
  await starting.close();
  const port = await gateway.listen();
  const admin = new AdminServer({
    breakers: protection.breakers,
    allowedHosts: parseAllowedHosts(c.adminAllowedHosts),
    token: c.adminToken,
    state: () => {
      const now = systemClock.epochMs();
      return {
        red: recentRed(telemetry, window, ['/charge', '/charges/:key', '/quote']),
        draining: gateway.draining,
        drain: {
          elapsed_seconds: drain.startedAt === null ? 0 : (performance.now() - drain.startedAt) / 1000,
          abandoned: drain.abandoned,
        },
        settings: {
          loop_delay_target_ms: c.loopDelayTargetMs,
          breaker: protectionSettings.breaker,
          retry_budget: protectionSettings.budget,
          bulkhead_acquire_timeout_ms: c.bulkheadAcquireTimeoutMs,
          db_acquire_timeout_ms: c.dbAcquireTimeoutMs,
        },
        in_flight_requests: gateway.inFlight,
        admission: admission.stats(),
        breakers: Object.fromEntries(Object.entries(protection.breakers).map(([n, b]) => [n, b.stats(now)])),
        bulkheads: Object.fromEntries(Object.entries(protection.bulkheads).map(([n, b]) => [n, b.stats()])),
        retry_budget: protection.budget?.stats() ?? null,
        events: protection.events.snapshot(),
        charges: {
          checked_at: backlogAt === null ? null : new Date(backlogAt).toISOString(),
          oldest_started_age_seconds: backlog?.oldestStartedAgeSeconds ?? null,
          needs_attention: backlog
            ? {
                count: backlog.needsAttention,
                oldest: backlog.oldestNeedingAttention.map((o) => ({
                  key_hash: o.keyHash,
                  created_at: o.createdAt,
                  reconcile_attempts: o.reconcileAttempts,
                })),
              }
            : null,
        },
        workers: { threads: pool.threads.length, queue_size: pool.queueSize, utilization: pool.utilization },
        mechanisms: {
          shedding: on && c.shedding,
          concurrency_limit: on ? c.concurrencyLimit : 'off',
          breakers: protectionSettings.breakers,
          bulkheads: protectionSettings.bulkheads,
          retry_budget: protectionSettings.retryBudget,
        },
      };
    },
  });
  const adminPort = await admin.listen(c.adminHost, c.adminPort);
  const metricsListener =
    c.metricsPort >= 0
      ? new MetricsListener(renderMetrics, (e) => log.error({ err: e }, 'rendering /metrics failed'))
      : undefined;
  const metricsPort = metricsListener ? await metricsListener.listen(c.metricsHost, c.metricsPort) : port;

  // Shedding is logged as a summary at most every 5 s, never per request.
  let lastShed = { ...admission.shed };
  const timers = [
    every(1000, () => gateway.refreshDbCheck()),
    every(5000, async () => {
      const now = { ...admission.shed };
      const delta = Object.fromEntries(Object.entries(now).map(([k, v]) => [k, v - lastShed[k as keyof typeof now]]));
      lastShed = now;
      if (Object.values(delta).some((v) => v > 0))
        log.warn(
          { shed: delta, window_seconds: 5, limit: admission.limit.current, in_flight: admission.inFlight },
          'requests shed',
        );
    }),
    every(
      c.reconcileIntervalMs,
      async () => {
        const r = await reconcileBacklog(
          () => pool.run({ op: 'reconcile' }) as Promise<ReconcileReport>,
          c.reconcileBatch,
        );
        if (r.leased > 0) log.info({ reconcile: r }, 'reconciler finished charges');
      },
      timerFailed('reconcile'),
    ),
    every(
      c.reapIntervalMs,
      async () => {
        const n = (await pool.run({ op: 'reap' })) as number;
        if (n > 0) log.info({ reaped: n }, 'reaper pruned completed keys');
      },
      timerFailed('reap'),
    ),
    every(BACKLOG_REFRESH_MS, refreshBacklog, timerFailed('backlog')),
  ];
  await gateway.refreshDbCheck();
  await refreshBacklog().catch(timerFailed('backlog'));
  log.info({ port, adminPort, metricsPort, workers: c.workers, pid: process.pid }, 'listening');

  drain = installShutdown(
    log,
    c.shutdownGraceMs,
    {
      markNotReady: () => {
        gateway.ready = false;
      },
      stopAccepting: () => gateway.stopAccepting(),
      whenIdle: (ms) => gateway.whenIdle(ms),
      inFlight: () => Math.max(gateway.inFlight, gateway.tasks),
      async close() {
        await Promise.all(timers.map((t) => t.stop()));
        loop.close();
        window.close();
        admin.close();
        metricsListener?.close();
        gateway.close();
        await pool.destroy();
        await deps.stop();
      },
    },
    c.shutdownDelayMs,
  );
}

export function protectionFrom(c: GatewayConfig): ProtectionSettings {
  const on = c.mechanisms;
  return {
    breakers: on && c.breakers,
    breaker: {
      windowMs: c.breakerWindowMs,
      buckets: 10,
      minCalls: c.breakerMinCalls,
      failureRateThreshold: c.breakerFailureRate,
      slowCallMs: c.breakerSlowCallMs,
      slowCallRateThreshold: c.breakerSlowCallRate,
      openMs: c.breakerOpenMs,
      halfOpenProbes: c.breakerHalfOpenProbes,
      halfOpenSuccessRatio: c.breakerHalfOpenSuccessRatio,
      probeTimeoutMs: probeTimeoutMs(c),
    },
    bulkheads: on && c.bulkheads,
    providerBulkhead: { limit: c.providerBulkhead, maxWaiting: c.bulkheadMaxWaiting },
    fxBulkhead: { limit: c.fxBulkhead, maxWaiting: c.bulkheadMaxWaiting },
    bulkheadAcquireTimeoutMs: c.bulkheadAcquireTimeoutMs,
    db: { limit: c.dbPoolMax, maxWaiting: c.bulkheadMaxWaiting },
    dbAcquireTimeoutMs: c.dbAcquireTimeoutMs,
    retryBudget: on && c.retryBudget,
    budget: {
      ratio: c.retryBudgetRatio,
      minPerSecond: c.retryBudgetMinPerSecond,
      maxTokens: Math.max(10, c.retryBudgetMinPerSecond * 10),
    },
  };
}
