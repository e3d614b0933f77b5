/**
 * Database waits against a real Postgres, through the real services:
 *
 * - A dropped-packet partition (test/support/tcp-proxy.ts) between the
 *   service and Postgres: charges and reads answer 503/504 within their
 *   deadline, the gateway's admission slots, in-flight keys and DB slots are
 *   free again at the deadline, and after the heal (connections that lived
 *   through the partition stay dead) charges succeed again within 5 s. The
 *   audit is clean: nothing charged twice, every 201 stored.
 * - The global DB bound: WORKERS=2, DB_POOL_MAX=4 under concurrent charges,
 *   reads, pings and reconciler passes never open more than 4 connections.
 *
 * Timing bounds are relative to the request deadline, with a margin for a
 * loaded 2-core machine; they never assert absolute speed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startSimulator, type Simulator } from '../../src/simulator/index.js';
import { startTestDb, type TestDb } from '../support/postgres.js';
import { adminUrl, startTarget, type Target, type TargetKind } from '../support/target.js';
import { call, until, type HttpResult } from '../support/http.js';
import { ledgerForReference } from '../support/simulator.js';
import { TcpProxy } from '../support/tcp-proxy.js';

let db: TestDb;
let sim: Simulator;
const targets: Target[] = [];
const proxies: TcpProxy[] = [];

before(async () => {
  db = await startTestDb();
  sim = await startSimulator({ providerPort: 0, fxPort: 0 });
});

after(async () => {
  await Promise.allSettled(targets.map((t) => t.kill()));
  await Promise.allSettled(proxies.map((p) => p.close()));
  await sim?.close();
  await db?.close();
});

const DEADLINE_MS = 500;
/** Deadline plus what a loaded 2-core machine may add (scheduling, the front thread's grace). */
const ANSWER_BOUND_MS = DEADLINE_MS + 500;
const HEAL_BOUND_MS = 5000;

const body = { amount: 1000, currency: 'USD', source: 'tok_visa' };
const charge = (t: Target, key: string, timeoutMs = DEADLINE_MS): Promise<HttpResult> =>
  call(t.url, 'POST', '/charge', {
    headers: { 'idempotency-key': key, 'x-request-timeout-ms': String(timeoutMs) },
    body,
    timeoutMs: 30_000,
  });
const read = (t: Target, key: string): Promise<HttpResult> =>
  call(t.url, 'GET', `/charges/${encodeURIComponent(key)}`, { timeoutMs: 30_000 });

async function start(kind: TargetKind, databaseUrl: string, env: Record<string, string>): Promise<Target> {
  const t = await startTarget(kind, { databaseUrl, providerUrl: sim.providerUrl, fxUrl: sim.fxUrl, env });
  targets.push(t);
  return t;
}

type AdminState = {
  admission: { inFlight: number };
  bulkheads: { db: { inUse: number } };
  events: Record<string, number>;
};

/** Nothing charged twice at the provider; every key answered 201 is stored as succeeded. */
async function audit(used: string[], succeeded: Set<string>): Promise<void> {
  const rows = await db.sql<
    { idempotency_key: string; status: string }[]
  >`SELECT idempotency_key, status FROM charges WHERE idempotency_key = ANY(${used})`;
  const status = new Map(rows.map((r) => [r.idempotency_key, r.status]));
  for (const k of used) {
    const charges = await ledgerForReference(sim.providerUrl, k);
    assert.ok(charges.length <= 1, `${k} charged ${charges.length} times`);
    if (succeeded.has(k)) {
      assert.equal(status.get(k), 'succeeded', `${k} answered 201 but is stored as ${status.get(k)}`);
      assert.equal(charges.length, 1, `${k} answered 201 but the provider has ${charges.length} charges`);
    }
  }
}

