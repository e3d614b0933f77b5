/**
 * retry-storm: the provider fails hard (every call a fast 503) while clients
 * use the naive `storm` policy: resend at once, up to 10 times, on every
 * 5xx. With capped provider retries, a retry budget and the breaker (gateway
 * on), the storm meets cheap refusals and goodput comes back by itself when
 * the provider does; with mechanisms off (and in the baselines) the report
 * shows whether it stays collapsed or recovers later. Both are shown; only
 * the gateway's recovery is asserted.
 */
import type { Check } from '../../report/types.js';
import { breakerOpenedCheck, fmt, label, phase, recoveryCheck, recoveryTimes } from '../checks.js';
import type { ScenarioDefinition } from '../definition.js';
import { breakerEnvFor, gatewayRun, pick, variantsFor } from './common.js';

export const retryStorm: ScenarioDefinition = {
  name: 'retry-storm',
  title: 'The provider fails hard while clients retry in a storm',
  claim: 'With capped retries, a retry budget and the breaker, a client retry storm cannot keep the service down: goodput returns by itself after the provider recovers.',
  plan(mode) {
    return {
      phases: [
        { name: 'warm-up', seconds: pick(mode, 3, 6) },
        { name: 'fault', seconds: pick(mode, 4, 10), fault: { provider: { errorRate: 1, errorStatus: 503 }, text: 'provider answers 503 to every call; clients storm (10 immediate attempts)' } },
        { name: 'recovery', seconds: pick(mode, 5, 12) },
      ],
      load: { rate: pick(mode, 200, 300), retry: 'storm', deadlineMs: 1000 },
      gatewayEnv: breakerEnvFor(mode),
      variants: variantsFor(mode),
    };
  },
  checks({ phases, runs }): Check[] {
    const fault = phase(phases, 'fault');
    const gw = gatewayRun(runs);
    if (!gw) return [];
    const recovered = recoveryCheck(gw, phases, 0.8, 3);
    // The other variants are shown, not judged: how long each took, and how hard the clients stormed it.
    const storm = runs.map((r) => `${label(r)} x${fmt((r.load.totals.sent + r.load.totals.retries) / Math.max(1, r.load.totals.sent), 2)}`).join(', ');
    recovered.detail += `; time to 80 % after the provider healed: ${recoveryTimes(runs, phases)}; attempts per request: ${storm}`;
    return [breakerOpenedCheck(gw, fault), recovered];
  },
};
