/**
 * Everything that executes charges, wired from settings: a Postgres pool, the
 * provider and fx clients, the lifecycle and reconciler. The gateway builds
 * one per worker thread; the Fastify baseline builds one for its process. One
 * builder keeps their downstream settings identical.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '../db/connect.js';
import { createPool } from '../downstream/provider-client.js';
import { ProviderClient, type Provider } from '../downstream/provider-client.js';
import { FxClient, type RateOutcome } from '../downstream/fx-client.js';
import { json, problem, type Reply } from '../errors/catalogue.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { systemRandom, type Random } from '../lib/random.js';
import { DbBusyError, runCharge, ungated, type DbGate, type LifecycleDeps } from './lifecycle.js';
import { GroupCommit } from './group-commit.js';
import type { Protection } from '../resilience/protection.js';
import { GuardedProvider, guardedRate, isRefusal, type Guard } from '../resilience/guards.js';
import type { Logger } from '../runtime/logger.js';
import type { Stage } from '../metrics/telemetry.js';
import type { CommonConfig } from '../config/service.js';
import { reconcileOnce, type ReconcileReport } from './reconciler.js';
import { ChargeStore } from './store.js';
import type { ChargeInput } from './validate.js';

/** Plain, cloneable settings (they cross into worker threads). */
export interface ChargeServiceSettings {
  databaseUrl: string;
  providerUrl: string;
  fxUrl: string;
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
  retentionHours: number;
  /** Batch the claims and records of concurrent charges into shared statements. */
  groupCommit: boolean;
}

/**
 * Service settings from the shared configuration. `share` is this process's
 * (or worker thread's) part of the downstream connection budgets: 1 for the
 * baseline, 1/workers for each gateway worker. The DB bound is not split: in
 * the gateway a shared bulkhead keeps connections in use at dbPoolMax in all.
 */
export function chargeServiceSettings(c: CommonConfig & { groupCommit?: boolean }, urls: { databaseUrl: string; providerUrl: string; fxUrl: string }, share = 1): ChargeServiceSettings {
  const part = (total: number) => Math.max(1, Math.ceil(total * share));
  return {
    // Only the URLs: the settings cross into worker threads, where functions cannot go.
    databaseUrl: urls.databaseUrl,
    providerUrl: urls.providerUrl,
    fxUrl: urls.fxUrl,
    dbPoolMax: c.dbPoolMax,
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
    retentionHours: c.retentionHours,
    // A gateway setting (GROUP_COMMIT). The baseline's configuration has no
    // such field, so it stays at one statement per call: group commit is not
    // what a team builds the conventional way, and the comparison says so.
    groupCommit: c.groupCommit ?? false,
  };
}

export interface ChargeService {
  /** `fp`: the request fingerprint when the caller already computed it. */
  charge(key: string, input: ChargeInput, deadlineEpochMs: number, fp?: string): Promise<Reply>;
  getCharge(key: string): Promise<Reply>;
  rate(from: string, to: string, deadlineEpochMs: number): Promise<RateOutcome>;
  ping(): Promise<boolean>;
  reconcile(): Promise<ReconcileReport>;
  reap(): Promise<number>;
  close(): Promise<void>;
}

export interface ChargeServiceOptions {
  clock?: Clock;
  random?: Random;
  /** Wrap the provider client, e.g. in a circuit breaker. */
  decorateProvider?: (p: Provider) => Provider;
  /** The gateway's shared breakers, bulkheads, retry budget and counters. */
  protection?: Protection;
  /** Stage timings (ms), recorded into the shared histograms. */
  observe?: (stage: Stage, ms: number) => void;
  log?: Logger;
}

