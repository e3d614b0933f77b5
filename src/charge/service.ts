/**
 * Everything that executes charges, wired from settings: a Postgres pool, the
 * provider and fx clients, the lifecycle and reconciler. The gateway builds
 * one per worker thread; the Fastify baseline builds one for its process. One
 * builder keeps their downstream settings identical.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '../db/connect.js';
import { Database, DbBusyError } from '../db/database.js';
import { isDeadline } from '../lib/deadline.js';
import { createPool } from '../downstream/pool.js';
import { ProviderClient, type AttemptOutcome, type Provider } from '../downstream/provider-client.js';
import { GuardedProvider, guardedRate } from '../downstream/guarded.js';
import { FxClient, type RateOutcome } from '../downstream/fx-client.js';
import { json, problem, type Reply } from '../errors/catalogue.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { systemRandom, type Random } from '../lib/random.js';
import { runCharge, type DbGate, type LifecycleDeps } from './lifecycle.js';
import { GroupCommit } from './group-commit.js';
import type { EventCounter, Protection, ProtectionSettings } from '../resilience/protection.js';
import { isRefusal, type Guard } from '../resilience/guards.js';
import type { Logger } from '../runtime/logger.js';
import type { ChargeStage } from './stages.js';
import type { CommonConfig, GatewayConfig } from '../config/service.js';
import { emptyReport, reconcileOnce, type ReconcileReport } from './reconciler.js';
import { errorReporter } from './error-report.js';
import { keyHash } from './key-hash.js';
import { ChargeStore } from './store.js';
import { DEV_PROVIDER_KEY_SECRET, providerKeys } from './provider-key.js';
import type { ChargeInput } from './input.js';

/** Plain, cloneable settings (they cross into worker threads). */
export interface ChargeServiceSettings {
  databaseUrl: string;
  providerUrl: string;
  fxUrl: string;
  /** Connections this process (or worker thread) may open: its share of DB_POOL_MAX. */
  dbPoolMax: number;
  dbConnectTimeoutMs: number;
  dbStatementTimeoutMs: number;
  leaseMs: number;
  providerTimeoutMs: number;
  providerConnections: number;
  providerMaxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  fxTimeoutMs: number;
  fxConnections: number;
  keepAliveMs: number;
  reconcileBatch: number;
  reconcileMaxAttempts: number;
  reconcileBackoffBaseMs: number;
  reconcileBackoffMaxMs: number;
  retentionHours: number;
  /** Batch the claims and records of concurrent charges into shared statements. */
  groupCommit: boolean;
  /** HMAC key of the provider idempotency keys (provider-key.ts). */
  providerKeySecret: string;
}

/**
 * Service settings from the shared configuration. `share` is this process's
 * (or worker thread's) part of the connection budgets: 1 for the baseline,
 * 1/workers for each gateway worker. The DB pool is split rounding down, so
 * the workers' pools together never open more than DB_POOL_MAX connections
 * (the gateway checks DB_POOL_MAX >= WORKERS); the shared DB bulkhead bounds
 * statements in flight at DB_POOL_MAX across all workers. Start-up's migrator
 * connection is separate: one, closed before the workers start.
 */
