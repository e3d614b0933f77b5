/**
 * The embedded defaults shared by `serve` and `baseline`: with no
 * DATABASE_URL, a real embedded Postgres under the data directory; with no
 * provider URLs, the simulator as a child process that exits with us (it
 * watches its stdin, which closes when we die, even by SIGKILL).
 *
 * Either way start-up then waits, bounded by DB_STARTUP_TIMEOUT_MS, until
 * Postgres answers: a restart right after a crash finds it refusing
 * connections or replaying its WAL, and must wait rather than crash-loop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { CommonConfig } from '../config/service.js';
import { startEmbeddedPostgres } from '../db/embedded.js';
import { durabilitySettings, waitForDatabase, type DbWait } from '../db/wait.js';
import type { Logger } from './logger.js';

export interface Dependencies {
  databaseUrl: string;
  providerUrl: string;
  fxUrl: string;
  stop(): Promise<void>;
}

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli/main.js');

export async function startDependencies(c: CommonConfig, log: Logger): Promise<Dependencies> {
  const stops: (() => Promise<void>)[] = [];
  try {
    const onWait = (w: DbWait) =>
      log.warn(
        { attempt: w.attempt, waited_ms: w.waitedMs, retry_in_ms: w.retryInMs, target: w.target, error: w.error },
        'waiting for postgres',
      );
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
    const durability = await durabilitySettings(databaseUrl, c.dbConnectTimeoutMs);
    if (durability.some((d) => !d.durable)) {
      log.warn(
        { settings: Object.fromEntries(durability.map((d) => [d.name, d.value])) },
        'postgres is not configured for durable commits: an acknowledged charge can be lost in a crash (docs/mechanisms.md)',
      );
    }
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
