/**
 * `bulwark serve`: wiring only. Config → dependencies → migrations → worker
 * pool → front thread → timers → signals.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { renderHelp } from '../config/options.js';
import {
  checkGateway,
  checkProduction,
  gatewaySpecs,
  SERVICE_HELP_GROUPS,
  withWorkerCount,
  type GatewayConfig,
} from '../config/service.js';
import { BulkheadPressure } from '../resilience/bulkhead-pressure.js';
import type { ReconcileReport } from '../charge/reconciler.js';
import { BACKLOG_REFRESH_MS, gatewayWorkerSettings, type BacklogStats } from '../charge/service.js';
import { systemClock } from '../lib/clock.js';
import type { Dependencies } from '../runtime/dependencies.js';
import type { StartingListener } from '../runtime/starting.js';
import { createLogger, type Logger } from '../runtime/logger.js';
import { drainElapsedSeconds, installShutdown, every, type DrainState } from '../runtime/process.js';
import { versionInfo } from '../runtime/version.js';
import { serviceConfig, startService } from '../service/start.js';
import { startServiceTimers, timerErrors } from '../service/timers.js';
import { createTelemetryLayout, Telemetry } from '../metrics/telemetry.js';
import { RecentWindow } from '../metrics/window.js';
import { renderGatewayMetrics } from '../metrics/gateway-metrics.js';
import { createProcessMetrics } from '../metrics/process-metrics.js';
import { systemRandom } from '../lib/random.js';
import { createProtectionLayout, openProtection, protectionSettings } from '../resilience/protection.js';
import { AdminServer, parseAllowedHosts } from './admin.js';
import { adminState } from './admin-state.js';
import { BreakerHealthChecks, MAX_HEALTH_CHECKS_IN_FLIGHT } from './breaker-health.js';
import { BacklogReading } from './backlog.js';
import { MetricsListener } from './metrics-listener.js';
import { Admission, admissionSettings } from './admission.js';
import { LoopMonitor } from './loop-monitor.js';
import { nativeUws, uwsInfo } from './native.js';
import { Gateway, isQueueFull } from './server.js';
import { SHED_SUMMARY_INTERVAL_MS, shedSummary } from './shed-log.js';
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
  const cores = availableParallelism();
  const parsed = serviceConfig(
    gatewaySpecs,
    argv,
    env,
    serveHelp,
    (c) => checkGateway(withWorkerCount(c, cores)) ?? checkProduction(c, env.NODE_ENV),
  );
  if (!parsed) return;
  const c = withWorkerCount(parsed, cores);
  nativeUws(); // refuse to start on the pure-JS fallback, before anything else starts
  const log = createLogger(c.logLevel, 'bulwark');
  await startService<Workers>(
    c,
    log,
    (deps, starting, early) => startGateway(c, deps, starting, log, early),
    (deps) => startWorkers(c, deps, log),
  );
}

/**
 * The worker pool and the shared memory it is given, started before the
 * migrations run. A worker takes 135-160 ms to load its modules, and the
 * listener opens right after the migrations: started after them, the pool
 * left the first charges of every restart queued with no worker to take
 * them, and they reached the 64 provider slots all at once (docs/mechanisms.md §5).
 */
type Workers = ReturnType<typeof startWorkers>;

function startWorkers(c: GatewayConfig, deps: Dependencies, log: Logger) {
  const clock = systemClock;
  const settings = protectionSettings(c);
  const layout = createProtectionLayout(settings, clock.epochMs());
  const protection = openProtection(layout, settings, (name, t) =>
    log.warn({ breaker: name, from: t.from, to: t.to }, 'breaker transition'),
  );
  const telemetryLayout = createTelemetryLayout();
  const data: WorkerData = {
    settings: gatewayWorkerSettings(c, deps, settings),
    protection: { layout, settings },
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
  let closed = false;
  return {
    clock,
    settings,
    protection,
    telemetryLayout,
    pool,
    /** True once close() began: a start that failed after this stops its workers on purpose. */
    closed: () => closed,
    close: () => {
      closed = true;
      return pool.destroy();
    },
  };
}

/** Longest start-up wait for a worker to load; past it the listener opens anyway (the pool queues until one does). */
const WORKER_LOAD_TIMEOUT_MS = 5_000;

/**
 * Resolves once a worker has answered a task (its modules loaded), or after
 * `timeoutMs` or a failed load, each logged: start-up never hangs on it.
 * What it says: loaded, late or failed.
 */
export async function workerLoaded(
  pool: { run(task: Task): Promise<unknown> },
  log: Pick<Logger, 'warn'>,
  timeoutMs = WORKER_LOAD_TIMEOUT_MS,
): Promise<'loaded' | 'late' | 'failed'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs)));
  try {
    const loaded = pool.run({ op: 'loaded' }).then(
      () => 'loaded' as const,
      (e: unknown) => {
        // A worker that fails to load is replaced by the pool; charges will say so if none can be.
        log.warn({ err: e }, 'a worker failed to load; listening anyway');
        return 'failed' as const;
      },
    );
    const r = await Promise.race([loaded, late]);
    if (r === 'late')
      log.warn({ waited_ms: timeoutMs }, 'no worker loaded in time; listening anyway, charges queue for it');
    return r;
  } finally {
    clearTimeout(timer);
  }
}

