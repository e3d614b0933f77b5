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
import type { AdmissionStats } from '../resilience/shedder.js';
import { Exposition } from './prometheus.js';
import { ROUTE_LABELS, STAGES, STATUS_CLASSES, STATUSES, type Telemetry } from './telemetry.js';
import type { RecentWindow } from './window.js';

export interface GatewayMetricSources {
  build: { version: string; git_commit: string; node: string; uws: string };
  telemetry: Telemetry;
  protection: Protection;
  window: RecentWindow;
  admission: () => AdmissionStats;
  pool: () => { threads: number; queueSize: number };
  drain: () => { draining: boolean; elapsedSeconds: number; abandoned: number };
  /** The last backlog query's answer (refreshed every few seconds by a worker); null before the first one succeeded. */
  backlog?: () => BacklogStats | null;
  /** The front thread's door: open requests against their cap, refusals, body timeouts. */
  front?: () => {
    openRequests: number;
    maxOpenRequests: number;
    uploading: number;
    capRefusals: number;
    /** Requests whose framing was in doubt (src/http/framing.ts): closed without an answer. */
    framingRefusals: number;
    bodyTimeouts: number;
    /** MAX_REQUESTS_PER_ADDRESS (0 = off), the addresses with an open request, and the refusals it made. */
    maxRequestsPerAddress: number;
    openAddresses: number;
    addressCapRefusals: number;
  };
  nowEpochMs: () => number;
}

const BREAKER_STATES: readonly BreakerState[] = ['closed', 'open', 'half_open', 'forced_open'];

