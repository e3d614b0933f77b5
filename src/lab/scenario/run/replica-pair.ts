/**
 * Two replicas of one variant behind HAProxy, on the lab's one Postgres and
 * simulator: the scale-out shape of docs/design.md §10 and deploy/haproxy, run from
 * the repository's own haproxy.cfg so the lab proves the file we ship.
 *
 * A deploy here is a rolling restart: each call restarts the next replica
 * in turn (SIGTERM; the replica fails /ready for SHUTDOWN_DELAY_MS while it
 * still serves, HAProxy takes it out of rotation, it drains and exits; a
 * replacement starts on the same port) and returns once HAProxy reports it
 * UP again, so the next restart never leaves the pool empty.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import type { VariantName } from '../../report/types.js';
import type { Child } from './child.js';
import { freePort } from './environment.js';
import { ServiceUnderTest, type Drain } from './service.js';

// Compiled layout: dist/src/lab/scenario/run/ → the repository root's deploy/.
const HAPROXY_CFG = fileURLToPath(new URL('../../../../../deploy/haproxy/haproxy.cfg', import.meta.url));

const SERVERS = ['gw-a', 'gw-b'] as const;

export interface PairOptions {
  variant: VariantName;
  env: Record<string, string>;
  log: (msg: string) => void;
  /** The haproxy binary. Default `haproxy` on PATH. */
  haproxy?: string;
  /** Longest wait for HAProxy to see a replica UP. Default 20 s. */
  upTimeoutMs?: number;
}

export class ReplicaPair {
  readonly variant: VariantName;
  readonly url: string;
  /** Not scraped: /metrics through the balancer would alternate between two processes. */
  readonly isGateway = false;
  readonly #replicas: ServiceUnderTest[];
  readonly #lb: ChildProcess;
  readonly #statsUrl: string;
  readonly #upTimeoutMs: number;
  readonly #log: (msg: string) => void;
  #lbExited = false;
  #lbOutput = '';
  #next = 0;

  private constructor(o: PairOptions, replicas: ServiceUnderTest[], lb: ChildProcess, url: string, statsUrl: string) {
    this.variant = o.variant;
    this.#replicas = replicas;
    this.#lb = lb;
    this.url = url;
    this.#statsUrl = statsUrl;
    this.#upTimeoutMs = o.upTimeoutMs ?? 20_000;
    this.#log = o.log;
    lb.once('exit', () => (this.#lbExited = true));
    const keep = (d: Buffer) => {
      this.#lbOutput = (this.#lbOutput + d.toString()).slice(-20_000);
    };
    lb.stdout?.on('data', keep);
    lb.stderr?.on('data', keep);
  }

  static async start(o: PairOptions): Promise<ReplicaPair> {
    const replicas: ServiceUnderTest[] = [];
    try {
      for (let i = 0; i < SERVERS.length; i++)
        replicas.push(await ServiceUnderTest.start({ variant: o.variant, env: o.env, log: o.log }));
    } catch (e) {
      await Promise.allSettled(replicas.map((r) => r.stop()));
      throw e;
    }
    const [lbPort, statsPort] = [await freePort(), await freePort()];
    const lb = spawn(o.haproxy ?? 'haproxy', ['-W', '-db', '-f', HAPROXY_CFG], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        BULWARK_LB_BIND: `127.0.0.1:${lbPort}`,
        BULWARK_LB_STATS_BIND: `127.0.0.1:${statsPort}`,
        BULWARK_GATEWAY_A: `127.0.0.1:${replicas[0]!.port}`,
        BULWARK_GATEWAY_B: `127.0.0.1:${replicas[1]!.port}`,
      },
    });
    const pair = new ReplicaPair(
      o,
      replicas,
      lb,
      `http://127.0.0.1:${lbPort}`,
      `http://127.0.0.1:${statsPort}/stats;csv`,
    );
    const spawnFailed = new Promise<Error>((resolve) => lb.once('error', resolve));
    try {
      const r = await Promise.race([Promise.all(SERVERS.map((s) => pair.#waitUp(s))), spawnFailed]);
      if (r instanceof Error) throw new Error(`haproxy did not start: ${r.message}`);
    } catch (e) {
      await pair.stop();
      throw e;
    }
    o.log(`haproxy pid ${lb.pid} on ${pair.url} in front of ${replicas.map((r) => r.url).join(' and ')}`);
    return pair;
  }

  /** Every process either replica ran, oldest first per replica. */
  get processes(): readonly Child[] {
    return this.#replicas.flatMap((r) => r.processes);
  }

  /** Restart the next replica in turn; resolves once HAProxy has it UP again. */
  async restart(graceMs: number): Promise<Drain> {
    const i = this.#next;
    this.#next = (i + 1) % this.#replicas.length;
    this.#log(`rolling restart: ${SERVERS[i]}`);
    const drain = await this.#replicas[i]!.restart(graceMs);
    await this.#waitUp(SERVERS[i]!);
    return drain;
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.#replicas.map((r) => r.stop()));
    if (!this.#lbExited) {
      const exited = new Promise<void>((resolve) => this.#lb.once('exit', () => resolve()));
      this.#lb.kill('SIGTERM');
      const timer = setTimeout(() => this.#lb.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
  }

  /** HAProxy's own view of one server, from its stats CSV ("UP", "DOWN", "UP 1/2"...). */
  async status(server: string): Promise<string | undefined> {
    const res = await request(this.#statsUrl, { headersTimeout: 1000, bodyTimeout: 1000 });
    const text = await res.body.text();
    const [header, ...rows] = text.split('\n');
    const cols = (header ?? '').replace(/^# /, '').split(',');
    const [px, sv, st] = ['pxname', 'svname', 'status'].map((c) => cols.indexOf(c));
    const row = rows.map((r) => r.split(',')).find((r) => r[px!] === 'gateways' && r[sv!] === server);
    return row?.[st!];
  }

  async #waitUp(server: string): Promise<void> {
    const until = Date.now() + this.#upTimeoutMs;
    let last: string | undefined;
    while (Date.now() < until) {
      if (this.#lbExited) throw new Error(`haproxy exited: ${this.#lbOutput.slice(-500)}`);
      last = await this.status(server).catch(() => undefined);
      if (last === 'UP') return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(
      `haproxy did not see ${server} UP within ${this.#upTimeoutMs} ms (last status ${last ?? 'unknown'})`,
    );
  }
}