async function startGateway(
  c: GatewayConfig,
  deps: Dependencies,
  starting: StartingListener,
  log: Logger,
  early: Workers,
): Promise<void> {
  // Migrated: what is left is this start, well under a second, most of it a
  // worker loading (workerLoaded below). A charge refused meanwhile comes
  // back on the client's own backoff, not a second later with every other
  // one; admission and the bulkheads take that burst. The Fastify baseline
  // keeps asking for a second: with no admission control, the same early
  // retries queue at its provider pool (docs/mechanisms.md §5).
  starting.databaseReady();
  const { clock, settings, protection, telemetryLayout, pool } = early;
  const telemetry = new Telemetry(telemetryLayout);
  const window = new RecentWindow(() => telemetry.http);
  let drain: DrainState = { draining: false, startedAt: null, abandoned: 0 };
  reclaimOnWorkerExit(pool, protection, log, { closing: () => drain.draining || early.closed() });
  const loop = new LoopMonitor();
  const providerBulkhead = protection.bulkheads.provider;
  const providerPressure = new BulkheadPressure();
  const admission = new Admission(
    admissionSettings(c),
    loop,
    () => protection.queueWait.expectedMs(clock.epochMs()),
    systemRandom,
    clock,
    providerBulkhead
      ? {
          waitMs: (inFlight) => providerPressure.expectedWaitMs(providerBulkhead, clock.now(), inFlight),
          budgetMs: c.bulkheadAcquireTimeoutMs,
        }
      : undefined,
    () => protection.answers.provider.floorMs(clock.epochMs()),
  );
  const processMetrics = createProcessMetrics();
  const backlog = new BacklogReading(() => pool.run({ op: 'backlog' }) as Promise<BacklogStats | null>, clock);
  // A failed run of a periodic task (a worker lost, the pool closed) is
  // logged and counted; errors inside a task are the worker's to report. A
  // full worker queue is overload, already shed and counted: the next run comes soon.
  const timerFailed = timerErrors({
    clock,
    log,
    count: (stage) => protection.events.inc(`error_${stage}`),
    expected: isQueueFull,
  });
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
        elapsedSeconds: drainElapsedSeconds(drain),
        abandoned: drain.abandoned,
      }),
      backlog: () => backlog.stats,
      front: () => gateway.frontStats(),
      nowEpochMs: () => clock.epochMs(),
    }) + (await processMetrics.render());
  const gateway = new Gateway(
    { ...c, port: starting.port },
    { run: (t) => pool.run(t), threads: () => pool.threads.length, expectedThreads: c.workers },
    clock,
    log,
    { admission, breakers: protection.breakers },
    telemetry,
    renderMetrics,
  );
  // A charge taken before a worker has loaded its modules waits in the
  // pool's queue, and the queue meets the provider slots as one burst when
  // the worker comes up: in deploy a replacement listened 130-280 ms before
  // its worker ran a task. Meanwhile the starting listener refuses with
  // `Retry-After: 0`, and the clients' own backoff spreads their retries.
  await workerLoaded(pool, log);
  await starting.close();
  const port = await gateway.listen();
  const admin = new AdminServer({
    breakers: protection.breakers,
    allowedHosts: parseAllowedHosts(c.adminAllowedHosts),
    token: c.adminToken,
    state: adminState({
      config: c,
      protectionSettings: settings,
      protection,
      telemetry,
      window,
      state: gateway.state,
      admission,
      workers: () => ({ threads: pool.threads.length, queue_size: pool.queueSize, utilization: pool.utilization }),
      drain: () => drain,
      backlog,
      clock,
    }),
  });
  const adminPort = await admin.listen(c.adminHost, c.adminPort);
  const metricsListener =
    c.metricsPort >= 0
      ? new MetricsListener(renderMetrics, (e) => log.error({ err: e }, 'rendering /metrics failed'))
      : undefined;
  const metricsPort = metricsListener ? await metricsListener.listen(c.metricsHost, c.metricsPort) : port;

  const serviceTimers = await startServiceTimers(
    c,
    gateway.state,
    {
      ping: () => pool.run({ op: 'ping' }),
      reconcile: () => pool.run({ op: 'reconcile' }) as Promise<ReconcileReport>,
      reap: () => pool.run({ op: 'reap' }) as Promise<number>,
    },
    log,
    timerFailed,
  );
  const providerBreaker = protection.breakers.provider;
  // None when no check could end an open period early (its minimum is the whole period).
  const healthChecks =
    providerBreaker && c.breakerHealthCheckMs > 0 && settings.breaker.minOpenMs < settings.breaker.openMs
      ? new BreakerHealthChecks(
          providerBreaker,
          {
            intervalMs: c.breakerHealthCheckMs,
            minOpenMs: settings.breaker.minOpenMs,
            openMs: settings.breaker.openMs,
            // Each check waits at most a slow call: this many cover one, and never more than a handful.
            maxInFlight: Math.min(
              MAX_HEALTH_CHECKS_IN_FLIGHT,
              Math.ceil(settings.breaker.slowCallMs / c.breakerHealthCheckMs) + 1,
            ),
          },
          () => pool.run({ op: 'health' }),
          clock,
          timerFailed('health'),
        )
      : undefined;
  const timers = [
    every(SHED_SUMMARY_INTERVAL_MS, shedSummary(admission, log)),
    every(BACKLOG_REFRESH_MS, () => backlog.refresh(), timerFailed('backlog')),
  ];
  await backlog.refresh().catch(timerFailed('backlog'));
  log.info({ port, adminPort, metricsPort, workers: c.workers, pid: process.pid }, 'listening');

  drain = installShutdown(
    log,
    c.shutdownGraceMs,
    {
      markNotReady: () => {
        gateway.state.ready = false;
      },
      stopAccepting: () => gateway.stopAccepting(),
      whenIdle: (ms) => gateway.state.whenIdle(ms),
      inFlight: () => Math.max(gateway.state.inFlight, gateway.state.tasks),
      async close() {
        await serviceTimers.stop();
        await Promise.all([...timers.map((t) => t.stop()), healthChecks?.stop()]);
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
