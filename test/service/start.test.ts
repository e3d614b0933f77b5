/**
 * A start that fails after the dependencies came up stops them before the
 * process exits, for both servers. The dependency that matters is the
 * embedded Postgres: its postmaster does not die with us, so one left
 * behind holds its port and data directory and the next start adopts a
 * server nobody owns.
 *
 * Each case runs the real CLI on an embedded Postgres data directory of its
 * own making: migrations that fail (a `charges` table of another shape is
 * already there), and for the gateway a port taken after the migrations ran
 * (its admin port). Then: exit code 1, the error on stderr, and the
 * postmaster gone (no postmaster.pid, the port refuses connections).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import postgres from 'postgres';
import { freePort, startEmbeddedPostgres } from '../../src/db/embedded.js';
import { CLI_PATH } from '../../src/lab/scenario/run/child.js';
import { startSimulator, type Simulator } from '../../src/simulator/index.js';

let dir: string;
let pgPort: number;
let sim: Simulator;

/** Run `sql` on the data directory's database with a Postgres of the test's own, stopped again after. */
async function withDatabase(sql: string): Promise<void> {
  const db = await startEmbeddedPostgres(dir, pgPort, () => {});
  const c = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    await c.unsafe(sql);
  } finally {
    await c.end({ timeout: 2 });
    await db.stop();
  }
}

function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** The CLI on the data directory, no DATABASE_URL (so the embedded Postgres); resolves when it exits. */
function run(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const base = { ...process.env };
  delete base.DATABASE_URL;
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    env: {
      ...base,
      HOST: '127.0.0.1',
      BULWARK_DATA_DIR: dir,
      EMBEDDED_PG_PORT: String(pgPort),
      PROVIDER_URL: sim.providerUrl,
      FX_URL: sim.fxUrl,
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')} did not exit within 90 s:\n${stdout}\n${stderr}`));
    }, 90_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function assertPostgresStopped(what: string): Promise<void> {
  assert.equal(existsSync(path.join(dir, 'pg', 'postmaster.pid')), false, `${what}: postmaster.pid left behind`);
  assert.equal(await portAccepts(pgPort), false, `${what}: the embedded Postgres still accepts connections`);
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bulwark-failed-start-'));
  pgPort = await freePort();
  sim = await startSimulator({ providerPort: 0, fxPort: 0 });
  // Migration 1 creates `charges`: one of another shape makes it fail.
  await withDatabase('CREATE TABLE charges (id integer)');
});

after(async () => {
  // A postmaster a failed test left running is adopted and stopped.
  if (existsSync(path.join(dir, 'pg', 'postmaster.pid')))
    await (await startEmbeddedPostgres(dir, pgPort, () => {})).stop().catch(() => {});
  await sim?.close();
  await rm(dir, { recursive: true, force: true });
});

for (const kind of ['gateway', 'baseline'] as const) {
  test(`${kind}: migrations that fail stop the embedded Postgres it started, then exit 1`, async () => {
    const r = await run(
      kind === 'gateway' ? ['serve'] : ['baseline'],
      kind === 'gateway' ? { PORT: '0', ADMIN_PORT: '0', WORKERS: '1' } : { BASELINE_PORT: '0' },
    );
    assert.match(r.stdout, /embedded postgres started/, 'the dependency was started');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /relation "charges" already exists/);
    assert.doesNotMatch(r.stdout, /"msg":"listening"/);
    await assertPostgresStopped(kind);
  });
}

test('gateway: a port taken after the migrations (its admin port) stops the embedded Postgres, then exit 1', async () => {
  await withDatabase('DROP TABLE charges');
  const taken: Server = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const adminPort = (taken.address() as { port: number }).port;
  try {
    const r = await run(['serve'], { PORT: '0', ADMIN_PORT: String(adminPort), WORKERS: '1' });
    assert.match(r.stdout, /migrations applied/, 'it got past the migrations');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`cannot listen on admin 127\\.0\\.0\\.1:${adminPort}`));
    await assertPostgresStopped('port taken');
  } finally {
    taken.close();
  }
});
