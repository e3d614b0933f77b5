/**
 * bulkhead: the fx-rates service hangs (never answers). Quotes (GET /quote)
 * ride in their own load generator next to the charges; with a bulkhead the
 * hung fx calls can only hold their own few slots, and the quote answers
 * from the last known rate (stale), so /charge must not notice. The checks
 * compare the charges' goodput and p99 during the fault with the warm-up's.
 */
import type { Check } from '../../../report/types.js';
import { fmt, label, meanGoodput, phase, recoveryCheck } from '../checks.js';
import type { ScenarioDefinition, VariantRun } from '../definition.js';
import { slice } from '../../measure/timeline.js';
import { gatewayRun, pick, variantsFor } from './common.js';

function quoteSummary(run: VariantRun): string {
  const q = run.side?.classes.quote;
  if (!q) return `${label(run)} no quotes`;
  return `${label(run)} quotes ${q.goodput}/${q.offered} answered, p99 ${fmt(q.latency_ms.p99)} ms`;
}

export const bulkhead: ScenarioDefinition = {
  name: 'bulkhead',
  title: 'fx-rates hangs; charges must not notice',
  claim:
    'When the fx-rates service hangs, its bulkhead caps what it can hold and quotes fall back to the last known rate, while /charge keeps its goodput and latency.',
  plan(mode) {
    return {
      phases: [
        { name: 'warm-up', seconds: pick(mode, 3, 6) },
        { name: 'fault', seconds: pick(mode, 6, 12), fault: { fx: { hang: true }, text: 'fx-rates never answers' } },
        { name: 'recovery', seconds: pick(mode, 3, 6) },
      ],
      load: { rate: pick(mode, 150, 200), deadlineMs: 1000 },
      side: { cls: 'quote', rate: pick(mode, 100, 150), deadlineMs: 1000 },
      // The quick form compresses time: a 5 s cache would hide most of a 6 s hang.
      serviceEnv: pick<Record<string, string>>(mode, { FX_CACHE_TTL_MS: '1000' }, {}),
      variants: variantsFor(mode),
    };
  },
  checks({ phases, runs }): Check[] {
    const warm = phase(phases, 'warm-up');
    const fault = phase(phases, 'fault');
    const gw = gatewayRun(runs);
    if (!gw) return [];
    const tl = gw.result.timeline;
    const warmGood = meanGoodput(slice(tl, warm.start_s + 1, warm.end_s));
    const faultGood = meanGoodput(slice(tl, fault.start_s, fault.end_s));
    const warmP99 = gw.result.phases['warm-up']?.p99_ms ?? null;
    const faultP99 = gw.result.phases.fault?.p99_ms ?? null;
    const pts = slice(tl, fault.start_s, fault.end_s);
    const fxRejected = Math.round(pts.reduce((a, p) => a + (p.bulkhead_rejections_per_s ?? 0), 0));
    const fxStates =
      [...new Set(pts.map((p) => p.breaker_fx).filter((x) => x !== undefined))].join(' / ') || 'not scraped';
    return [
      {
        name: 'gateway: /charge goodput during the fx hang is >= 90 % of the warm-up',
        passed: warmGood > 0 && faultGood >= 0.9 * warmGood,
        detail: `fault ${fmt(faultGood)}/s vs warm-up ${fmt(warmGood)}/s; ~${fxRejected} bulkhead rejections, fx breaker ${fxStates}; ${runs.map(quoteSummary).join('; ')}`,
      },
      {
        // A ratio with a floor: a 5 ms warm-up p99 doubled is still nothing a client notices.
        name: 'gateway: /charge p99 during the fx hang stays within 3x the warm-up (or 100 ms)',
        passed: warmP99 !== null && faultP99 !== null && faultP99 <= Math.max(3 * warmP99, 100),
        detail: `fault p99 ${fmt(faultP99)} ms vs warm-up ${fmt(warmP99)} ms`,
      },
      recoveryCheck(gw, phases, 0.8, 2),
    ];
  },
};
