/**
 * One variant of one scenario, start to finish: empty the database and heal
 * the simulator, start the service, run the open-loop load (and any side
 * traffic) over all phases while faults change at phase boundaries, deploys
 * restart the service, the plan's actions (crashes, misbehaving clients) run
 * at their times and /metrics is scraped; then the after-load action, heal,
 * let the reconciler settle, audit (the actions' own charge keys included),
 * and stop the service whatever happened.
 */
import { mkdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { runLoad, writeOutcomes, type LoadInput } from '../../load/index.js';
import type { SecondStats } from '../../load/types.js';
import type { Phase, VariantName } from '../../report/types.js';
import { collectAudit, settle } from '../audit/audit-collect.js';
import type { ActionHandles, ActionReport, ScenarioPlan, SideLoad, VariantRun } from '../plan/definition.js';
import type { Environment } from './environment.js';
import { MemorySampler } from '../measure/proc-stats.js';
import { Scraper } from '../measure/scrape.js';
import { FASTIFY_LB_ENV, pairEnv, ReplicaPair, replicaShare } from './replica-pair.js';
import { ServiceUnderTest, type Drain } from './service.js';
import { deployEventsOf, variantRun } from '../measure/variant-result.js';

/**
 * Service settings every variant gets in the lab. A short lease and a fast
 * reconciler with large batches so the audit can wait for every abandoned
 * charge to finish within seconds, even the tens of thousands an
 * unprotected variant abandons in an overload (the lease must exceed the
 * longest deadline a client may ask for, MAX_REQUEST_TIMEOUT_MS); a grace
 * period the drains must fit in.
 */
export const LAB_SERVICE_DEFAULTS: Readonly<Record<string, string>> = Object.freeze({
  HOST: '127.0.0.1',
  LOG_LEVEL: 'info',
  LEASE_MS: '3000',
  MAX_REQUEST_TIMEOUT_MS: '2500',
  RECONCILE_INTERVAL_MS: '250',
  RECONCILE_BATCH: '200',
  SHUTDOWN_GRACE_MS: '5000',
});

/** The lab's defaults plus where this environment's Postgres and simulator are: what every service it starts is given. */
export function labServiceEnv(env: Environment): Record<string, string> {
  return {
    ...LAB_SERVICE_DEFAULTS,
    DATABASE_URL: env.databaseUrl,
    PROVIDER_URL: env.sim.providerUrl,
    FX_URL: env.sim.fxUrl,
  };
}

export interface VariantOptions {
  env: Environment;
  scenario: string;
  plan: ScenarioPlan;
  phases: readonly Phase[];
  variant: VariantName;
  seed: number;
  /**
   * Seconds of unmeasured traffic first, then the table and the ledger are
   * emptied: every variant meets the measured run warm (JIT, pools, keep-alive
   * connections), as a production service meets a fault. 0 skips it.
   */
  prewarmSeconds?: number;
  /** How often /metrics is scraped (gateway variants). Default 1000 ms. */
  scrapeIntervalMs?: number;
  /** Longest wait for the reconciler to finish every started row. Default 20 s. */
  settleTimeoutMs?: number;
  log: (msg: string) => void;
  /** One call per finished second of the charge load. */
  onSecond?: (variant: VariantName, s: SecondStats) => void;
  /**
   * Write the charge load's per-key outcomes (status, every attempt's
   * outcome, latency, intended send time) here as JSON lines, one file per
   * run: SCENARIO-VARIANT-seedN.ndjson. Unset: none.
   */
  outcomesDir?: string;
}

/** The file runVariant writes a run's per-key outcomes to, under `outcomesDir`. */
export function outcomesFile(dir: string, scenario: string, variant: VariantName, seed: number): string {
  return path.join(dir, `${scenario}-${variant}-seed${seed}.ndjson`);
}

export async function runVariant(o: VariantOptions): Promise<VariantRun> {
  const { env, plan, variant } = o;
  await env.resetForVariant();
  const serviceEnv: Record<string, string> = {
    ...labServiceEnv(env),
    ...plan.serviceEnv,
    ...(variant === 'gateway' || variant === 'gateway-off' ? plan.gatewayEnv : {}),
  };
  const graceMs = Number(serviceEnv.SHUTDOWN_GRACE_MS);
  const svc = await startService(variant, plan, serviceEnv, o.log);
  const timers: NodeJS.Timeout[] = [];
  let memory: MemorySampler | undefined;
  try {
    if ((o.prewarmSeconds ?? 0) > 0) await prewarm(o, svc.url);
    const totalS = o.phases.at(-1)!.end_s;
    const applyPhase = async (i: number) => {
      const f = plan.phases[i]?.fault;
      const s = plan.steady;
      await Promise.all([
        env.sim.setFaults('provider', { ...s?.provider, ...f?.provider }),
        env.sim.setFaults('fx', { ...s?.fx, ...f?.fx }),
      ]);
    };
    await applyPhase(0);
    const t0 = performance.now();
    const epoch0 = Date.now();
    const since = () => (performance.now() - t0) / 1000;
    const faultErrors: unknown[] = [];
    o.phases.forEach((ph, i) => {
      if (i === 0) return;
      timers.push(setTimeout(() => void applyPhase(i).catch((e: unknown) => faultErrors.push(e)), ph.start_s * 1000));
    });
    const scraper = svc.isGateway ? new Scraper(() => `${svc.url}/metrics`, since, o.scrapeIntervalMs) : undefined;
    scraper?.start();
    memory = new MemorySampler(() => svc.livePids(), since);
    memory.start();

    const charges = runLoad(chargeLoad(o, svc.url, totalS), { onSecond: (s) => o.onSecond?.(variant, s) });
    const side = plan.side ? runLoad(sideLoad(o, plan.side, svc.url, totalS)) : undefined;
    const drains: Drain[] = [];
    // Settled into a value at once: a failed restart must not become an
    // unhandled rejection while the load is still running.
    const deploying = deployLoop(
      plan.deploys ?? [],
      since,
      async () => void drains.push(await svc.restart(graceMs)),
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    const handles: ActionHandles = {
      env,
      service: svc,
      url: svc.url,
      variant,
      seed: o.seed,
      runId: `${o.scenario}-${variant}`,
      since,
      log: o.log,
    };
    const actions: Record<string, ActionReport> = {};
    const acting = Promise.all(
      (plan.actions ?? []).map(async (a) => {
        const wait = a.at - since();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait * 1000));
        actions[a.name] = await a.run(handles);
      }),
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    const [main, sideResult] = await Promise.all([charges, side]);
    const deployError = await deploying;
    const actionError = await acting;
    timers.forEach(clearTimeout);
    if (deployError !== undefined) throw deployError as Error;
    if (actionError !== undefined) throw actionError as Error;
    if (faultErrors.length > 0) throw faultErrors[0] as Error;
    if (o.outcomesDir !== undefined) {
      await mkdir(o.outcomesDir, { recursive: true });
      await writeOutcomes(outcomesFile(o.outcomesDir, o.scenario, variant, o.seed), main.outcomes);
    }
    if (plan.afterLoad) actions[plan.afterLoad.name] = await plan.afterLoad.run(handles, main.outcomes, { ...actions });
    await env.sim.healAll();
    await scraper?.stop();
    await memory.stop();
    const settleOnce = () => settle(env.sql, o.settleTimeoutMs ?? 20_000, undefined, undefined, env.sim);
    const settled = await settleOnce();
    o.log(
      `${variant}: settled in ${settled.waitedMs} ms${settled.settled ? '' : ` (timed out, ${settled.pending} still started)`}`,
    );
    const audit = await collectAudit(
      env.sql,
      env.sim,
      [...main.outcomes, ...Object.values(actions).flatMap((a) => a.outcomes ?? [])],
      (line) => o.log(`${variant}: ${line}`),
      settleOnce,
    );
    return variantRun({
      variant,
      plan,
      phases: o.phases,
      main,
      ...(sideResult ? { side: sideResult } : {}),
      scrapes: scraper?.points ?? [],
      memory: memory.points,
      logs: svc.processes.map((c) => c.lines()),
      epoch0,
      deployEvents: drains.flatMap((d) => deployEventsOf(d, epoch0)),
      drains,
      audit,
      settled: settled.settled,
      graceMs,
      actions,
    });
  } finally {
    timers.forEach(clearTimeout);
    await memory?.stop();
    await svc.stop();
    await env.sim.healAll().catch(() => {});
  }
}

/**
 * The service in the plan's shape. baseline-haproxy is always one
 * single-process Fastify per core behind HAProxy (with the per-server maxconn
 * and queue timeout an operator sets for it), each with its share of the
 * connection budgets; baseline-cluster is one process tree (node:cluster).
 */
async function startService(
  variant: VariantName,
  plan: ScenarioPlan,
  env: Record<string, string>,
  log: (msg: string) => void,
): Promise<ServiceUnderTest | ReplicaPair> {
  if (variant === 'baseline-haproxy') {
    const n = availableParallelism();
    return ReplicaPair.start({
      variant,
      env: { ...env, ...replicaShare(env, n) },
      log,
      replicas: n,
      lbEnv: FASTIFY_LB_ENV,
    });
  }
  return plan.topology === 'pair'
    ? ReplicaPair.start({ variant, env: pairEnv(variant, env, process.env, availableParallelism()), log })
    : ServiceUnderTest.start({ variant, env, log });
}

async function prewarm(o: VariantOptions, url: string): Promise<void> {
  const l = o.plan.load;
  const rate = Math.min(300, l.rate ?? l.steps?.[0]?.rate ?? 100);
  await runLoad({
    url,
    rate,
    durationSeconds: o.prewarmSeconds!,
    mixSpec: o.plan.side ? `charge=3,${o.plan.side.cls}=1` : 'charge=1',
    deadlineMs: 1000,
    seed: o.seed + 7,
    runId: `${o.scenario}-${o.variant}-prewarm`,
  });
  // The provider's count too: a starved service still working through prewarm
  // requests its client gave up on would charge them after the reset.
  await settle(o.env.sql, 10_000, 200, undefined, o.env.sim);
  await o.env.resetForVariant();
}

/** Restart the service at each time (run seconds), one after another. */
async function deployLoop(at: readonly number[], since: () => number, restart: () => Promise<void>): Promise<void> {
  for (const t of at) {
    const wait = t - since();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait * 1000));
    await restart();
  }
}

