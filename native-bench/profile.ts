/**
 * Where a charge's CPU goes: the compiled gateway (`bulwark serve`, every
 * mechanism on), or with `--target baseline` the single-process Fastify
 * baseline (`--target baseline-hardened` for `--hardened`) on the same
 * settings, on an embedded Postgres and the simulator, run under
 * `node --cpu-prof` (on the command line: Node 20 refuses it in NODE_OPTIONS;
 * piscina's workers inherit the process's execArgv, so each writes its own
 * profile too), a bounded wrk charge
 * load with a fresh Idempotency-Key per request (native-bench/charge.lua),
 * then SIGTERM so the drain ends with a clean exit and every thread writes
 * its .cpuprofile. Each profile's samples inside the measured wrk window are
 * summed by stage (native-bench/profile-summary.ts) and divided by the
 * charges answered: µs of CPU per charge, front thread and workers apart.
 *
 * The profile is cross-checked against /proc: the front thread's own CPU
 * (its task's utime + stime) and the whole process's over the same window.
 * The process figure also holds what no profile sees (V8's GC and compiler
 * helper threads, the profiler itself), so it is the larger one.
 *
 *   npm run bench:profile -- [--target gateway|baseline|baseline-hardened] [--out DIR] [--seconds 10]
 *                              [--connections 64] [--interval-us 500] [--warmup-seconds 3]
 *
 * Prints a Markdown table and writes it (profile.md, profile.json) and the
 * raw profiles under --out (a temp directory by default; never commit them).
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startChild, type Child } from '../src/lab/scenario/run/child.js';
import { freePort, startEnvironment } from '../src/lab/scenario/run/environment.js';
import { machineInfo } from '../src/lab/scenario/measure/machine.js';
import { cpuSeconds } from '../src/lab/scenario/measure/proc-stats.js';
import { labServiceEnv } from '../src/lab/scenario/run/run-variant.js';
import { argsOf, portEnvOf } from '../src/lab/scenario/run/service.js';
import type { VariantName } from '../src/lab/report/types.js';
import { addTimes, STAGES, stageTimes, type CpuProfile, type StageTimes } from './profile-summary.js';
import { wrk } from './wrk.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCRIPT = path.resolve(HERE, '../../native-bench/charge.lua');

const { values: opt } = parseArgs({
  options: {
    out: { type: 'string' },
    target: { type: 'string', default: 'gateway' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '64' },
    'interval-us': { type: 'string', default: '500' },
    'warmup-seconds': { type: 'string', default: '3' },
  },
});
const SECONDS = Number(opt.seconds);
const CONNECTIONS = Number(opt.connections);
const INTERVAL_US = Number(opt['interval-us']);
const WARMUP_S = Number(opt['warmup-seconds']);
const TARGETS: readonly VariantName[] = ['gateway', 'baseline', 'baseline-hardened'];
const TARGET = opt.target as VariantName;
if (!TARGETS.includes(TARGET)) throw new Error(`--target must be one of ${TARGETS.join(', ')}: got ${opt.target}`);
/** The single-process baseline has no worker threads: its one thread is in the first column. */
const FRONT = TARGET === 'gateway' ? 'front thread' : 'Fastify process (one thread)';

/** Monotonic µs, the clock V8 stamps profile samples with. */
const monoUs = () => Number(process.hrtime.bigint() / 1000n);

const TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

/** CPU seconds of every thread of a process (Linux /proc/PID/task/TID/stat: utime + stime), by thread id. */
async function threadsCpuSeconds(pid: number): Promise<Map<number, number>> {
  const m = new Map<number, number>();
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    try {
      const text = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
      m.set(Number(tid), (Number(f[11]) + Number(f[12])) / TICKS);
    } catch {
      // the thread ended meanwhile
    }
  }
  return m;
}

const r1 = (n: number) => Math.round(n * 10) / 10;

