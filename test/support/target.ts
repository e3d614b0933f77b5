/**
 * A charge service under test as a real child process: the compiled CLI
 * (`bulwark serve` or `bulwark baseline [--hardened]`) on port 0, pointed at a
 * test database and simulator. Contract tests talk to it over the wire only,
 * so they judge exactly what a user would run.
 *
 * The child gets BULWARK_EXIT_WITH_PARENT=1 and a stdin pipe: if the test
 * runner dies without its after() hooks, the closed pipe stops the child, so
 * a crashed run does not leave gateways behind.
 */
import type { ChildProcess } from 'node:child_process';
import { startChild } from '../../src/lab/scenario/run/child.js';

export type TargetKind = 'gateway' | 'baseline' | 'baseline-hardened';

export interface TargetOptions {
  databaseUrl: string;
  providerUrl: string;
  fxUrl: string;
  /** Extra environment, applied last (wins over the defaults set here). */
  env?: Record<string, string>;
  /** How long to wait for the `listening` log line. Default 20 s. */
  startTimeoutMs?: number;
}

export interface Target {
  readonly kind: TargetKind;
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly child: ChildProcess;
  /** The end of stdout and stderr so far (the last 200 000 characters), for diagnostics. */
  logs(): string;
  /** Parsed JSON log lines of stdout so far. */
  logLines(): Record<string, unknown>[];
  /** True until the process has exited. */
  alive(): boolean;
  /** Resolves with the exit code (null when killed by a signal) once the process exits, or rejects after timeoutMs. */
  waitForExit(timeoutMs?: number): Promise<number | null>;
  /** Send `signal` and wait for the exit code; SIGKILL after timeoutMs (and resolve null). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  /** SIGKILL and wait for the process to be gone. */
  kill(): Promise<void>;
}

export async function startTarget(kind: TargetKind, opts: TargetOptions): Promise<Target> {
  const args = kind === 'gateway' ? ['serve'] : kind === 'baseline' ? ['baseline'] : ['baseline', '--hardened'];
  // Port 0 everywhere: tests must not collide with each other or with a gateway someone runs on the defaults.
  const portEnv: Record<string, string> = kind === 'gateway' ? { PORT: '0', ADMIN_PORT: '0' } : { BASELINE_PORT: '0' };
  const c = await startChild({
    name: kind,
    args,
    env: {
      HOST: '127.0.0.1',
      ...portEnv,
      DATABASE_URL: opts.databaseUrl,
      PROVIDER_URL: opts.providerUrl,
      FX_URL: opts.fxUrl,
      // The `listening` line is logged at info.
      LOG_LEVEL: 'info',
      ...opts.env,
    },
    startTimeoutMs: opts.startTimeoutMs ?? 20_000,
  });
  const port = c.listening.port;
  if (typeof port !== 'number') throw new Error(`${kind} logged no port: ${JSON.stringify(c.listening)}`);
  return {
    kind,
    url: `http://127.0.0.1:${port}`,
    port,
    pid: c.pid,
    child: c.process,
    logs: () => c.tail(Number.MAX_SAFE_INTEGER),
    logLines: () => c.lines().map((l) => l.rec),
    alive: c.alive,
    waitForExit: (ms = 20_000) => c.waitForExit(ms),
    stop: (signal: NodeJS.Signals = 'SIGTERM', ms = 15_000) => c.stop(signal, ms),
    async kill() {
      if (!c.alive()) return;
      c.process.kill('SIGKILL');
      await c.waitForExit(10_000);
    },
  };
}

/** The admin base URL of a gateway target, from its `listening` log line. */
export function adminUrl(t: Target): string {
  const line = t.logLines().find((l) => l.msg === 'listening');
  if (typeof line?.adminPort !== 'number') throw new Error(`${t.kind} logged no admin port`);
  return `http://127.0.0.1:${line.adminPort}`;
}
