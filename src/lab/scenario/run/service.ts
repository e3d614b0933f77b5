/**
 * The service under test for one variant: `bulwark serve` (mechanisms on or
 * off) or `bulwark baseline [--hardened] [--processes N]` as a child process on a port picked
 * once, so a deploy (SIGTERM, drain, exit, start again) brings it back where
 * the load generator is pointed. Every process it ever ran is kept: breaker
 * transitions and drain durations are read from their logs afterwards.
 */
import type { VariantName } from '../../report/types.js';
import { freePort } from './environment.js';
import { readdir, readFile } from 'node:fs/promises';
import { linesWith, lineTime, startChild, type Child } from './child.js';

export const GATEWAY_VARIANTS: ReadonlySet<VariantName> = new Set(['gateway', 'gateway-off']);

export interface Drain {
  /** From the service's own `drain finished` line. */
  duration_s: number;
  abandoned: number;
  /** Epoch ms of SIGTERM, of the `drain started` and `drain finished` lines, of the exit, and of the replacement's `listening` line. */
  signalledAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  exitedAt: number;
  readyAt: number | null;
  exitCode: number | null;
}

export interface ServiceOptions {
  variant: VariantName;
  /** Environment shared by every variant (database, downstreams, lease, grace...). */
  env: Record<string, string>;
  log?: (msg: string) => void;
}

/** The `bulwark` command line that runs a variant's service (one process of it). */
export function argsOf(variant: VariantName): string[] {
  switch (variant) {
    case 'gateway':
    case 'gateway-off':
      return ['serve'];
    // The single process; behind HAProxy each replica is one too.
    case 'baseline':
    case 'baseline-haproxy':
      return ['baseline', '--processes', '1'];
    case 'baseline-hardened':
      return ['baseline', '--processes', '1', '--hardened'];
    // One Fastify per available core behind node:cluster (the command's default count).
    case 'baseline-cluster':
      return ['baseline', '--processes', '0'];
  }
}

/** The settings that put a variant's service on `port` (and, for the gateway, its mechanisms on or off). */
export function portEnvOf(variant: VariantName, port: number): Record<string, string> {
  return GATEWAY_VARIANTS.has(variant)
    ? { PORT: String(port), ADMIN_PORT: '0', MECHANISMS: variant === 'gateway' ? 'true' : 'false' }
    : { BASELINE_PORT: String(port) };
}

export class ServiceUnderTest {
  readonly variant: VariantName;
  readonly port: number;
  readonly url: string;
  readonly #env: Record<string, string>;
  readonly #children: Child[] = [];
  readonly #log: (msg: string) => void;

  private constructor(variant: VariantName, port: number, env: Record<string, string>, log: (msg: string) => void) {
    this.variant = variant;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.#env = env;
    this.#log = log;
  }

  static async start(o: ServiceOptions): Promise<ServiceUnderTest> {
    const s = new ServiceUnderTest(o.variant, await freePort(), o.env, o.log ?? (() => {}));
    await s.#spawn();
    return s;
  }

  get isGateway(): boolean {
    return GATEWAY_VARIANTS.has(this.variant);
  }

  /** The process serving now (the last one started). */
  get current(): Child {
    return this.#children[this.#children.length - 1]!;
  }

  /** Every process this variant ran, oldest first. */
  get processes(): readonly Child[] {
    return this.#children;
  }

  /**
   * A deploy: SIGTERM, wait for the drain and exit (up to `graceMs` plus a
   * margin, then SIGKILL), and start a replacement on the same port.
   */
  async restart(graceMs: number): Promise<Drain> {
    const old = this.current;
    const signalledAt = Date.now();
    const exitCode = await old.stop('SIGTERM', graceMs + 10_000);
    const exitedAt = Date.now();
    const line = linesWith(old, 'drain finished').at(-1);
    const began = linesWith(old, 'drain started').at(-1);
    let readyAt: number | null = null;
    try {
      const child = await this.#spawn();
      readyAt = lineTime({ at: Date.now(), rec: child.listening });
    } catch (e) {
      this.#log(`restart of ${this.variant} failed: ${(e as Error).message}`);
      throw e;
    }
    return {
      duration_s: typeof line?.rec.drain_duration_seconds === 'number' ? line.rec.drain_duration_seconds : NaN,
      abandoned: typeof line?.rec.abandoned === 'number' ? line.rec.abandoned : NaN,
      signalledAt,
      startedAt: began ? lineTime(began) : null,
      finishedAt: line ? lineTime(line) : null,
      exitedAt,
      readyAt,
      exitCode,
    };
  }

  /**
   * A crash: SIGKILL to the serving process and every process under it (a
   * container kill takes the whole tree; `serve` spawns the simulator or an
   * embedded Postgres when not given URLs), then a replacement started at
   * once on the same port, as a supervisor does. Nothing drains.
   */
  async kill(): Promise<{ killedAt: number; readyAt: number }> {
    const old = this.current;
    const tree = [old.pid, ...(await descendantsOf(old.pid))];
    const killedAt = Date.now();
    for (const pid of tree) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await old.waitForExit(10_000);
    const child = await this.#spawn();
    return { killedAt, readyAt: lineTime({ at: Date.now(), rec: child.listening }) };
  }

  /** The pids of the live processes and every process under them (cluster workers), for /proc sampling. */
  async livePids(): Promise<number[]> {
    const live = this.#children.filter((c) => c.alive()).map((c) => c.pid);
    const under = await Promise.all(live.map(descendantsOf));
    return [...live, ...under.flat()];
  }

  /** Stop the current process (graceful, SIGKILL after the timeout). */
  async stop(timeoutMs = 15_000): Promise<void> {
    const c = this.#children.at(-1);
    if (c?.alive()) await c.stop('SIGTERM', timeoutMs);
  }

  async #spawn(): Promise<Child> {
    const child = await startChild({
      name: this.variant,
      args: argsOf(this.variant),
      env: { ...this.#env, ...portEnvOf(this.variant, this.port) },
    });
    this.#children.push(child);
    this.#log(`${this.variant} pid ${child.pid} listening on ${this.url}`);
    return child;
  }
}

/** Every process below `pid` (children, grandchildren...), from /proc; empty where /proc is missing. */
export async function descendantsOf(pid: number): Promise<number[]> {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return [];
  }
  const parent = new Map<number, number>();
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = await readFile(`/proc/${e}/stat`, 'utf8');
      // Field 4 (ppid) follows the command name, which is in parentheses and may hold spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(e), ppid);
    } catch {
      // Exited while we looked.
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of parent) {
      if (pp === p && !out.includes(c)) {
        out.push(c);
        walk(c);
      }
    }
  };
  walk(pid);
  return out;
}
