/**
 * Healthy POST /charge goodput at a latency bar, gateway against the Fastify
 * baselines, driven by wrk (native, so the generator takes a small share of
 * the two cores the services, Postgres and the simulator share).
 *
 * Each target runs at a ladder of connection counts; a target's figure is
 * the highest 2xx rate among the rungs whose p99 stays within the bar
 * (default 50 ms). Targets and rungs are alternated round by round on one
 * embedded Postgres and one simulator, with the table and the ledger
 * emptied before every run, so the ratios come from one machine state.
 * Every request carries a fresh Idempotency-Key (native-bench/charge.lua):
 * each is a full claim → provider → record, never a replay.
 *
 *   npm run bench:charge   (NB_CONNS=8,16,32,64,128 NB_SECONDS=5 NB_ROUNDS=2 NB_P99_MS=50)
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEnvironment } from '../src/lab/scenario/run/environment.js';
import { machineInfo } from '../src/lab/scenario/measure/machine.js';
import {
  cpuSeconds,
  machineCpuSeconds,
  pidsNamed,
  reapedChildrenCpuSeconds,
} from '../src/lab/scenario/measure/proc-stats.js';
import { labServiceEnv } from '../src/lab/scenario/run/run-variant.js';
import { ServiceUnderTest } from '../src/lab/scenario/run/service.js';
import type { VariantName } from '../src/lab/report/types.js';
import { median, wrk, type WrkResult } from './wrk.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCRIPT = path.resolve(HERE, '../../native-bench/charge.lua');
const CONNS = (process.env.NB_CONNS ?? '8,16,32,64,128').split(',').map(Number);
const SECONDS = Number(process.env.NB_SECONDS ?? 5);
const ROUNDS = Number(process.env.NB_ROUNDS ?? 2);
const P99_BAR_MS = Number(process.env.NB_P99_MS ?? 50);
const VARIANTS = (process.env.NB_VARIANTS ?? 'gateway,baseline,baseline-hardened').split(',') as VariantName[];
/** Extra settings for the gateway variants, e.g. NB_GATEWAY_ENV="WORKERS=1 GROUP_COMMIT=false". */
const GATEWAY_ENV = Object.fromEntries(
  (process.env.NB_GATEWAY_ENV ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
);

/** CPU milliseconds per answered charge, by process, over one run; and how busy the machine was. */
interface CpuShare {
  service: number;
  postgres: number;
  simulator: number;
  wrk: number;
  /** Cores busy on average over the run (of machine.cores). */
  busyCores: number;
}

interface Measured extends WrkResult {
  cpu: CpuShare;
}

interface Rung {
  connections: number;
  runs: Measured[];
  goodput: number;
  p50Ms: number;
  p99Ms: number;
}

function cpuMedian(runs: readonly Measured[]): CpuShare {
  const m = (k: keyof CpuShare) => Math.round(median(runs.map((r) => r.cpu[k])) * 1000) / 1000;
  return {
    service: m('service'),
    postgres: m('postgres'),
    simulator: m('simulator'),
    wrk: m('wrk'),
    busyCores: m('busyCores'),
  };
}

async function main(): Promise<void> {
  const machine = machineInfo();
  const env = await startEnvironment({ log: (m) => console.error(m) });
  const services: ServiceUnderTest[] = [];
  try {
    const serviceEnv = labServiceEnv(env);
    for (const variant of VARIANTS)
      services.push(
        await ServiceUnderTest.start({
          variant,
          env: variant.startsWith('gateway') ? { ...serviceEnv, ...GATEWAY_ENV } : serviceEnv,
        }),
      );
    const sum = async (pids: readonly number[]) =>
      (await Promise.all(pids.map(cpuSeconds))).reduce<number>((a, b) => a + (b ?? 0), 0);
    const cpuNow = async (svc: ServiceUnderTest) => ({
      service: await sum(svc.processes.map((c) => c.pid)),
      postgres: await sum(await pidsNamed('postgres')),
      simulator: await sum([env.simulatorPid]),
      wrk: await reapedChildrenCpuSeconds(),
      machine: await machineCpuSeconds(),
    });
    const run = async (svc: ServiceUnderTest, connections: number, seconds: number): Promise<Measured> => {
      await env.resetForVariant();
      const before = await cpuNow(svc);
      const r = wrk(`${svc.url}/charge`, {
        connections,
        seconds,
        script: SCRIPT,
        scriptArgs: [`${svc.variant}-c${connections}`],
      });
      const after = await cpuNow(svc);
      const charges = Math.max(1, r.rps * r.seconds);
      const per = (k: 'service' | 'postgres' | 'simulator' | 'wrk') =>
        Math.round(((after[k] - before[k]) * 1e6) / charges) / 1000;
      const wall = after.machine.total - before.machine.total;
      return {
        ...r,
        cpu: {
          service: per('service'),
          postgres: per('postgres'),
          simulator: per('simulator'),
          wrk: per('wrk'),
          busyCores:
            Math.round(((after.machine.busy - before.machine.busy) / Math.max(1e-9, wall)) * machine.cores * 100) / 100,
        },
      };
    };
    // Warm every target first: JIT, pools, keep-alive connections.
    for (const svc of services) await run(svc, 32, 3);

    const results = new Map<VariantName, Map<number, Measured[]>>(
      VARIANTS.map((v) => [v, new Map(CONNS.map((c) => [c, []]))]),
    );
    for (let round = 1; round <= ROUNDS; round++) {
      for (const c of CONNS) {
        for (const svc of services) {
          const r = await run(svc, c, SECONDS);
          results.get(svc.variant)!.get(c)!.push(r);
          console.error(
            `round ${round} c=${c} ${svc.variant}: ${(r.rps - r.non2xxPerS).toFixed(0)} 2xx/s (${r.non2xx} non-2xx), p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms; CPU ms/charge ${JSON.stringify(r.cpu)}`,
          );
        }
      }
    }

    const rows = VARIANTS.map((variant) => {
      const rungs: Rung[] = CONNS.map((c) => {
        const runs = results.get(variant)!.get(c)!;
        return {
          connections: c,
          runs,
          goodput: median(runs.map((r) => r.rps - r.non2xxPerS)),
          p50Ms: median(runs.map((r) => r.p50Ms)),
          p99Ms: median(runs.map((r) => r.p99Ms)),
        };
      });
      const within = rungs.filter((r) => r.p99Ms <= P99_BAR_MS);
      const best = within.length > 0 ? within.reduce((a, b) => (b.goodput > a.goodput ? b : a)) : undefined;
      return { variant, rungs, best };
    });
    const gw = rows.find((r) => r.variant === 'gateway')?.best?.goodput;
    const report = {
      machine,
      command: `${process.env.NB_GATEWAY_ENV ? `NB_GATEWAY_ENV="${process.env.NB_GATEWAY_ENV}" ` : ''}NB_VARIANTS=${VARIANTS.join(',')} NB_CONNS=${CONNS.join(',')} NB_SECONDS=${SECONDS} NB_ROUNDS=${ROUNDS} NB_P99_MS=${P99_BAR_MS} npm run bench:charge`,
      wrk: `wrk -t1 -c<N> -d${SECONDS}s --latency -s native-bench/charge.lua`,
      p99_bar_ms: P99_BAR_MS,
      rows: rows.map((r) => ({
        variant: r.variant,
        best_goodput_per_s: r.best ? Math.round(r.best.goodput) : null,
        best_at_connections: r.best?.connections ?? null,
        gateway_ratio: gw !== undefined && r.best ? Number((gw / r.best.goodput).toFixed(2)) : null,
        rungs: r.rungs.map((g) => ({
          connections: g.connections,
          goodput_per_s: Math.round(g.goodput),
          p50_ms: g.p50Ms,
          p99_ms: g.p99Ms,
          rounds: g.runs.map((x) => ({
            rps: Math.round(x.rps),
            non2xx: x.non2xx,
            p99_ms: x.p99Ms,
            cpu_ms_per_charge: x.cpu,
          })),
        })),
        // At the best rung; when no rung meets the bar, at the highest-goodput one.
        cpu_ms_per_charge: cpuMedian((r.best ?? r.rungs.reduce((a, b) => (b.goodput > a.goodput ? b : a))).runs),
      })),
    };
    const out = path.resolve(HERE, '../../reports');
    await mkdir(out, { recursive: true });
    await writeFile(
      path.join(out, `charge-sweep-${machine.date.replaceAll(':', '-')}.json`),
      JSON.stringify(report, null, 2),
    );

    console.log(
      `machine: ${machine.cores} × ${machine.cpu_model}, ${machine.memory_gib} GiB, node ${machine.node}, ${machine.date}`,
    );
    console.log(
      `2xx charges/s (median of ${ROUNDS}) and p99 by connections; best = highest goodput with p99 <= ${P99_BAR_MS} ms`,
    );
    console.log(
      `| target | ${CONNS.map((c) => `c=${c}`).join(' | ')} | best at p99 <= ${P99_BAR_MS} ms | gateway ÷ target |`,
    );
    console.log(`| --- | ${CONNS.map(() => '---').join(' | ')} | --- | --- |`);
    for (const r of report.rows) {
      const cells = r.rungs.map((g) => `${g.goodput_per_s}/s, p99 ${g.p99_ms} ms`);
      console.log(
        `| ${r.variant} | ${cells.join(' | ')} | ${r.best_goodput_per_s ?? 'none'}${r.best_at_connections ? ` (c=${r.best_at_connections})` : ''} | ${r.gateway_ratio ?? 'n/a'} |`,
      );
    }
    console.log('');
    console.log(
      "CPU ms per charge at each target's best rung (its top rung when none meets the bar), median of rounds, and the cores busy meanwhile:",
    );
    console.log('| target | service | Postgres | simulator | wrk | total | busy cores |');
    console.log('| --- | --- | --- | --- | --- | --- | --- |');
    for (const r of report.rows) {
      const c = r.cpu_ms_per_charge;
      console.log(
        `| ${r.variant} | ${c.service} | ${c.postgres} | ${c.simulator} | ${c.wrk} | ${Math.round((c.service + c.postgres + c.simulator + c.wrk) * 1000) / 1000} | ${c.busyCores} of ${machine.cores} |`,
      );
    }
  } finally {
    await Promise.allSettled(services.map((s) => s.stop()));
    await env.close();
  }
}

await main();
