/**
 * Shedding is logged as a summary at most every SHED_SUMMARY_INTERVAL_MS,
 * never per request: under overload a line per shed request would add
 * work exactly when there is least room for it.
 */
import type { Logger } from '../runtime/logger.js';
import type { Admission } from './admission.js';

export const SHED_SUMMARY_INTERVAL_MS = 5000;

/** A job for every SHED_SUMMARY_INTERVAL_MS: one warn line with what was shed since its last run, if anything was. */
export function shedSummary(admission: Admission, log: Logger): () => Promise<void> {
  let last = { ...admission.shed };
  return async () => {
    const now = { ...admission.shed };
    const delta = Object.fromEntries(Object.entries(now).map(([k, v]) => [k, v - last[k as keyof typeof now]]));
    last = now;
    if (Object.values(delta).some((v) => v > 0))
      log.warn(
        {
          shed: delta,
          window_seconds: SHED_SUMMARY_INTERVAL_MS / 1000,
          limit: admission.limit.current,
          in_flight: admission.inFlight,
        },
        'requests shed',
      );
  };
}
