/**
 * Durable commits whatever the server's default, against a real Postgres
 * whose defaults the test changes (ALTER SYSTEM + reload, as an operator
 * would): a server at synchronous_commit=off gives our sessions
 * synchronous_commit=on (logged once); an operator's synchronous-replication
 * level is kept; fsync or full_page_writes off is a loud warning, and with
 * NODE_ENV=production `serve` and `baseline` refuse to start, naming it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import pino from 'pino';
import postgres from 'postgres';
import { parseOptions } from '../../src/config/options.js';
import { gatewaySpecs } from '../../src/config/service.js';
import { connect } from '../../src/db/connect.js';
import { startEmbeddedPostgres, type EmbeddedDb } from '../../src/db/embedded.js';
import { durabilitySettings, durableSessionUrl } from '../../src/db/wait.js';
import { startDependencies } from '../../src/runtime/dependencies.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

let dir: string;
let db: EmbeddedDb;
let admin: postgres.Sql;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bulwark-durability-'));
  db = await startEmbeddedPostgres(dir, 0, () => {});
  admin = postgres(db.url, { max: 1, onnotice: () => {} });
});

after(async () => {
  await admin?.end({ timeout: 1 });
  await db?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The server's defaults for new sessions, as an operator sets them. */
async function serverDefaults(settings: Record<string, string>): Promise<void> {
  await admin.unsafe('ALTER SYSTEM RESET ALL');
  for (const [k, v] of Object.entries(settings)) await admin.unsafe(`ALTER SYSTEM SET ${k} = '${v}'`);
  await admin`SELECT pg_reload_conf()`;
  // The reload is asynchronous: wait until a new session sees it.
  for (let i = 0; ; i++) {
    const seen = await durabilitySettings(db.url, 2000);
    const want = { synchronous_commit: 'on', fsync: 'on', full_page_writes: 'on', ...settings };
    if (seen.every((s) => s.value === want[s.name])) return;
    if (i > 100) throw new Error(`settings not reloaded: ${JSON.stringify(seen)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function start(nodeEnv?: string) {
  const lines: { level: string | number; msg: string }[] = [];
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as (typeof lines)[0]);
        done();
      },
    }),
  );
  const { values: c } = parseOptions(gatewaySpecs, [], {
    DATABASE_URL: db.url,
    PROVIDER_URL: 'http://127.0.0.1:1',
    FX_URL: 'http://127.0.0.1:1',
    DB_STARTUP_TIMEOUT_MS: '10000',
  });
  const deps = await startDependencies(c, log, nodeEnv);
  await deps.stop();
  return { url: deps.databaseUrl, lines };
}

/** `SHOW synchronous_commit` on every connection of a pool opened as the charge store opens it, inside a transaction too. */
async function sessionCommitLevels(url: string): Promise<string[]> {
  const sql = connect({ url, max: 3, connectTimeoutMs: 2000, statementTimeoutMs: 2000 });
  try {
    const reserved = await Promise.all([sql.reserve(), sql.reserve(), sql.reserve()]);
    const levels = await Promise.all(
      reserved.map(async (r) => (await r<{ synchronous_commit: string }[]>`SHOW synchronous_commit`)[0]!),
    );
    for (const r of reserved) r.release();
    const inTx = await sql.begin((t) => t<{ synchronous_commit: string }[]>`SHOW synchronous_commit`);
    return [...levels, inTx[0]!].map((r) => r.synchronous_commit);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

const said = <L extends { msg: string }>(lines: L[], re: RegExp): L[] => lines.filter((l) => re.test(l.msg));

test('the embedded default is durable already: the URL is kept, nothing logged about durability', async () => {
  await serverDefaults({});
  const s = await start('production');
  assert.equal(s.url, db.url);
  assert.deepEqual(said(s.lines, /synchronous_commit|durable/), []);
  assert.deepEqual(await sessionCommitLevels(s.url), ['on', 'on', 'on', 'on']);
});

test('a server defaulting to synchronous_commit=off: every session of our pools commits with synchronous_commit=on, logged once per start', async () => {
  await serverDefaults({ synchronous_commit: 'off' });
  for (let run = 0; run < 2; run++) {
    // Production too: the setting is fixed for our sessions, so nothing is left to refuse.
    const s = await start(run === 0 ? undefined : 'production');
    assert.deepEqual(await sessionCommitLevels(s.url), ['on', 'on', 'on', 'on']);
    const lines = said(s.lines, /synchronous_commit/);
    assert.equal(lines.length, 1, JSON.stringify(s.lines));
    assert.equal(
      lines[0]!.msg,
      'our postgres sessions default to synchronous_commit=off: they set synchronous_commit=on',
    );
    assert.deepEqual(said(s.lines, /not configured for durable commits/), []);
  }
  // Only ours: the server's default and other clients' sessions are left as they are.
  assert.deepEqual(await sessionCommitLevels(db.url), ['off', 'off', 'off', 'off']);
  // A URL that already carries parameters, or asks for off itself, still ends at on.
  const off = `${db.url}?application_name=x&synchronous_commit=off`;
  assert.deepEqual(await sessionCommitLevels(durableSessionUrl(off, await durabilitySettings(off, 2000))), [
    'on',
    'on',
    'on',
    'on',
  ]);
});

test("an operator's synchronous-replication level (local, remote_write, remote_apply) is kept", async () => {
  for (const level of ['local', 'remote_write', 'remote_apply']) {
    await serverDefaults({ synchronous_commit: level });
    const s = await start('production');
    assert.equal(s.url, db.url, level);
    assert.deepEqual(await sessionCommitLevels(s.url), [level, level, level, level]);
    assert.deepEqual(said(s.lines, /synchronous_commit|durable/), [], level);
  }
});

for (const setting of ['fsync', 'full_page_writes'] as const) {
  test(`${setting}=off cannot be set per session: one loud warning naming it, and production refuses to start`, async () => {
    // With synchronous_commit=off as well: fixed for our sessions, so only the server-wide one is named.
    await serverDefaults({ [setting]: 'off', synchronous_commit: 'off' });
    const s = await start();
    const warned = said(s.lines, /not configured for durable commits/);
    assert.equal(warned.length, 1, JSON.stringify(s.lines));
    assert.match(warned[0]!.msg, new RegExp(`\\(${setting}=off\\)`));
    assert.equal(warned[0]!.level, 40, 'a warning');
    assert.deepEqual(await sessionCommitLevels(s.url), ['on', 'on', 'on', 'on']);
    await assert.rejects(start('production'), (e: Error) => {
      assert.equal(e.name, 'ConfigError');
      assert.match(e.message, new RegExp(`^postgres runs with ${setting}=off: .*NODE_ENV=production refuses to start`));
      assert.doesNotMatch(e.message, /synchronous_commit/);
      return true;
    });
  });
}

test('serve and baseline with NODE_ENV=production on a server with fsync=off exit 2 with one line naming it, password never shown', async () => {
  await serverDefaults({ fsync: 'off' });
  for (const cmd of ['serve', 'baseline']) {
    const env: Record<string, string | undefined> = {
      ...process.env,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: '0',
      ADMIN_PORT: '0',
      BASELINE_PORT: '0',
      DATABASE_URL: db.url,
      PROVIDER_URL: 'http://127.0.0.1:1',
      FX_URL: 'http://127.0.0.1:1',
      PROVIDER_KEY_SECRET: 'a-production-secret-0123456789',
      DB_STARTUP_TIMEOUT_MS: '10000',
    };
    const child = spawn(process.execPath, [CLI, cmd], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.stdout.resume();
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    assert.equal(code, 2, `${cmd}: ${stderr}`);
    assert.match(stderr, new RegExp(`^bulwark ${cmd}: postgres runs with fsync=off: .*NODE_ENV=production`));
    assert.doesNotMatch(stderr, /bulwark:bulwark@/);
  }
  await serverDefaults({});
});
