/**
 * End-to-end ceilings with a native load generator (wrk, Debian package):
 * bare uWebSockets.js, the gateway's never-shed path (/health), the gateway's
 * shed path (POST /charge parsed, validated and refused on admission), and
 * the Fastify baseline's /health. Targets are alternated round by round in
 * one run so the ratios hold on a noisy, shared 2-core machine; the medians
 * and the ratios to bare uWS are printed and written as JSON.
 *
 *   npm run bench:native            (NB_ROUNDS=3 NB_SECONDS=5 NB_CONNECTIONS=64)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir, cpus, totalmem } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { startEmbeddedPostgres } from '../src/db/embedded.js';
import { migrate } from '../src/db/migrations.js';
import { median, wrk, type WrkResult } from './wrk.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.resolve(HERE, '../src/cli/main.js');
const ROUNDS = Number(process.env.NB_ROUNDS ?? 3);
const SECONDS = Number(process.env.NB_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.NB_CONNECTIONS ?? 64);

interface Proc {
  child: ChildProcess;
  line: Record<string, unknown>;
}

/** Spawn a node script and wait for its JSON line with msg "listening". */
function start(args: string[], env: Record<string, string>): Promise<Proc> {
  const child = spawn(process.execPath, args, {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, BULWARK_EXIT_WITH_PARENT: '1', LOG_LEVEL: 'info', ...env },
  });
  const lines = createInterface({ input: child.stdout! });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code} before listening`)));
    lines.on('line', (l) => {
      try {
        const msg = JSON.parse(l) as Record<string, unknown>;
        if (msg.msg === 'listening') resolve({ child, line: msg });
      } catch {
        // other output
      }
    });
  });
}

async function stop(p: Proc): Promise<void> {
  if (p.child.exitCode !== null) return;
  const gone = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGTERM');
  await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
  if (p.child.exitCode === null) p.child.kill('SIGKILL');
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bulwark-native-bench-'));
  const procs: Proc[] = [];
  const db = await startEmbeddedPostgres(dir, 0, () => {});
  try {
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    await migrate(sql);
    await sql.end();
    const sim = await start([CLI, 'simulate', '--provider-port', '0', '--fx-port', '0'], {});
    procs.push(sim);
    const providerUrl = String(sim.line.providerUrl);
    const common = {
      DATABASE_URL: db.url,
      PROVIDER_URL: providerUrl,
      FX_URL: String(sim.line.fxUrl),
      HOST: '127.0.0.1',
    };
    const bare = await start([path.join(HERE, 'bare-uws.js')], {});
    const gateway = await start([CLI, 'serve'], { ...common, PORT: '0', ADMIN_PORT: '0' });
    // Shed path: one admitted charge hangs at the provider and holds the only
    // admission slot, so every other POST /charge is parsed, validated and shed.
    const shedGw = await start([CLI, 'serve'], {
      ...common,
      PORT: '0',
      ADMIN_PORT: '0',
      CONCURRENCY_LIMIT: 'static',
      CONCURRENCY_LIMIT_STATIC: '1',
      SHEDDING: 'false',
      BREAKERS: 'false',
      REQUEST_TIMEOUT_MS: '30000',
      RECONCILE_INTERVAL_MS: '600000',
    });
    const fastify = await start([CLI, 'baseline', '--processes', '1'], { ...common, BASELINE_PORT: '0' });
    procs.push(bare, gateway, shedGw, fastify);
    await fetch(`${providerUrl}/_faults`, { method: 'PUT', body: JSON.stringify({ hang: true }) });
    const shedUrl = `http://127.0.0.1:${String(shedGw.line.port)}`;
    void fetch(`${shedUrl}/charge`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'holder', 'x-request-timeout-ms': '30000' },
      body: '{"amount":1,"currency":"USD","source":"tok_visa"}',
    }).catch(() => {});
    await new Promise((r) => setTimeout(r, 300));

    const targets: [string, string, string?][] = [
      ['bare uWebSockets.js GET /health', `http://127.0.0.1:${String(bare.line.port)}/health`],
      ['gateway GET /health (never shed)', `http://127.0.0.1:${String(gateway.line.port)}/health`],
      ['gateway POST /charge shed (503)', `${shedUrl}/charge`, path.join(HERE, '../../native-bench/shed.lua')],
      ['Fastify baseline GET /health', `http://127.0.0.1:${String(fastify.line.port)}/health`],
    ];
    const results = new Map<string, WrkResult[]>(targets.map(([n]) => [n, []]));
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [name, url, script] of targets) {
        const r = wrk(url, { connections: CONNECTIONS, seconds: SECONDS, ...(script ? { script } : {}) });
        results.get(name)!.push(r);
        console.error(`round ${round}: ${name}: ${r.rps.toFixed(0)} req/s, p99 ${r.p99Ms} ms, non-2xx ${r.non2xx}`);
      }
    }
    const bareRps = median(results.get(targets[0]![0])!.map((r) => r.rps));
    const rows = targets.map(([name]) => {
      const rs = results.get(name)!;
      const rps = median(rs.map((r) => r.rps));
      return {
        target: name,
        rps_median: Math.round(rps),
        rps_rounds: rs.map((r) => Math.round(r.rps)),
        p99_ms_median: median(rs.map((r) => r.p99Ms)),
        ratio_to_bare: Number((rps / bareRps).toFixed(3)),
        non2xx: rs.map((r) => r.non2xx),
      };
    });
    const machine = {
      cores: cpus().length,
      cpu_model: cpus()[0]?.model ?? 'unknown',
      memory_gib: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      date: new Date().toISOString(),
    };
    const report = {
      machine,
      command: `NB_ROUNDS=${ROUNDS} NB_SECONDS=${SECONDS} NB_CONNECTIONS=${CONNECTIONS} npm run bench:native`,
      wrk: `wrk -t1 -c${CONNECTIONS} -d${SECONDS}s --latency`,
      rows,
    };
    const out = path.resolve(HERE, '../../reports');
    await mkdir(out, { recursive: true });
    await writeFile(
      path.join(out, `native-bench-${machine.date.replaceAll(':', '-')}.json`),
      JSON.stringify(report, null, 2),
    );
    console.log(
      `machine: ${machine.cores} × ${machine.cpu_model}, ${machine.memory_gib} GiB, node ${machine.node}, ${machine.date}`,
    );
    console.log(`| target | req/s (median of ${ROUNDS}) | rounds | p99 ms | vs bare uWS |`);
    console.log('| --- | --- | --- | --- | --- |');
    for (const r of rows)
      console.log(
        `| ${r.target} | ${r.rps_median} | ${r.rps_rounds.join(' / ')} | ${r.p99_ms_median} | ${(r.ratio_to_bare * 100).toFixed(0)} % |`,
      );
  } finally {
    await Promise.all(procs.map(stop));
    await db.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
