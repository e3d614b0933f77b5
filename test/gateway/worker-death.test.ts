/**
 * A worker thread killed mid-charge, with the gateway's own parts in this
 * process (front thread, piscina pool of the real worker, shared protection
 * state, the worker-exit hook), so the test can reach `pool.threads` and
 * terminate one while charges wait on a slow provider, some holding provider
 * slots and some queued for one. Repeated three times on one gateway, with
 * the default two workers and with one (then the dead thread was the only one).
 *
 * What a user relies on: the killed charges answer 504 deadline_exceeded
 * (never 500), the slots the dead thread held come back (in use and waiting
 * at 0 once the load ends), piscina replaces the thread, new charges
 * succeed, and after the reconciler runs the audit is clean: no key charged
 * twice at the provider, every 201 stored, no row left started. A read
 * (GET /charges/:key) lost with its worker answers 504 too, at once rather
 * than at its deadline, and never 500.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { Piscina } from 'piscina';
import pino from 'pino';
import { parseOptions } from '../../src/config/options.js';
import { gatewaySpecs } from '../../src/config/service.js';
import { chargeServiceSettings } from '../../src/charge/service.js';
import type { ReconcileReport } from '../../src/charge/reconciler.js';
import { systemClock } from '../../src/lib/clock.js';
import { systemRandom } from '../../src/lib/random.js';
import { createTelemetryLayout } from '../../src/metrics/telemetry.js';
import {
  createProtectionLayout,
  openProtection,
  protectionSettings,
  type Protection,
  type ThreadHoldings,
} from '../../src/resilience/protection.js';
import { Admission } from '../../src/gateway/admission.js';
import { Gateway } from '../../src/gateway/server.js';
import { reclaimOnWorkerExit } from '../../src/gateway/worker-exits.js';
import type { Task } from '../../src/gateway/tasks.js';
import type { WorkerData } from '../../src/gateway/worker.js';
import { startSimulator, type Simulator } from '../../src/simulator/index.js';
import { startTestDb, type TestDb } from '../support/postgres.js';
import { call, until, type HttpResult } from '../support/http.js';
import { clearFaults, ledgerForReference, setFaults } from '../support/simulator.js';

// One worker and the default two: with one, the dead thread was the only one,
// and the process serves nothing until piscina has replaced it.
for (const WORKERS of [2, 1]) {
  void describe(`${WORKERS} worker thread${WORKERS === 1 ? '' : 's'}`, () => {
    const LEASE_MS = 3000;
    const CHARGE_TIMEOUT_MS = 2500;

    let db: TestDb;
    let sim: Simulator;
    let pool: Piscina<Task, unknown>;
    let gateway: Gateway;
    let protection: Protection;
    let url: string;
    const logLines: Record<string, unknown>[] = [];
    const exits: { threadId: number; held: ThreadHoldings | null }[] = [];

    before(async () => {
      db = await startTestDb();
      sim = await startSimulator({ providerPort: 0, fxPort: 0 });
      const { values: c } = parseOptions(gatewaySpecs, [], {
        HOST: '127.0.0.1',
        PORT: '0',
        DATABASE_URL: db.url,
        PROVIDER_URL: sim.providerUrl,
        FX_URL: sim.fxUrl,
        WORKERS: String(WORKERS),
        // Four provider slots for twelve charges: some hold a slot, the rest queue for one.
        PROVIDER_BULKHEAD: '4',
        BULKHEAD_ACQUIRE_TIMEOUT_MS: '3000',
        PROVIDER_TIMEOUT_MS: '2000',
        LEASE_MS: String(LEASE_MS),
        MAX_REQUEST_TIMEOUT_MS: String(CHARGE_TIMEOUT_MS),
        // Reads get the longest deadline allowed: a read lost with its worker must answer well before it.
        REQUEST_TIMEOUT_MS: String(CHARGE_TIMEOUT_MS),
        // Admission stays out of the way: this test is about what a dead thread held.
        SHEDDING: 'false',
        // The slow provider only keeps charges in flight here; it is not the fault under test.
        BREAKER_SLOW_CALL_MS: '5000',
        CONCURRENCY_LIMIT: 'off',
      });
      const log = pino(
        { level: 'info' },
        new Writable({
          write(chunk: Buffer, _enc, done) {
            for (const line of chunk.toString('utf8').split('\n'))
              if (line) logLines.push(JSON.parse(line) as Record<string, unknown>);
            done();
          },
        }),
      );
      const settings = protectionSettings(c);
      const layout = createProtectionLayout(settings, systemClock.epochMs());
      protection = openProtection(layout, settings);
      const data: WorkerData = {
        settings: chargeServiceSettings(
          c,
          { databaseUrl: db.url, providerUrl: sim.providerUrl, fxUrl: sim.fxUrl },
          1 / WORKERS,
        ),
        protection: { layout, settings },
        telemetry: createTelemetryLayout(),
        logLevel: 'silent',
      };
      // As serve.ts builds it: min = max threads, no idle timeout.
      pool = new Piscina<Task, unknown>({
        filename: new URL('../../src/gateway/worker.js', import.meta.url).href,
        minThreads: WORKERS,
        maxThreads: WORKERS,
        idleTimeout: Infinity,
        concurrentTasksPerWorker: c.workerConcurrency,
        maxQueue: c.workerQueueMax,
        atomics: 'disabled',
        workerData: data,
      });
      reclaimOnWorkerExit(pool, protection, log, {
        onReclaimed: (threadId, _code, held) => exits.push({ threadId, held }),
      });
      const admission = new Admission(
        {
          shedding: false,
          limit: 'off',
          staticLimit: c.concurrencyLimitStatic,
          minLimit: c.concurrencyLimitMin,
          maxLimit: c.concurrencyLimitMax,
          loopDelayTargetMs: c.loopDelayTargetMs,
        },
        { delayMs: 0, utilization: 0 },
        () => 0,
        systemRandom,
        systemClock,
      );
      gateway = new Gateway(
        c,
        { run: (t) => pool.run(t), threads: () => pool.threads.length, expectedThreads: WORKERS },
        systemClock,
        log,
        { admission, breakers: protection.breakers },
      );
      url = `http://127.0.0.1:${await gateway.listen()}`;
    });

    after(async () => {
      gateway?.close();
      await pool?.destroy();
      await sim?.close();
      await db?.close();
    });

    const charge = (key: string): Promise<HttpResult> =>
      call(url, 'POST', '/charge', {
        headers: { 'idempotency-key': key, 'x-request-timeout-ms': String(CHARGE_TIMEOUT_MS) },
        body: { amount: 1500, currency: 'USD', source: 'tok_visa' },
        timeoutMs: 20_000,
      });

    const bulkheadCounts = () =>
      Object.fromEntries(
        Object.entries(protection.bulkheads).map(([n, b]) => [n, { inUse: b.inUse, waiting: b.waiting }]),
      );

    it('a worker killed mid-charge: 504 to its callers, its slots given back, replaced; the audit is clean after the reconciler', async (t) => {
      // Workers start (modules, DB connections) on a machine shared with other tests: warm up first.
      let n = 0;
      await until('a first charge succeeds', async () => (await charge(`warm-up-${n++}`)).status === 201, 20_000, 100);
      // The provider charges on arrival and answers a second later.
      await setFaults(sim.providerUrl, { latencyMs: 1000 });
      const answered = new Map<string, number>();
      let lost = 0;
      const gaps: number[] = [];
      for (let round = 0; round < 3; round++) {
        const keys = Array.from({ length: 12 }, (_, i) => `r${round}-${i}`);
        const wave = keys.map((k) => charge(k).then((r) => (answered.set(k, r.status), r)));
        // Every charge past its claim: four at the provider, the rest queued for a slot.
        await until(
          '12 charges holding or waiting for a provider slot',
          () => {
            const p = protection.bulkheads.provider!;
            return p.inUse === 4 && p.waiting === 8;
          },
          5000,
          5,
        );
        const lostBefore = logLines.filter((l) => l.msg === 'task lost with its worker thread').length;
        const victim = pool.threads[round % pool.threads.length]!;
        const victimId = victim.threadId;
        await victim.terminate();
        // A read sent the moment the thread is gone: with one worker it waits in the pool's queue until
        // piscina's replacement has started, so its time is how long the process executed nothing.
        const read = call(url, 'GET', `/charges/${keys[0]}`, { timeoutMs: 20_000 });
        const results = await Promise.all(wave);
        const r = await read;
        assert.equal(r.status, 200, `round ${round}: a read right after the death is answered: ${r.text}`);
        assert.ok(r.ms < CHARGE_TIMEOUT_MS, `round ${round}: within a charge's deadline (${r.ms} ms)`);
        gaps.push(r.ms);
        const statuses: number[] = results.map((r) => r.status);
        // Never 500: a charge lost with its worker may still complete, and says so.
        assert.ok(
          statuses.every((s) => s === 201 || s === 503 || s === 504),
          `round ${round}: ${statuses.join(',')}`,
        );
        const lostNow = logLines.filter((l) => l.msg === 'task lost with its worker thread').length - lostBefore;
        assert.ok(lostNow >= 1, `round ${round}: the killed worker had charges in flight`);
        lost += lostNow;
        for (const r of results.filter((x) => x.status === 504)) assert.equal(r.body.code, 'deadline_exceeded');
        assert.ok(statuses.filter((s) => s === 504).length >= lostNow, 'every lost charge answered 504');

        const exit = exits.find((e) => e.threadId === victimId);
        assert.ok(exit?.held, `round ${round}: the exit of thread ${victimId} was swept`);
        const p = exit.held.provider!;
        assert.ok(
          p.held + p.waiting >= 1,
          `round ${round}: the dead thread held or waited for provider slots: ${JSON.stringify(exit.held)}`,
        );
        assert.equal(
          logLines.filter((l) => l.msg?.toString().startsWith('worker thread died') && l.thread_id === victimId).length,
          1,
          'the death is logged once',
        );

        // Once the load has ended: nothing held, nobody waiting, the thread replaced.
        await until(
          `round ${round}: bulkheads back to 0 and ${WORKERS} live threads, the dead one replaced`,
          () =>
            pool.threads.length === WORKERS &&
            pool.threads.every((w) => w.threadId >= 0 && w.threadId !== victimId) &&
            Object.values(bulkheadCounts()).every((b) => b.inUse === 0 && b.waiting === 0),
          5000,
          10,
        );
        const fresh = await charge(`after-kill-${round}`);
        assert.equal(fresh.status, 201, `new charges succeed on the replaced pool: ${fresh.text}`);
      }
      t.diagnostic(`charges lost with their worker (answered 504): ${lost}`);
      t.diagnostic(`a read sent right after each death answered in ${gaps.map((g) => g.toFixed(0)).join(', ')} ms`);

      // The reconciler finishes what the dead threads left started, once their leases expire.
      await clearFaults(sim.providerUrl);
      await until(
        'no charge left started',
        async () => {
          (await pool.run({ op: 'reconcile' })) as ReconcileReport;
          const [row] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM charges WHERE status = 'started'`;
          return row?.n === 0;
        },
        LEASE_MS + 10_000,
        250,
      );

      const rows = new Map(
        (
          await db.sql<
            { idempotency_key: string; status: string; provider_charge_id: string | null }[]
          >`SELECT idempotency_key, status, provider_charge_id FROM charges`
        ).map((r) => [r.idempotency_key, r]),
      );
      for (const [key, status] of answered) {
        const charges = await ledgerForReference(sim.providerUrl, key);
        assert.ok(charges.length <= 1, `${key} charged ${charges.length} times`);
        const row = rows.get(key);
        if (status === 201) {
          assert.equal(row?.status, 'succeeded', `${key} answered 201 but is stored as ${row?.status}`);
          assert.equal(row?.provider_charge_id, charges[0]?.id);
        }
        // A provider charge always has its row, finished with that charge.
        if (charges.length === 1)
          assert.equal(row?.provider_charge_id, charges[0]!.id, `${key}: provider charge without its row`);
        // A 504 may still complete: the same key now gives the final outcome, and charges nothing more.
        if (status === 504 && row) {
          const again = await charge(key);
          assert.equal(again.status, 201, `${key} retried: ${again.status}`);
          assert.equal(again.headers['idempotent-replayed'], 'true');
          assert.equal((await ledgerForReference(sim.providerUrl, key)).length, 1);
        }
      }

      const breaker = protection.breakers.provider?.stats(systemClock.epochMs());
      t.diagnostic(`provider breaker after three worker deaths: ${JSON.stringify(breaker)}`);
      assert.equal(breaker?.state, 'closed', "dead workers' unfinished calls are not failures of the provider");
      assert.deepEqual(
        Object.values(bulkheadCounts()).map((b) => [b.inUse, b.waiting]),
        [
          [0, 0],
          [0, 0],
          [0, 0],
        ],
      );
    });

    it('GET /charges/:key lost with its worker: 504 deadline_exceeded at once, not at its deadline; the replaced pool reads', async () => {
      const key = 'get-lost-seed';
      let created = await charge(key);
      for (let i = 0; created.status !== 201 && i < 50; i++) created = await charge(key);
      assert.equal(created.status, 201, created.text);
      const get = (requestId: string) =>
        call(url, 'GET', `/charges/${key}`, { headers: { 'x-request-id': requestId }, timeoutMs: 20_000 });
      for (let round = 0; round < 3; round++) {
        // The reads wait on a lock the test holds, so every one is inside a worker when the threads die.
        let release!: () => void;
        const released = new Promise<void>((r) => (release = r));
        let locked!: () => void;
        const isLocked = new Promise<void>((r) => (locked = r));
        const lock = db.sql.begin(async (t) => {
          await t`LOCK TABLE charges IN ACCESS EXCLUSIVE MODE`;
          locked();
          await released;
        });
        await isLocked;
        const ids = Array.from({ length: 4 }, (_, i) => `get-lost-${round}-${i}`);
        const victimIds = pool.threads.map((w) => w.threadId);
        const reads = ids.map((id) => get(id));
        try {
          await until(
            '4 reads blocked in Postgres',
            async () => {
              const [r] = await db.sql<{ n: number }[]>`
                SELECT count(*)::int AS n FROM pg_stat_activity
                WHERE wait_event_type = 'Lock' AND query ILIKE '%charges%' AND pid <> pg_backend_pid()`;
              return r!.n >= ids.length;
            },
            5000,
            10,
          );
          const victims = [...pool.threads];
          await Promise.all(victims.map((w) => w.terminate()));
          // Answered while the lock is still held: the loss, not the database or the deadline, ended them.
          const results = await Promise.all(reads);
          for (const [i, r] of results.entries()) {
            assert.equal(r.status, 504, `round ${round}: read ${i}: ${r.status} ${r.text}`);
            assert.equal(r.body.code, 'deadline_exceeded');
            assert.ok(
              r.ms < CHARGE_TIMEOUT_MS,
              `round ${round}: read ${i} answered after ${r.ms} ms, before its deadline`,
            );
            assert.ok(
              logLines.some(
                (l) => l.msg === 'task lost with its worker thread' && l.op === 'get' && l.request_id === ids[i],
              ),
              `round ${round}: read ${i} was lost with its worker`,
            );
          }
        } finally {
          release();
          await lock;
        }
        // Both threads died at once. piscina usually starts their replacements at once, but once in CI it left
        // the pool empty for 20 s (threads none, dead 7,6, bulkheads at 0) until the next task started one:
        // held here is what a caller relies on, no slot held for the dead and the next read answered.
        await until(
          `round ${round}: the dead threads gone, bulkheads back to 0`,
          () =>
            pool.threads.every((w) => !victimIds.includes(w.threadId)) &&
            Object.values(bulkheadCounts()).every((b) => b.inUse === 0 && b.waiting === 0),
          20_000,
          10,
        ).catch((e: Error) => {
          const threads = pool.threads.map((w) => w.threadId);
          throw new Error(
            `${e.message}: threads ${threads.join(',')} (dead ${victimIds.join(',')}), bulkheads ${JSON.stringify(bulkheadCounts())}`,
          );
        });
        const again = await get(`get-after-${round}`);
        assert.equal(again.status, 200, again.text);
        assert.equal(again.body.status, 'succeeded');
        assert.ok(pool.threads.length >= 1 && pool.threads.every((w) => !victimIds.includes(w.threadId)));
      }
    });
  });
}
