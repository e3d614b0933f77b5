/**
 * Tools of the crash suite: a Postgres immediate stop as an operator (or an
 * OOM kill) does it, `bulwark serve` in a process group of its own so the
 * whole group can be SIGKILLed as a container kill does, a client that
 * retries a key until it gets a final answer, and the audit of Postgres rows
 * against the provider ledger and the client's acknowledged answers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { freePort, startEmbeddedPostgres, type EmbeddedDb } from '../../src/db/embedded.js';
import { startSimulator, type Simulator } from '../../src/simulator/index.js';
import { startTarget, type Target } from './target.js';
import { createInterface } from 'node:readline';
import { CLI_PATH } from '../../src/lab/scenario/run/child.js';
import type { ProviderSim } from '../../src/simulator/index.js';

/**
 * Postgres "immediate" shutdown: SIGQUIT to the postmaster, which is what
 * `pg_ctl stop -m immediate` sends. Every server process quits at once, no
 * checkpoint, no WAL flush: to the data directory it is a crash. Sent
 * directly (pg_ctl would have to be spawned as the `postgres` user first) so
 * the crash lands right after the last answer. Resolves once the postmaster
 * is gone.
 */
export async function immediateStop(pgDataDir: string): Promise<void> {
  const pid = Number((await readFile(path.join(pgDataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  process.kill(pid, 'SIGQUIT');
  for (let i = 0; i < 400; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`postmaster ${pid} did not quit within 10 s of SIGQUIT`);
}

export interface Answer {
  status: number;
  body: string;
}

export interface ChargeBody {
  amount: number;
  currency: string;
  source: string;
}

/** One POST /charge; a connection error is `status: 0`. */
export async function postCharge(baseUrl: string, key: string, body: ChargeBody, timeoutMs = 2000): Promise<Answer> {
  try {
    const res = await fetch(`${baseUrl}/charge`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'idempotency-key': key,
        'x-request-timeout-ms': String(timeoutMs),
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs + 3000),
    });
    return { status: res.status, body: await res.text() };
  } catch {
    return { status: 0, body: '' };
  }
}

export const isFinal = (a: Answer) => a.status === 201 || a.status === 402;

/** Retry a key as a careful client does (backing off on 409/503/504 and errors) until a final answer. */
export async function retryUntilFinal(
  baseUrl: string,
  key: string,
  body: ChargeBody,
  withinMs: number,
): Promise<Answer> {
  const until = Date.now() + withinMs;
  let last: Answer = { status: 0, body: '' };
  while (Date.now() < until) {
    last = await postCharge(baseUrl, key, body);
    if (isFinal(last)) return last;
    if (last.status >= 400 && last.status < 500 && last.status !== 409)
      throw new Error(`${key}: final client error ${last.status} ${last.body}`);
    await new Promise((r) => setTimeout(r, last.status === 409 ? 250 : 100));
  }
  throw new Error(`${key}: no final answer within ${withinMs} ms (last ${last.status} ${last.body})`);
}

export interface Row {
  idempotency_key: string;
  status: string;
  provider_charge_id: string | null;
  response_status: number | null;
  response_body: string | null;
}

/**
 * Every key the client sent, judged against our rows and the provider's
 * ledger. Returns the findings (empty when clean):
 * - a key with two provider charges (charged twice);
 * - an acknowledged answer (201/402) whose row is gone, or whose stored
 *   answer differs (lost or changed);
 * - a provider charge with no final row pointing at it (money taken, no record);
 * - a row still `started` (pending) or final without its provider charge.
 */
export function audit(
  sent: ReadonlyMap<string, Answer | null>,
  rows: ReadonlyMap<string, Row>,
  provider: ProviderSim,
): string[] {
  const findings: string[] = [];
  for (const [key, ack] of sent) {
    const charges = provider.ledgerByReference(key).charges;
    const row = rows.get(key);
    if (charges.length > 1)
      findings.push(`${key}: charged ${charges.length} times (${charges.map((c) => c.id).join(', ')})`);
    if (ack && isFinal(ack)) {
      if (!row) findings.push(`${key}: acknowledged ${ack.status} but the row is gone`);
      else if (row.response_status !== ack.status || row.response_body !== ack.body)
        findings.push(
          `${key}: acknowledged ${ack.status} ${ack.body} but stored ${row.response_status} ${row.response_body}`,
        );
    }
    if (row?.status === 'started') findings.push(`${key}: still started`);
    if (charges.length >= 1 && (!row || row.provider_charge_id !== charges[0]!.id))
      findings.push(
        `${key}: provider charge ${charges[0]!.id} but row ${row ? `${row.status}/${row.provider_charge_id}` : 'missing'}`,
      );
    if (row && (row.status === 'succeeded' || row.status === 'declined') && charges.length === 0)
      findings.push(`${key}: ${row.status} with no provider charge`);
  }
  return findings;
}

export interface GroupChild {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly listening: Promise<Record<string, unknown>>;
  output(): string;
  /** SIGKILL to the whole process group: the gateway, its embedded Postgres and every child. */
  killGroup(): void;
  exited: Promise<number | null>;
}

/** `bulwark serve` (or `args`) as the leader of a new process group. */
export function spawnServeGroup(env: Record<string, string>, args: readonly string[] = ['serve']): GroupChild {
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env, BULWARK_EXIT_WITH_PARENT: '1' },
  });
  let out = '';
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const listening = new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      out = (out + line + '\n').slice(-100_000);
      if (!line.startsWith('{')) return;
      try {
        const rec = JSON.parse(line) as Record<string, unknown>;
        if (rec.msg === 'listening') resolve(rec);
      } catch {
        // not JSON
      }
    });
    createInterface({ input: child.stderr! }).on(
      'line',
      (line) => (out = (out + `[stderr] ${line}\n`).slice(-100_000)),
    );
    void exited.then((code) => reject(new Error(`serve exited with ${code} before listening:\n${out.slice(-3000)}`)));
  });
  listening.catch(() => {});
  return {
    child,
    pid: child.pid!,
    listening,
    output: () => out,
    killGroup() {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    },
    exited,
  };
}