export function renderGatewayMetrics(sources: GatewayMetricSources): string {
  const out = new Exposition();
  const telemetry = sources.telemetry;
  const protection = sources.protection;

  out
    .family('bulwark_build_info', 'gauge', 'Build of the running gateway (value 1).')
    .sample('bulwark_build_info', 1, sources.build);

  // Every route and known code from the first scrape on, at 0 until it
  // happens: rate() and absent-series alerts need the series to exist.
  out.family('bulwark_http_requests_total', 'counter', 'HTTP requests answered, by route and status code.');
  for (const route of ROUTE_LABELS) {
    for (const code of [...STATUSES, 'other'] as const)
      out.sample('bulwark_http_requests_total', telemetry.requests.get(`${route}|${code}`), {
        route,
        code: String(code),
      });
  }
  out.family('bulwark_http_client_aborts_total', 'counter', 'Requests whose client went away before the answer.');
  for (const route of ROUTE_LABELS)
    out.sample('bulwark_http_client_aborts_total', telemetry.requests.get(`${route}|aborted`), { route });

  out.family(
    'bulwark_http_request_duration_seconds',
    'histogram',
    'Time from request arrival to answer, by route and status class.',
  );
  for (const route of ROUTE_LABELS) {
    for (const cls of STATUS_CLASSES) {
      const h = telemetry.http.get(`${route}:${cls}`)!;
      out.histogram('bulwark_http_request_duration_seconds', h.snapshot(), { route, status_class: cls });
    }
  }
  out.family(
    'bulwark_http_request_duration_recent_seconds',
    'summary',
    'Request duration quantiles over the last 10 s (a sliding window), all statuses, by route.',
  );
  for (const route of ['/charge', '/charges/:key', '/quote'] as const) {
    const merged = new Int32Array(telemetry.http.get(`${route}:2xx`)!.counts.length);
    for (const cls of STATUS_CLASSES) {
      const key = `${route}:${cls}`;
      const recent = sources.window.recent(key, telemetry.http.get(key)!);
      for (let i = 0; i < merged.length; i++) merged[i] = merged[i]! + recent[i]!;
    }
    out.summary('bulwark_http_request_duration_recent_seconds', merged, { route });
  }

  out.family(
    'bulwark_stage_duration_seconds',
    'histogram',
    'Duration of charge-path stages in the workers (queue wait, claim, provider attempt, record, acquire waits).',
  );
  for (const stage of STAGES)
    out.histogram('bulwark_stage_duration_seconds', telemetry.stages.get(stage)!.snapshot(), { stage });

  const a = sources.admission();
  out.family('bulwark_admission_limit', 'gauge', 'Current admission concurrency limit (absent when off).');
  if (a.limit !== null) out.sample('bulwark_admission_limit', a.limit);
  out
    .family('bulwark_admission_in_flight', 'gauge', 'Admitted requests in flight.')
    .sample('bulwark_admission_in_flight', a.inFlight);
  out.family('bulwark_shed_total', 'counter', 'Requests shed on admission, by reason.');
  for (const [reason, n] of Object.entries(a.shed)) out.sample('bulwark_shed_total', n, { reason });
  out
    .family(
      'bulwark_event_loop_delay_seconds',
      'gauge',
      'Front-thread event-loop delay, p99 of the last 100 ms: the admission signal (nodejs_eventloop_lag_* cover the whole scrape interval).',
    )
    .sample('bulwark_event_loop_delay_seconds', a.loopDelayMs / 1000);
  out
    .family(
      'bulwark_event_loop_utilization_ratio',
      'gauge',
      'Front-thread event-loop utilization over the last 100 ms.',
    )
    .sample('bulwark_event_loop_utilization_ratio', a.loopUtilization);

  const f = sources.front?.();
  if (f) {
    out
      .family(
        'bulwark_http_open_requests',
        'gauge',
        'Requests open on the front thread (headers received, not yet answered), uploads included.',
      )
      .sample('bulwark_http_open_requests', f.openRequests);
    out
      .family(
        'bulwark_http_open_requests_limit',
        'gauge',
        'MAX_CONNECTIONS: open requests beyond it get 503 and a close.',
      )
      .sample('bulwark_http_open_requests_limit', f.maxOpenRequests);
    out
      .family(
        'bulwark_http_uploading_requests',
        'gauge',
        'Requests whose body is still arriving (they hold no admission slot).',
      )
      .sample('bulwark_http_uploading_requests', f.uploading);
    out
      .family(
        'bulwark_http_connection_cap_refusals_total',
        'counter',
        'Requests refused because MAX_CONNECTIONS requests were open.',
      )
      .sample('bulwark_http_connection_cap_refusals_total', f.capRefusals);
    out
      .family(
        'bulwark_http_framing_refusals_total',
        'counter',
        'Requests whose framing a proxy could read otherwise (Content-Lengths that differ or are not digits, a Transfer-Encoding but one chunked, a length and a coding together): closed without an answer.',
      )
      .sample('bulwark_http_framing_refusals_total', f.framingRefusals);
    out
      .family(
        'bulwark_http_body_timeouts_total',
        'counter',
        'Requests answered 408 because their body did not arrive within BODY_TIMEOUT_MS.',
      )
      .sample('bulwark_http_body_timeouts_total', f.bodyTimeouts);
    out
      .family(
        'bulwark_http_requests_per_address_limit',
        'gauge',
        'MAX_REQUESTS_PER_ADDRESS: open requests one client address may hold (0 = no cap).',
      )
      .sample('bulwark_http_requests_per_address_limit', f.maxRequestsPerAddress);
    out
      .family(
        'bulwark_http_open_request_addresses',
        'gauge',
        'Client addresses with an open request (counted only while MAX_REQUESTS_PER_ADDRESS is on).',
      )
      .sample('bulwark_http_open_request_addresses', f.openAddresses);
    out
      .family(
        'bulwark_http_address_cap_refusals_total',
        'counter',
        'Requests refused because their address had MAX_REQUESTS_PER_ADDRESS requests open.',
      )
      .sample('bulwark_http_address_cap_refusals_total', f.addressCapRefusals);
  }

  const pool = sources.pool();
  out.family('bulwark_worker_threads', 'gauge', 'Worker threads alive.').sample('bulwark_worker_threads', pool.threads);
  out
    .family('bulwark_worker_queue_depth', 'gauge', 'Tasks waiting for a worker.')
    .sample('bulwark_worker_queue_depth', pool.queueSize);
  out
    .family(
      'bulwark_worker_queue_wait_expected_seconds',
      'gauge',
      'Expected wait before a dispatched task starts (what admission compares with deadlines).',
    )
    .sample('bulwark_worker_queue_wait_expected_seconds', a.expectedQueueWaitMs / 1000);

  const db = protection.bulkheads.db!.stats();
  out
    .family('bulwark_db_pool_in_use', 'gauge', 'DB pool slots in use, all workers.')
    .sample('bulwark_db_pool_in_use', db.inUse);
  out.family('bulwark_db_pool_limit', 'gauge', 'DB pool slots in total.').sample('bulwark_db_pool_limit', db.limit);
  out
    .family('bulwark_db_pool_waiting', 'gauge', 'Callers waiting for a DB slot.')
    .sample('bulwark_db_pool_waiting', db.waiting);
  out
    .family('bulwark_db_pool_acquire_timeouts_total', 'counter', 'DB slot waits that ran out of time.')
    .sample('bulwark_db_pool_acquire_timeouts_total', db.rejectedTimeout + db.rejectedFull);

  out.family('bulwark_bulkhead_in_use', 'gauge', 'Bulkhead slots in use, by downstream.');
  out.family('bulwark_bulkhead_limit', 'gauge', 'Bulkhead size, by downstream.');
  out.family('bulwark_bulkhead_waiting', 'gauge', 'Callers waiting for a bulkhead slot, by downstream.');
  out.family(
    'bulwark_bulkhead_rejections_total',
    'counter',
    'Calls refused by a bulkhead, by downstream and reason (full, timeout).',
  );
  for (const d of ['provider', 'fx'] as const) {
    const b = protection.bulkheads[d]?.stats();
    if (!b) continue;
    out.sample('bulwark_bulkhead_in_use', b.inUse, { downstream: d });
    out.sample('bulwark_bulkhead_limit', b.limit, { downstream: d });
    out.sample('bulwark_bulkhead_waiting', b.waiting, { downstream: d });
    out.sample('bulwark_bulkhead_rejections_total', b.rejectedFull, { downstream: d, reason: 'full' });
    out.sample('bulwark_bulkhead_rejections_total', b.rejectedTimeout, { downstream: d, reason: 'timeout' });
  }

  out.family('bulwark_breaker_state', 'gauge', 'Circuit breaker state (1 for the current state), by downstream.');
  out.family('bulwark_breaker_transitions_total', 'counter', 'Circuit breaker state changes, by downstream.');
  out.family('bulwark_breaker_rejections_total', 'counter', 'Calls refused by an open breaker, by downstream.');
  out.family('bulwark_breaker_failure_ratio', 'gauge', 'Failure share in the breaker window, by downstream.');
  out.family('bulwark_breaker_slow_call_ratio', 'gauge', 'Slow-call share in the breaker window, by downstream.');
  const now = sources.nowEpochMs();
  for (const d of ['provider', 'fx'] as const) {
    const b = protection.breakers[d]?.stats(now);
    if (!b) continue;
    for (const st of BREAKER_STATES)
      out.sample('bulwark_breaker_state', b.state === st ? 1 : 0, { downstream: d, state: st });
    out.sample('bulwark_breaker_transitions_total', b.transitions, { downstream: d });
    out.sample('bulwark_breaker_rejections_total', b.rejections, { downstream: d });
    out.sample('bulwark_breaker_failure_ratio', b.failureRate, { downstream: d });
    out.sample('bulwark_breaker_slow_call_ratio', b.slowCallRate, { downstream: d });
  }

  const e = protection.events;
  out.family('bulwark_retries_total', 'counter', 'Provider retries made, by the reason of the failed attempt.');
  for (const reason of ['status_5xx', 'timeout', 'connection', 'other'] as const)
    out.sample('bulwark_retries_total', e.get(`retry_provider_${reason}`), { downstream: 'provider', reason });
  out.family(
    'bulwark_retries_suppressed_total',
    'counter',
    'Retryable failures not retried, by reason (budget, deadline, attempts, breaker_open).',
  );
  for (const reason of ['budget', 'deadline', 'attempts', 'breaker_open'] as const)
    out.sample('bulwark_retries_suppressed_total', e.get(`retry_suppressed_${reason}`), {
      downstream: 'provider',
      reason,
    });
  if (protection.budget)
    out
      .family('bulwark_retry_budget_tokens', 'gauge', 'Retries the shared budget would allow now.')
      .sample('bulwark_retry_budget_tokens', protection.budget.stats().tokens);
  out.family('bulwark_timeouts_total', 'counter', 'Requests that ran out of time, by the stage they were in.');
  for (const stage of ['claim', 'provider', 'fx'] as const)
    out.sample('bulwark_timeouts_total', e.get(`timeout_${stage}`), { stage });
  out.family(
    'bulwark_reconciler_charges_total',
    'counter',
    'Charges the reconciler handled, by outcome (deferred = still unknown, retried later; needs_attention = still unknown after the last try, left to an operator).',
  );
  for (const outcome of ['succeeded', 'declined', 'failed', 'deferred', 'needs_attention'] as const)
    out.sample('bulwark_reconciler_charges_total', e.get(`reconcile_${outcome}`), { outcome });
  out.family(
    'bulwark_charge_errors_total',
    'counter',
    'Unexpected errors in the charge path, the reconciler and the reaper, by stage (each also logged; deadlines and DB-slot timeouts are counted elsewhere).',
  );
  for (const stage of ERROR_STAGES) out.sample('bulwark_charge_errors_total', e.get(`error_${stage}`), { stage });
  // Postgres-wide facts (every replica reports the same rows): absent until the first query answered, then the last answer.
  const backlog = sources.backlog?.();
  if (backlog) {
    out
      .family(
        'bulwark_oldest_started_charge_age_seconds',
        'gauge',
        'Age of the oldest charge still started (outcome not yet final), 0 when there is none.',
      )
      .sample('bulwark_oldest_started_charge_age_seconds', backlog.oldestStartedAgeSeconds);
    out
      .family(
        'bulwark_charges_needing_attention',
        'gauge',
        'Charges the reconciler gave up on (outcome unknown after its last try): an operator must resolve them.',
      )
      .sample('bulwark_charges_needing_attention', backlog.needsAttention);
  }
  out.family(
    'bulwark_db_group_commit_statements_total',
    'counter',
    'Statements sent by group commit, by charge phase (follow-up reads included; 0 with GROUP_COMMIT off).',
  );
  out.family(
    'bulwark_db_group_commit_requests_total',
    'counter',
    'Charge requests carried by group-commit batches, by phase; divided by statements, the requests per statement.',
  );
  for (const phase of ['claim', 'record'] as const) {
    out.sample('bulwark_db_group_commit_statements_total', e.get(`group_commit_${phase}_statements`), { phase });
    out.sample('bulwark_db_group_commit_requests_total', e.get(`group_commit_${phase}_requests`), { phase });
  }

  const d = sources.drain();
  out
    .family('bulwark_draining', 'gauge', '1 while a graceful shutdown drains.')
    .sample('bulwark_draining', d.draining ? 1 : 0);
  out
    .family('bulwark_drain_duration_seconds', 'gauge', 'Time the current drain has taken so far (0 when not draining).')
    .sample('bulwark_drain_duration_seconds', d.elapsedSeconds);
  out
    .family('bulwark_drain_abandoned_charges', 'gauge', 'Charges left to the reconciler at the end of the last drain.')
    .sample('bulwark_drain_abandoned_charges', d.abandoned);
  // Process and Node.js families (CPU, memory, start time, heap, GC, event-loop lag) come from prom-client: process-metrics.ts.
  return out.text();
}
