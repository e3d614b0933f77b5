/**
 * One worker of `bulwark baseline --processes N` (./cluster.ts): the same
 * Fastify app, service and --hardened plugins as the single process, with
 * this process's share of the connection budgets, and nothing that must run
 * once per cluster (migrations, reconciler, reaper: the primary's). Every
 * answer names the worker in X-Bulwark-Pid, so a client (and the tests) can
 * see which process served it.
 *
 * It builds everything, tells the primary, and listens only when told to:
 * the primary holds the port with its starting listener until then. On
 * SIGTERM, or on the primary's `drain` message, it drains as the single
 * process does and reports what it abandoned before exiting.
 */
import cluster from 'node:cluster';
import type { BaselineConfig } from '../config/service.js';
import { chargeServiceSettings, createChargeService } from '../charge/service.js';
import type { Logger } from '../runtime/logger.js';
import { every, installShutdown } from '../runtime/process.js';
import { buildBaselineApp } from './app.js';
import { fastifyDrainable } from './drain.js';
import type { FromWorker, ToWorker } from './cluster.js';
import { breakerOptionsFor, createProviderBreaker, registerUnderPressure } from './hardened.js';
import { ServiceState } from '../service/state.js';
import { DB_CHECK_INTERVAL_MS } from '../service/timers.js';

export const PID_HEADER = 'x-bulwark-pid';

function tell(m: FromWorker): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected) return resolve();
    process.send!(m, undefined, {}, () => resolve());
  });
}

function nextListen(): Promise<number> {
  return new Promise((resolve) => {
    const on = (m: ToWorker) => {
      if (m?.type !== 'listen') return;
      process.off('message', on);
      resolve(m.port);
    };
    process.on('message', on);
  });
}

export async function serveClusterWorker(c: BaselineConfig, log: Logger, processes: number): Promise<void> {
  const urls = { databaseUrl: c.databaseUrl ?? '', providerUrl: c.providerUrl ?? '', fxUrl: c.fxUrl ?? '' };
  if (!urls.databaseUrl || !urls.providerUrl || !urls.fxUrl)
    throw new Error('a cluster worker needs DATABASE_URL, PROVIDER_URL and FX_URL from its primary');
  const settings = chargeServiceSettings(c, urls, 1 / processes);
  const breaker = c.hardened ? createProviderBreaker(log, breakerOptionsFor(settings.providerConnections)) : undefined;
  const service = createChargeService(settings, {
    log,
    ...(breaker ? { decorateProvider: breaker.decorateProvider } : {}),
  });
  const state = new ServiceState();
  const pid = String(process.pid);
  const app = buildBaselineApp({
    settings: c,
    service,
    state,
    log,
    plugins: (a) => {
      a.addHook('onSend', (_req, reply, payload, done) => {
        reply.header(PID_HEADER, pid);
        done(null, payload);
      });
      if (c.hardened) registerUnderPressure(a, state, () => service.ping());
    },
  });
  await app.ready();
  const listen = nextListen();
  await tell({ type: 'built' });
  const port = await listen;
  await app.listen({ host: c.host, port });
  const timer = every(DB_CHECK_INTERVAL_MS, () => state.refreshDbCheck(() => service.ping()));
  await state.refreshDbCheck(() => service.ping());
  await tell({ type: 'listening' });
  log.info({ port, pid: process.pid, worker: cluster.worker?.id }, 'worker listening');

  const drain = installShutdown(
    log,
    c.shutdownGraceMs,
    fastifyDrainable(app, state, async () => {
      await timer.stop();
      await app.close();
      await service.close();
      breaker?.shutdown();
      const startedAt = drain.startedAt ?? performance.now();
      await tell({
        type: 'drained',
        abandoned: drain.abandoned,
        drain_duration_seconds: (performance.now() - startedAt) / 1000,
      });
    }),
  );
  process.on('message', (m: ToWorker) => {
    if (m?.type === 'drain' && !drain.draining) process.kill(process.pid, 'SIGTERM');
  });
}
