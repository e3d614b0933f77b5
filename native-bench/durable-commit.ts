/**
 * What durable commits cost: POST /charge with synchronous_commit on (the
 * default now) against off (the old embedded setting), on one gateway, one
 * embedded Postgres and one simulator, switched with ALTER SYSTEM + reload
 * between runs and alternated round by round, so both sides see one machine
 * state. Closed loop: DC_CONNS clients each send a fresh charge as soon as
 * the last one answered, for DC_SECONDS; charges/s counts final answers
 * (201/402), latency is per request.
 *
 *   npm run build && node dist/native-bench/durable-commit.js
 *   (DC_CONNS=32 DC_SECONDS=8 DC_ROUNDS=3 DC_GATEWAY_ENV="GROUP_COMMIT=false")
 */
import { Pool } from 'undici';
import { startEnvironment } from '../src/lab/scenario/run/environment.js';
import { machineInfo } from '../src/lab/scenario/measure/machine.js';
import { labServiceEnv } from '../src/lab/scenario/run/run-variant.js';
import { startChild } from '../src/lab/scenario/run/child.js';

const CONNS = Number(process.env.DC_CONNS ?? 32);
const SECONDS = Number(process.env.DC_SECONDS ?? 8);
const ROUNDS = Number(process.env.DC_ROUNDS ?? 3);
const GATEWAY_ENV = Object.fromEntries(
  (process.env.DC_GATEWAY_ENV ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
);

interface Run {
  setting: 'on' | 'off';
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  other: number;
}

const pct = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function load(url: string, tag: string): Promise<Omit<Run, 'setting'>> {
  const pool = new Pool(url, { connections: CONNS, pipelining: 1 });
  const lat: number[] = [];
  let other = 0;
  const end = performance.now() + SECONDS * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: CONNS }, async () => {
      while (performance.now() < end) {
        const key = `${tag}-${n++}`;
        const t0 = performance.now();
        const r = await pool.request({
          method: 'POST',
          path: '/charge',
          headers: { 'content-type': 'application/json', 'idempotency-key': key, 'x-request-timeout-ms': '2000' },
          body: JSON.stringify({ amount: 100 + (n % 900), currency: 'USD', source: 'tok_visa' }),
        });
        await r.body.dump();
        if (r.statusCode === 201 || r.statusCode === 402) lat.push(performance.now() - t0);
        else other++;
      }
    }),
  );
  await pool.close();
  lat.sort((a, b) => a - b);
  return {
    perSecond: Math.round(lat.length / SECONDS),
    p50Ms: Math.round(pct(lat, 0.5) * 10) / 10,
    p99Ms: Math.round(pct(lat, 0.99) * 10) / 10,
    other,
  };
}

async function main(): Promise<void> {
  const env = await startEnvironment({ log: (m) => console.error(m) });
  try {
    const gw = await startChild({
      name: 'gateway',
      args: ['serve'],
      env: {
        ...labServiceEnv(env),
        PORT: '0',
        ADMIN_PORT: '0',
        ...GATEWAY_ENV,
      },
    });
    const url = `http://127.0.0.1:${String(gw.listening.port)}`;
    const runs: Run[] = [];
    try {
      await load(url, `warm-${Date.now()}`);
      for (let round = 0; round < ROUNDS; round++) {
        // Alternate which setting goes first, so drift over time hits both.
        for (const setting of round % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
          await env.sql.unsafe(`ALTER SYSTEM SET synchronous_commit = ${setting}`);
          await env.sql`SELECT pg_reload_conf()`;
          await env.resetForVariant();
          const r = await load(url, `dc-${setting}-${round}-${Date.now()}`);
          runs.push({ setting, ...r });
          console.error(
            `round ${round + 1} synchronous_commit=${setting}: ${r.perSecond}/s p50 ${r.p50Ms} ms p99 ${r.p99Ms} ms (${r.other} non-final)`,
          );
        }
      }
    } finally {
      await env.sql.unsafe('ALTER SYSTEM RESET synchronous_commit');
      await env.sql`SELECT pg_reload_conf()`;
      await gw.stop('SIGTERM', 15_000);
    }
    const m = machineInfo();
    console.log(
      `machine: ${m.cores} cores, ${m.cpu_model}, ${m.memory_gib} GiB, node ${m.node}, ${m.platform}; ${m.date}; ${CONNS} connections, ${SECONDS} s per run, ${ROUNDS} rounds${Object.keys(GATEWAY_ENV).length ? `, ${JSON.stringify(GATEWAY_ENV)}` : ''}`,
    );
    console.log('| synchronous_commit | charges/s (median of runs) | p50 ms | p99 ms | runs (charges/s) |');
    console.log('| --- | --- | --- | --- | --- |');
    for (const s of ['on', 'off'] as const) {
      const rs = runs.filter((r) => r.setting === s);
      console.log(
        `| ${s} | ${median(rs.map((r) => r.perSecond))} | ${median(rs.map((r) => r.p50Ms))} | ${median(rs.map((r) => r.p99Ms))} | ${rs.map((r) => r.perSecond).join(' / ')} |`,
      );
    }
  } finally {
    await env.close();
  }
}

await main();
