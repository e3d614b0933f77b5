/**
 * The lab's multi-process peers (docs/design.md §12): Fastify per core behind
 * node:cluster, and single Fastify processes behind the shipped HAProxy with
 * per-server maxconn and a queue timeout. What the report relies on: each
 * runs the shape it is named for (every process of it counted), HAProxy
 * really enforces the operator's limit, and the fleet asks Postgres and the
 * provider for no more than one process would.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { ALL_VARIANTS } from '../../src/lab/scenario/plan/scenarios/common.js';
import { startEnvironment, type Environment } from '../../src/lab/scenario/run/environment.js';
import {
  FASTIFY_LB_ENV,
  haproxyConfigFor,
  ReplicaPair,
  replicaShare,
  replicaWorkers,
  pairEnv,
} from '../../src/lab/scenario/run/replica-pair.js';
import { LAB_SERVICE_DEFAULTS } from '../../src/lab/scenario/run/run-variant.js';
import { ServiceUnderTest } from '../../src/lab/scenario/run/service.js';
import { haproxyTool } from '../support/system-tools.js';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function charge(url: string): Promise<number> {
  const r = await request(`${url}/charge`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': randomUUID(), 'x-request-timeout-ms': '2500' },
    body: JSON.stringify({ amount: 1000, currency: 'usd', source: 'tok_visa' }),
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  await r.body.text();
  return r.statusCode;
}

/** HAProxy's stats CSV rows of the backend's servers, by column name. */
async function serverStats(pair: ReplicaPair): Promise<Record<string, string>[]> {
  const res = await request(pair.statsCsvUrl, { headersTimeout: 2000, bodyTimeout: 2000 });
  const [header, ...rows] = (await res.body.text()).split('\n');
  const cols = (header ?? '').replace(/^# /, '').split(',');
  return rows
    .map((r) => Object.fromEntries(r.split(',').map((v, i) => [cols[i]!, v])))
    .filter((r) => r.pxname === 'gateways' && r.svname !== 'BACKEND' && r.svname !== 'FRONTEND');
}

void describe('lab peers: configuration', () => {
  void it('both peers are in the default (full) variant set', () => {
    assert.ok(ALL_VARIANTS.includes('baseline-cluster'));
    assert.ok(ALL_VARIANTS.includes('baseline-haproxy'));
  });

  void it('a fleet of n replicas never asks Postgres for more than one process would', () => {
    for (const n of [1, 2, 3, 4, 7, 16, 17]) {
      const s = replicaShare({}, n);
      assert.ok(Number(s.DB_POOL_MAX) >= 1);
      assert.ok(n * Number(s.DB_POOL_MAX) <= Math.max(16, n), `n=${n}: ${n} × ${s.DB_POOL_MAX}`);
      assert.ok(n * Number(s.PROVIDER_CONNECTIONS) >= 64, 'the provider connections are all handed out');
    }
    assert.equal(replicaShare({ DB_POOL_MAX: '30' }, 4).DB_POOL_MAX, '7');
  });

  void it('gateway replicas on one machine hold their core share of worker threads, at least one each', () => {
    for (const cores of [1, 2, 3, 4, 8])
      for (const n of [1, 2, 3, 4, 16]) {
        const w = replicaWorkers(cores, n);
        assert.ok(Number.isInteger(w) && w >= 1, `cores=${cores} n=${n}: ${w}`);
        assert.ok(n * w <= Math.max(cores, n), `cores=${cores} n=${n}: ${n} × ${w} workers`);
      }
    assert.equal(replicaWorkers(2, 2), 1);
    assert.equal(replicaWorkers(8, 2), 4);
  });

  void it("a pair's gateway replicas are sized unless WORKERS is given; Fastify replicas never are", () => {
    const env = { SHUTDOWN_DELAY_MS: '2000' };
    assert.deepEqual(pairEnv('gateway', env, {}, 2), { ...env, WORKERS: '1' });
    assert.equal(pairEnv('gateway-off', env, {}, 8).WORKERS, '4');
    assert.equal(pairEnv('gateway', env, { WORKERS: '' }, 2).WORKERS, '1', 'an empty WORKERS is unset');
    assert.equal(pairEnv('gateway', { ...env, WORKERS: '3' }, {}, 2).WORKERS, '3', 'the plan wins');
    assert.equal(pairEnv('gateway', env, { WORKERS: '3' }, 2).WORKERS, undefined, "the caller's own reaches the child");
    assert.deepEqual(pairEnv('baseline', env, {}, 2), env);
    // Never more workers than Postgres connections: start-up refuses DB_POOL_MAX < WORKERS.
    assert.equal(pairEnv('gateway', env, {}, 64).WORKERS, '16', 'the default DB_POOL_MAX of 16');
    assert.equal(pairEnv('gateway', { ...env, DB_POOL_MAX: '2' }, {}, 8).WORKERS, '2');
    assert.equal(pairEnv('gateway', env, { DB_POOL_MAX: '3' }, 8).WORKERS, '3');
    assert.equal(pairEnv('gateway', env, {}, 1024).WORKERS, '16');
  });

  void it('n servers: the shipped file for two, otherwise a copy whose server lines are the only change', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bulwark-lb-test-'));
    try {
      const two = await haproxyConfigFor(2, dir);
      assert.match(two.file, /deploy\/haproxy\/haproxy\.cfg$/);
      const shipped = await readFile(two.file, 'utf8');
      const three = await haproxyConfigFor(3, dir);
      assert.deepEqual(three.servers, ['gw-1', 'gw-2', 'gw-3']);
      const copy = await readFile(three.file, 'utf8');
      const strip = (t: string) => t.split('\n').filter((l) => !/^\s*server /.test(l));
      assert.deepEqual(strip(copy), strip(shipped));
      assert.equal(copy.split('\n').filter((l) => /^\s*server gw-\d /.test(l)).length, 3);
      // The operator's limit comes from the shipped default-server line, in both.
      for (const t of [shipped, copy]) assert.match(t, /default-server .*maxconn "\$\{BULWARK_SERVER_MAXCONN-0\}"/);
      const haproxy = haproxyTool().path;
      if (haproxy) {
        const env = { ...process.env, ...FASTIFY_LB_ENV, ...three.env([1, 2, 3]) };
        const r = spawnSync(haproxy, ['-c', '-f', three.file], { encoding: 'utf8', env });
        assert.equal(r.status, 0, `haproxy -c:\n${r.stdout}${r.stderr}`);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

void describe('lab peers: running', () => {
  let env: Environment;
  let serviceEnv: Record<string, string>;
  before(async () => {
    env = await startEnvironment({ log: () => {} });
    serviceEnv = {
      ...LAB_SERVICE_DEFAULTS,
      DATABASE_URL: env.databaseUrl,
      PROVIDER_URL: env.sim.providerUrl,
      FX_URL: env.sim.fxUrl,
    };
  });
  after(async () => env?.close());

  void it('baseline-cluster is one process per core, each counted', async () => {
    const svc = await ServiceUnderTest.start({ variant: 'baseline-cluster', env: serviceEnv });
    try {
      assert.equal(await charge(svc.url), 201);
      const pids = await svc.livePids();
      const workers = svc.current.listening.workers as number[];
      assert.equal(workers.length, availableParallelism());
      assert.deepEqual(new Set(pids), new Set([svc.current.pid, ...workers]));
      for (const p of pids) assert.ok(alive(p));
    } finally {
      await svc.stop();
    }
  });

  void it(
    'baseline-haproxy: single processes behind HAProxy, which holds each to maxconn and answers the excess 503',
    { skip: haproxyTool().skip },
    async () => {
      const n = 2;
      const pair = await ReplicaPair.start({
        variant: 'baseline-haproxy',
        env: { ...serviceEnv, ...replicaShare(serviceEnv, n) },
        log: () => {},
        replicas: n,
        lbEnv: FASTIFY_LB_ENV,
        haproxy: haproxyTool().path,
      });
      try {
        assert.equal(await charge(pair.url), 201);
        const stats = await serverStats(pair);
        assert.equal(stats.length, n);
        for (const s of stats) assert.equal(s.slim, FASTIFY_LB_ENV.BULWARK_SERVER_MAXCONN, 'the per-server limit');
        // Each replica is the single process, and HAProxy (master and worker) is counted with them.
        const pids = await pair.livePids();
        assert.equal(new Set(pids).size, n + 2, `pids ${pids.join(',')}`);
        assert.deepEqual(
          pair.processes.map((c) => c.listening.workers),
          pair.processes.map(() => undefined),
        );
        // A provider slower than the queue timeout (250 ms), faster than the
        // provider timeout (800 ms): beyond n × maxconn in
        // flight, requests wait in HAProxy's queue and get its 503.
        await env.sim.setFaults('provider', { latencyMs: { dist: 'fixed', ms: 600 } });
        const limit = n * Number(FASTIFY_LB_ENV.BULWARK_SERVER_MAXCONN);
        const statuses = await Promise.all(Array.from({ length: limit + 24 }, () => charge(pair.url)));
        await env.sim.setFaults('provider', undefined);
        const ok = statuses.filter((s) => s === 201).length;
        const refused = statuses.filter((s) => s === 503).length;
        assert.equal(ok + refused, statuses.length, `statuses ${statuses.join(',')}`);
        assert.ok(ok <= limit, `${ok} served at once with room for ${limit}`);
        assert.ok(refused >= 24, `${refused} refused`);
        for (const s of await serverStats(pair))
          assert.ok(Number(s.smax) <= Number(FASTIFY_LB_ENV.BULWARK_SERVER_MAXCONN), `smax ${s.smax}`);
      } finally {
        await env.sim.setFaults('provider', undefined).catch(() => {});
        await pair.stop();
      }
    },
  );
});
