/**
 * /metrics for the gateway: RED per route and status, duration histograms,
 * and every saturation signal (admission, event loop, worker queue, DB pool,
 * bulkheads, breakers, retries, timeouts, drain, reconciler). Mechanisms hand
 * over plain stats snapshots; this file alone turns them into Prometheus
 * names (bulwark_ prefix, base units, _total for counters).
 */
import type { BacklogStats } from '../charge/service.js';
import { ERROR_STAGES } from '../charge/error-report.js';
import type { BreakerState } from '../resilience/breaker.js';
import type { Protection } from '../resilience/protection.js';
import type { ShedReason } from '../resilience/shedder.js';
import { Exposition } from './prometheus.js';
import { ROUTE_LABELS, STAGES, STATUS_CLASSES, STATUSES, type Telemetry } from './telemetry.js';
import type { RecentWindow } from './window.js';

export interface GatewayMetricSources {
  build: { version: string; git_commit: string; node: string; uws: string };
  telemetry: Telemetry;
  protection: Protection;
  window: RecentWindow;
  admission: () => {
    limit: number | null;
    inFlight: number;
    shed: Record<ShedReason, number>;
    expectedQueueWaitMs: number;
    loopDelayMs: number;
    loopUtilization: number;
  };
  pool: () => { threads: number; queueSize: number };
  drain: () => { draining: boolean; elapsedMs: number; abandoned: number };
  /** The last backlog query's answer (refreshed every few seconds by a worker); null before the first one succeeded. */
  backlog?: () => BacklogStats | null;
  /** The front thread's door: open requests against their cap, refusals, body timeouts. */
  front?: () => {
    openRequests: number;
    maxOpenRequests: number;
    uploading: number;
    capRefusals: number;
    bodyTimeouts: number;
    /** MAX_REQUESTS_PER_ADDRESS (0 = off), the addresses with an open request, and the refusals it made. */
    maxRequestsPerAddress: number;
    openAddresses: number;
    addressCapRefusals: number;
  };
  nowEpochMs: () => number;
}

const BREAKER_STATES: readonly BreakerState[] = ['closed', 'open', 'half_open', 'forced_open'];

