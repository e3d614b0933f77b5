/**
 * Start heals itself: `serve` and `baseline` started before their database
 * wait for it (one log line per wait), answer /health 200 and /ready 503
 * meanwhile, take no charge, and serve once it answers.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, startEmbeddedPostgres, type EmbeddedDb } from '../../src/db/embedded.js';
import { startSimulator, type Simulator } from '../../src/simulator/index.js';
import { postCharge, spawnServeGroup, type GroupChild } from '../support/crash.js';
import { TcpProxy } from '../support/tcp-proxy.js';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

async function status(url: string): Promise<{ status: number; body: string }> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return { status: r.status, body: await r.text() };
  } catch {
    return { status: 0, body: '' };
  }
}

async function eventually(what: string, ms: number, ok: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `serve` or `baseline` as its own process group, on `port`, against `databaseUrl`; stopped after the file. */
function spawnService(
  kind: 'gateway' | 'baseline',
  port: number,
  databaseUrl: string,
  sim: Simulator,
  stopAlso: () => Promise<void>,
): GroupChild {
  const g = spawnServeGroup(
    {
      HOST: '127.0.0.1',
      ...(kind === 'gateway' ? { PORT: String(port), ADMIN_PORT: '0' } : { BASELINE_PORT: String(port) }),
      DATABASE_URL: databaseUrl,
      PROVIDER_URL: sim.providerUrl,
      FX_URL: sim.fxUrl,
      DB_STARTUP_TIMEOUT_MS: '60000',
      LOG_LEVEL: 'info',
    },
    kind === 'gateway' ? ['serve'] : ['baseline'],
  );
  cleanups.push(async () => {
    g.child.kill('SIGTERM');
    await Promise.race([g.exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
    g.killGroup();
    await stopAlso();
    await sim.close();
  });
  return g;
}

for (const kind of ['gateway', 'baseline'] as const) {
  test(`${kind}: started before its database, it waits (not ready, /health 200, no charge taken), then serves`, async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bulwark-startup-'));
    const sim: Simulator = await startSimulator({ providerPort: 0, fxPort: 0 });
    const [port, pgPort] = [await freePort(), await freePort()];
    const started: { db?: EmbeddedDb } = {};
    const g = spawnService(kind, port, `postgres://bulwark:bulwark@127.0.0.1:${pgPort}/bulwark`, sim, async () => {
      await started.db?.stop();
      await rm(dir, { recursive: true, force: true });
    });
    const url = `http://127.0.0.1:${port}`;
    // Nothing listens on pgPort yet: it waits, alive but not ready.
    await eventually('a "waiting for postgres" line', 20_000, async () =>
      /"msg":"waiting for postgres"/.test(g.output()),
    );
    await eventually('/health 200 while waiting', 10_000, async () => (await status(`${url}/health`)).status === 200);
    const ready = await status(`${url}/ready`);
    assert.equal(ready.status, 503);
    assert.equal((JSON.parse(ready.body) as { code: string }).code, 'starting');
    const charge = await postCharge(url, 'startup-early', { amount: 100, currency: 'USD', source: 'tok_visa' });
    assert.equal(charge.status, 503);
    assert.equal(sim.provider.ledger.summary().attempts, 0, 'nothing reached the provider');
    // The database comes up: the service migrates, listens on the same port and turns ready.
    started.db = await startEmbeddedPostgres(dir, pgPort, () => {});
    await g.listening;
    await eventually('/ready 200', 20_000, async () => (await status(`${url}/ready`)).status === 200);
    assert.equal(
      (await postCharge(url, 'startup-late', { amount: 100, currency: 'USD', source: 'tok_visa' })).status,
      201,
    );
    const waits = g
      .output()
      .split('\n')
      .filter((l) => l.includes('"msg":"waiting for postgres"'));
    assert.ok(
      waits.every((l) => !l.includes('bulwark:bulwark@')),
      'no password in the wait lines',
    );
  });
}

/**
 * A Postgres restarted just after the first `SELECT 1` answered: the next
 * start-up step (the durability check, then the migrations) meets a lost
 * connection and refused ones. Start-up retries that step as it waits for
 * the first answer; before, `serve` exited 1 (an attack timed immediate
 * stops 20-90 ms into start-up: 14 exits in 25 trials). A proxy resets every
 * connection the moment the step's statement goes out, so the restart lands
 * on it every time instead of by chance.
 */
const STEPS = [
  { step: 'the durability check runs', marker: "current_setting('synchronous_commit')" },
  { step: 'the migrations run', marker: 'pg_advisory_xact_lock' },
] as const;
for (const kind of ['gateway', 'baseline'] as const)
  for (const { step, marker } of STEPS)
    test(`${kind}: Postgres restarting as ${step}: start-up waits it out, then serves`, async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'bulwark-startup-'));
      const sim: Simulator = await startSimulator({ providerPort: 0, fxPort: 0 });
      const [port, pgPort] = [await freePort(), await freePort()];
      const db = await startEmbeddedPostgres(dir, pgPort, () => {});
      const proxy = await TcpProxy.start({ host: '127.0.0.1', port: pgPort });
      const restarted = proxy.restartOn(marker, 400);
      const dbUrl = proxy.rewrite(`postgres://bulwark:bulwark@127.0.0.1:${pgPort}/bulwark`);
      const g = spawnService(kind, port, dbUrl, sim, async () => {
        await proxy.close();
        await db.stop();
        await rm(dir, { recursive: true, force: true });
      });
      await Promise.race([
        restarted,
        g.exited.then((code) => {
          throw new Error(`exited ${code} before the restart (${marker}):\n${g.output().slice(-2000)}`);
        }),
        g.listening.then(() => {
          throw new Error(`listening, and the proxy never saw ${marker}: the restart did not land`);
        }),
      ]);
      await g.listening;
      const url = `http://127.0.0.1:${port}`;
      await eventually('/ready 200', 20_000, async () => (await status(`${url}/ready`)).status === 200);
      assert.equal(
        (
          await postCharge(url, `restart-${kind}-${marker.length}`, {
            amount: 100,
            currency: 'USD',
            source: 'tok_visa',
          })
        ).status,
        201,
      );
      assert.match(g.output(), /"msg":"waiting for postgres"/, 'the lost step was waited out and logged');
    });
