/**
 * Who used the CPU, second by second, while a scenario ran: the service
 * under test (its whole process tree: the gateway's worker threads live in
 * its one process, a clustered baseline's workers are its children), this
 * lab process (the load generator) and the machine as a whole. Read from
 * /proc by a plan action, so no runner change is needed and every variant is
 * measured the same way.
 *
 * "The gateway is the bottleneck" is a claim about these numbers: the service
 * near its cores' worth of CPU, the generator well below one core and on
 * schedule. Without them a CPU-bound overload on a shared two-core machine
 * could be measuring the load generator instead.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { ActionHandles, ActionReport, PlanAction } from '../definition.js';
import { ticksPerSecond } from '../../measure/proc-stats.js';

/** Fact keys: `<name>@<second>`, the second of the run (0-based) the sample closes. */
export const SERVICE_CPU = 'service_cpu_ms';
export const GENERATOR_CPU = 'generator_cpu_ms';
export const MACHINE_BUSY = 'machine_busy_pct';

/** A plan action sampling CPU once a second from the start of the load until `untilS`. */
export function cpuSampler(untilS: number): PlanAction {
  return { name: 'cpu', at: 0, run: (h) => sample(h, untilS) };
}

/*
 * /proc is read synchronously, on purpose: these reads take microseconds,
 * while each await costs a turn of an event loop that a saturated generator
 * keeps busy for seconds (measured: an async walk of /proc did not finish
 * within a 28 s run at a load average of 20, and no sample was taken).
 */

/** Fields of /proc/PID/stat after the command name (which may hold spaces). */
function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** `roots` and every process below them. */
function treeOf(roots: readonly number[]): number[] {
  const parent = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const f = statFields(Number(e));
    if (f) parent.set(Number(e), Number(f[1]));
  }
  const out = [...roots];
  for (let i = 0; i < out.length; i++) for (const [c, p] of parent) if (p === out[i] && !out.includes(c)) out.push(c);
  return out;
}

/** CPU seconds (user + system) of the processes, the gone ones counting 0. */
function cpuOf(pids: readonly number[]): number {
  let ticks = 0;
  for (const p of pids) {
    const f = statFields(p);
    // utime and stime: fields 14 and 15 of stat, 11 and 12 after the name.
    if (f) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / ticksPerSecond();
}

function machine(): { busy: number; total: number } {
  const v = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - (v[3] ?? 0) - (v[4] ?? 0), total };
}

async function sample(h: ActionHandles, untilS: number): Promise<ActionReport> {
  const facts: Record<string, number> = { cores: cpus().length };
  let pids: number[];
  try {
    // The tree once: walking /proc every second would cost the CPU being measured.
    pids = treeOf(h.service.processes.filter((c) => c.alive()).map((c) => c.pid));
  } catch {
    return { events: [], facts }; // no /proc: nothing to sample
  }
  const take = () => ({ at: h.since(), svc: cpuOf(pids), self: process.cpuUsage(), machine: machine() });
  let prev = take();
  // Ends a little before the load does (actions must end by then).
  while (h.since() < untilS - 1.3) {
    const wait = Math.floor(h.since()) + 1 - h.since();
    await new Promise((r) => setTimeout(r, wait * 1000));
    const cur = take();
    // Per wall second, keyed by the second the sample closes: a late timer spreads, never inflates.
    const wallS = Math.max(0.001, cur.at - prev.at);
    const t = Math.floor(cur.at) - 1;
    facts[`${SERVICE_CPU}@${t}`] = round(((cur.svc - prev.svc) * 1000) / wallS);
    const selfUs = cur.self.user - prev.self.user + cur.self.system - prev.self.system;
    facts[`${GENERATOR_CPU}@${t}`] = round(selfUs / 1000 / wallS);
    const total = cur.machine.total - prev.machine.total;
    facts[`${MACHINE_BUSY}@${t}`] = total > 0 ? round((100 * (cur.machine.busy - prev.machine.busy)) / total) : 0;
    prev = cur;
  }
  return { events: [], facts };
}

/** Mean of a per-second fact over seconds [from, to); null when none was sampled. */
export function meanFact(
  facts: Readonly<Record<string, number>>,
  name: string,
  from: number,
  to: number,
): number | null {
  const xs: number[] = [];
  for (let t = Math.ceil(from); t < to; t++) {
    const v = facts[`${name}@${t}`];
    if (v !== undefined) xs.push(v);
  }
  return xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length;
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