export function chargeServiceSettings(
  c: CommonConfig & { groupCommit?: boolean },
  urls: { databaseUrl: string; providerUrl: string; fxUrl: string },
  share = 1,
): ChargeServiceSettings {
  // Rounded down, as the DB pool, so the parts never add up to more than the
  // whole; at least one each (more workers than connections still gives every
  // worker one).
  const part = (total: number) => Math.max(1, Math.floor(total * share + 1e-9));
  return {
    // Only the URLs: the settings cross into worker threads, where functions cannot go.
    databaseUrl: urls.databaseUrl,
    providerUrl: urls.providerUrl,
    fxUrl: urls.fxUrl,
    dbPoolMax: Math.max(1, Math.floor(c.dbPoolMax / Math.round(1 / share))),
    dbConnectTimeoutMs: c.dbConnectTimeoutMs,
    dbStatementTimeoutMs: c.dbStatementTimeoutMs,
    leaseMs: c.leaseMs,
    providerTimeoutMs: c.providerTimeoutMs,
    providerConnections: part(c.providerConnections),
    providerMaxAttempts: c.providerMaxAttempts,
    retryBaseMs: c.retryBaseMs,
    retryMaxMs: c.retryMaxMs,
    fxTimeoutMs: c.fxTimeoutMs,
    fxConnections: part(c.fxConnections),
    keepAliveMs: c.keepAliveMs,
    reconcileBatch: c.reconcileBatch,
    reconcileMaxAttempts: c.reconcileMaxAttempts,
    reconcileBackoffBaseMs: c.reconcileBackoffBaseMs,
    reconcileBackoffMaxMs: c.reconcileBackoffMaxMs,
    retentionHours: c.retentionHours,
    // A gateway setting (GROUP_COMMIT). The baseline's configuration has no
    // such field, so it stays at one statement per call: group commit is not
    // what a team builds the conventional way, and the comparison says so.
    groupCommit: c.groupCommit ?? false,
    // Production refuses to start without one (checkProduction).
    providerKeySecret: c.providerKeySecret ?? DEV_PROVIDER_KEY_SECRET,
  };
}

/**
 * What each gateway worker thread is given: its share of the connection
 * budgets, except for a downstream behind a bulkhead. That bulkhead is shared
 * by all workers and caps the downstream's calls in flight for the whole
 * process, but each worker's undici pool is its own. Split the connections
 * evenly and a worker that happens to hold more than its share of the
 * admitted calls (the pool balances tasks, not provider calls) queues the
 * rest inside its pool, behind a bulkhead that let them through: in deploy's
 * warm-up (300/s, provider 100-300 ms) that cost 20-30 points of the SLO
 * against unsplit pools. So behind a bulkhead every worker may open
 * min(connections, bulkhead limit), and the bulkhead bounds those in use at
 * once; idle ones close after KEEP_ALIVE_MS. Without one nothing else bounds
 * them, and each worker keeps its even share.
 */
export function gatewayWorkerSettings(
  c: GatewayConfig,
  urls: { databaseUrl: string; providerUrl: string; fxUrl: string },
  protection: Pick<ProtectionSettings, 'bulkheads' | 'providerBulkhead' | 'fxBulkhead'>,
): ChargeServiceSettings {
  const split = chargeServiceSettings(c, urls, 1 / c.workers);
  if (!protection.bulkheads) return split;
  return {
    ...split,
    providerConnections: Math.min(c.providerConnections, protection.providerBulkhead.limit),
    fxConnections: Math.min(c.fxConnections, protection.fxBulkhead.limit),
  };
}

/** The counter a provider retry adds to: by why the attempt before it had no final answer. */
function retryCounter(outcome: AttemptOutcome): EventCounter {
  if (outcome.kind !== 'unknown') return 'retry_provider_other';
  switch (outcome.reason) {
    case 'status_5xx':
      return 'retry_provider_status_5xx';
    case 'timeout':
      return 'retry_provider_timeout';
    case 'connection':
      return 'retry_provider_connection';
    default:
      return 'retry_provider_other';
  }
}

/** Longest a readiness ping waits, slot included: the ready check runs every second. */
const PING_BUDGET_MS = 1000;
/** Client-side margin over statement_timeout for statements without a request deadline. */
const BACKGROUND_MARGIN_MS = 1000;

