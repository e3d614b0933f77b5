/**
 * RED over the recent window, for the admin state and dashboard: rate, error
 * share (5xx, which includes shed and breaker refusals) and p50/p99 per route.
 */
import { summarize } from './histogram.js';
import { STATUS_CLASSES, type Telemetry } from './telemetry.js';
import type { RecentWindow } from './window.js';

export interface RecentRed {
  rate_per_second: number;
  error_ratio: number;
  p50_seconds: number;
  p99_seconds: number;
}

export function recentRed(
  telemetry: Telemetry,
  window: RecentWindow,
  routes: readonly string[],
): Record<string, RecentRed> {
  const span = window.spanSeconds();
  const out: Record<string, RecentRed> = {};
  for (const route of routes) {
    let merged: Int32Array | undefined;
    let errors = 0;
    for (const cls of STATUS_CLASSES) {
      const key = `${route}:${cls}`;
      const recent = window.recent(key, telemetry.http.get(key)!);
      if (!merged) merged = new Int32Array(recent.length);
      let n = 0;
      for (let i = 0; i < recent.length; i++) {
        merged[i] = merged[i]! + recent[i]!;
        n += recent[i]!;
      }
      if (cls === '5xx') errors = n;
    }
    const summary = summarize(merged!);
    out[route] = {
      rate_per_second: summary.count / span,
      error_ratio: summary.count === 0 ? 0 : errors / summary.count,
      p50_seconds: summary.quantiles['0.5'] ?? 0,
      p99_seconds: summary.quantiles['0.99'] ?? 0,
    };
  }
  return out;
}
