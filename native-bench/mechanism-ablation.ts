/**
 * What each protection mechanism costs a healthy load: the gateway at a fixed
 * open-loop rate with its mechanisms all on, all off, and each turned off
 * alone, alternated round by round on one embedded Postgres and simulator
 * (table and ledger emptied before every run, a fresh gateway each run).
 * Latency comes from the lab's open-loop generator, run in this process as
 * the lab runs it (measured from the intended send time); CPU from /proc for
 * the gateway's process; sheds by reason from its /metrics.
 *
 *   npm run bench:ablation   (NB_RATE=800 NB_SECONDS=20 NB_WARM_SECONDS=10 NB_ROUNDS=3)
 *   NB_SETTINGS="off:MECHANISMS=false;on:;noshed:SHEDDING=false" picks the settings (name:ENV=V ENV=V;...).
 *
 * A run whose generator fell behind its schedule says so: then the machine,
 * not the setting, decided its tail.
 */
import { startEnvironment } from '../src/lab/scenario/run/environment.js';
import { machineInfo } from '../src/lab/scenario/measure/machine.js';
import { cpuSeconds } from '../src/lab/scenario/measure/proc-stats.js';
import { parsePrometheus, snapshotOf } from '../src/lab/scenario/measure/scrape.js';
import { runLoad } from '../src/lab/load/index.js';
import { SHED_REASONS, type ShedReason } from '../src/resilience/shedder.js';
import { labServiceEnv } from '../src/lab/scenario/run/run-variant.js';
import { ServiceUnderTest } from '../src/lab/scenario/run/service.js';
import { median } from './wrk.js';

const RATE = Number(process.env.NB_RATE ?? 800);
const SECONDS = Number(process.env.NB_SECONDS ?? 20);
const WARM_SECONDS = Number(process.env.NB_WARM_SECONDS ?? 10);
const ROUNDS = Number(process.env.NB_ROUNDS ?? 3);
const SETTINGS = (
  process.env.NB_SETTINGS ??
  'off:MECHANISMS=false;on:;noshed:SHEDDING=false;nolimit:CONCURRENCY_LIMIT=off;nobulk:BULKHEADS=false'
)
  .split(';')
  .filter(Boolean)
  .map((s) => {
    const [name, kvs = ''] = s.split(':');
    const env = Object.fromEntries(
      kvs
        .split(/\s+/)
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
    return { name: name!, env };
  });

interface Run {
  p50: number;
  p99: number;
  p999: number;
  not201: number;
  cpuMsPerCharge: number;
  behind: boolean;
  /** Requests shed by admission during the measured run, by reason (bulwark_shed_total). */
  shed: Record<string, number>;
}

/** bulwark_shed_total by reason, read from the gateway's /metrics. */
async function shedByReason(url: string): Promise<Record<ShedReason, number>> {
  const { counters } = snapshotOf(parsePrometheus(await (await fetch(`${url}/metrics`)).text()));
  return Object.fromEntries(SHED_REASONS.map((r) => [r, counters[`shed_${r}`]])) as Record<ShedReason, number>;
}

/** The lab's open-loop generator, in this process as the lab runs it. */
function load(url: string, rate: number, durationSeconds: number, runId: string) {
  return runLoad({ url, rate, durationSeconds, deadlineMs: 1000, seed: 1, runId });
}

async function main(): Promise<void> {
  const machine = machineInfo();
  const env = await startEnvironment({ log: (m) => console.error(m) });
  const runs = new Map<string, Run[]>(SETTINGS.map((s) => [s.name, []]));
  try {
    const base = labServiceEnv(env);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const s of SETTINGS) {
        await env.resetForVariant();
        // The lab's service sets MECHANISMS by variant: the off build is its own variant.
        const { MECHANISMS, ...rest } = s.env;
        const variant = MECHANISMS === 'false' ? 'gateway-off' : 'gateway';
        const svc = await ServiceUnderTest.start({ variant, env: { ...base, ...rest } });
        try {
          const id = `${s.name}-${round}-${Date.now()}`;
          await load(svc.url, Math.max(1, Math.round(RATE / 2)), WARM_SECONDS, `${id}-warm`);
          const cpu = async () =>
            (await Promise.all(svc.processes.map((c) => cpuSeconds(c.pid)))).reduce<number>((a, b) => a + (b ?? 0), 0);
          const before = await cpu();
          const shedBefore = await shedByReason(svc.url);
          const r = await load(svc.url, RATE, SECONDS, id);
          const used = (await cpu()) - before;
          const shedAfter = await shedByReason(svc.url);
          const shed = Object.fromEntries(
            SHED_REASONS.map((k) => [k, shedAfter[k] - shedBefore[k]] as const).filter(([, v]) => v > 0),
          );
          const c = r.classes.charge!;
          const run: Run = {
            p50: c.latency_ms.p50,
            p99: c.latency_ms.p99,
            p999: c.latency_ms.p999,
            not201: c.sent - (c.statuses['201'] ?? 0),
            cpuMsPerCharge: Math.round((used * 1e6) / Math.max(1, c.sent)) / 1000,
            behind: r.behind_schedule,
            shed,
          };
          runs.get(s.name)!.push(run);
          console.error(`round ${round} ${s.name}: ${JSON.stringify(run)}`);
        } finally {
          await svc.stop();
        }
      }
    }
  } finally {
    await env.close();
  }
  console.log(
    `machine: ${machine.cores} × ${machine.cpu_model}, ${machine.memory_gib} GiB, node ${machine.node}, ${machine.date}`,
  );
  console.log(
    `NB_RATE=${RATE} NB_SECONDS=${SECONDS} NB_WARM_SECONDS=${WARM_SECONDS} NB_ROUNDS=${ROUNDS} npm run bench:ablation; medians of ${ROUNDS}, each round's p99 in brackets`,
  );
  console.log(
    '| setting | env | p50 ms | p99 ms | p999 ms | not 201 | shed by reason, each round | gateway CPU ms/charge | generator behind |',
  );
  console.log('| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |');
  for (const s of SETTINGS) {
    const rs = runs.get(s.name)!;
    const m = (f: (r: Run) => number) => median(rs.map(f));
    console.log(
      `| ${s.name} | ${Object.entries(s.env)
        .map(([k, v]) => `${k}=${v}`)
        .join(
          ' ',
        )} | ${m((r) => r.p50)} | ${m((r) => r.p99)} (${rs.map((r) => r.p99).join(', ')}) | ${m((r) => r.p999)} | ${m((r) => r.not201)} | ${rs
        .map(
          (r) =>
            Object.entries(r.shed)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ') || 'none',
        )
        .join('; ')} | ${m((r) => r.cpuMsPerCharge)} | ${rs.filter((r) => r.behind).length} of ${rs.length} |`,
    );
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
