/**
 * cascade: the composed failure. The provider slows past every deadline,
 * clients retry in a storm, and in the middle of it a deploy's SIGTERM
 * lands, so the drain races charges stuck on the slow provider. Afterwards
 * goodput must come back by itself once the provider heals, the drain must
 * have ended inside its grace period, and the audit must find nothing lost,
 * duplicated or pending: the reconciler finishes what the drain abandoned.
 */
import type { Check } from '../../../report/types.js';
import { breakerOpenedCheck, drainsCheck, phase, recoveryCheck, recoveryTimes } from '../checks.js';
import type { Mode, ScenarioDefinition } from '../definition.js';
import { breakerEnvFor, gatewayRun, pick, variantsFor } from './common.js';

const LATENCY_MS = 4000;

function timing(mode: Mode): { warm: number; fault: number; rec: number; deployAt: number } {
  return pick(mode, { warm: 3, fault: 6, rec: 5, deployAt: 6 }, { warm: 6, fault: 12, rec: 8, deployAt: 12 });
}

export const cascade: ScenarioDefinition = {
  name: 'cascade',
  title: 'Slow provider + retry storm + a deploy mid-fault',
  claim:
    'When the provider slows, clients storm and a deploy drains in the middle of it all, goodput returns by itself after the provider heals and the deploy loses nothing.',
  plan(mode) {
    const t = timing(mode);
    return {
      phases: [
        { name: 'warm-up', seconds: t.warm },
        {
          name: 'fault',
          seconds: t.fault,
          fault: {
            provider: { latencyMs: { dist: 'fixed', ms: LATENCY_MS } },
            text: `provider latency ${LATENCY_MS / 1000} s; clients storm; SIGTERM + restart at ${t.deployAt} s`,
          },
        },
        { name: 'recovery', seconds: t.rec },
      ],
      load: { rate: pick(mode, 150, 200), retry: 'storm', deadlineMs: 1000 },
      deploys: [t.deployAt],
      gatewayEnv: breakerEnvFor(mode),
      variants: variantsFor(mode),
    };
  },
  checks({ phases, runs }): Check[] {
    const fault = phase(phases, 'fault');
    const checks: Check[] = runs.map((r) => drainsCheck(r, 1));
    const gw = gatewayRun(runs);
    if (gw) {
      checks.push(breakerOpenedCheck(gw, fault));
      const recovered = recoveryCheck(gw, phases, 0.8, 3);
      recovered.detail += `; time to 80 % after the provider healed: ${recoveryTimes(runs, phases)}`;
      checks.push(recovered);
    }
    return checks;
  },
};