export interface ChargeService {
  /** `fp`: the request fingerprint when the caller already computed it. */
  /** `requestId`: named in the log lines about this charge. */
  charge(key: string, input: ChargeInput, deadlineEpochMs: number, fp?: string, requestId?: string): Promise<Reply>;
  /** Read one charge by its key; unset deadline: the statement timeout from now. */
  getCharge(key: string, deadlineEpochMs?: number): Promise<Reply>;
  rate(from: string, to: string, deadlineEpochMs: number): Promise<RateOutcome>;
  ping(): Promise<boolean>;
  /** One reconciler pass; never throws (an error is reported and the pass counts as empty). */
  reconcile(): Promise<ReconcileReport>;
  /** Keys pruned; never throws (an error is reported and 0 returned). */
  reap(): Promise<number>;
  /** The unfinished rows for the gauges and /admin/state, keys hashed; null (reported) when the query failed. */
  backlog(): Promise<BacklogStats | null>;
  /**
   * While the provider's breaker is open: ask the provider whether it answers
   * fast again, and if so end the open period early (Breaker.healthCheckPassed).
   * True when it did; false otherwise, and at once when the breaker is not open.
   */
  providerHealthCheck(): Promise<boolean>;
  close(): Promise<void>;
}

/** How often the gateway refreshes the backlog gauges: one cheap query per interval, whatever the scrape rate. */
export const BACKLOG_REFRESH_MS = 5000;

/** Store.backlog with the keys hashed: what may cross to the front thread and the admin port. */
export interface BacklogStats {
  oldestStartedAgeSeconds: number;
  needsAttention: number;
  oldestNeedingAttention: { keyHash: string; createdAt: string; reconcileAttempts: number }[];
}

export interface ChargeServiceOptions {
  clock?: Clock;
  random?: Random;
  /** Wrap the provider client, e.g. in a circuit breaker. */
  decorateProvider?: (p: Provider) => Provider;
  /** The gateway's shared breakers, bulkheads, retry budget and counters. */
  protection?: Protection;
  /** Stage timings (ms), recorded into the shared histograms. */
  observe?: (stage: ChargeStage, ms: number) => void;
  log?: Logger;
}

