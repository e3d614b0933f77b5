/**
 * The load generator as if it had a machine of its own. In a CPU-bound
 * overload on one shared machine, the service, Postgres, the simulator and
 * this process all want more CPU than there is, and the kernel shares it
 * evenly among runnable threads: the generator then falls behind its own
 * schedule and the run measures the client, not the service (the committed
 * full-form cpu-overload once lagged 10–48 s in every variant).
 *
 * A plan action lowers this thread's nice value for the length of the load
 * and puts it back after, so the generator gets the CPU it asks for and the
 * service gets the rest, as it would with the client on another host. It is
 * the same for every variant. The generator's CPU is still measured (it is
 * what the service does not get), and the scenario checks that it stayed on
 * schedule.
 *
 * setpriority on Linux applies to the calling thread: this is Node's main
 * thread, the one that paces and reads answers. Processes spawned while the
 * priority is raised would inherit it; the scenarios that use this spawn
 * none mid-load. Lowering a nice value needs CAP_SYS_NICE (root): without
 * it nothing changes, the report says so, and the schedule check decides.
 */
import { getPriority, setPriority } from 'node:os';
import type { ActionReport, PlanAction } from '../definition.js';

/** Fact: the nice value the generator's thread ran the load at. */
export const GENERATOR_NICE = 'generator_nice';

/** This thread's nice value before any run changed it: what every run puts back, even after another's failure. */
const ORIGINAL_NICE = getPriority(0);

/** Raise the generator's priority to `nice` (e.g. -10) until `untilS` seconds into the load. */
export function generatorPriority(untilS: number, nice: number): PlanAction {
  return {
    name: 'generator-priority',
    at: 0,
    async run(h): Promise<ActionReport> {
      let now = ORIGINAL_NICE;
      try {
        setPriority(0, nice);
        now = getPriority(0);
      } catch (e) {
        h.log(`generator priority left at nice ${ORIGINAL_NICE}: ${(e as Error).message} (needs CAP_SYS_NICE)`);
      }
      try {
        // Ends a little before the load does (actions must end by then).
        const wait = untilS - 1.3 - h.since();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait * 1000));
      } finally {
        if (now !== ORIGINAL_NICE) setPriority(0, ORIGINAL_NICE);
      }
      return { events: [], facts: { [GENERATOR_NICE]: now } };
    },
  };
}
