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
import { cpus } from 'node:os';
import type { ActionHandles, ActionReport, PlanAction } from '../definition.js';
import { cpuSeconds, machineCpuSeconds } from '../../measure/proc-stats.js';
import { descendantsOf } from '../../run/service.js';

/** Fact keys: `<name>@<second>`, the second of the run (0-based) the sample closes. */
export const SERVICE_CPU = 'service_cpu_ms';
export const GENERATOR_CPU = 'generator_cpu_ms';
export const MACHINE_BUSY = 'machine_busy_pct';

/** A plan action sampling CPU once a second from the start of the load until `untilS`. */
export function cpuSampler(untilS: number): PlanAction {
  return { name: 'cpu', at: 0, run: (h) => sample(h, untilS) };
}

async function sample(h: ActionHandles, untilS: number): Promise<ActionReport> {
  const roots = h.service.processes.filter((c) => c.alive()).map((c) => c.pid);
  // The tree once: walking /proc every second would cost the CPU being measured.
  const pids = [...roots, ...(await Promise.all(roots.map(descendantsOf))).flat()];
  const serviceCpu = async () =>
    (await Promise.all(pids.map((p) => cpuSeconds(p)))).reduce<number>((a, b) => a + (b ?? 0), 0);
  const facts: Record<string, number> = { cores: cpus().length };
  let prev = { at: h.since(), svc: await serviceCpu(), self: process.cpuUsage(), machine: await machineCpuSeconds() };
  // Ends a little before the load does (actions must end by then).
  for (let second = Math.floor(prev.at) + 1; second <= untilS - 0.3; second++) {
    const wait = second - h.since();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait * 1000));
    const cur = {
      at: h.since(),
      svc: await serviceCpu(),
      self: process.cpuUsage(),
      machine: await machineCpuSeconds(),
    };
    const wallS = Math.max(0.001, cur.at - prev.at);
    const t = second - 1;
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