async function partition(
  kind: TargetKind,
): Promise<{ worstAnswerMs: number; firstSuccessMs: number; replaced?: number }> {
  const u = new URL(db.url);
  const proxy = await TcpProxy.start({ host: u.hostname, port: Number(u.port) });
  proxies.push(proxy);
  const env: Record<string, string> = { REQUEST_TIMEOUT_MS: String(DEADLINE_MS), LOG_LEVEL: 'info' };
  // WORKERS=2 with the default DB_POOL_MAX (16): the wave below could hold every slot it takes.
  if (kind === 'gateway') Object.assign(env, { WORKERS: '2' });
  const t = await start(kind, proxy.rewrite(db.url), env);
  try {
    return await partitioned(kind, t, proxy);
  } finally {
    // Gone before the next test counts connections.
    await t.kill();
    targets.splice(targets.indexOf(t), 1);
    await proxy.close();
  }
}

async function partitioned(
  kind: TargetKind,
  t: Target,
  proxy: TcpProxy,
): Promise<{ worstAnswerMs: number; firstSuccessMs: number; replaced?: number }> {
  const admin = kind === 'gateway' ? adminUrl(t) : undefined;
  const state = async () => (await call(admin!, 'GET', '/admin/state')).body as AdminState;
  const used: string[] = [];
  const succeeded = new Set<string>();
  const note = (key: string, r: HttpResult) => {
    if (!used.includes(key)) used.push(key);
    if (r.status === 201) succeeded.add(key);
    return r;
  };

  for (let i = 0; i < 4; i++) {
    const k = `${kind}-warm-${i}`;
    assert.equal(note(k, await charge(t, k, 2000)).status, 201);
  }

  proxy.pause();
  const keys = Array.from({ length: 12 }, (_, i) => `${kind}-part-${i}`);
  const wave = await Promise.all([
    ...keys.map(async (k) => note(k, await charge(t, k))),
    ...keys.slice(0, 4).map(() => read(t, `${kind}-warm-0`)),
  ]);
  let worstAnswerMs = 0;
  for (const r of wave) {
    assert.ok([503, 504].includes(r.status), `partitioned: got ${r.status} ${r.text}`);
    assert.ok(r.ms <= ANSWER_BOUND_MS, `partitioned: answered after ${Math.round(r.ms)} ms (deadline ${DEADLINE_MS})`);
    worstAnswerMs = Math.max(worstAnswerMs, r.ms);
  }
  let replaced: number | undefined;
  if (admin) {
    // The worker tasks ended at the deadline: admission slots, in-flight keys and DB slots are free,
    // though no statement has ended (the proxy never delivers anything). At most the readiness
    // ping and a reconciler pass hold a slot, each for its own short budget.
    await until(
      'admission and DB slots free while partitioned',
      async () => {
        const s = await state();
        return s.admission.inFlight === 0 && s.bulkheads.db.inUse <= 2;
      },
      1500,
      20,
    );
    // Same key again: reaches the database (not 409 from the in-flight map), and is bounded again.
    const again = note(keys[0]!, await charge(t, keys[0]!));
    assert.ok([503, 504].includes(again.status), `retry while partitioned: got ${again.status} ${again.text}`);
    assert.ok(again.ms <= ANSWER_BOUND_MS);
    // A cancelled statement that never ends gets its pool replaced, while still partitioned.
    replaced = await until(
      'a DB pool replaced',
      async () => (await state()).events.db_pool_replaced! > 0 && (await state()).events.db_pool_replaced,
      6000,
      100,
    );
    await until(
      'not ready while partitioned',
      async () => (await call(t.url, 'GET', '/ready')).status === 503,
      4000,
      100,
    );
  } else {
    // The baseline has no admin port: let a cancel grace pass as the gateway's wait does.
    await new Promise((r) => setTimeout(r, 3000));
  }

  proxy.resume();
  const healed = performance.now();
  let firstSuccessMs = Infinity;
  for (let n = 0; performance.now() - healed < HEAL_BOUND_MS + 2000; n++) {
    const k = `${kind}-heal-${n}`;
    const r = note(k, await charge(t, k, 1000));
    if (r.status === 201) {
      firstSuccessMs = performance.now() - healed;
      break;
    }
    await new Promise((res) => setTimeout(res, 50));
  }
  assert.ok(firstSuccessMs <= HEAL_BOUND_MS, `first success ${Math.round(firstSuccessMs)} ms after the heal`);
  // Serving, not one lucky request: every key of the partition now succeeds
  // (none of its claims reached Postgres, so none is left in progress).
  const retried = await Promise.all(keys.map(async (k) => note(k, await charge(t, k, 2000))));
  for (const r of retried) assert.equal(r.status, 201, `after the heal: ${r.status} ${r.text}`);
  assert.equal((await read(t, keys[0]!)).status, 200);
  await audit(used, succeeded);
  return { worstAnswerMs, firstSuccessMs, ...(replaced !== undefined ? { replaced } : {}) };
}

