/**
 * The embedded Postgres through the crashes a restart meets
 * (src/db/embedded.ts), against real servers and real processes:
 *
 * - postmaster.pid naming a pid that is alive but not our postmaster (pids
 *   are reused: a `sleep`, another data directory's postmaster), a zombie or
 *   a dead pid: stale, removed, a fresh postmaster starts beside it;
 * - our postmaster still alive (a SIGKILL of the service only): adopted,
 *   not started twice;
 * - the postmaster SIGKILLed with a backend still attached to its shared
 *   memory and its lock file left: started again at once, start resolves
 *   only when queries are answered, after crash recovery, 3 times.
 *
 * Linux only (/proc), as the detection itself.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { isOurPostmaster, livePostmaster, startEmbeddedPostgres, type EmbeddedDb } from '../../src/db/embedded.js';
import type { DbWait } from '../../src/db/wait.js';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bulwark-embedded-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function startDb(
  dataDir: string,
  port = 0,
  onLog?: (t: string) => void,
  onWait?: (w: DbWait) => void,
): Promise<EmbeddedDb> {
  const db = await startEmbeddedPostgres(dataDir, port, () => {}, {
    ...(onLog ? { onLog } : {}),
    ...(onWait ? { onWait } : {}),
  });
  cleanups.push(() => db.stop());
  return db;
}

/** A child that lives until killed; killed at the end of the file either way. */
function longLived(cmd: string, args: string[]): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  cleanups.push(async () => {
    child.kill('SIGKILL');
  });
  return child;
}

/** A postmaster.pid as Postgres writes it: pid, data directory, start time, port, socket dir, host, ... */
async function writePidFile(pgDir: string, pid: number, port = 5432): Promise<string> {
  await mkdir(pgDir, { recursive: true });
  const file = path.join(pgDir, 'postmaster.pid');
  await writeFile(file, `${pid}\n${pgDir}\n1700000000\n${port}\n/tmp\n127.0.0.1\n  5432001      3\nready   \n`);
  return file;
}

const pidIn = async (pgDir: string) =>
  Number((await readFile(path.join(pgDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Processes whose command line is `postgres -D <pgDir> ...`: the postmasters of that directory (backends rename themselves). */
function postmastersOf(pgDir: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
        const d = argv.indexOf('-D');
        return path.basename(argv[0] ?? '') === 'postgres' && d !== -1 && argv[d + 1] === pgDir;
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function answer(url: string): Promise<number> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 2 });
  try {
    const [r] = await sql<{ one: number }[]>`SELECT 1 AS one`;
    return r!.one;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

test('a pid file naming a live process that is not a postmaster (a reused pid) is stale: removed, the process untouched', async () => {
  const pgDir = path.join(await tempDir(), 'pg');
  const sleeper = longLived('sleep', ['30']);
  const file = await writePidFile(pgDir, sleeper.pid!);
  assert.equal(await isOurPostmaster(sleeper.pid!, pgDir), false);
  assert.equal(await livePostmaster(pgDir), undefined);
  assert.equal(existsSync(file), false, 'the stale pid file is removed');
  assert.ok(alive(sleeper.pid!), 'the process the pid now belongs to is not signalled');
});

test('a zombie or a dead pid is stale', async () => {
  const pgDir = path.join(await tempDir(), 'pg');
  // The background sleep exits after sh has exec'd into `sleep 30`, which never reaps it: a zombie that kill(pid, 0) still finds.
  const parent = longLived('sh', ['-c', 'sleep 0.2 & echo $!; exec sleep 30']);
  const zombie = await new Promise<number>((resolve) => parent.stdout!.once('data', (d: Buffer) => resolve(Number(d))));
  for (let i = 0; !readFileSync(`/proc/${zombie}/stat`, 'utf8').includes(') Z'); i++) {
    assert.ok(i < 200, 'the child became a zombie');
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(alive(zombie), 'a zombie answers kill(pid, 0)');
  let file = await writePidFile(pgDir, zombie);
  assert.equal(await isOurPostmaster(zombie, pgDir), false);
  assert.equal(await livePostmaster(pgDir), undefined);
  assert.equal(existsSync(file), false);

  const dead = spawn('true');
  await new Promise((r) => dead.once('exit', r));
  file = await writePidFile(pgDir, dead.pid!);
  assert.equal(await isOurPostmaster(dead.pid!, pgDir), false);
  assert.equal(await livePostmaster(pgDir), undefined);
  assert.equal(existsSync(file), false);
  // A pid file Postgres did not finish writing is stale too.
  await writeFile(file, `${process.pid}\n`);
  assert.equal(await livePostmaster(pgDir), undefined);
  assert.equal(existsSync(file), false);
});

test("another data directory's live postmaster is not ours; a stopped server whose pid file names a live process starts fresh", async () => {
  const [dirA, dirB] = [await tempDir(), await tempDir()];
  const a = await startDb(dirA);
  const pgA = path.join(dirA, 'pg');
  const pidA = await pidIn(pgA);
  assert.equal(await isOurPostmaster(pidA, pgA), true);
  assert.equal(await isOurPostmaster(pidA, path.join(dirB, 'pg')), false, 'same binary, another -D');
  // B: a real data directory, stopped, its pid file then pointing at A's postmaster (on A's port) and then at a sleep.
  const b = await startDb(dirB);
  await b.stop();
  const pgB = path.join(dirB, 'pg');
  for (const pid of [pidA, longLived('sleep', ['30']).pid!]) {
    await writePidFile(pgB, pid, a.port);
    const again = await startDb(dirB);
    assert.notEqual(again.port, a.port, 'not adopted: a fresh server of its own');
    assert.equal(await answer(again.url), 1);
    const pidB = await pidIn(pgB);
    assert.notEqual(pidB, pid);
    assert.deepEqual(postmastersOf(pgB), [pidB]);
    assert.ok(alive(pid), 'the process the stale file named is left alone');
    await again.stop();
  }
  assert.equal(await answer(a.url), 1, 'A kept serving');
});

test('our postmaster still alive (the service was killed, Postgres was not): adopted, not started twice', async () => {
  const dir = await tempDir();
  const pgDir = path.join(dir, 'pg');
  const first = await startDb(dir);
  const pid = await pidIn(pgDir);
  for (let i = 0; i < 2; i++) {
    const adopted = await startDb(dir);
    assert.equal(adopted.port, first.port);
    assert.equal(adopted.url, first.url);
    assert.equal(await answer(adopted.url), 1);
    assert.equal(await pidIn(pgDir), pid);
    assert.deepEqual(postmastersOf(pgDir), [pid], 'one postmaster for the directory');
  }
  // The adopter can stop it, and the first handle's stop() then returns at once.
  const adopted = await startDb(dir);
  await adopted.stop();
  assert.equal(alive(pid) && (await isOurPostmaster(pid, pgDir)), false);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    first.stop(),
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('stop() hung')), 10_000))),
  ]).finally(() => clearTimeout(timer));
});