export function renderGatewayMetrics(s: GatewayMetricSources): string {
  const x = new Exposition();
  const t = s.telemetry;
  const p = s.protection;

  x.family('bulwark_build_info', 'gauge', 'Build of the running gateway (value 1).').sample(
    'bulwark_build_info',
    1,
    s.build,
  );

  // Every route and known code from the first scrape on, at 0 until it
  // happens: rate() and absent-series alerts need the series to exist.
  x.family('bulwark_http_requests_total', 'counter', 'HTTP requests answered, by route and status code.');
  for (const route of ROUTE_LABELS) {
    for (const code of [...STATUSES, 'other'] as const)
      x.sample('bulwark_http_requests_total', t.requests.get(`${route}|${code}`), { route, code: String(code) });
  }
  x.family('bulwark_http_client_aborts_total', 'counter', 'Requests whose client went away before the answer.');
  for (const route of ROUTE_LABELS)
    x.sample('bulwark_http_client_aborts_total', t.requests.get(`${route}|aborted`), { route });

  x.family(
    'bulwark_http_request_duration_seconds',
    'histogram',
    'Time from request arrival to answer, by route and status class.',
  );
  for (const route of ROUTE_LABELS) {
    for (const cls of STATUS_CLASSES) {
      const h = t.http.get(`${route}:${cls}`)!;
      x.histogram('bulwark_http_request_duration_seconds', h.snapshot(), { route, status_class: cls });
    }
  }
  x.family(
    'bulwark_http_request_duration_recent_seconds',
    'summary',
    'Request duration quantiles over the last 10 s (a sliding window), all statuses, by route.',
  );
  for (const route of ['/charge', '/charges/:key', '/quote'] as const) {
    const merged = new Int32Array(t.http.get(`${route}:2xx`)!.counts.length);
    for (const cls of STATUS_CLASSES) {
      const key = `${route}:${cls}`;
      const recent = s.window.recent(key, t.http.get(key)!);
      for (let i = 0; i < merged.length; i++) merged[i] = merged[i]! + recent[i]!;
    }
    x.summary('bulwark_http_request_duration_recent_seconds', merged, { route });
  }

  x.family(
    'bulwark_stage_duration_seconds',
    'histogram',
    'Duration of charge-path stages in the workers (queue wait, claim, provider attempt, record, acquire waits).',
  );
  for (const stage of STAGES) x.histogram('bulwark_stage_duration_seconds', t.stages.get(stage)!.snapshot(), { stage });

  const a = s.admission();
  x.family('bulwark_admission_limit', 'gauge', 'Current admission concurrency limit (absent when off).');
  if (a.limit !== null) x.sample('bulwark_admission_limit', a.limit);
  x.family('bulwark_admission_in_flight', 'gauge', 'Admitted requests in flight.').sample(
    'bulwark_admission_in_flight',
    a.inFlight,
  );
  x.family('bulwark_shed_total', 'counter', 'Requests shed on admission, by reason.');
  for (const [reason, n] of Object.entries(a.shed)) x.sample('bulwark_shed_total', n, { reason });
  x.family(
    'bulwark_event_loop_delay_seconds',
    'gauge',
    'Front-thread event-loop delay, p99 of the last 100 ms: the admission signal (nodejs_eventloop_lag_* cover the whole scrape interval).',
  ).sample('bulwark_event_loop_delay_seconds', a.loopDelayMs / 1000);
  x.family(
    'bulwark_event_loop_utilization_ratio',
    'gauge',
    'Front-thread event-loop utilization over the last 100 ms.',
  ).sample('bulwark_event_loop_utilization_ratio', a.loopUtilization);

  const f = s.front?.();
  if (f) {
    x.family(
      'bulwark_http_open_requests',
      'gauge',
      'Requests open on the front thread (headers received, not yet answered), uploads included.',
    ).sample('bulwark_http_open_requests', f.openRequests);
    x.family(
      'bulwark_http_open_requests_limit',
      'gauge',
      'MAX_CONNECTIONS: open requests beyond it get 503 and a close.',
    ).sample('bulwark_http_open_requests_limit', f.maxOpenRequests);
    x.family(
      'bulwark_http_uploading_requests',
      'gauge',
      'Requests whose body is still arriving (they hold no admission slot).',
    ).sample('bulwark_http_uploading_requests', f.uploading);
    x.family(
      'bulwark_http_connection_cap_refusals_total',
      'counter',
      'Requests refused because MAX_CONNECTIONS requests were open.',
    ).sample('bulwark_http_connection_cap_refusals_total', f.capRefusals);
    x.family(
      'bulwark_http_body_timeouts_total',
      'counter',
      'Requests answered 408 because their body did not arrive within BODY_TIMEOUT_MS.',
    ).sample('bulwark_http_body_timeouts_total', f.bodyTimeouts);
    x.family(
      'bulwark_http_requests_per_address_limit',
      'gauge',
      'MAX_REQUESTS_PER_ADDRESS: open requests one client address may hold (0 = no cap).',
    ).sample('bulwark_http_requests_per_address_limit', f.maxRequestsPerAddress);
    x.family(
      'bulwark_http_open_request_addresses',
      'gauge',
      'Client addresses with an open request (counted only while MAX_REQUESTS_PER_ADDRESS is on).',
    ).sample('bulwark_http_open_request_addresses', f.openAddresses);
    x.family(
      'bulwark_http_address_cap_refusals_total',
      'counter',
      'Requests refused because their address had MAX_REQUESTS_PER_ADDRESS requests open.',
    ).sample('bulwark_http_address_cap_refusals_total', f.addressCapRefusals);
  }

  const pool = s.pool();
  x.family('bulwark_worker_threads', 'gauge', 'Worker threads alive.').sample('bulwark_worker_threads', pool.threads);
  x.family('bulwark_worker_queue_depth', 'gauge', 'Tasks waiting for a worker.').sample(
    'bulwark_worker_queue_depth',
    pool.queueSize,
  );
  x.family(
    'bulwark_worker_queue_wait_expected_seconds',
    'gauge',
    'Expected wait before a dispatched task starts (what admission compares with deadlines).',
  ).sample('bulwark_worker_queue_wait_expected_seconds', a.expectedQueueWaitMs / 1000);

  const db = p.bulkheads.db!.stats();
  x.family('bulwark_db_pool_in_use', 'gauge', 'DB pool slots in use, all workers.').sample(
    'bulwark_db_pool_in_use',
    db.inUse,
  );
  x.family('bulwark_db_pool_limit', 'gauge', 'DB pool slots in total.').sample('bulwark_db_pool_limit', db.limit);
  x.family('bulwark_db_pool_waiting', 'gauge', 'Callers waiting for a DB slot.').sample(
    'bulwark_db_pool_waiting',
    db.waiting,
  );
  x.family('bulwark_db_pool_acquire_timeouts_total', 'counter', 'DB slot waits that ran out of time.').sample(
    'bulwark_db_pool_acquire_timeouts_total',
    db.rejectedTimeout + db.rejectedFull,
  );

  x.family('bulwark_bulkhead_in_use', 'gauge', 'Bulkhead slots in use, by downstream.');
  x.family('bulwark_bulkhead_limit', 'gauge', 'Bulkhead size, by downstream.');
  x.family('bulwark_bulkhead_waiting', 'gauge', 'Callers waiting for a bulkhead slot, by downstream.');
  x.family(
    'bulwark_bulkhead_rejections_total',
    'counter',
    'Calls refused by a bulkhead, by downstream and reason (full, timeout).',
  );
  for (const d of ['provider', 'fx'] as const) {
    const b = p.bulkheads[d]?.stats();
    if (!b) continue;
    x.sample('bulwark_bulkhead_in_use', b.inUse, { downstream: d });
    x.sample('bulwark_bulkhead_limit', b.limit, { downstream: d });
    x.sample('bulwark_bulkhead_waiting', b.waiting, { downstream: d });
    x.sample('bulwark_bulkhead_rejections_total', b.rejectedFull, { downstream: d, reason: 'full' });
    x.sample('bulwark_bulkhead_rejections_total', b.rejectedTimeout, { downstream: d, reason: 'timeout' });
  }

  x.family('bulwark_breaker_state', 'gauge', 'Circuit breaker state (1 for the current state), by downstream.');
  x.family('bulwark_breaker_transitions_total', 'counter', 'Circuit breaker state changes, by downstream.');
  x.family('bulwark_breaker_rejections_total', 'counter', 'Calls refused by an open breaker, by downstream.');
  x.family('bulwark_breaker_failure_ratio', 'gauge', 'Failure share in the breaker window, by downstream.');
  x.family('bulwark_breaker_slow_call_ratio', 'gauge', 'Slow-call share in the breaker window, by downstream.');
  const now = s.nowEpochMs();
  for (const d of ['provider', 'fx'] as const) {
    const b = p.breakers[d]?.stats(now);
    if (!b) continue;
    for (const st of BREAKER_STATES)
      x.sample('bulwark_breaker_state', b.state === st ? 1 : 0, { downstream: d, state: st });
    x.sample('bulwark_breaker_transitions_total', b.transitions, { downstream: d });
    x.sample('bulwark_breaker_rejections_total', b.rejections, { downstream: d });
    x.sample('bulwark_breaker_failure_ratio', b.failureRate, { downstream: d });
    x.sample('bulwark_breaker_slow_call_ratio', b.slowCallRate, { downstream: d });
  }

  const e = p.events;
  x.family('bulwark_retries_total', 'counter', 'Provider retries made, by the reason of the failed attempt.');
  for (const reason of ['status_5xx', 'timeout', 'connection', 'other'] as const)
    x.sample('bulwark_retries_total', e.get(`retry_provider_${reason}`), { downstream: 'provider', reason });
  x.family(
    'bulwark_retries_suppressed_total',
    'counter',
    'Retryable failures not retried, by reason (budget, deadline, attempts, breaker_open).',
  );
  for (const reason of ['budget', 'deadline', 'attempts', 'breaker_open'] as const)
    x.sample('bulwark_retries_suppressed_total', e.get(`retry_suppressed_${reason}`), {
      downstream: 'provider',
      reason,
    });
  if (p.budget)
    x.family('bulwark_retry_budget_tokens', 'gauge', 'Retries the shared budget would allow now.').sample(
      'bulwark_retry_budget_tokens',
      p.budget.stats().tokens,
    );
  x.family('bulwark_timeouts_total', 'counter', 'Requests that ran out of time, by the stage they were in.');
  for (const stage of ['claim', 'provider', 'fx'] as const)
    x.sample('bulwark_timeouts_total', e.get(`timeout_${stage}`), { stage });
  x.family(
    'bulwark_reconciler_charges_total',
    'counter',
    'Charges the reconciler handled, by outcome (deferred = still unknown, retried later; needs_attention = still unknown after the last try, left to an operator).',
  );
  for (const outcome of ['succeeded', 'declined', 'failed', 'deferred', 'needs_attention'] as const)
    x.sample('bulwark_reconciler_charges_total', e.get(`reconcile_${outcome}`), { outcome });
  x.family(
    'bulwark_charge_errors_total',
    'counter',
    'Unexpected errors in the charge path, the reconciler and the reaper, by stage (each also logged; deadlines and DB-slot timeouts are counted elsewhere).',
  );
  for (const stage of ERROR_STAGES) x.sample('bulwark_charge_errors_total', e.get(`error_${stage}`), { stage });
  // Postgres-wide facts (every replica reports the same rows): absent until the first query answered, then the last answer.
  const backlog = s.backlog?.();
  if (backlog) {
    x.family(
      'bulwark_oldest_started_charge_age_seconds',
      'gauge',
      'Age of the oldest charge still started (outcome not yet final), 0 when there is none.',
    ).sample('bulwark_oldest_started_charge_age_seconds', backlog.oldestStartedAgeSeconds);
    x.family(
      'bulwark_charges_needing_attention',
      'gauge',
      'Charges the reconciler gave up on (outcome unknown after its last try): an operator must resolve them.',
    ).sample('bulwark_charges_needing_attention', backlog.needsAttention);
  }
  x.family(
    'bulwark_db_group_commit_statements_total',
    'counter',
    'Statements sent by group commit, by charge phase (follow-up reads included; 0 with GROUP_COMMIT off).',
  );
  x.family(
    'bulwark_db_group_commit_requests_total',
    'counter',
    'Charge requests carried by group-commit batches, by phase; divided by statements, the requests per statement.',
  );
  for (const phase of ['claim', 'record'] as const) {
    x.sample('bulwark_db_group_commit_statements_total', e.get(`group_commit_${phase}_statements`), { phase });
    x.sample('bulwark_db_group_commit_requests_total', e.get(`group_commit_${phase}_requests`), { phase });
  }

  const d = s.drain();
  x.family('bulwark_draining', 'gauge', '1 while a graceful shutdown drains.').sample(
    'bulwark_draining',
    d.draining ? 1 : 0,
  );
  x.family(
    'bulwark_drain_duration_seconds',
    'gauge',
    'Time the current drain has taken so far (0 when not draining).',
  ).sample('bulwark_drain_duration_seconds', d.elapsedMs / 1000);
  x.family(
    'bulwark_drain_abandoned_charges',
    'gauge',
    'Charges left to the reconciler at the end of the last drain.',
  ).sample('bulwark_drain_abandoned_charges', d.abandoned);
  // Process and Node.js families (CPU, memory, start time, heap, GC, event-loop lag) come from prom-client: process-metrics.ts.
  return x.text();
}
