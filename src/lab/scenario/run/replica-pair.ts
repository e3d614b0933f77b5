/**
 * Replicas of one variant behind HAProxy, on the lab's one Postgres and
 * simulator: the scale-out shape of docs/design.md §10 and deploy/haproxy, run from
 * the repository's own haproxy.cfg so the lab proves the file we ship. Two
 * replicas by default (the file's two servers); another count runs a copy of
 * the file whose server lines are the only change. The baseline-haproxy
 * variant runs one single-process Fastify per core here, with the file's
 * per-server maxconn and queue timeout set through its environment.
 *
 * A deploy here is a rolling restart: each call restarts the next replica
 * in turn (SIGTERM; the replica fails /ready for SHUTDOWN_DELAY_MS while it
 * still serves, HAProxy takes it out of rotation, it drains and exits; a
 * replacement starts on the same port) and returns once HAProxy reports it
 * UP again, so the next restart never leaves the pool empty.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { baselineSpecs, gatewaySpecs } from '../../../config/service.js';
import type { VariantName } from '../../report/types.js';
import type { Child } from './child.js';
import { freePort } from './environment.js';
import { descendantsOf, ServiceUnderTest, type Drain } from './service.js';

// Compiled layout: dist/src/lab/scenario/run/ → the repository root's deploy/.
const HAPROXY_CFG = fileURLToPath(new URL('../../../../../deploy/haproxy/haproxy.cfg', import.meta.url));

const SHIPPED_SERVERS = ['gw-a', 'gw-b'] as const;
/** Replicas of the pair topology: the shipped file's servers. */
export const PAIR_REPLICAS = SHIPPED_SERVERS.length;

/**
 * HAProxy's per-server limit and queue timeout for Fastify replicas (the
 * baseline-haproxy variant): the values deploy/haproxy/haproxy.cfg documents
 * for a backend that cannot shed itself.
 */
export const FASTIFY_LB_ENV: Readonly<Record<string, string>> = Object.freeze({
  BULWARK_SERVER_MAXCONN: '16',
  BULWARK_QUEUE_TIMEOUT: '250ms',
});

/**
 * One replica's share of the connection budgets when `n` replicas stand in
 * for one service: DB_POOL_MAX split rounding down, so the fleet asks
 * Postgres for no more than one process would; the provider's and fx's
 * connections rounding up, so every one of them is handed out (a fleet may
 * hold one more per replica than one process).
 */
export function replicaShare(env: Readonly<Record<string, string>>, n: number): Record<string, string> {
  const total = (name: string, spec: { default: number }) => Number(env[name] ?? spec.default);
  return {
    DB_POOL_MAX: String(Math.max(1, Math.floor(total('DB_POOL_MAX', baselineSpecs.dbPoolMax) / n))),
    PROVIDER_CONNECTIONS: String(
      Math.max(1, Math.ceil(total('PROVIDER_CONNECTIONS', baselineSpecs.providerConnections) / n)),
    ),
    FX_CONNECTIONS: String(Math.max(1, Math.ceil(total('FX_CONNECTIONS', baselineSpecs.fxConnections) / n))),
  };
}
/**
 * A gateway replica's worker threads when `n` replicas share `cores`: its
 * core share, at least one, as an operator sizes a replica to its CPU limit
 * (deploy/k8s gives a pod one CPU and one worker). Unsized, two replicas on
 * two cores run six threads (two front threads, four workers) against two
 * Fastify processes' two, and pay for the oversubscription in latency: in
 * the quick rolling-restart, alternated, SLO good was 84-87 % with two
 * workers per replica and 91 % with one (docs/mechanisms.md).
 */
export function replicaWorkers(cores: number, n: number): number {
  return Math.max(1, Math.floor(cores / n));
}

/**
 * A replica's environment in the pair topology. A gateway replica runs
 * replicaWorkers(cores, PAIR_REPLICAS) worker threads, no more than its
 * DB_POOL_MAX (each worker needs a connection of its own, or start-up
 * refuses), unless WORKERS is set, by the plan
 * (`env`) or by the caller's environment; an empty value counts as unset.
 * A Fastify replica is one process: its environment is `env` as it is.
 */
export function pairEnv(
  variant: VariantName,
  env: Readonly<Record<string, string>>,
  callerEnv: Readonly<Record<string, string | undefined>>,
  cores: number,
): Record<string, string> {
  const given = (v: string | undefined) => v !== undefined && v !== '';
  if ((variant !== 'gateway' && variant !== 'gateway-off') || given(env.WORKERS) || given(callerEnv.WORKERS))
    return { ...env };
  const pool = Number(env.DB_POOL_MAX || callerEnv.DB_POOL_MAX || gatewaySpecs.dbPoolMax.default);
  const workers = replicaWorkers(cores, PAIR_REPLICAS);
  return { ...env, WORKERS: String(Number.isSafeInteger(pool) && pool >= 1 ? Math.min(workers, pool) : workers) };
}
const SERVER_LINE = /^\s*server gw-[ab] .*\n/gm;

/**
 * The configuration for `n` servers: the shipped file itself for two; for
 * another count, a copy in `dir` whose two server lines become n lines
 * (everything else, default-server included, is the shipped text).
 */