/**
 * A short partition with no client traffic: the pooled connections die
 * quietly (only the services' own pings and reconciler passes touch them).
 * After the heal they never answer again, so serving depends on the service
 * replacing them: first success within 5 s, then steady success.
 */
async function quietPartition(kind: TargetKind): Promise<{ firstSuccessMs: number; steadyMs: number }> {
  const u = new URL(db.url);
  const proxy = await TcpProxy.start({ host: u.hostname, port: Number(u.port) });
  proxies.push(proxy);
  const env: Record<string, string> = { REQUEST_TIMEOUT_MS: String(DEADLINE_MS), LOG_LEVEL: 'info' };
  if (kind === 'gateway') Object.assign(env, { WORKERS: '2', DB_POOL_MAX: '4' });
  const t = await start(kind, proxy.rewrite(db.url), env);
  try {
    return await quietlyPartitioned(kind, t, proxy);
  } finally {
    await t.kill();
    targets.splice(targets.indexOf(t), 1);
    await proxy.close();
  }
}

async function quietlyPartitioned(
  kind: TargetKind,
  t: Target,
  proxy: TcpProxy,
): Promise<{ firstSuccessMs: number; steadyMs: number }> {
  const used: string[] = [];
  const succeeded = new Set<string>();
  let n = 0;
  const next = async (timeoutMs = 1000): Promise<HttpResult> => {
    const k = `${kind}-quiet-${n++}`;
    used.push(k);
    const r = await charge(t, k, timeoutMs);
    if (r.status === 201) succeeded.add(k);
    return r;
  };
  // Open pooled connections: concurrent charges, patient ones (a cold pool authenticates each connection).
  // Some may be refused or time out on a loaded machine: only the connections matter here.
  const warm = await Promise.all(Array.from({ length: 16 }, () => next(5000)));
  assert.ok(warm.filter((r) => r.status === 201).length >= 4, warm.map((r) => r.status).join(','));
  proxy.pause();
  await new Promise((r) => setTimeout(r, 300));
  proxy.resume();
  const healed = performance.now();
  let firstSuccessMs = Infinity;
  while (performance.now() - healed < HEAL_BOUND_MS + 2000) {
    if ((await next()).status === 201) {
      firstSuccessMs = performance.now() - healed;
      break;
    }
  }
  assert.ok(firstSuccessMs <= HEAL_BOUND_MS, `first success ${Math.round(firstSuccessMs)} ms after the heal`);
  // Steady: 8 concurrent charges succeed together, twice in a row (a dead
  // connection left in a pool would time some of them out), within 8 s.
  let streak = 0;
  while (streak < 2 && performance.now() - healed < HEAL_BOUND_MS + 8000) {
    const batch = await Promise.all(Array.from({ length: 8 }, () => next()));
    streak = batch.every((r) => r.status === 201) ? streak + 1 : 0;
  }
  const steadyMs = performance.now() - healed;
  assert.equal(streak, 2, `not serving steadily ${Math.round(steadyMs)} ms after the heal`);
  await audit(used, succeeded);
  return { firstSuccessMs, steadyMs };
}

