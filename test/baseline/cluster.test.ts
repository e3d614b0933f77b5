/**
 * `bulwark baseline --processes 2` as a user runs it: the compiled CLI on
 * port 0, a real Postgres and the simulator. What a user relies on: both
 * processes serve; the idempotency record in Postgres keeps a charge
 * exactly-once whichever process each retry lands on; SIGTERM lets every
 * in-flight charge finish before anything exits; a dead worker is replaced.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Client } from 'undici';
import { PID_HEADER } from '../../src/baseline/cluster-worker.js';
import { startChild, type Child } from '../../src/lab/scenario/run/child.js';
import { startSimulator, type Simulator } from '../../src/simulator/index.js';
import { startTestDb, type TestDb } from '../support/postgres.js';
import { clearFaults, ledgerForReference, setFaults } from '../support/simulator.js';

const BODY = JSON.stringify({ amount: 1000, currency: 'usd', source: 'tok_visa' });

interface Answer {
  status: number;
  pid: string | undefined;
  code: string | undefined;
}

/** One charge on a connection of its own: cluster hands out connections, not requests. */
async function charge(url: string, key: string, timeoutMs = 5000): Promise<Answer> {
  const client = new Client(url);
  try {
    const r = await client.request({
      method: 'POST',
      path: '/charge',
      headers: {
        'content-type': 'application/json',
        'idempotency-key': key,
        'x-request-timeout-ms': String(timeoutMs),
      },
      body: BODY,
      headersTimeout: timeoutMs + 5000,
      bodyTimeout: timeoutMs + 5000,
    });
    const text = await r.body.text();
    const pid = r.headers[PID_HEADER];
    let code: string | undefined;
    try {
      code = (JSON.parse(text) as { code?: string }).code;
    } catch {
      code = undefined;
    }
    return { status: r.statusCode, pid: typeof pid === 'string' ? pid : undefined, code };
  } finally {
    await client.close();
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

void describe('baseline --processes 2 (node:cluster)', () => {
  let db: TestDb;
  let sim: Simulator;
  const started: Child[] = [];

  const launch = async (): Promise<{ c: Child; url: string; workers: number[] }> => {
    const c = await startChild({
      name: 'baseline-cluster',
      args: ['baseline', '--processes', '2'],
      env: {
        HOST: '127.0.0.1',
        BASELINE_PORT: '0',
        DATABASE_URL: db.url,
        PROVIDER_URL: sim.providerUrl,
        FX_URL: sim.fxUrl,
        LOG_LEVEL: 'info',
        MAX_REQUEST_TIMEOUT_MS: '10000',
        PROVIDER_TIMEOUT_MS: '5000',
        SHUTDOWN_GRACE_MS: '8000',
      },
    });
    started.push(c);
    const workers = c.listening.workers as number[];
    return { c, url: `http://127.0.0.1:${c.listening.port as number}`, workers };
  };

  before(async () => {
    db = await startTestDb();
    sim = await startSimulator({ providerPort: 0, fxPort: 0 });
  });
  after(async () => {
    for (const c of started) if (c.alive()) await c.stop('SIGKILL', 5000);
    await sim?.close();
    await db?.close();
  });

  void it('serves charges from both worker processes, never from the primary', async () => {
    const { c, url, workers } = await launch();
    try {
      assert.equal(workers.length, 2);
      // Batches until both have answered: the primary hands a connection to
      // whichever worker is free, usually but not always the other one.
      const answers: Answer[] = [];
      for (let i = 0; i < 5 && new Set(answers.map((a) => a.pid)).size < 2; i++)
        answers.push(...(await Promise.all(Array.from({ length: 12 }, () => charge(url, randomUUID())))));
      assert.deepEqual(
        answers.map((a) => a.status),
        answers.map(() => 201),
      );
      const pids = new Set(answers.map((a) => Number(a.pid)));
      assert.deepEqual([...pids].sort(), [...workers].sort(), 'both workers answered, and only they did');
      assert.ok(!pids.has(c.pid));
    } finally {
      await c.stop('SIGTERM', 15_000);
    }
  });

  void it('one provider charge per key when the same key reaches both processes at once', async () => {
    const { c, url, workers } = await launch();
    try {
      // A slow provider: the first attempt is still in flight when the others arrive.
      await setFaults(sim.providerUrl, { latencyMs: 400 });
      // The primary hands each connection to a free worker, which is usually
      // but not always the other one: rounds of 4 keys × 6 connections until
      // at least 3 keys have reached both processes. Every key is checked.
      const keys: string[] = [];
      const byKey: Answer[][] = [];
      let spanning = 0;
      for (let round = 0; round < 6 && spanning < 3; round++) {
        const batch = Array.from({ length: 4 }, () => randomUUID());
        const answers = await Promise.all(
          batch.map((k) => Promise.all(Array.from({ length: 6 }, () => charge(url, k)))),
        );
        keys.push(...batch);
        byKey.push(...answers);
        spanning += answers.filter((a) => new Set(a.map((x) => x.pid)).size === 2).length;
      }
      await clearFaults(sim.providerUrl);
      assert.ok(spanning >= 3, `${spanning} of ${keys.length} keys reached both processes`);
      const servedBy = new Set(byKey.flat().map((a) => Number(a.pid)));
      assert.deepEqual([...servedBy].sort(), [...workers].sort(), 'the same keys reached both processes');
      for (const [i, answers] of byKey.entries()) {
        for (const a of answers)
          assert.ok(
            a.status === 201 || (a.status === 409 && a.code === 'idempotency_in_progress'),
            `${a.status} ${a.code}`,
          );
        assert.ok(answers.some((a) => a.status === 201));
        const charges = await ledgerForReference(sim.providerUrl, keys[i]!);
        assert.equal(charges.length, 1, `exactly one provider charge for ${keys[i]}: ${JSON.stringify(charges)}`);
      }
      // A replay afterwards, on either process, gets the stored outcome and charges nothing.
      const replays = await Promise.all(Array.from({ length: 4 }, () => charge(url, keys[0]!)));
      for (const r of replays) assert.equal(r.status, 201);
      assert.equal((await ledgerForReference(sim.providerUrl, keys[0]!)).length, 1);
    } finally {
      await clearFaults(sim.providerUrl).catch(() => {});
      await c.stop('SIGTERM', 15_000);
    }
  });

  void it('SIGTERM drains: in-flight charges on both processes finish, then every process exits 0', async () => {
    const { c, url, workers } = await launch();
    await setFaults(sim.providerUrl, { latencyMs: 1500 });
    try {
      // 16 connections: both processes get some (all 16 to one is ~2^-15 with even odds).
      const keys = Array.from({ length: 16 }, () => randomUUID());
      const inFlight = keys.map((k) => charge(url, k));
      // Every charge has reached the provider (its call is in flight there).
      const until = Date.now() + 10_000;
      while (Date.now() < until) {
        const seen = await Promise.all(keys.map((k) => ledgerForReference(sim.providerUrl, k)));
        if (seen.every((s) => s.length > 0)) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const exit = c.stop('SIGTERM', 20_000);
      const answers = await Promise.all(inFlight);
      for (const a of answers) assert.equal(a.status, 201, `in-flight charge answered ${a.status} ${a.code}`);
      assert.deepEqual(new Set(answers.map((a) => Number(a.pid))), new Set(workers), 'both processes were draining');
      assert.equal(await exit, 0);
      for (const w of workers) assert.ok(!alive(w), `worker ${w} is gone`);
      const finished = c
        .lines()
        .map((l) => l.rec)
        .filter((r) => r.msg === 'drain finished');
      // One line per worker and the primary's last, with nothing abandoned.
      assert.equal(finished.length, 3);
      assert.equal(finished.at(-1)!.abandoned, 0);
      assert.equal(finished.at(-1)!.processes, 2, "the last line is the primary's, for the whole cluster");
      for (const k of keys) assert.equal((await ledgerForReference(sim.providerUrl, k)).length, 1);
    } finally {
      await clearFaults(sim.providerUrl).catch(() => {});
      if (c.alive()) await c.stop('SIGKILL', 5000);
    }
  });

  void it('a killed worker is replaced and the cluster keeps serving from two processes', async () => {
    const { c, url, workers } = await launch();
    try {
      process.kill(workers[0]!, 'SIGKILL');
      const until = Date.now() + 15_000;
      let replacement: number | undefined;
      while (replacement === undefined && Date.now() < until) {
        const line = c
          .lines()
          .map((l) => l.rec)
          .find((r) => r.msg === 'worker listening' && !workers.includes(r.pid as number));
        replacement = line?.pid as number | undefined;
        if (replacement === undefined) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(replacement !== undefined, 'a replacement worker listens');
      const answers = await Promise.all(Array.from({ length: 12 }, () => charge(url, randomUUID())));
      for (const a of answers) assert.equal(a.status, 201);
      assert.deepEqual(
        new Set(answers.map((a) => Number(a.pid))),
        new Set([workers[1]!, replacement]),
        'the survivor and the replacement serve',
      );
    } finally {
      await c.stop('SIGTERM', 15_000);
    }
  });
});
