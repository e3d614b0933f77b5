/**
 * Resident memory of the service under test, sampled from outside the
 * process (Linux /proc/PID/status, VmRSS) so every variant is measured the
 * same way: the Fastify baselines export no /metrics, and a process's own
 * gauge says nothing once it has stopped answering. The sum over the live
 * processes (two replicas, or the one serving after a deploy) is the figure.
 *
 * "Memory flat over an overload" is read from these points: a queue that
 * grows without a bound shows as RSS rising for as long as the surge lasts.
 */
import { readFile } from 'node:fs/promises';

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