/**
 * Statements arrive and commit, answers are lost: the claims (and records)
 * sent during the partition may have happened, and the client must never be
 * told 201 for them. After the heal every key ends succeeded exactly once,
 * through the client's retries or the reconciler.
 */
async function lostReplies(): Promise<{ committedUnseen: number; finalMs: number }> {
  const u = new URL(db.url);
  const proxy = await TcpProxy.start({ host: u.hostname, port: Number(u.port) });
  proxies.push(proxy);
  // Short leases so the reconciler may take over rows the partition left started.
  const env = {
    WORKERS: '2',
    LEASE_MS: '3000',
    MAX_REQUEST_TIMEOUT_MS: '2000',
    RECONCILE_INTERVAL_MS: '500',
    LOG_LEVEL: 'info',
  };
  const t = await start('gateway', proxy.rewrite(db.url), env);
  try {
    for (let i = 0; i < 2; i++) assert.equal((await charge(t, `lost-warm-${i}`, 2000)).status, 201);
    // The case under test needs a claim that reached Postgres before its
    // answer was lost; a wave that the pool's own stuck statements kept from
    // claiming at all (seen once in CI: 0 of 10; and once, 2026-12-06, three
    // waves in a row) is not it, so up to five waves are tried. Every key of
    // every wave is held to the same rules.
    const keys: string[] = [];
    let committedUnseen = 0;
    let healed = 0;
    for (let round = 0; round < 5 && committedUnseen === 0; round++) {
      proxy.pause('replies');
      const wave = Array.from({ length: 10 }, (_, i) => `lost-${round}-${i}`);
      keys.push(...wave);
      const answers = await Promise.all(wave.map((k) => charge(t, k)));
      for (const r of answers) {
        assert.ok([503, 504].includes(r.status), `answers lost: got ${r.status} ${r.text}`);
        assert.ok(r.ms <= ANSWER_BOUND_MS, `answered after ${Math.round(r.ms)} ms`);
      }
      await new Promise((r) => setTimeout(r, 2500));
      proxy.resume();
      healed = performance.now();
      // What the partition wrote without anyone hearing of it (read directly, not through the proxy).
      const [row] = await db.sql<
        { n: number }[]
      >`SELECT count(*)::int AS n FROM charges WHERE idempotency_key LIKE 'lost-%' AND idempotency_key NOT LIKE 'lost-warm-%'`;
      committedUnseen = row!.n;
    }
    assert.ok(committedUnseen > 0, 'some claims committed while their answers were lost (the case under test)');
    // Clients retry until final: 409 while a lease is held, then 201 (a takeover or the reconciler's replay).
    const pending = new Set(keys);
    await until(
      'every key final after the heal',
      async () => {
        await Promise.all(
          [...pending].map(async (k) => {
            const r = await charge(t, k, 2000);
            assert.ok([201, 409, 503, 504].includes(r.status), `${k}: ${r.status} ${r.text}`);
            if (r.status === 201) pending.delete(k);
          }),
        );
        return pending.size === 0;
      },
      15_000,
      250,
    );
    const finalMs = performance.now() - healed;
    await audit(keys, new Set(keys));
    return { committedUnseen, finalMs };
  } finally {
    await t.kill();
    targets.splice(targets.indexOf(t), 1);
    await proxy.close();
  }
}

