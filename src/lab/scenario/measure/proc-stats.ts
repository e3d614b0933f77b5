/**
 * What a process costs, read from outside it (Linux /proc): resident memory
 * and CPU time. Every variant is measured the same way, baselines included.
 *
 * Resident memory of the service under test, sampled from outside the
 * process (Linux /proc/PID/status, VmRSS) so every variant is measured the
 * same way: the Fastify baselines export no /metrics, and a process's own
 * gauge says nothing once it has stopped answering. The sum over the live
 * processes (two replicas, or the one serving after a deploy) is the figure.
 *
 * "Memory flat over an overload" is read from these points: a queue that
 * grows without a bound shows as RSS rising for as long as the surge lasts.
 */
import { spawnSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';

export interface MemoryPoint {
  /** Seconds since the variant's load started. */
  t: number;
  rssBytes: number;
}

/** VmRSS of one process in bytes, or undefined when it is gone or /proc is not there. */
export async function residentBytes(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kib = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kib === undefined ? undefined : Number(kib) * 1024;
  } catch {
    return undefined;
  }
}

export class MemorySampler {
  readonly points: MemoryPoint[] = [];
  readonly #pids: () => readonly number[];
  readonly #since: () => number;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #busy: Promise<void> = Promise.resolve();

  constructor(pids: () => readonly number[], since: () => number, intervalMs = 1000) {
    this.#pids = pids;
    this.#since = since;
    this.#intervalMs = intervalMs;
  }

  start(): void {
    const tick = () => {
      this.#busy = this.#sample();
    };
    tick();
    this.#timer = setInterval(tick, this.#intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#busy;
  }

  async #sample(): Promise<void> {
    const t = this.#since();
    const each = await Promise.all(this.#pids().map(residentBytes));
    const live = each.filter((b): b is number => b !== undefined);
    if (live.length > 0) this.points.push({ t, rssBytes: live.reduce((a, b) => a + b, 0) });
  }
}

let clockTicks: number | undefined;
/** Clock ticks per second of /proc's CPU times (USER_HZ). */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number(r.stdout?.trim());
    clockTicks = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return clockTicks;
}

/** Fields of /proc/PID/stat after the command name (which may hold spaces). */
function statFields(text: string): string[] {
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** CPU seconds (user + system) a process has used so far, or undefined when it is gone. */
export async function cpuSeconds(pid: number | 'self'): Promise<number | undefined> {
  try {
    const f = statFields(await readFile(`/proc/${pid}/stat`, 'utf8'));
    // utime and stime are fields 14 and 15 of stat; 11 and 12 after the name.
    return (Number(f[11]) + Number(f[12])) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

/** CPU seconds of this process's children that have exited and been waited for (a finished wrk). */
export async function reapedChildrenCpuSeconds(): Promise<number> {
  const f = statFields(await readFile('/proc/self/stat', 'utf8'));
  // cutime and cstime: fields 16 and 17 of stat.
  return (Number(f[13]) + Number(f[14])) / ticksPerSecond();
}

/** The pids of every process whose command name is `comm` (all of Postgres's backends, say). */
export async function pidsNamed(comm: string): Promise<number[]> {
  const pids: number[] = [];
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if ((await readFile(`/proc/${d}/comm`, 'utf8')).trim() === comm) pids.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Busy and total CPU seconds of the whole machine so far (all cores, from /proc/stat). */
export async function machineCpuSeconds(): Promise<{ busy: number; total: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: (total - idle) / ticksPerSecond(), total: total / ticksPerSecond() };
}
