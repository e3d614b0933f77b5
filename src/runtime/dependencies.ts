/**
 * The embedded defaults shared by `serve` and `baseline`: with no
 * DATABASE_URL, a real embedded Postgres under the data directory; with no
 * provider URLs, the simulator as a child process that exits with us (it
 * watches its stdin, which closes when we die, even by SIGKILL).
 *
 * Either way start-up then waits, bounded by DB_STARTUP_TIMEOUT_MS, until
 * Postgres answers: a restart right after a crash finds it refusing
 * connections or replaying its WAL, and must wait rather than crash-loop.
 *
 * Then it makes commits durable: an answer promises its charge is stored.
 * A server defaulting to synchronous_commit=off gets synchronous_commit=on
 * for our sessions; fsync or full_page_writes off cannot be fixed per
 * session: a warning, and with NODE_ENV=production a refusal to start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { CommonConfig } from '../config/service.js';
import { startEmbeddedPostgres } from '../db/embedded.js';
import { ConfigError } from '../config/options.js';
import { durabilitySettings, durableSessionUrl, retryStartupStep, waitForDatabase, type DbWait } from '../db/wait.js';
import type { Logger } from './logger.js';

export interface Dependencies {
  databaseUrl: string;
  providerUrl: string;
  fxUrl: string;
  stop(): Promise<void>;
}

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli/main.js');

/** One warning per wait for Postgres at start-up. */
export function dbWaitLog(log: Logger): (w: DbWait) => void {
  return (w) =>
    log.warn(
      { attempt: w.attempt, waited_ms: w.waitedMs, retry_in_ms: w.retryInMs, target: w.target, error: w.error },
      'waiting for postgres',
    );
}

/** `nodeEnv`: NODE_ENV, as checkProduction reads it; production refuses a server that cannot keep a commit through a machine crash. */
export async function startDependencies(
  c: CommonConfig,
  log: Logger,
  nodeEnv: string | undefined = process.env.NODE_ENV,
): Promise<Dependencies> {
  const stops: (() => Promise<void>)[] = [];
  try {
    const onWait = dbWaitLog(log);
    const started = performance.now();
    let databaseUrl = c.databaseUrl;
    if (!databaseUrl) {
      const db = await startEmbeddedPostgres(c.dataDir, c.embeddedPgPort, (m) => log.warn(m), {
        startupTimeoutMs: c.dbStartupTimeoutMs,
        onWait,
      });
      log.info({ port: db.port, dataDir: c.dataDir }, 'embedded postgres started');
      stops.push(() => db.stop());
      databaseUrl = db.url;
    }
    await waitForDatabase(databaseUrl, {
      timeoutMs: Math.max(1, c.dbStartupTimeoutMs - (performance.now() - started)),
      connectTimeoutMs: c.dbConnectTimeoutMs,
      onWait,
    });
    const url = databaseUrl;
    databaseUrl = await retryStartupStep(
      url,
      {
        timeoutMs: Math.max(1, c.dbStartupTimeoutMs - (performance.now() - started)),
        connectTimeoutMs: c.dbConnectTimeoutMs,
        onWait,
      },
      () => ensureDurable(url, c.dbConnectTimeoutMs, nodeEnv === 'production', log),
    );
    let providerUrl = c.providerUrl;
    let fxUrl = c.fxUrl;
    if (!providerUrl || !fxUrl) {
      const sim = await spawnSimulator({ provider: c.simProviderPort, fx: c.simFxPort }, c.simulatorSeed);
      log.info({ providerUrl: sim.providerUrl, fxUrl: sim.fxUrl, pid: sim.child.pid }, 'simulator started');
      stops.push(() => stopChild(sim.child));
      providerUrl = sim.providerUrl;
      fxUrl = sim.fxUrl;
    }
    return {
      databaseUrl,
      providerUrl,
      fxUrl,
      async stop() {
        for (const s of stops.reverse())
          await s().catch((e: unknown) => log.warn({ err: e }, 'stopping a dependency failed'));
      },
    };
  } catch (e) {
    for (const s of stops.reverse()) await s().catch(() => {});
    throw e;
  }
}

/**
 * The URL our pools open (synchronous_commit=on added when the server says
 * off, checked from a session opened with it: a pooler may drop startup
 * parameters). Throws ConfigError in production when a commit is still not
 * durable; warns otherwise.
 */
async function ensureDurable(url: string, connectTimeoutMs: number, production: boolean, log: Logger): Promise<string> {
  const before = await durabilitySettings(url, connectTimeoutMs);
  let durableUrl = durableSessionUrl(url, before);
  let after = before;
  if (durableUrl !== url) {
    try {
      after = await durabilitySettings(durableUrl, connectTimeoutMs);
    } catch (e) {
      // A pooler that refuses unknown startup parameters: the server's setting stands (judged below).
      log.warn({ err: e }, 'postgres refused synchronous_commit=on as a startup parameter');
      durableUrl = url;
    }
    if (durableUrl !== url && after.some((d) => d.name === 'synchronous_commit' && d.durable))
      log.warn(
        { settings: Object.fromEntries(before.map((d) => [d.name, d.value])) },
        'our postgres sessions default to synchronous_commit=off: they set synchronous_commit=on',
      );
  }
  const settings = Object.fromEntries(after.map((d) => [d.name, d.value]));
  const lossy = after.filter((d) => !d.durable);
  if (lossy.length === 0) return durableUrl;
  const named = lossy.map((d) => `${d.name}=${d.value}`).join(', ');
  if (production)
    throw new ConfigError(
      `postgres runs with ${named}: an acknowledged charge can be lost or corrupted in a crash; NODE_ENV=production refuses to start until the server has ${lossy.map((d) => `${d.name}=on`).join(', ')} (docs/mechanisms.md)`,
    );
  log.warn(
    { settings },
    `postgres is not configured for durable commits (${named}): an acknowledged charge can be lost in a crash (docs/mechanisms.md)`,
  );
  return durableUrl;
}

async function spawnSimulator(
  ports: { provider: number; fx: number },
  seed: number,
): Promise<{ child: ChildProcess; providerUrl: string; fxUrl: string }> {
  const child = spawn(
    process.execPath,
    [CLI, 'simulate', '--provider-port', String(ports.provider), '--fx-port', String(ports.fx), '--seed', String(seed)],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, BULWARK_EXIT_WITH_PARENT: '1' },
    },
  );
  const lines = createInterface({ input: child.stdout! });
  return new Promise((resolve, reject) => {
    const fail = (why: string) => reject(new Error(`simulator did not start: ${why}`));
    child.once('exit', (code) => fail(`exited with ${code}`));
    child.once('error', (e) => fail(e.message));
    lines.on('line', (line) => {
      try {
        const msg = JSON.parse(line) as { msg?: string; providerUrl?: string; fxUrl?: string };
        if (msg.msg === 'listening' && msg.providerUrl && msg.fxUrl) {
          resolve({ child, providerUrl: msg.providerUrl, fxUrl: msg.fxUrl });
        }
      } catch {
        // not a JSON line: the simulator's own output, ignored
      }
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