describe('database waits', () => {
  it('gateway: a dropped-packet partition is answered within the deadline, frees every slot, and heals within 5 s', async () => {
    const f = await partition('gateway');
    console.log(
      `# gateway partition: worst answer ${Math.round(f.worstAnswerMs)} ms (deadline ${DEADLINE_MS}), first success ${Math.round(f.firstSuccessMs)} ms after heal, pools replaced ${f.replaced}`,
    );
  });

  it('baseline: the same partition, the same bounds', async () => {
    const f = await partition('baseline');
    console.log(
      `# baseline partition: worst answer ${Math.round(f.worstAnswerMs)} ms (deadline ${DEADLINE_MS}), first success ${Math.round(f.firstSuccessMs)} ms after heal`,
    );
  });

  it('gateway and baseline: connections that died quietly in a short partition are replaced after the heal', async () => {
    for (const kind of ['gateway', 'baseline'] as const) {
      const f = await quietPartition(kind);
      console.log(
        `# ${kind} quiet partition: first success ${Math.round(f.firstSuccessMs)} ms after heal, steady by ${Math.round(f.steadyMs)} ms`,
      );
    }
  });

  it('gateway: answers lost in the partition are never 201; every key ends charged once after the heal', async () => {
    const f = await lostReplies();
    console.log(
      `# lost replies: ${f.committedUnseen} claims committed unseen, every key final ${Math.round(f.finalMs)} ms after heal`,
    );
  });

  it('gateway: WORKERS=2, DB_POOL_MAX=4 never opens more than 4 connections, reads, pings and the reconciler included', async () => {
    const t = await start('gateway', db.url, {
      WORKERS: '2',
      DB_POOL_MAX: '4',
      GROUP_COMMIT: 'false',
      RECONCILE_INTERVAL_MS: '50',
      DB_ACQUIRE_TIMEOUT_MS: '1000',
      LOG_LEVEL: 'info',
    });
    try {
      await boundedConnections(t);
    } finally {
      await t.kill();
      targets.splice(targets.indexOf(t), 1);
    }
  });
});

async function boundedConnections(t: Target): Promise<void> {
  let max = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const [row] = await db.sql<
        { n: number }[]
      >`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'bulwark' AND datname = current_database()`;
      max = Math.max(max, row!.n);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  let ok = 0;
  const statuses: Record<string, number> = {};
  for (let round = 0; round < 4; round++) {
    // A transport error is counted, not thrown: this test is about connections, and
    // the front thread's answers under shedding are covered elsewhere.
    const transport = (op: string) => (e: unknown) =>
      ({ status: 0, body: { code: `${op}: ${String((e as Error).message)}` } }) as unknown as HttpResult;
    const answers = await Promise.all([
      ...Array.from({ length: 60 }, (_, i) => charge(t, `bound-${round}-${i}`, 3000).catch(transport('charge'))),
      ...Array.from({ length: 30 }, (_, i) => read(t, `bound-${round}-${i}`).catch(transport('read'))),
    ]);
    ok += answers.filter((a) => a.status === 201).length;
    for (const a of answers) {
      const k =
        a.status === 503 || a.status === 0 ? `${a.status} ${(a.body as { code?: string }).code}` : String(a.status);
      statuses[k] = (statuses[k] ?? 0) + 1;
    }
  }
  sampling = false;
  await sampler;
  const s = (await call(adminUrl(t), 'GET', '/admin/state')).body as AdminState;
  assert.equal(s.bulkheads.db.inUse, 0, 'every DB slot given back');
  console.log(
    `# global bound: at most ${max} connections named bulwark (DB_POOL_MAX=4, WORKERS=2), ${ok}/240 charges 201, statuses ${JSON.stringify(statuses)}`,
  );
  assert.ok(ok >= 60, `the load must be served in good part to mean anything: ${ok}/240`);
  // Past the bound, requests are refused cleanly (no slot in time, or shed), never failed otherwise.
  for (const k of Object.keys(statuses))
    assert.ok(
      ['200', '201', '404', '504', '503 db_unavailable', '503 overloaded'].includes(k) || k.startsWith('0 '),
      `unexpected answer ${k}`,
    );
  assert.ok(max >= 2, `the sampler saw the workers' connections (${max})`);
  assert.ok(max <= 4, `${max} connections open for DB_POOL_MAX=4`);
}
