/**
 * overload: offered load far above the machine's ceiling for a while, then
 * back to normal. Shedding should answer the excess fast (a 503 in a few ms
 * rather than a timeout after the deadline) so that what is admitted still
 * meets its deadline: goodput bends but never falls to zero, and comes back
 * by itself. The before/after table is goodput, p99 and 503 rate per phase.
 */
import type { Check } from '../../report/types.js';
import { fmt, goodputNeverZeroCheck, label, phase, recoveryCheck, shedFastCheck } from '../checks.js';
import { slice } from '../timeline.js';
import type { ScenarioDefinition } from '../definition.js';
import { gatewayRun, pick, variantsFor } from './common.js';

export const overload: ScenarioDefinition = {
  name: 'overload',
  title: 'Offered load far above capacity',
  claim: 'Far past its ceiling, the gateway sheds the excess fast and keeps a steady goodput that never falls to zero, where the unprotected services stall.',
  plan(mode) {
    const normal = pick(mode, 300, 300);
    const surge = pick(mode, 2000, 2400);
    const warm = pick(mode, 3, 5);
    const over = pick(mode, 5, 10);
    const rec = pick(mode, 4, 8);
    return {
      phases: [
        { name: 'warm-up', seconds: warm },
        { name: 'fault', seconds: over, fault: { text: `offered ${surge}/s (normal ${normal}/s)` } },
        { name: 'recovery', seconds: rec },
      ],
      load: {
        steps: [
          { rate: normal, durationMs: warm * 1000 },
          { rate: surge, durationMs: over * 1000 },
          { rate: normal, durationMs: rec * 1000 },
        ],
        deadlineMs: 1000,
        connections: 1024,
      },
      variants: variantsFor(mode),
    };
  },
  checks({ phases, runs }): Check[] {
    const fault = phase(phases, 'fault');
    const gw = gatewayRun(runs);
    if (!gw) return [];
    const never = goodputNeverZeroCheck(gw, fault);
    // The other variants' worst second, for the before/after reading.
    never.detail += `; lowest second elsewhere: ${runs
      .filter((r) => r !== gw)
      .map((r) => `${label(r)} ${fmt(Math.min(...slice(r.result.timeline, fault.start_s, fault.end_s).map((p) => p.goodput)), 0)}/s`)
      .join(', ')}`;
    return [
      never,
      shedFastCheck(gw, fault, 0.1),
      recoveryCheck(gw, phases, 0.8, 3),
    ];
  },
};