test('3 times: the postmaster SIGKILLed with a backend still running, started again at once: start resolves after crash recovery, answering queries, every committed row there', async (t) => {
  const dir = await tempDir();
  const pgDir = path.join(dir, 'pg');
  let log = '';
  let db = await startDb(dir, 0, (t) => (log += t));
  const port = db.port;
  {
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    await sql`CREATE TABLE kept (n int PRIMARY KEY)`;
    await sql.end();
  }
  for (let round = 1; round <= 3; round++) {
    const sql = postgres(db.url, { max: 2, onnotice: () => {} });
    await sql`INSERT INTO kept VALUES (${round})`;
    // A backend busy in a query does not look for its postmaster: it keeps
    // the shared memory attached for a while after the kill, and the new
    // postmaster refuses to start until it has gone.
    const busy = sql
      .begin(async (t) => {
        await t`SET LOCAL statement_timeout = 1500`;
        await t`SELECT count(*) FROM generate_series(1, 1000000000)`;
      })
      .catch(() => {});
    const watcher = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      for (let i = 0; ; i++) {
        const [r] = await watcher<{ n: number }[]>`
          SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE query LIKE '%generate_series%' AND state = 'active' AND pid <> pg_backend_pid()`;
        if (r!.n === 1) break;
        assert.ok(i < 200, 'the busy query runs');
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      await watcher.end({ timeout: 1 });
    }
    const old = await pidIn(pgDir);
    process.kill(old, 'SIGKILL');
    log = '';
    const waits: string[] = [];
    db = await startDb(
      dir,
      port,
      (t) => (log += t),
      (w) => waits.push(w.error),
    );
    t.diagnostic(`round ${round}: start retried ${waits.length} times: ${[...new Set(waits)].join(' / ')}`);
    // The adversity happened: the old backend's shared memory made the first attempts fail.
    assert.ok(
      waits.some((w) => /old server processes/.test(w)),
      `round ${round}: ${waits.join(' / ')}`,
    );
    // The first query after start is answered: no retry here.
    const check = postgres(db.url, { max: 1, onnotice: () => {}, connect_timeout: 2 });
    try {
      const rows = await check<{ n: number }[]>`SELECT n FROM kept ORDER BY n`;
      assert.deepEqual(
        rows.map((r) => r.n),
        Array.from({ length: round }, (_, i) => i + 1),
        `round ${round}: every committed row survived`,
      );
    } finally {
      await check.end({ timeout: 1 });
    }
    assert.equal(db.port, port);
    const fresh = await pidIn(pgDir);
    assert.notEqual(fresh, old);
    assert.deepEqual(postmastersOf(pgDir), [fresh]);
    assert.match(log, /not properly shut down; automatic recovery in progress/, `round ${round}: ${log}`);
    assert.match(log, /database system is ready to accept connections/);
    await sql.end({ timeout: 0 }).catch(() => {});
    await busy;
  }
});
