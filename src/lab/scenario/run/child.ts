/**
 * A `bulwark` subcommand as a child process, for the lab: the compiled CLI
 * (`serve`, `baseline [--hardened]`, `simulate`), started and judged over the
 * wire exactly as a user would run it. The tests' target helper
 * (test/support/target.ts) is a thin layer over this one.
 *
 * Every child gets BULWARK_EXIT_WITH_PARENT=1 and a stdin pipe: if the lab
 * dies without its cleanup (SIGKILL, a crash), the closed pipe stops the
 * child, so a broken bench does not leave gateways and simulators behind.
 *
 * Children log JSON lines on stdout; they are kept (bounded) because the
 * scenario reads facts from them: the `listening` line (ports), `breaker
 * transition` lines (exact trip times) and `drain finished` (drain duration).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

// Compiled layout: dist/src/lab/scenario/child.js → dist/src/cli/main.js.
export const CLI_PATH = fileURLToPath(new URL('../../../cli/main.js', import.meta.url));

/** A JSON log line with the time it was read (epoch ms), for lines without a parseable `time`. */
export interface LogLine {
  readonly at: number;
  readonly rec: Record<string, unknown>;
}

export interface ChildOptions {
  /** Label for messages ("gateway", "simulator"). */
  name: string;
  /** Arguments after the CLI path, e.g. ['serve'] or ['baseline', '--hardened']. */
  args: readonly string[];
  /** Node's own options, before the CLI path (e.g. --cpu-prof, which NODE_OPTIONS does not allow). */
  nodeArgs?: readonly string[];
  env: Record<string, string>;
  /** How long to wait for the `listening` line. Default 30 s (a gateway starts workers and migrates). */
  startTimeoutMs?: number;
}

export interface Child {
  readonly name: string;
  readonly pid: number;
  /** The process itself, for signals a caller sends on its own terms. */
  readonly process: ChildProcess;
  /** The parsed `listening` line. */
  readonly listening: Record<string, unknown>;
  /** JSON log lines so far (bounded). */
  lines(): readonly LogLine[];
  /** The last lines of raw output, for error messages. */
  tail(chars?: number): string;
  alive(): boolean;
  /** Resolves with the exit code (null when killed by a signal); rejects after timeoutMs. */
  waitForExit(timeoutMs: number): Promise<number | null>;
  /** Send `signal`, wait up to timeoutMs, then SIGKILL. Resolves with the exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  /**
   * Close the child's stdin (its exit-with-parent watch signals itself) and
   * wait up to timeoutMs, then SIGKILL. For `bulwark simulate`, which keeps
   * running after SIGTERM while its stdin stays open.
   */
  stopViaStdin(timeoutMs?: number): Promise<number | null>;
}

const MAX_LINES = 200_000;
const MAX_OUTPUT_CHARS = 200_000;

export async function startChild(o: ChildOptions): Promise<Child> {
  const child: ChildProcess = spawn(process.execPath, [...(o.nodeArgs ?? []), CLI_PATH, ...o.args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...o.env, BULWARK_EXIT_WITH_PARENT: '1' },
  });
  let output = '';
  // Keep the end of the output: a crash's stack is at the end.
  const append = (s: string) => {
    output += s;
    if (output.length > MAX_OUTPUT_CHARS * 2) output = output.slice(-MAX_OUTPUT_CHARS);
  };
  const lines: LogLine[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  createInterface({ input: child.stderr! }).on('line', (line) => append(`[stderr] ${line}\n`));
  let onListening: ((rec: Record<string, unknown>) => void) | undefined;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    append(`${line}\n`);
    if (!line.startsWith('{')) return;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      return;
    }
    if (typeof rec !== 'object' || rec === null) return;
    const r = rec as Record<string, unknown>;
    if (lines.length < MAX_LINES) lines.push({ at: Date.now(), rec: r });
    if (r.msg === 'listening') onListening?.(r);
  });

  const timeoutMs = o.startTimeoutMs ?? 30_000;
  let timer: NodeJS.Timeout | undefined;
  const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
    onListening = resolve;
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    exited.then(
      (code) => reject(new Error(`exited with code ${code} before listening`)),
      () => {},
    );
    spawnError.then(
      (e) => reject(new Error(`could not spawn: ${e.message}`)),
      () => {},
    );
  })
    .catch(async (e: unknown) => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      throw new Error(
        `${o.name} did not start (${(e as Error).message}): ${process.execPath} ${CLI_PATH} ${o.args.join(' ')}\n--- output ---\n${output.slice(-4000)}`,
      );
    })
    .finally(() => clearTimeout(timer));

  const alive = () => child.exitCode === null && child.signalCode === null;
  const waitForExit = (ms: number): Promise<number | null> => {
    let t: NodeJS.Timeout | undefined;
    return Promise.race([
      exited,
      new Promise<never>((_, reject) => {
        t = setTimeout(() => reject(new Error(`${o.name} (pid ${child.pid}) did not exit within ${ms} ms`)), ms);
      }),
    ]).finally(() => clearTimeout(t));
  };
  return {
    name: o.name,
    pid: child.pid!,
    process: child,
    listening,
    lines: () => lines,
    tail: (chars = 4000) => output.slice(-chars),
    alive,
    waitForExit,
    stop: (signal: NodeJS.Signals = 'SIGTERM', ms = 20_000) => stopWith(() => child.kill(signal), ms),
    stopViaStdin: (ms = 5000) => stopWith(() => child.stdin?.end(), ms),
  };

  async function stopWith(send: () => void, ms: number): Promise<number | null> {
    if (!alive()) return child.exitCode;
    send();
    try {
      return await waitForExit(ms);
    } catch {
      // Past its time: a drain that never ends is a finding the caller reports, not a hang of the bench.
      if (alive()) child.kill('SIGKILL');
      await exited;
      return null;
    }
  }
}

/** The log lines with `msg === msg`. */
export function linesWith(c: Child, msg: string): LogLine[] {
  return c.lines().filter((l) => l.rec.msg === msg);
}

/** Epoch ms of a pino line: its ISO `time`, or when it was read. */
export function lineTime(l: LogLine): number {
  const t = l.rec.time;
  if (typeof t === 'string') {
    const ms = Date.parse(t);
    if (!Number.isNaN(ms)) return ms;
  }
  if (typeof t === 'number') return t;
  return l.at;
}
