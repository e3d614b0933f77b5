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
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

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
  /** stdout and stderr collected so far, for diagnostics. */
  logs(): string;
  /** Parsed JSON log lines of stdout so far. */
  logLines(): Record<string, unknown>[];
  /** True until the process has exited. */
  alive(): boolean;
  /** Resolves with the exit code (null when killed by a signal) once the process exits, or rejects after timeoutMs. */
  waitForExit(timeoutMs?: number): Promise<number | null>;
  /** Send `signal` and wait for the exit code; SIGKILL after timeoutMs. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  /** SIGKILL and wait for the process to be gone. */
  kill(): Promise<void>;
}

// Compiled layout: dist/test/support/target.js → dist/src/cli/main.js.
export const CLI_PATH = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const MAX_LOG_CHARS = 2_000_000;

export async function startTarget(kind: TargetKind, opts: TargetOptions): Promise<Target> {
  const args = kind === 'gateway' ? ['serve'] : kind === 'baseline' ? ['baseline'] : ['baseline', '--hardened'];
  // Port 0 everywhere: tests must not collide with each other or with a gateway someone runs on the defaults.
  const portEnv: Record<string, string> = kind === 'gateway' ? { PORT: '0', ADMIN_PORT: '0' } : { BASELINE_PORT: '0' };
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      ...portEnv,
      DATABASE_URL: opts.databaseUrl,
      PROVIDER_URL: opts.providerUrl,
      FX_URL: opts.fxUrl,
      // The `listening` line is logged at info.
      LOG_LEVEL: 'info',
      BULWARK_EXIT_WITH_PARENT: '1',
      ...opts.env,
    },
  });
  let output = '';
  const append = (s: string) => {
    if (output.length < MAX_LOG_CHARS) output += s;
  };
  const lines: Record<string, unknown>[] = [];
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
  });
  // A spawn failure (ENOENT) emits 'error' and maybe no 'exit'.
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  // Every stderr line marked, so a failing test can quote a crash's whole stack.
  createInterface({ input: child.stderr! }).on('line', (line) => append(`[stderr] ${line}\n`));
  const rl = createInterface({ input: child.stdout! });
  let onListening: ((port: number) => void) | undefined;
  rl.on('line', (line) => {
    append(`${line}\n`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      return;
    }
    if (typeof parsed !== 'object' || parsed === null) return;
    const rec = parsed as Record<string, unknown>;
    if (lines.length < 100_000) lines.push(rec);
    if (rec.msg === 'listening' && typeof rec.port === 'number') onListening?.(rec.port);
  });

  const timeoutMs = opts.startTimeoutMs ?? 20_000;
  let timer: NodeJS.Timeout | undefined;
  const port = await new Promise<number>((resolve, reject) => {
    onListening = resolve;
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    exited.then((code) => reject(new Error(`exited with code ${code} before listening`)), () => {});
    spawnError.then((e) => reject(new Error(`could not spawn: ${e.message}`)), () => {});
  }).catch(async (e: unknown) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    throw new Error(`${kind} did not start (${(e as Error).message}). Command: ${process.execPath} ${CLI_PATH} ${args.join(' ')}\n--- output ---\n${output}`);
  }).finally(() => clearTimeout(timer));

  const alive = () => child.exitCode === null && child.signalCode === null;
  const waitForExit = (ms = 20_000): Promise<number | null> => {
    let t: NodeJS.Timeout | undefined;
    return Promise.race([
      exited,
      new Promise<never>((_, reject) => {
        t = setTimeout(() => reject(new Error(`${kind} (pid ${child.pid}) did not exit within ${ms} ms`)), ms);
      }),
    ]).finally(() => clearTimeout(t));
  };
  return {
    kind,
    url: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    child,
    logs: () => output,
    logLines: () => lines,
    alive,
    waitForExit,
    async stop(signal: NodeJS.Signals = 'SIGTERM', ms = 15_000) {
      if (!alive()) return child.exitCode;
      child.kill(signal);
      try {
        return await waitForExit(ms);
      } catch (e) {
        child.kill('SIGKILL');
        await exited;
        throw e;
      }
    },
    async kill() {
      if (!alive()) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** The admin base URL of a gateway target, from its `listening` log line. */
export function adminUrl(t: Target): string {
  const line = t.logLines().find((l) => l.msg === 'listening');
  if (typeof line?.adminPort !== 'number') throw new Error(`${t.kind} logged no admin port`);
  return `http://127.0.0.1:${line.adminPort}`;
}
