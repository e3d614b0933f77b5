/**
 * deploy: SIGTERM mid-load, restart on the same port, repeat. One instance
 * and no load balancer in front, so while a process drains and its
 * replacement starts the load generator sees refused connections: they are
 * counted (in the drain check's detail), and they are not lost charges as
 * long as the audit is clean. Clients use the capped retry policy, as real
 * clients of a payment API do, so a retried key must never be charged twice.
 * Each drain's duration is the service's own `drain finished` log line.
 * The provider takes 100-300 ms throughout, as real ones do, so every
 * SIGTERM finds charges in flight for the drain to finish.
 */
import type { Check } from '../../../report/types.js';
import { goodputThrough, drainsCheck, recoveryCheck, recoveryTimes } from '../checks.js';
import type { Mode, ScenarioDefinition } from '../definition.js';
import { gatewayRun, pick, variantsFor } from './common.js';

function deploysAt(mode: Mode): number[] {
  return pick(mode, [4, 8], [8, 14, 20]);
}

export const deploy: ScenarioDefinition = {
  name: 'deploy',
  title: 'Deploys under load: SIGTERM, drain, restart, repeat',
  claim:
    'A deploy under load drains within its grace period and loses and duplicates nothing, however many times it happens.',
  plan(mode) {
    const at = deploysAt(mode);
    const warm = pick(mode, 2, 5);
    const deploys = pick(mode, 8, 18);
    return {
      phases: [
        { name: 'warm-up', seconds: warm },
        {
          name: 'deploys',
          seconds: deploys,
          fault: { text: `SIGTERM and restart at ${at.join(', ')} s (provider 100-300 ms throughout)` },
        },
        // Six seconds in both forms: the check reads the last two, and a replacement
        // that starts slowly on a busy CI machine must not read as no recovery.
        { name: 'recovery', seconds: 6 },
      ],
      load: { rate: pick(mode, 200, 300), retry: 'capped', deadlineMs: 1000 },
      deploys: at,
      steady: { provider: { latencyMs: { dist: 'uniform', minMs: 100, maxMs: 300 } } },
      variants: variantsFor(mode),
    };
  },
  // A headline scenario: one run per variant ranks nothing here (the same
  // code moved 16 points for the gateway and 27 for Fastify between runs on
  // one day, docs/mechanisms.md §5), so `--seeds N` repeats it and the peers
  // are compared on the medians.
  headline: goodputThrough('deploys'),
  checks({ mode, phases, runs }): Check[] {
    const checks: Check[] = runs.map((run) => drainsCheck(run, deploysAt(mode).length));
    // Goodput after the last restart: asserted for the gateway, shown for the
    // rest (a replacement that starts slowly on a busy machine is not a lost charge).
    const gw = gatewayRun(runs);
    if (gw) {
      const recovered = recoveryCheck(gw, phases, 0.8, 2);
      recovered.detail += `; time to 80 % after the last deploy's recovery began: ${recoveryTimes(runs, phases)}`;
      checks.push(recovered);
    }
    return checks;
  },
};
