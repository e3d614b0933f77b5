/**
 * A variant's measurements → its report row and the extras its checks read:
 * the timeline (load seconds + scrapes), phase and run totals, the SLO burn,
 * events (logged breaker transitions, scraped ones no log explains, deploys)
 * and the deploys' timings. Pure: no process, no clock.
 */
import { DEFAULT_SLO, computeBurn } from '../../../slo/index.js';
import type { LoadResult } from '../../load/types.js';
import {
  VARIANT_LABELS,
  type Audit,
  type Phase,
  type RunEvent,
  type VariantName,
  type VariantResult,
} from '../../report/types.js';
import type { LogLine } from '../run/child.js';
import type { ScenarioPlan, VariantRun } from '../plan/definition.js';
import { breakerEvents, scrapedBreakerEvents } from './events.js';
import { notGoodOf } from './not-good.js';
import type { MemoryPoint } from './proc-stats.js';
import type { ScrapePoint } from './scrape.js';
import type { Drain } from '../run/service.js';
import { buildTimeline, latencyByStatus, phaseTotals, round, runTotals } from './timeline.js';

export interface Measurements {
  variant: VariantName;
  plan: ScenarioPlan;
  phases: readonly Phase[];
  main: LoadResult;
  side?: LoadResult;
  scrapes: readonly ScrapePoint[];
  /** Resident memory of the service's processes, sampled every second. */
  memory: readonly MemoryPoint[];
  /** The log lines of every process the variant ran. */
  logs: readonly (readonly LogLine[])[];
  /** Epoch ms at which the load started (t = 0 of the run). */
  epoch0: number;
  deployEvents: readonly RunEvent[];
  drains: readonly Drain[];
  audit: Audit;
  settled: boolean;
  graceMs: number;
  actions: VariantRun['actions'];
}

export function variantRun(m: Measurements): VariantRun {
  const { main, side } = m;
  const timeline = buildTimeline(
    main.seconds,
    m.scrapes,
    m.plan.side?.cls === 'read' ? side?.seconds : undefined,
    m.memory,
    { outcomes: main.outcomes, thresholdMs: main.slo.latency_threshold_ms },
  );
  const burn = computeBurn(
    { total: main.slo.total, good: main.slo.good, durationSeconds: Math.max(0.001, main.slo.duration_seconds) },
    DEFAULT_SLO,
  );
  const logged = m.logs.flatMap((lines) => breakerEvents(lines, m.epoch0));
  const actionEvents = Object.values(m.actions).flatMap((a) => a.events);
  const events = [...logged, ...scrapedBreakerEvents(m.scrapes, logged), ...m.deployEvents, ...actionEvents].sort(
    (a, b) => a.t - b.t,
  );
  const result: VariantResult = {
    variant: m.variant,
    label: VARIANT_LABELS[m.variant],
    timeline,
    phases: phaseTotals(m.phases, timeline, main.seconds, main.outcomes),
    totals: runTotals(main, timeline),
    audit: m.audit,
    slo: {
      total: burn.total,
      good: burn.good,
      error_ratio: round(burn.errorRatio, 6),
      burn_rate: round(burn.burnRate, 3),
    },
    not_good: notGoodOf(main.outcomes, main.slo.latency_threshold_ms, m.scrapes),
    events,
    ...(m.drains.length > 0
      ? { drains: m.drains.map((d) => ({ duration_s: d.duration_s, abandoned: d.abandoned })) }
      : {}),
    behind_schedule: main.behind_schedule || (side?.behind_schedule ?? false),
  };
  return {
    result,
    load: withoutOutcomes(main),
    ...(side ? { side: withoutOutcomes(side) } : {}),
    scrapes: m.scrapes,
    restarts: m.drains.map((d) => ({
      signal_to_drain_s: d.startedAt === null ? null : round((d.startedAt - d.signalledAt) / 1000),
      signal_to_exit_s: round((d.exitedAt - d.signalledAt) / 1000),
      signal_to_ready_s: d.readyAt === null ? null : round((d.readyAt - d.signalledAt) / 1000),
    })),
    connectionErrors: main.totals.attempt_statuses.error ?? 0,
    settled: m.settled,
    graceMs: m.graceMs,
    byStatus: latencyByStatus(m.phases, main.outcomes),
    actions: m.actions,
  };
}

/** The deploy events of one restart, on the run clock. */
export function deployEventsOf(d: Drain, epoch0: number): RunEvent[] {
  const at = (ms: number) => round((ms - epoch0) / 1000);
  const events: RunEvent[] = [
    { t: at(d.signalledAt), what: 'SIGTERM (deploy)' },
    {
      t: at(d.finishedAt ?? d.exitedAt),
      what: `drain finished in ${Number.isFinite(d.duration_s) ? d.duration_s.toFixed(2) : '?'} s`,
    },
  ];
  if (d.readyAt !== null) events.push({ t: at(d.readyAt), what: 'restarted' });
  return events;
}

function withoutOutcomes(r: LoadResult): Omit<LoadResult, 'outcomes'> {
  const { outcomes: _outcomes, ...rest } = r;
  return rest;
}