export function createChargeService(s: ChargeServiceSettings, o: ChargeServiceOptions = {}): ChargeService {
  const clock = o.clock ?? systemClock;
  const random = o.random ?? systemRandom;
  const sql = connect({ url: s.databaseUrl, max: s.dbPoolMax, connectTimeoutMs: s.dbConnectTimeoutMs, statementTimeoutMs: s.dbStatementTimeoutMs });
  const store = new ChargeStore(sql);
  const providerPool = createPool({ url: s.providerUrl, connections: s.providerConnections, keepAliveMs: s.keepAliveMs, connectTimeoutMs: Math.min(1000, s.providerTimeoutMs) });
  const fxPool = createPool({ url: s.fxUrl, connections: s.fxConnections, keepAliveMs: s.keepAliveMs, connectTimeoutMs: Math.min(1000, s.fxTimeoutMs) });
  const client = new ProviderClient(providerPool);
  const p = o.protection;
  const observe = o.observe;
  const guard = (d: 'provider' | 'fx'): Guard => ({
    breaker: p?.breakers[d],
    bulkhead: p?.bulkheads[d],
    acquireTimeoutMs: p?.settings.bulkheadAcquireTimeoutMs ?? 0,
    attemptTimeoutMs: d === 'provider' ? s.providerTimeoutMs : s.fxTimeoutMs,
    ...(p ? { answers: p.answers[d] } : {}),
    clock,
    ...(observe
      ? {
          onWait: (ms: number) => observe(d === 'provider' ? 'provider_bulkhead_wait' : 'fx_bulkhead_wait', ms),
          onCall: (ms: number) => observe(d === 'provider' ? 'provider_attempt' : 'fx_call', ms),
        }
      : {}),
  });
  let provider: Provider = p ? new GuardedProvider(client, guard('provider')) : client;
  if (o.decorateProvider) provider = o.decorateProvider(provider);
  const fx = new FxClient(fxPool);
  const fxGuard = guard('fx');
  const dbSlots = p?.bulkheads.db;
  const db: DbGate | undefined = dbSlots
    ? async (timeoutMs, phase) => {
        const slot = await dbSlots.acquire(Math.min(p.settings.dbAcquireTimeoutMs, timeoutMs));
        observe?.('db_acquire_wait', slot.waitedMs);
        if (!slot.ok) {
          p.events.inc('db_acquire_timeout');
          throw new DbBusyError();
        }
        try {
          return await phase();
        } finally {
          dbSlots.release();
        }
      }
    : undefined;
  const commits = s.groupCommit
    ? new GroupCommit(sql, {
        clock,
        gate: db ?? ungated,
        ...(p ? { count: (phase: 'claim' | 'record', what: 'statements' | 'requests', n: number) => p.events.inc(`group_commit_${phase}_${what}`, n) } : {}),
      })
    : undefined;
  const deps: LifecycleDeps = {
    clock,
    random,
    sleep: (ms) => sleep(ms),
    store,
    provider,
    ...(db ? { db } : {}),
    ...(commits ? { commits } : {}),
    ...(observe ? { observe } : {}),
    ...(p ? { onTimeout: (stage: 'claim' | 'provider') => p.events.inc(stage === 'claim' ? 'timeout_claim' : 'timeout_provider') } : {}),
    ...(p?.budget ? { budget: p.budget } : {}),
    ...(p
      ? {
          onRetry: (r: unknown) => {
            const reason = (r as { reason?: string }).reason;
            p.events.inc(reason === 'status_5xx' ? 'retry_provider_status_5xx' : reason === 'timeout' ? 'retry_provider_timeout' : reason === 'connection' ? 'retry_provider_connection' : 'retry_provider_other');
          },
          onSuppressed: (reason: 'attempts' | 'deadline' | 'budget' | 'breaker_open') => p.events.inc(`retry_suppressed_${reason}`),
        }
      : {}),
    settings: {
      leaseMs: s.leaseMs,
      providerRetry: {
        maxAttempts: s.providerMaxAttempts,
        baseMs: s.retryBaseMs,
        capMs: s.retryMaxMs,
        attemptTimeoutMs: s.providerTimeoutMs,
        minAttemptMs: 5,
      },
    },
  };
  return {
    charge: (key, input, deadline, fp) => runCharge(deps, key, input, deadline, fp),
    async getCharge(key) {
      let row;
      try {
        row = await store.get(key);
      } catch {
        return problem('db_unavailable');
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
      const timeoutMs = Math.min(s.fxTimeoutMs, deadline - clock.epochMs());
      if (timeoutMs <= 0) return { ok: false, reason: 'timeout' };
      const r = p ? await guardedRate(fxGuard, timeoutMs, (t) => fx.getRate(from, to, t)) : await fx.getRate(from, to, timeoutMs);
      if (isRefusal(r)) return { ok: false, reason: r.refused };
      if (!r.ok && r.reason === 'timeout') p?.events.inc('timeout_fx');
      return r;
    },
    async ping() {
      try {
        await store.ping();
        return true;
      } catch {
        return false;
      }
    },
    async reconcile() {
      const r = await reconcileOnce(deps, s.reconcileBatch);
      if (p) {
        p.events.inc('reconcile_succeeded', r.succeeded);
        p.events.inc('reconcile_declined', r.declined);
        p.events.inc('reconcile_failed', r.failed);
        p.events.inc('reconcile_deferred', r.deferred);
      }
      return r;
    },
    reap: () => store.reap(s.retentionHours),
    async close() {
      // Queued claims and records go out before the pool closes.
      await commits?.close();
      await Promise.allSettled([sql.end({ timeout: 2 }), providerPool.close(), fxPool.close()]);
    },
  };
}
