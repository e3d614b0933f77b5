/**
 * Why charges were not SLO-good, in the report's own numbers: what each
 * client was finally told (5xx, no answer, a connection error, or an answer
 * over the latency threshold, and whether that slow answer came on a retry),
 * and, for a service with /metrics, what it refused along the way. The
 * verdict quotes it next to a loss, so "where bulwark loses" says what the
 * lost charges met, not only by how much. Pure: outcomes and scrapes in.
 */
import { sloGood } from '../../load/outcomes.js';
import { SHED_REASONS, type ShedReason } from '../../../resilience/shedder.js';
import type { ChargeOutcome } from '../../load/types.js';
import type { NotGood } from '../../report/types.js';
import type { ScrapePoint } from './scrape.js';

export function notGoodOf(
  outcomes: readonly ChargeOutcome[],
  thresholdMs: number,
  scrapes: readonly ScrapePoint[],
): NotGood {
  const out: NotGood = { threshold_ms: thresholdMs, failed_5xx: 0, timeout: 0, error: 0, slow: 0, slow_after_retry: 0 };
  for (const o of outcomes) {
    if (sloGood(o.status, o.latency_ms, thresholdMs)) continue;
    if (o.status === 'timeout') out.timeout++;
    else if (o.status === 'error') out.error++;
    else if (o.status >= 500) out.failed_5xx++;
    else {
      out.slow++;
      if (o.attempts > 1) out.slow_after_retry++;
    }
  }
  if (scrapes.length > 0) {
    // Deltas, not the last value: a restarted process starts its counters
    // again, and the first scrape's totals hold the prewarm (what the run
    // shed before that first scrape, about a second in, is left out with it).
    const sum = (k: keyof ScrapePoint['deltas']) => scrapes.reduce((a, s) => a + s.deltas[k], 0);
    out.shed = Object.fromEntries(SHED_REASONS.map((r) => [r, sum(`shed_${r}`)])) as Record<ShedReason, number>;
    out.bulkhead_refusals = sum('bulkhead_rejections_provider');
  }
  return out;
}
