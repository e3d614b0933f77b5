/**
 * slow-provider: the payment provider answers in 4 s for a while, far past
 * every deadline. Charges cannot succeed then; the question is what else
 * they take down. Unrelated reads (GET /charges/:key, a Postgres read) run
 * alongside in their own load generator: with the breaker open and no DB
 * connection held across a provider call, their p99 must stay bounded. The
 * scraped metrics show the breaker trip and, where they happen, bulkhead and
 * DB acquire timeouts.
 */
import type { Check, Phase } from '../../../report/types.js';
import { goodputThrough, breakerOpenedCheck, fmt, label, phase, recoveryCheck, recoveryTimes } from '../checks.js';
import type { ScenarioDefinition, VariantRun } from '../definition.js';
import { percentile, slice } from '../../measure/timeline.js';
import { breakerEnvFor, gatewayRun, pick, scrapedTotals, variantsFor } from './common.js';

const LATENCY_MS = 4000;

/** The side reads' p99 of each second of a phase. */
function readP99s(run: VariantRun, p: Phase): number[] {
  return slice(run.result.timeline, p.start_s, p.end_s)
    .map((x) => x.read_p99_ms)
    .filter((x): x is number => typeof x === 'number');
}

export const slowProvider: ScenarioDefinition = {
  name: 'slow-provider',
  title: 'The provider slows to 4 s',
  claim:
    'When the provider slows past every deadline, the breaker opens, unrelated reads stay fast, and goodput returns by itself once the provider heals.',
  plan(mode) {
    return {
      phases: [
        { name: 'warm-up', seconds: pick(mode, 3, 6) },
        {
          name: 'fault',
          seconds: pick(mode, 5, 12),
          fault: {
            provider: { latencyMs: { dist: 'fixed', ms: LATENCY_MS } },
            text: `provider latency ${LATENCY_MS / 1000} s`,
          },
        },
        { name: 'recovery', seconds: pick(mode, 5, 10) },
      ],
      load: { rate: pick(mode, 150, 200), deadlineMs: 1000 },
      side: { cls: 'read', rate: 50, deadlineMs: 1000 },
      gatewayEnv: breakerEnvFor(mode),
      variants: variantsFor(mode),
    };
  },
  // A headline scenario, as retry-storm: goodput once the provider heals, and
  // how long that took. The peers were within a point of the gateway here, so
  // `--seeds N` repeats it and they are compared on the medians.
  headline: goodputThrough('recovery'),
  checks({ phases, runs }): Check[] {
    const fault = phase(phases, 'fault');
    const checks: Check[] = [];
    const gw = gatewayRun(runs);
    if (gw) {
      // What the scrape saw during the fault rides along in the breaker check's detail.
      const opened = breakerOpenedCheck(gw, fault);
      opened.detail += `; scraped during the fault: ${scrapedTotals(slice(gw.result.timeline, fault.start_s, fault.end_s))}`;
      checks.push(opened);
      // Reads during the fault: bounded well below the provider's latency and inside their own deadline.
      const reads = readP99s(gw, fault);
      const worst = reads.length > 0 ? Math.max(...reads) : null;
      const others = runs.filter((r) => r !== gw).map((r) => `${label(r)} ${fmt(Math.max(...readP99s(r, fault)))} ms`);
      checks.push({
        name: 'gateway: unrelated reads stay fast while the provider is slow (worst per-second read p99 < 1/4 of the provider latency)',
        passed: worst !== null && worst < LATENCY_MS / 4,
        detail: `read p99 per second during the fault: median ${fmt(percentile(reads, 0.5))} ms, worst ${fmt(worst)} ms (provider ${LATENCY_MS} ms); worst elsewhere: ${others.join(', ')}`,
      });
      const recovered = recoveryCheck(gw, phases, 0.8, 3);
      recovered.detail += `; time to 80 % after the provider healed: ${recoveryTimes(runs, phases)}`;
      checks.push(recovered);
    }
    return checks;
  },
};