/** The charge load: POST /charge only, its own connections, keys `<scenario>-<variant>-<n>`. */
function chargeLoad(o: VariantOptions, url: string, totalS: number): LoadInput {
  const l = o.plan.load;
  return {
    url,
    ...(l.steps
      ? { schedule: l.arrivals === 'poisson' ? 'poisson' : 'steps', steps: l.steps }
      : { schedule: l.arrivals === 'poisson' ? 'poisson' : 'constant', rate: l.rate ?? 100 }),
    durationSeconds: totalS,
    mixSpec: 'charge=1',
    retry: l.retry ?? 'none',
    maxAttempts: l.maxAttempts ?? 0,
    deadlineMs: l.deadlineMs ?? 1000,
    connections: l.connections ?? 256,
    seed: o.seed,
    runId: `${o.scenario}-${o.variant}`,
  };
}

/** The side traffic (reads or quotes) in a generator of its own. */
function sideLoad(o: VariantOptions, side: SideLoad, url: string, totalS: number): LoadInput {
  return {
    url,
    schedule: 'constant',
    rate: side.rate,
    durationSeconds: totalS,
    mixSpec: `${side.cls}=1`,
    deadlineMs: side.deadlineMs ?? 1000,
    connections: 64,
    seed: o.seed + 1,
    runId: `${o.scenario}-${o.variant}-${side.cls}`,
  };
}
