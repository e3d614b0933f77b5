/**
 * Exactly-once through real crashes (issue 12), against the compiled
 * `bulwark serve`, a real embedded Postgres and the simulator:
 *
 * - Postgres stopped with `pg_ctl stop -m immediate` right after a burst of
 *   acknowledged charges, restarted, every key retried until final: no key
 *   charged twice, no acknowledged answer lost or changed. With
 *   synchronous_commit=off (the old embedded setting) acknowledged rows
 *   vanish here and their retries get other answers.
 * - SIGKILL of the whole process group of `serve` on the embedded Postgres
 *   (gateway, workers, postmaster, backends) mid-load, restarted at once: it
 *   comes up, turns ready, and once the reconciler has finished the started
 *   rows the audit is clean.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { freePort, type EmbeddedDb } from '../../src/db/embedded.js';
import { startSimulator, type Simulator } from '../../src/simulator/index.js';
import { setFaults } from '../support/simulator.js';
import { ChargeStore } from '../../src/charge/store.js';
import { DEV_PROVIDER_KEY_SECRET, providerKeys } from '../../src/charge/provider-key.js';
import { fingerprint } from '../../src/charge/fingerprint.js';
import {
  audit,
  crashStack,
  immediateStop,
  isFinal,
  postCharge,
  retryUntilFinal,
  spawnServeGroup,
  type Answer,
  type ChargeBody,
  type GroupChild,
  type Row,
} from '../support/crash.js';

const bodyFor = (i: number): ChargeBody => ({
  amount: 100 + i,
  currency: 'USD',
  source: i % 10 === 0 ? 'tok_chargeDeclined' : 'tok_visa',
});

async function readRows(url: string, keys: readonly string[]): Promise<Map<string, Row>> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql<
      Row[]
    >`SELECT idempotency_key, status, provider_charge_id, response_status, response_body FROM charges WHERE idempotency_key = ANY(${keys as string[]}::text[])`;
    return new Map(rows.map((r) => [r.idempotency_key, r]));
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** `p`, or a rejection after `ms` (the timer is cleared either way, so it keeps no process alive). */
async function within<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what())), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function until<T>(what: string, withinMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + withinMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('Postgres immediate stop right after a burst of acknowledged charges', () => {
  // Durability is under test, not protection: no shedding or breaker
  // may turn the burst away on a busy machine. Leases short enough that
  // a claim orphaned by the crash is taken over by a retry in seconds.
  const stack = crashStack('crash-pg', {
    MECHANISMS: 'false',
    LEASE_MS: '3500',
    MAX_REQUEST_TIMEOUT_MS: '3000',
    RECONCILE_INTERVAL_MS: '200',
  });

  test('5 times: every key retried after the restart; none charged twice, no acknowledged answer lost or changed', async () => {
    for (let round = 1; round <= 5; round++) {
      const run = randomBytes(3).toString('hex');
      const keys = Array.from({ length: 100 }, (_, i) => `pgstop-${round}-${run}-${i}`);
      // Postgres crashes the moment the 60th answer is out, the last ones
      // acknowledged microseconds before it: no checkpoint, no WAL writer
      // round has followed them. The rest of the burst is still in flight.
      let finals = 0;
      let crash!: () => void;
      const crashed = new Promise<void>((r) => (crash = r)).then(() => immediateStop(stack.pgDataDir));
      const answers = await Promise.all(
        keys.map(async (k, i) => {
          const a = await postCharge(stack.service.url, k, bodyFor(i), 3000);
          if (isFinal(a) && ++finals === 60) crash();
          return a;
        }),
      );
      crash(); // fewer than 60 final answers: crash after the burst
      await crashed;
      const acked = new Map(keys.flatMap((k, i) => (isFinal(answers[i]!) ? [[k, answers[i]!] as const] : [])));
      assert.ok(
        acked.size >= 50,
        `round ${round}: most of the burst is acknowledged (${acked.size}/100: ${[...new Set(answers.filter((a) => !isFinal(a)).map((a) => `${a.status} ${/"code":"(\w+)"/.exec(a.body)?.[1] ?? ''}`))].join(', ')})`,
      );
      const db = await stack.restartPostgres();
      // Before any retry: every acknowledged answer is still stored, as sent.
      const kept = await readRows(db.url, [...acked.keys()]);
      const lost = [...acked]
        .filter(([k, a]) => kept.get(k)?.response_status !== a.status || kept.get(k)?.response_body !== a.body)
        .map(([k]) => k);
      assert.deepEqual(
        lost,
        [],
        `round ${round}: ${lost.length} of ${acked.size} acknowledged answers lost in the crash`,
      );
      const retried = await Promise.all(keys.map((k, i) => retryUntilFinal(stack.service.url, k, bodyFor(i), 30_000)));
      const changed = keys.filter(
        (k, i) =>
          acked.has(k) && (acked.get(k)!.status !== retried[i]!.status || acked.get(k)!.body !== retried[i]!.body),
      );
      assert.deepEqual(changed, [], `round ${round}: acknowledged answers replay unchanged`);
      const twice = keys.filter((k) => stack.sim.provider.ledgerByReference(k).charges.length !== 1);
      assert.deepEqual(twice, [], `round ${round}: every key charged exactly once at the provider`);
      const findings = audit(
        new Map(keys.map((k, i) => [k, acked.get(k) ?? retried[i]!])),
        await readRows(db.url, keys),
        stack.sim.provider,
      );
      assert.deepEqual(findings, [], `round ${round}: rows, ledger and answers agree`);
    }
    assert.deepEqual(stack.sim.provider.ledger.summary().duplicates, []);
  });
});

for (const kind of ['gateway', 'baseline'] as const) {
  describe(`${kind}: Postgres immediate stop with charges in flight`, () => {
    // The crash lands while statements are on the wire. postgres.js, which
    // pipelined statements on a connection, once resolved claims with rows of
    // other keys at that moment, and the charge went out under another key's
    // provider key (a double charge measured in the lab on the baseline).
    const stack = crashStack(
      `crash-inflight-${kind}`,
      {
        MECHANISMS: 'false',
        LEASE_MS: '3500',
        MAX_REQUEST_TIMEOUT_MS: '3000',
        RECONCILE_INTERVAL_MS: '200',
      },
      kind,
    );
    const providerKey = providerKeys(DEV_PROVIDER_KEY_SECRET);

    test('3 times: every charge reaches the provider under its own key, none charged twice', async () => {
      for (let round = 1; round <= 3; round++) {
        const run = randomBytes(3).toString('hex');
        const keys = Array.from({ length: 800 }, (_, i) => `inflight-${round}-${run}-${i}`);
        // 200 charges/s for 4 s. Postgres is stopped at 1 s and started again
        // at 2.5 s while the load goes on, so the service meets it coming back
        // with statements queued (where the mix-up was measured).
        let db: Promise<EmbeddedDb> | undefined;
        const answers = await Promise.all(
          keys.map(async (k, i) => {
            await new Promise((r) => setTimeout(r, i * 5));
            if (i === 200)
              db = immediateStop(stack.pgDataDir).then(async () => {
                await new Promise((r) => setTimeout(r, 1500));
                return stack.restartPostgres();
              });
            return postCharge(stack.service.url, k, bodyFor(i), 3000);
          }),
        );
        const restarted = await db!;
        const retried = await Promise.all(
          keys.map((k, i) =>
            isFinal(answers[i]!) ? answers[i]! : retryUntilFinal(stack.service.url, k, bodyFor(i), 30_000),
          ),
        );
        const ledger = stack.sim.provider.ledger;
        const foreign = keys.filter((k, i) => {
          const own = ledger.get(providerKey(k, fingerprint(bodyFor(i))));
          return own?.charge != null && own.charge.reference !== k;
        });
        assert.deepEqual(foreign, [], `round ${round}: charges made under another key's provider key`);
        const notOnce = keys.filter((k) => stack.sim.provider.ledgerByReference(k).charges.length !== 1);
        assert.deepEqual(notOnce, [], `round ${round}: every key charged exactly once at the provider`);
        const findings = audit(
          new Map(keys.map((k, i) => [k, retried[i]!])),
          await readRows(restarted.url, keys),
          stack.sim.provider,
        );
        assert.deepEqual(findings, [], `round ${round}: rows, ledger and answers agree`);
      }
      assert.deepEqual(stack.sim.provider.ledger.summary().duplicates, []);
    });
  });
}

describe('a key reused after the reaper pruned its row', () => {
  const stack = crashStack('crash-reap', { MECHANISMS: 'false' });

  test('same body: the provider returns the original charge; another body: a new charge', async () => {
    const sql = postgres(stack.db.url, { max: 1, onnotice: () => {} });
    try {
      const reap = async (key: string) => {
        // The 72 h retention has passed for this key; the real reaper prunes it.
        await sql`UPDATE charges SET completed_at = now() - interval '73 hours' WHERE idempotency_key = ${key}`;
        assert.ok((await new ChargeStore(sql, providerKeys('unused-for-reaping')).reap(72)) >= 1);
        assert.equal((await readRows(stack.db.url, [key])).size, 0);
      };
      const key = `reaped-${randomBytes(3).toString('hex')}`;
      const first = await postCharge(stack.service.url, key, bodyFor(1), 3000);
      assert.equal(first.status, 201);
      await reap(key);
      const same = await postCharge(stack.service.url, key, bodyFor(1), 3000);
      assert.equal(same.status, 201);
      const [a, b] = [JSON.parse(first.body), JSON.parse(same.body)] as { id: string; provider_charge_id: string }[];
      assert.notEqual(b!.id, a!.id, 'a new row, a new charge id');
      assert.equal(
        b!.provider_charge_id,
        a!.provider_charge_id,
        'the provider deduplicated: its original charge came back',
      );
      assert.equal(stack.sim.provider.ledgerByReference(key).charges.length, 1);
      await reap(key);
      const other = await postCharge(stack.service.url, key, { ...bodyFor(1), amount: 999 }, 3000);
      assert.equal(other.status, 201);
      assert.notEqual(
        (JSON.parse(other.body) as { provider_charge_id: string }).provider_charge_id,
        a!.provider_charge_id,
      );
      assert.equal(stack.sim.provider.ledgerByReference(key).charges.length, 2, 'another body is another charge');
    } finally {
      await sql.end({ timeout: 1 });
    }
  });
});

describe('SIGKILL of the whole process group of serve (embedded Postgres), restarted at once', () => {
  let dir: string;
  let sim: Simulator;
  let g: GroupChild | undefined;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bulwark-crash-kill-'));
    // Outside the killed group, so its ledger is the ground truth across crashes.
    sim = await startSimulator({ providerPort: 0, fxPort: 0 });
    // Charges spend a while at the provider, so the kill finds some there.
    await setFaults(sim.providerUrl, { latencyMs: 60 });
  });
  after(async () => {
    if (g) {
      // Drained shutdown stops the embedded Postgres; a group kill if that fails.
      g.child.kill('SIGTERM');
      await within(g.exited, 15_000, () => 'no exit').catch(() => g!.killGroup());
    }
    await sim?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('3 times: it comes up, /ready turns 200, and the audit is clean', async () => {
    const [port, pgPort] = [await freePort(), await freePort()];
    const env = {
      HOST: '127.0.0.1',
      PORT: String(port),
      ADMIN_PORT: '0',
      BULWARK_DATA_DIR: dir,
      EMBEDDED_PG_PORT: String(pgPort),
      PROVIDER_URL: sim.providerUrl,
      FX_URL: sim.fxUrl,
      // As in the first suite: crash safety is under test, so nothing sheds the load on a busy machine.
      MECHANISMS: 'false',
      LEASE_MS: '2500',
      MAX_REQUEST_TIMEOUT_MS: '2000',
      RECONCILE_INTERVAL_MS: '200',
      LOG_LEVEL: 'info',
    };
    const url = `http://127.0.0.1:${port}`;
    const dbUrl = `postgres://bulwark:bulwark@127.0.0.1:${pgPort}/bulwark`;
    g = spawnServeGroup(env);
    await g.listening;
    const bodies = new Map<string, ChargeBody>();
    for (let round = 1; round <= 3; round++) {
      const sent = new Map<string, Answer | null>();
      let stop = false;
      const loops = Array.from({ length: 24 }, async (_, l) => {
        for (let n = 0; !stop; n++) {
          const key = `kill-${round}-${l}-${n}`;
          const body = bodyFor(n);
          bodies.set(key, body);
          sent.set(key, null);
          sent.set(key, await postCharge(url, key, body, 2000));
        }
      });
      // Kill once some charges are acknowledged, while the others are in flight.
      const ackedNow = () => [...sent.values()].filter((a) => a && isFinal(a)).length;
      await until('10 acknowledged charges', 60_000, async () => (ackedNow() >= 10 ? true : undefined));
      const old = g;
      old.killGroup();
      g = spawnServeGroup(env); // at once: the old postmaster may not even be gone yet
      stop = true;
      await Promise.all(loops);
      await old.exited;
      const acked = [...sent.values()].filter((a) => a && isFinal(a)).length;
      const cut = [...sent.values()].filter((a) => a?.status === 0).length;
      assert.ok(acked >= 10, `round ${round}: charges were acknowledged before the kill (${acked})`);
      assert.ok(cut > 0, `round ${round}: charges were in flight at the kill (${cut})`);
      const listening = await within(g.listening, 60_000, () => `no restart within 60 s:\n${g!.output().slice(-3000)}`);
      assert.equal(listening.port, port);
      await until('/ready 200', 20_000, async () => ((await fetch(`${url}/ready`)).status === 200 ? true : undefined));
      // The reconciler finishes what the kill left started (leases of 2.5 s).
      await until('no started rows', 30_000, async () => {
        const sql = postgres(dbUrl, { max: 1, onnotice: () => {} });
        try {
          const [r] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM charges WHERE status = 'started'`;
          return r!.n === 0 ? true : undefined;
        } finally {
          await sql.end({ timeout: 1 });
        }
      });
      const findings = audit(sent, await readRows(dbUrl, [...sent.keys()]), sim.provider);
      assert.deepEqual(findings, [], `round ${round}: nothing charged twice, nothing acknowledged lost`);
      // And it serves: a key cut off by the kill gets its final answer now.
      const cutKey = [...sent].find(([, a]) => a?.status === 0)![0];
      const again = await retryUntilFinal(url, cutKey, bodies.get(cutKey)!, 10_000);
      assert.ok(isFinal(again));
    }
    assert.deepEqual(sim.provider.ledger.summary().duplicates, []);
  });
});
