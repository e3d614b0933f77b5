/**
 * `bulwark baseline`: wiring only, in the order of `bulwark serve` so the two
 * are comparable: config → dependencies → migrations → charge service (one
 * for the process: the whole DB pool and connection budgets) → Fastify →
 * timers → signals.
 */
import cluster from 'node:cluster';
import { renderHelp } from '../config/options.js';
import {
  baselineSpecs,
  checkCommon,
  checkProduction,
  SERVICE_HELP_GROUPS,
  type BaselineConfig,
} from '../config/service.js';
import { chargeServiceSettings, createChargeService } from '../charge/service.js';
import { systemClock } from '../lib/clock.js';
import type { Dependencies } from '../runtime/dependencies.js';
import type { StartingListener } from '../runtime/starting.js';
import { createLogger, type Logger } from '../runtime/logger.js';
import { installShutdown } from '../runtime/process.js';
import { serviceConfig, startService } from '../service/start.js';
import { ServiceState } from '../service/state.js';
import { startServiceTimers, timerErrors } from '../service/timers.js';
import { buildBaselineApp } from './app.js';
import { fastifyDrainable } from './drain.js';
import { processCount, startClusterPrimary } from './cluster.js';
import { serveClusterWorker } from './cluster-worker.js';
import { breakerOptionsFor, createProviderBreaker, registerUnderPressure } from './hardened.js';

export const baselineHelp = (): string =>
  renderHelp(
    'bulwark baseline [options]',
    "Run the conventional Fastify baseline doing the gateway's job: one process, one Postgres pool, plain retries. --hardened adds @fastify/under-pressure and an opossum breaker around the provider.",
    baselineSpecs,
    SERVICE_HELP_GROUPS,
  );

export async function baselineCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const c = serviceConfig(
    baselineSpecs,
    argv,
    env,
    baselineHelp,
    (c) => checkCommon(c) ?? checkProduction(c, env.NODE_ENV),
  );
  if (!c) return;
  const log = createLogger(c.logLevel, 'bulwark-baseline');
  // A cluster worker serves only; the primary owns dependencies, migrations and timers.
  if (cluster.isWorker) return serveClusterWorker(c, log, processCount(c));
  await startService(c, log, (deps, starting) => startBaseline(c, deps, starting, log));
}

async function startBaseline(
  c: BaselineConfig,
  deps: Dependencies,
  starting: StartingListener,
  log: Logger,
): Promise<void> {
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

  // The baseline has no counters: a failed run is logged (rate-limited) only.
  const timers = await startServiceTimers(c, state, service, log, timerErrors({ clock: systemClock, log }));
  log.info({ port, pid: process.pid, hardened: c.hardened }, 'listening');

  installShutdown(
    log,
    c.shutdownGraceMs,
    fastifyDrainable(app, state, async () => {
      await timers.stop();
      await app.close();
      await service.close();
      breaker?.shutdown();
      await deps.stop();
    }),
  );
}