export function createChargeService(
  settings: ChargeServiceSettings,
  options: ChargeServiceOptions = {},
): ChargeService {
  const clock = options.clock ?? systemClock;
  const random = options.random ?? systemRandom;
  const protection = options.protection;
  const database = new Database({
    clock,
    open: () =>
      connect({
        url: settings.databaseUrl,
        max: settings.dbPoolMax,
        connectTimeoutMs: settings.dbConnectTimeoutMs,
        statementTimeoutMs: settings.dbStatementTimeoutMs,
      }),
    ...(protection?.bulkheads.db ? { slots: protection.bulkheads.db } : {}),
    acquireTimeoutMs: protection?.settings.dbAcquireTimeoutMs ?? 0,
    // A healthy server ends a cancelled statement in milliseconds; one that
    // has not within the time we give a new connection to open is on a dead path.
    cancelGraceMs: settings.dbConnectTimeoutMs,
    on: {
      acquireWait: (ms) => options.observe?.('db_acquire_wait', ms),
      busy: () => protection?.events.inc('db_acquire_timeout'),
      timeout: () => protection?.events.inc('db_statement_timeout'),
      retired: () => {
        protection?.events.inc('db_pool_replaced');
        options.log?.warn(
          { cancel_grace_ms: settings.dbConnectTimeoutMs },
          'database pool replaced: a cancelled statement never ended, its connection stopped answering',
        );
      },
    },
  });
  const db: DbGate = (deadlineEpochMs, phase) => database.run(deadlineEpochMs, phase);
  // Only for the type: with `db` set, every statement runs on the gate's current pool.
  const providerKey = providerKeys(settings.providerKeySecret);
  const store = new ChargeStore(database.sql, providerKey);
  /** Background statements (reap) and reads without a deadline: the server's own timeout, plus a margin for the round trip. */
  const backgroundBy = () => clock.epochMs() + settings.dbStatementTimeoutMs + BACKGROUND_MARGIN_MS;
  const providerPool = createPool({
    url: settings.providerUrl,
    connections: settings.providerConnections,
    keepAliveMs: settings.keepAliveMs,
    connectTimeoutMs: Math.min(1000, settings.providerTimeoutMs),
  });
  const fxPool = createPool({
    url: settings.fxUrl,
    connections: settings.fxConnections,
    keepAliveMs: settings.keepAliveMs,
    connectTimeoutMs: Math.min(1000, settings.fxTimeoutMs),
  });
  const client = new ProviderClient(providerPool, options.log, clock);
  const observe = options.observe;
  const guard = (d: 'provider' | 'fx'): Guard => ({
    breaker: protection?.breakers[d],
    bulkhead: protection?.bulkheads[d],
    acquireTimeoutMs: protection?.settings.bulkheadAcquireTimeoutMs ?? 0,
    attemptTimeoutMs: d === 'provider' ? settings.providerTimeoutMs : settings.fxTimeoutMs,
    ...(protection ? { answers: protection.answers[d] } : {}),
    clock,
    ...(observe
      ? {
          onWait: (ms: number) => observe(d === 'provider' ? 'provider_bulkhead_wait' : 'fx_bulkhead_wait', ms),
          onCall: (ms: number) => observe(d === 'provider' ? 'provider_attempt' : 'fx_call', ms),
        }
      : {}),
  });
  let provider: Provider = protection ? new GuardedProvider(client, guard('provider')) : client;
  if (options.decorateProvider) provider = options.decorateProvider(provider);
  const fx = new FxClient(fxPool);
  const fxGuard = guard('fx');
  const onError = errorReporter({
    clock,
    ...(options.log ? { log: options.log } : {}),
    ...(protection ? { count: (stage) => protection.events.inc(`error_${stage}`) } : {}),
  });
  const commits = settings.groupCommit
    ? new GroupCommit(database.sql, {
        clock,
        providerKey,
        gate: db,
        ...(protection
          ? {
              count: (phase: 'claim' | 'record', what: 'statements' | 'requests', n: number) =>
                protection.events.inc(`group_commit_${phase}_${what}`, n),
            }
          : {}),
      })
    : undefined;
  const deps: LifecycleDeps = {
    clock,
    random,
    sleep: (ms) => sleep(ms),
    store,
    provider,
    db,
    ...(commits ? { commits } : {}),
    ...(observe ? { observe } : {}),
    ...(protection
      ? {
          onTimeout: (stage: 'claim' | 'provider') =>
            protection.events.inc(stage === 'claim' ? 'timeout_claim' : 'timeout_provider'),
        }
      : {}),
    onError,
    ...(protection?.budget ? { budget: protection.budget } : {}),
    ...(protection
      ? {
          onRetry: (outcome: AttemptOutcome) => protection.events.inc(retryCounter(outcome)),
          onSuppressed: (reason: 'attempts' | 'deadline' | 'budget' | 'breaker_open') =>
            protection.events.inc(`retry_suppressed_${reason}`),
        }
      : {}),
    settings: {
      leaseMs: settings.leaseMs,
      providerRetry: {
        maxAttempts: settings.providerMaxAttempts,
        baseMs: settings.retryBaseMs,
        capMs: settings.retryMaxMs,
        attemptTimeoutMs: settings.providerTimeoutMs,
        minAttemptMs: 5,
      },
    },
  };
  const reconcilerDeps = {
    ...deps,
    reconcile: {
      maxAttempts: settings.reconcileMaxAttempts,
      baseMs: settings.reconcileBackoffBaseMs,
      capMs: settings.reconcileBackoffMaxMs,
    },
    ...(options.log ? { log: options.log } : {}),
  };
  return {
    charge: (key, input, deadline, fp, requestId) =>
      runCharge(
        requestId === undefined ? deps : { ...deps, onError: (stage, e, k) => onError(stage, e, k, requestId) },
        key,
        input,
        deadline,
        fp,
      ),
    async getCharge(key, deadlineEpochMs = backgroundBy()) {
      let row;
      try {
        row = await db(deadlineEpochMs, (sql) => store.on(sql).get(key));
      } catch (e) {
        onError('read', e, key);
        return problem(isDeadline(e) ? 'deadline_exceeded' : 'db_unavailable');
      }
      if (!row) return problem('not_found', { detail: 'No charge has this Idempotency-Key' });
      return json(200, {
        idempotency_key: row.idempotency_key,
        id: row.charge_id,
        status: row.status,
        amount: row.amount,
        currency: row.currency,
        provider_charge_id: row.provider_charge_id,
        response_status: row.response_status,
        created_at: row.created_at.toISOString(),
        completed_at: row.completed_at?.toISOString() ?? null,
      });
    },
    async rate(from, to, deadline) {
      const timeoutMs = Math.min(settings.fxTimeoutMs, deadline - clock.epochMs());
      if (timeoutMs <= 0) return { ok: false, reason: 'timeout' };
      const r = protection
        ? await guardedRate(fxGuard, timeoutMs, (t) => fx.getRate(from, to, t))
        : await fx.getRate(from, to, timeoutMs);
      if (isRefusal(r)) return { ok: false, reason: r.refused };
      if (!r.ok && r.reason === 'timeout') protection?.events.inc('timeout_fx');
      return r;
    },
    async ping() {
      try {
        await db(clock.epochMs() + PING_BUDGET_MS, (sql) => store.on(sql).ping());
        return true;
      } catch (e) {
        onError('ping', e);
        // Every slot taken: no news from this probe, but the server is
        // reachable if it answered anyone lately (slots are held no longer
        // than a deadline, so a dead server cannot keep this true).
        return e instanceof DbBusyError && database.answeredWithin(PING_BUDGET_MS);
      }
    },
    async reconcile() {
      let r: ReconcileReport;
      try {
        r = await reconcileOnce(reconcilerDeps, settings.reconcileBatch);
      } catch (e) {
        // The database busy with charges (this pass yields to them) is counted, not logged.
        onError('reconcile', e);
        return emptyReport();
      }
      if (protection) {
        protection.events.inc('reconcile_succeeded', r.succeeded);
        protection.events.inc('reconcile_declined', r.declined);
        protection.events.inc('reconcile_failed', r.failed);
        protection.events.inc('reconcile_deferred', r.deferred);
        protection.events.inc('reconcile_needs_attention', r.needsAttention);
      }
      return r;
    },
    async reap() {
      try {
        return await db(backgroundBy(), (sql) => store.on(sql).reap(settings.retentionHours));
      } catch (e) {
        onError('reap', e); // busy with charges: counted, and the next interval tries again
        return 0;
      }
    },
    async backlog() {
      try {
        const b = await db(backgroundBy(), (sql) => store.on(sql).backlog());
        return {
          ...b,
          oldestNeedingAttention: b.oldestNeedingAttention.map(({ key, ...rest }) => ({
            keyHash: keyHash(key),
            ...rest,
          })),
        };
      } catch (e) {
        onError('backlog', e);
        return null;
      }
    },
    async providerHealthCheck() {
      const breaker = protection?.breakers.provider;
      const startedAt = clock.epochMs();
      if (!breaker || breaker.openForMs(startedAt) === null) return false;
      const answered = await client.healthCheck(breaker.slowCallMs);
      // Faster than a slow call, or it says nothing about the charges' latency.
      const now = clock.epochMs();
      if (!answered || now - startedAt >= breaker.slowCallMs) return false;
      const ended = breaker.healthCheckPassed(now, startedAt);
      if (ended)
        options.log?.info({ breaker: breaker.name }, 'health check passed: the open period ends now, probes next');
      return ended;
    },
    async close() {
      // Queued claims and records go out before the pool closes.
      await commits?.close();
      await Promise.allSettled([database.close(2), providerPool.close(), fxPool.close()]);
    },
  };
}
