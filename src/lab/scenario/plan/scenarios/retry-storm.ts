/**
 * retry-storm: a metastable failure. The provider (a saturating queue of 16
 * at 40 ms, about twice the offered load) stalls for a few seconds; clients
 * use the naive `storm` policy (resend at once, up to 10 times, timeouts
 * included). Every timeout becomes ten requests, so once the stall has
 * filled the queues the retries alone exceed capacity and keep every answer
 * past its deadline after the provider is healthy again: the trigger is
 * gone, the failure is not. With the breaker, the retry budget and shedding
 * (gateway on) the storm meets cheap refusals, the provider's queue drains
 * and goodput comes back by itself. Both are shown; the gateway's recovery
 * is asserted, and so is the collapse without the mechanisms, or the
 * scenario would prove nothing.
 */
import type { Check } from '../../../report/types.js';
import {
  goodputThrough,
  breakerOpenedCheck,
  fmt,
  label,
  meanGoodput,
  phase,
  recoveryCheck,
  recoveryTimes,
  runOf,
} from '../checks.js';
import { slice } from '../../measure/timeline.js';
import type { ScenarioDefinition } from '../definition.js';
import { breakerEnvFor, gatewayRun, pick, variantsFor } from './common.js';

/** The provider's healthy shape: 16 calls at a time, 40 ms each, so about 400 calls/s, twice the offered load. */
const PROVIDER_CONCURRENCY = 16;
const PROVIDER_MS = 40;
const SLOW_MS = 1500;

export const retryStorm: ScenarioDefinition = {
  name: 'retry-storm',
  title: 'The provider stalls briefly while clients retry in a storm',
  claim:
    'With capped retries, a retry budget and the breaker, a client retry storm cannot keep the service down: goodput returns by itself after the provider recovers, where without them the storm outlives its trigger.',
  plan(mode) {
    return {
      phases: [
        { name: 'warm-up', seconds: pick(mode, 3, 6) },
        // The full form keeps the gateway's default 10 s breaker window, so its stall outlasts the window.
        {
          name: 'fault',
          seconds: pick(mode, 6, 10),
          fault: {
            provider: { latencyMs: { dist: 'fixed', ms: SLOW_MS } },
            text: `provider calls take ${SLOW_MS / 1000} s (past every deadline); clients storm (up to 10 immediate attempts, timeouts included)`,
          },
        },
        { name: 'recovery', seconds: pick(mode, 8, 14) },
      ],
      steady: { provider: { concurrency: PROVIDER_CONCURRENCY, latencyMs: { dist: 'fixed', ms: PROVIDER_MS } } },
      load: { rate: pick(mode, 200, 200), retry: 'storm', deadlineMs: 1000 },
      gatewayEnv: breakerEnvFor(mode),
      variants: variantsFor(mode),
    };
  },
  headline: goodputThrough('recovery'),
  checks({ phases, runs }): Check[] {
    const fault = phase(phases, 'fault');
    const gw = gatewayRun(runs);
    if (!gw) return [];
    const recovered = recoveryCheck(gw, phases, 0.8, 3);
    // The other variants are shown, not judged: how long each took, and how hard the clients stormed it.
    const storm = runs
      .map(
        (r) => `${label(r)} x${fmt((r.load.totals.sent + r.load.totals.retries) / Math.max(1, r.load.totals.sent), 2)}`,
      )
      .join(', ');
    recovered.detail += `; time to 80 % after the provider healed: ${recoveryTimes(runs, phases)}; attempts per request: ${storm}`;
    const checks = [breakerOpenedCheck(gw, fault), recovered];
    // The scenario must really be a metastable failure, or the gateway's
    // recovery proves nothing: without the mechanisms the storm outlives its
    // trigger (the same bulwark build, mechanisms off).
    const off = runOf(runs, 'gateway-off');
    if (off) {
      const warm = phase(phases, 'warm-up');
      const rec = phase(phases, 'recovery');
      const warmGood = meanGoodput(slice(off.result.timeline, warm.start_s + 1, warm.end_s));
      const recGood = meanGoodput(slice(off.result.timeline, rec.start_s, rec.end_s));
      checks.push({
        name: 'gateway-off: without the mechanisms the storm outlives its trigger (recovery goodput < 50 % of the warm-up)',
        passed: warmGood > 0 && recGood < 0.5 * warmGood,
        detail: `recovery ${fmt(recGood)}/s vs warm-up ${fmt(warmGood)}/s (${fmt((100 * recGood) / Math.max(1, warmGood), 0)} %)`,
      });
    }
    return checks;
  },
};