async function main(): Promise<void> {
  const machine = machineInfo();
  const out = path.resolve(opt.out ?? (await mkdtemp(path.join(tmpdir(), 'bulwark-profile-'))));
  const profDir = path.join(out, 'profiles');
  await mkdir(profDir, { recursive: true });
  const load = loadavg().map((x) => x.toFixed(2));
  const env = await startEnvironment({ log: (m) => console.error(m) });
  let service: Child | undefined;
  try {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    service = await startChild({
      name: TARGET,
      args: argsOf(TARGET),
      nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`, `--cpu-prof-interval=${INTERVAL_US}`],
      env: { ...labServiceEnv(env), ...portEnvOf(TARGET, port) },
    });
    const pid = service.pid;
    console.error(`${TARGET} pid ${pid}: warm-up ${WARMUP_S} s, then ${SECONDS} s at c=${CONNECTIONS}`);
    await env.resetForVariant();
    if (WARMUP_S > 0)
      wrk(`${url}/charge`, {
        connections: CONNECTIONS,
        seconds: WARMUP_S,
        script: SCRIPT,
        scriptArgs: ['profile-warmup'],
      });
    const before = { threads: await threadsCpuSeconds(pid), all: (await cpuSeconds(pid)) ?? 0, t: monoUs() };
    const r = wrk(`${url}/charge`, {
      connections: CONNECTIONS,
      seconds: SECONDS,
      script: SCRIPT,
      scriptArgs: ['profile'],
    });
    const after = { threads: await threadsCpuSeconds(pid), all: (await cpuSeconds(pid)) ?? 0, t: monoUs() };
    const charges = Math.round(r.rps * r.seconds) - r.non2xx;
    // SIGTERM: the drain ends in a clean exit, and only a clean exit writes the profiles.
    await service.stop('SIGTERM', 20_000);
    service = undefined;

    const files = (await readdir(profDir)).filter((f) => f.endsWith('.cpuprofile')).sort();
    if (files.length === 0) throw new Error(`no .cpuprofile in ${profDir}: did the ${TARGET} exit cleanly?`);
    // Node names them CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile; thread 0 is the main thread.
    const front: StageTimes[] = [];
    const workers: StageTimes[] = [];
    for (const f of files) {
      const p = JSON.parse(await readFile(path.join(profDir, f), 'utf8')) as CpuProfile;
      const tid = Number(f.split('.').at(-3));
      const t = stageTimes(p, before.t, after.t);
      (tid === 0 ? front : workers).push(t);
    }
    const F = addTimes(front);
    const W = addTimes(workers);
    const per = (us: number) => us / Math.max(1, charges);
    const wallS = (after.t - before.t) / 1e6;
    // /proc's CPU per thread over the window. Worker threads carry no name
    // (every thread is "node"): they are taken to be the busiest threads
    // after the main one, one per worker profile; the rest are V8's GC and
    // compiler helpers, the profilers' own threads and libuv's pool.
    const deltas = [...after.threads]
      .map(([tid, s]) => ({ tid, us: (s - (before.threads.get(tid) ?? 0)) * 1e6 }))
      .sort((a, b) => b.us - a.us);
    const procFront = deltas.find((d) => d.tid === pid)?.us ?? 0;
    const workerTids = new Set(
      deltas
        .filter((d) => d.tid !== pid)
        .slice(0, workers.length)
        .map((d) => d.tid),
    );
    const procWorkers = deltas.filter((d) => workerTids.has(d.tid)).reduce((a, d) => a + d.us, 0);
    const procAll = (after.all - before.all) * 1e6;
    // V8's sampler counts every sample in which the thread was not idle in
    // epoll, on a core or waiting for one: on a shared machine that is more
    // than its CPU. Each stage keeps its share of the samples and the thread
    // group's CPU from /proc is split by those shares (assuming the waiting
    // falls evenly on the stages).
    const scaleF = F.cpuUs > 0 ? procFront / F.cpuUs : 0;
    const scaleW = W.cpuUs > 0 ? procWorkers / W.cpuUs : 0;
    const rows = STAGES.map((s) => ({
      stage: s,
      front_us: r1(per((F.byStage.get(s) ?? 0) * scaleF)),
      workers_us: r1(per((W.byStage.get(s) ?? 0) * scaleW)),
      front_share_pct: r1((100 * (F.byStage.get(s) ?? 0)) / Math.max(1, F.cpuUs)),
      workers_share_pct: r1((100 * (W.byStage.get(s) ?? 0)) / Math.max(1, W.cpuUs)),
    })).filter((x) => x.front_us + x.workers_us > 0);
    const report = {
      machine,
      load_average_before: load,
      load_average_after: loadavg().map((x) => x.toFixed(2)),
      target: TARGET,
      command: `npm run bench:profile -- --target ${TARGET} --seconds ${SECONDS} --connections ${CONNECTIONS} --interval-us ${INTERVAL_US} --warmup-seconds ${WARMUP_S}`,
      charges,
      charges_per_s: Math.round(charges / wallS),
      non2xx: r.non2xx,
      p50_ms: r.p50Ms,
      p99_ms: r.p99Ms,
      threads: { front: front.length, workers: workers.length },
      rows,
      profile_busy_us_per_charge: { front: r1(per(F.cpuUs)), workers: r1(per(W.cpuUs)) },
      idle_us_per_charge: { front: r1(per(F.idleUs)), workers: r1(per(W.idleUs)) },
      proc_cpu_us_per_charge: {
        front_thread: r1(per(procFront)),
        worker_threads: r1(per(procWorkers)),
        other_threads: r1(per(procAll - procFront - procWorkers)),
        process: r1(per(procAll)),
      },
      proc_threads_cpu_ms: deltas
        .filter((d) => d.us > 0)
        .map((d) => ({
          tid: d.tid,
          ms: r1(d.us / 1000),
          role: d.tid === pid ? 'front' : workerTids.has(d.tid) ? 'worker (by rank)' : 'helper',
        })),
      top_other: {
        front: F.topOther.map((o) => ({ ...o, us_per_charge: r1(per(o.us)) })),
        workers: W.topOther.map((o) => ({ ...o, us_per_charge: r1(per(o.us)) })),
      },
      profiles: profDir,
    };
    const md = [
      `machine: ${machine.cores} × ${machine.cpu_model}, node ${machine.node}, ${machine.date}`,
      `load average (1, 5, 15 min) before: ${report.load_average_before.join(', ')}; after: ${report.load_average_after.join(', ')} — other work on this machine shares its cores`,
      `command: ${report.command}`,
      `load: wrk -t1 -c${CONNECTIONS} -d${SECONDS}s -s native-bench/charge.lua (unique keys): ${charges} charges answered 2xx, ${report.charges_per_s}/s, ${r.non2xx} non-2xx, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms`,
      `threads profiled (${TARGET}): ${FRONT} 1, workers ${workers.length} (sampling every ${INTERVAL_US} µs)`,
      '',
      `| stage | ${FRONT} µs/charge | workers µs/charge (all workers) |`,
      '| --- | ---: | ---: |',
      ...rows.map(
        (x) => `| ${x.stage} | ${x.front_us} (${x.front_share_pct} %) | ${x.workers_us} (${x.workers_share_pct} %) |`,
      ),
      `| **CPU per charge (/proc, split by profile shares)** | **${report.proc_cpu_us_per_charge.front_thread}** | **${report.proc_cpu_us_per_charge.worker_threads}** |`,
      '',
      `whole process (/proc): ${report.proc_cpu_us_per_charge.process} µs per charge = front ${report.proc_cpu_us_per_charge.front_thread} + workers ${report.proc_cpu_us_per_charge.worker_threads} + helper threads (V8 GC/compiler, profilers, libuv) ${report.proc_cpu_us_per_charge.other_threads}.`,
      `profile (samples not idle, wall time): front ${report.profile_busy_us_per_charge.front} µs, workers ${report.profile_busy_us_per_charge.workers} µs per charge; idle front ${report.idle_us_per_charge.front}, workers ${report.idle_us_per_charge.workers}. Busy samples exceed /proc CPU by the time a runnable thread waited for a core.`,
      '',
      `heaviest "other" functions, front: ${F.topOther.map((o) => `${o.name} ${r1(per(o.us))} µs`).join('; ') || 'none'}`,
      `heaviest "other" functions, workers: ${W.topOther.map((o) => `${o.name} ${r1(per(o.us))} µs`).join('; ') || 'none'}`,
      `raw profiles: ${profDir}`,
    ].join('\n');
    await writeFile(path.join(out, 'profile.md'), md + '\n');
    await writeFile(path.join(out, 'profile.json'), JSON.stringify(report, null, 2));
    console.log(md);
  } finally {
    await service?.stop('SIGTERM', 5000).catch(() => {});
    await env.close();
  }
}

await main();