export async function haproxyConfigFor(
  n: number,
  dir: string,
): Promise<{ file: string; servers: string[]; env: (ports: number[]) => Record<string, string> }> {
  if (n === SHIPPED_SERVERS.length)
    return {
      file: HAPROXY_CFG,
      servers: [...SHIPPED_SERVERS],
      env: (ports) => ({
        BULWARK_GATEWAY_A: `127.0.0.1:${ports[0]}`,
        BULWARK_GATEWAY_B: `127.0.0.1:${ports[1]}`,
      }),
    };
  const servers = Array.from({ length: n }, (_, i) => `gw-${i + 1}`);
  const text = await readFile(HAPROXY_CFG, 'utf8');
  let replaced = false;
  const lines = servers.map((sv, i) => `    server ${sv} "\${BULWARK_GATEWAY_${i + 1}}"\n`).join('');
  const out = text.replace(SERVER_LINE, () => {
    if (replaced) return '';
    replaced = true;
    return lines;
  });
  if (!replaced) throw new Error(`no "server gw-a" line in ${HAPROXY_CFG}`);
  const file = path.join(dir, 'haproxy.cfg');
  await writeFile(file, out);
  return {
    file,
    servers,
    env: (ports) => Object.fromEntries(ports.map((p, i) => [`BULWARK_GATEWAY_${i + 1}`, `127.0.0.1:${p}`])),
  };
}

export interface PairOptions {
  variant: VariantName;
  env: Record<string, string>;
  log: (msg: string) => void;
  /** The haproxy binary. Default `haproxy` on PATH. */
  haproxy?: string;
  /** Longest wait for HAProxy to see a replica UP. Default 20 s. */
  upTimeoutMs?: number;
  /** How many replicas. Default 2 (the shipped file's servers). */
  replicas?: number;
  /** HAProxy's environment on top of the addresses (BULWARK_SERVER_MAXCONN, BULWARK_QUEUE_TIMEOUT). */
  lbEnv?: Record<string, string>;
}

export class ReplicaPair {
  readonly variant: VariantName;
  readonly url: string;
  /** Not scraped: /metrics through the balancer would alternate between two processes. */
  readonly isGateway = false;
  readonly #replicas: ServiceUnderTest[];
  readonly #servers: readonly string[];
  readonly #lb: ChildProcess;
  readonly #tmp: string;
  readonly #statsUrl: string;
  readonly #upTimeoutMs: number;
  readonly #log: (msg: string) => void;
  #lbExited = false;
  #lbOutput = '';
  #next = 0;

  private constructor(
    o: PairOptions,
    replicas: ServiceUnderTest[],
    servers: readonly string[],
    lb: ChildProcess,
    tmp: string,
    url: string,
    statsUrl: string,
  ) {
    this.variant = o.variant;
    this.#replicas = replicas;
    this.#servers = servers;
    this.#tmp = tmp;
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
    const tmp = await mkdtemp(path.join(tmpdir(), 'bulwark-lb-'));
    const cfg = await haproxyConfigFor(o.replicas ?? SHIPPED_SERVERS.length, tmp);
    const replicas: ServiceUnderTest[] = [];
    try {
      for (let i = 0; i < cfg.servers.length; i++)
        replicas.push(await ServiceUnderTest.start({ variant: o.variant, env: o.env, log: o.log }));
    } catch (e) {
      await Promise.allSettled(replicas.map((r) => r.stop()));
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
    const [lbPort, statsPort] = [await freePort(), await freePort()];
    const lb = spawn(o.haproxy ?? 'haproxy', ['-W', '-db', '-f', cfg.file], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        ...o.lbEnv,
        BULWARK_LB_BIND: `127.0.0.1:${lbPort}`,
        BULWARK_LB_STATS_BIND: `127.0.0.1:${statsPort}`,
        ...cfg.env(replicas.map((r) => r.port)),
      },
    });
    const pair = new ReplicaPair(
      o,
      replicas,
      cfg.servers,
      lb,
      tmp,
      `http://127.0.0.1:${lbPort}`,
      `http://127.0.0.1:${statsPort}/stats;csv`,
    );
    const spawnFailed = new Promise<Error>((resolve) => lb.once('error', resolve));
    try {
      const r = await Promise.race([Promise.all(cfg.servers.map((s) => pair.#waitUp(s))), spawnFailed]);
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

  /** The pids of every live process of the variant: the replicas (and anything under them) and HAProxy's (-W: a master and its worker). */
  async livePids(): Promise<number[]> {
    const replicas = (await Promise.all(this.#replicas.map((r) => r.livePids()))).flat();
    const lb = this.#lb.pid;
    return this.#lbExited || lb === undefined ? replicas : [...replicas, lb, ...(await descendantsOf(lb))];
  }

  /** Restart the next replica in turn; resolves once HAProxy has it UP again. */
  async restart(graceMs: number): Promise<Drain> {
    const i = this.#next;
    this.#next = (i + 1) % this.#replicas.length;
    this.#log(`rolling restart: ${this.#servers[i]}`);
    const drain = await this.#replicas[i]!.restart(graceMs);
    await this.#waitUp(this.#servers[i]!);
    return drain;
  }

  /** A crash of one instance of the fleet: SIGKILL the next replica's process tree, restart it, wait until HAProxy has it UP. */
  async kill(): Promise<{ killedAt: number; readyAt: number }> {
    const i = this.#next;
    this.#next = (i + 1) % this.#replicas.length;
    this.#log(`crash: SIGKILL ${this.#servers[i]}`);
    const r = await this.#replicas[i]!.kill();
    await this.#waitUp(this.#servers[i]!);
    return r;
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
    await rm(this.#tmp, { recursive: true, force: true });
  }

  /** HAProxy's stats as CSV (one row per proxy and server). */
  get statsCsvUrl(): string {
    return this.#statsUrl;
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