/** A Postgres of its own that a test may crash and start again, the simulator, and one gateway on them. */
export interface CrashStack {
  readonly db: EmbeddedDb;
  readonly sim: Simulator;
  /** The service under test: a gateway, or a Fastify baseline. */
  readonly service: Target;
  /** The Postgres data directory (what immediateStop takes). */
  readonly pgDataDir: string;
  /** Start Postgres again on the same data directory and port (after immediateStop). */
  restartPostgres(): Promise<EmbeddedDb>;
}

/**
 * Registers before()/after() for a CrashStack: an embedded Postgres in a
 * temporary directory on a fixed free port (so a restart comes back where the
 * service looks), the simulator, and the service (a gateway unless `kind`
 * says baseline) with `env`; all stopped and removed afterwards.
 */
export function crashStack(
  name: string,
  env: Record<string, string>,
  kind: 'gateway' | 'baseline' = 'gateway',
): CrashStack {
  let dir: string | undefined;
  let pgPort = 0;
  let db: EmbeddedDb | undefined;
  let sim: Simulator | undefined;
  let service: Target | undefined;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), `bulwark-${name}-`));
    pgPort = await freePort();
    db = await startEmbeddedPostgres(dir, pgPort, () => {});
    sim = await startSimulator({ providerPort: 0, fxPort: 0 });
    service = await startTarget(kind, {
      databaseUrl: db.url,
      providerUrl: sim.providerUrl,
      fxUrl: sim.fxUrl,
      env,
    });
  });
  after(async () => {
    await service?.stop('SIGTERM', 10_000);
    await db?.stop();
    await sim?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  const started = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('the crash stack is used before before() ran');
    return v;
  };
  return {
    get db() {
      return started(db);
    },
    get sim() {
      return started(sim);
    },
    get service() {
      return started(service);
    },
    get pgDataDir() {
      return path.join(started(dir), 'pg');
    },
    async restartPostgres() {
      db = await startEmbeddedPostgres(started(dir), pgPort, () => {});
      return db;
    },
  };
}
