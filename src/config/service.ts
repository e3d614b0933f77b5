/**
 * The one defaults object for the charge services. The gateway and the Fastify
 * baseline share every setting that shapes the charge path (timeouts, pools,
 * retries, lifecycle), so comparisons are like for like; the gateway adds its
 * thread settings.
 */
import { bool, int, num, oneOf, secret, str, url, type HelpGroup, type Specs, type Values } from './options.js';

export const commonSpecs = {
  host: str({ flag: 'host', env: 'HOST', default: '0.0.0.0', doc: 'Address the HTTP listener binds.' }),
  databaseUrl: url({
    flag: 'database-url',
    env: 'DATABASE_URL',
    default: undefined,
    doc: 'Postgres URL. Unset: start an embedded Postgres under the data directory.',
  }),
  providerUrl: url({
    flag: 'provider-url',
    env: 'PROVIDER_URL',
    default: undefined,
    doc: 'Payment provider base URL. Unset (with FX_URL unset): spawn the simulator.',
  }),
  fxUrl: url({
    flag: 'fx-url',
    env: 'FX_URL',
    default: undefined,
    doc: 'fx-rates base URL. Unset (with PROVIDER_URL unset): spawn the simulator.',
  }),
  dataDir: str({
    flag: 'data-dir',
    env: 'BULWARK_DATA_DIR',
    default: '.bulwark',
    doc: 'Directory for the embedded Postgres data and other local state.',
  }),
  embeddedPgPort: int({
    flag: 'embedded-pg-port',
    env: 'EMBEDDED_PG_PORT',
    default: 54329,
    min: 0,
    max: 65535,
    doc: 'Port of the embedded Postgres (0 picks a free one).',
  }),
  dbPoolMax: int({
    flag: 'db-pool-max',
    env: 'DB_POOL_MAX',
    default: 16,
    min: 1,
    max: 1000,
    doc: 'Postgres connections in all. Gateway: each worker opens floor(DB_POOL_MAX / WORKERS), and one bound shared by all workers caps statements in flight at DB_POOL_MAX (DB_ACQUIRE_TIMEOUT_MS caps the wait); baseline: its pool size. Must be at least WORKERS.',
  }),
  dbConnectTimeoutMs: int({
    flag: 'db-connect-timeout-ms',
    env: 'DB_CONNECT_TIMEOUT_MS',
    default: 2000,
    min: 1,
    unit: 'ms',
    doc: 'Timeout to open a Postgres connection.',
  }),
  dbStartupTimeoutMs: int({
    flag: 'db-startup-timeout-ms',
    env: 'DB_STARTUP_TIMEOUT_MS',
    default: 30000,
    min: 1,
    unit: 'ms',
    doc: 'How long start-up waits for Postgres to answer (connection refused, crash recovery), retrying with capped exponential backoff and logging each wait; then start-up fails.',
  }),
  providerKeySecret: secret({
    flag: 'provider-key-secret',
    env: 'PROVIDER_KEY_SECRET',
    default: undefined,
    minLength: 16,
    doc: 'HMAC key of the provider idempotency keys (derived from the Idempotency-Key and the request fingerprint, so a retry reproduces them even if our row was lost). Required with NODE_ENV=production; the same on every replica; changing it changes the keys of new charges only. Unset outside production: a fixed development key.',
  }),
  dbStatementTimeoutMs: int({
    flag: 'db-statement-timeout-ms',
    env: 'DB_STATEMENT_TIMEOUT_MS',
    default: 5000,
    min: 1,
    unit: 'ms',
    doc: 'Postgres statement_timeout for every session.',
  }),
  requestTimeoutMs: int({
    flag: 'request-timeout-ms',
    env: 'REQUEST_TIMEOUT_MS',
    default: 1000,
    min: 1,
    unit: 'ms',
    doc: 'Deadline of a request without an X-Request-Timeout-Ms header.',
  }),
  maxRequestTimeoutMs: int({
    flag: 'max-request-timeout-ms',
    env: 'MAX_REQUEST_TIMEOUT_MS',
    default: 30000,
    min: 1,
    unit: 'ms',
    doc: 'Largest deadline a client may ask for with X-Request-Timeout-Ms.',
  }),
  minRequestTimeoutMs: int({
    flag: 'min-request-timeout-ms',
    env: 'MIN_REQUEST_TIMEOUT_MS',
    default: 50,
    min: 1,
    unit: 'ms',
    doc: 'Shortest deadline a client may ask for; shorter gets 400 deadline_too_short before anything is claimed or sent. 50 ms: a healthy charge takes 18-28 ms at the median and up to ~110 ms at p99 (docs/performance.md), so a shorter deadline mostly buys a 504 and a claim left to the reconciler.',
  }),
  bodyTimeoutMs: int({
    flag: 'body-timeout-ms',
    env: 'BODY_TIMEOUT_MS',
    default: 5000,
    min: 1,
    max: 60000,
    unit: 'ms',
    doc: "A request body not complete this long after its headers gets 408 request_timeout and the connection is closed. 5 s moves a 16 KiB body at 32 kbit/s; it stays under uWebSockets.js's own 10 s idle timeout, so the client gets an answer rather than a silent close.",
  }),
  maxConnections: int({
    flag: 'max-connections',
    env: 'MAX_CONNECTIONS',
    default: 10000,
    min: 1,
    max: 1_000_000,
    doc: "Cap on what clients can hold open. Gateway: requests open at once (headers received, not yet answered; uWebSockets.js v20.30 reports no connection events), more get 503 overloaded and a close. Baseline: Node's server.maxConnections (further connections are closed at accept).",
  }),
  maxRequestsPerAddress: int({
    flag: 'max-requests-per-address',
    env: 'MAX_REQUESTS_PER_ADDRESS',
    default: 0,
    min: 0,
    max: 1_000_000,
    doc: "Open requests (headers received, not yet answered) one client address may hold on /charge, /charges/:key and /quote; more get 503 overloaded and a close. 0 = off, the default: behind a load balancer or a NAT every client has the same address, so set it only where the server sees its clients' own addresses.",
  }),
  maxBodyBytes: int({
    flag: 'max-body-bytes',
    env: 'MAX_BODY_BYTES',
    default: 16384,
    min: 256,
    max: 1048576,
    unit: 'bytes',
    doc: 'Largest request body; larger gets 413 without being buffered.',
  }),
  leaseMs: int({
    flag: 'lease-ms',
    env: 'LEASE_MS',
    default: 60000,
    min: 100,
    unit: 'ms',
    doc: 'How long a claimed charge is owned before another request or the reconciler may take it over. Must exceed max-request-timeout-ms.',
  }),
  reconcileIntervalMs: int({
    flag: 'reconcile-interval-ms',
    env: 'RECONCILE_INTERVAL_MS',
    default: 1000,
    min: 10,
    unit: 'ms',
    doc: 'How often the reconciler looks for started charges whose lease expired.',
  }),
  reconcileBatch: int({
    flag: 'reconcile-batch',
    env: 'RECONCILE_BATCH',
    default: 50,
    min: 1,
    max: 10000,
    doc: 'Charges the reconciler takes per pass.',
  }),
  reconcileMaxAttempts: int({
    flag: 'reconcile-max-attempts',
    env: 'RECONCILE_MAX_ATTEMPTS',
    default: 20,
    min: 1,
    max: 1000,
    doc: 'Reconciler tries (provider calls whose outcome stayed unknown) before a charge is set to needs_attention: never charged again automatically, an operator resolves it (docs/runbook.md). Tries refused by an open breaker or a full bulkhead do not count.',
  }),
  reconcileBackoffBaseMs: int({
    flag: 'reconcile-backoff-base-ms',
    env: 'RECONCILE_BACKOFF_BASE_MS',
    default: 1000,
    min: 1,
    unit: 'ms',
    doc: 'Wait before a charge whose outcome is still unknown is tried again; doubles with every try (between half and all of it, jittered) up to RECONCILE_BACKOFF_MAX_MS.',
  }),
  reconcileBackoffMaxMs: int({
    flag: 'reconcile-backoff-max-ms',
    env: 'RECONCILE_BACKOFF_MAX_MS',
    default: 300000,
    min: 1,
    unit: 'ms',
    doc: 'Longest wait between two reconciler tries of one charge.',
  }),
  retentionHours: int({
    flag: 'retention-hours',
    env: 'RETENTION_HOURS',
    default: 72,
    min: 1,
    unit: 'h',
    doc: 'Completed idempotency keys are pruned after this long.',
  }),
  reapIntervalMs: int({
    flag: 'reap-interval-ms',
    env: 'REAP_INTERVAL_MS',
    default: 60000,
    min: 100,
    unit: 'ms',
    doc: 'How often the reaper prunes expired keys.',
  }),
  providerTimeoutMs: int({
    flag: 'provider-timeout-ms',
    env: 'PROVIDER_TIMEOUT_MS',
    default: 800,
    min: 1,
    unit: 'ms',
    doc: 'Timeout of one provider attempt (capped by the request deadline).',
  }),
  providerConnections: int({
    flag: 'provider-connections',
    env: 'PROVIDER_CONNECTIONS',
    default: 64,
    min: 1,
    max: 10000,
    doc: 'Keep-alive connections to the provider per process. Gateway: behind the provider bulkhead each worker may open min(this, PROVIDER_BULKHEAD), and the bulkhead bounds those in use at once; with the bulkheads off the workers split them.',
  }),
  providerMaxAttempts: int({
    flag: 'provider-max-attempts',
    env: 'PROVIDER_MAX_ATTEMPTS',
    default: 3,
    min: 1,
    max: 10,
    doc: 'Attempts per provider call, first one included.',
  }),
  retryBaseMs: int({
    flag: 'retry-base-ms',
    env: 'RETRY_BASE_MS',
    default: 25,
    min: 1,
    unit: 'ms',
    doc: 'Backoff base: attempt n waits up to base*2^(n-1) (full jitter).',
  }),
  retryMaxMs: int({ flag: 'retry-max-ms', env: 'RETRY_MAX_MS', default: 250, min: 1, unit: 'ms', doc: 'Backoff cap.' }),
  fxTimeoutMs: int({
    flag: 'fx-timeout-ms',
    env: 'FX_TIMEOUT_MS',
    default: 300,
    min: 1,
    unit: 'ms',
    doc: 'Timeout of one fx-rates call.',
  }),
  fxConnections: int({
    flag: 'fx-connections',
    env: 'FX_CONNECTIONS',
    default: 16,
    min: 1,
    max: 10000,
    doc: 'Keep-alive connections to fx-rates per process. Gateway: behind the fx bulkhead each worker may open min(this, FX_BULKHEAD), and the bulkhead bounds those in use at once; with the bulkheads off the workers split them.',
  }),
  fxCacheTtlMs: int({
    flag: 'fx-cache-ttl-ms',
    env: 'FX_CACHE_TTL_MS',
    default: 5000,
    min: 0,
    unit: 'ms',
    doc: 'How long a fetched rate is served fresh.',
  }),
  keepAliveMs: int({
    flag: 'keep-alive-ms',
    env: 'KEEP_ALIVE_MS',
    default: 30000,
    min: 1,
    unit: 'ms',
    doc: 'Idle keep-alive time of downstream connections.',
  }),
  shutdownGraceMs: int({
    flag: 'shutdown-grace-ms',
    env: 'SHUTDOWN_GRACE_MS',
    default: 10000,
    min: 0,
    unit: 'ms',
    doc: 'How long SIGTERM waits for in-flight charges before abandoning them to the reconciler.',
  }),
  logLevel: oneOf({
    flag: 'log-level',
    env: 'LOG_LEVEL',
    default: 'info',
    values: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const,
    doc: 'Log level of the JSON logs.',
  }),
  simProviderPort: int({
    flag: 'sim-provider-port',
    env: 'SIM_PROVIDER_PORT',
    default: 8091,
    min: 0,
    max: 65535,
    doc: 'Provider port of the spawned simulator (0 picks a free one).',
  }),
  simFxPort: int({
    flag: 'sim-fx-port',
    env: 'SIM_FX_PORT',
    default: 8092,
    min: 0,
    max: 65535,
    doc: 'fx-rates port of the spawned simulator (0 picks a free one).',
  }),
  simulatorSeed: int({
    flag: 'simulator-seed',
    env: 'SIM_SEED',
    default: 42,
    min: 0,
    doc: 'Seed of the spawned simulator.',
  }),
} satisfies Specs;

/**
 * The most worker threads `WORKERS=0` (the default) starts. One front thread
 * parses, admits and dispatches at ~45 µs a charge, a worker and its helper
 * threads execute one at ~145-150 µs: past about three workers' cores the
 * front thread is the bound, and more capacity comes from more processes
 * behind the balancer (docs/performance.md, "Scaling with cores").
 */
export const AUTO_WORKERS_MAX = 3;

/**
 * The worker threads for `WORKERS=0`: one per core left after the front
 * thread's, at least one, at most AUTO_WORKERS_MAX, and no more than
 * DB_POOL_MAX (each worker needs a connection of its own). On two cores
 * shared with Postgres, one worker measured faster and cheaper per charge
 * than two (docs/performance.md).
 */
export function autoWorkers(cores: number, dbPoolMax: number): number {
  return Math.max(1, Math.min(cores - 1, AUTO_WORKERS_MAX, dbPoolMax));
}

/** `c` with WORKERS resolved: a set value as it is, 0 as autoWorkers(cores, DB_POOL_MAX). */
export function withWorkerCount<C extends { workers: number; dbPoolMax: number }>(c: C, cores: number): C {
  return c.workers === 0 ? { ...c, workers: autoWorkers(cores, c.dbPoolMax) } : c;
}

export const gatewaySpecs = {
  port: int({
    flag: 'port',
    env: 'PORT',
    default: 8080,
    min: 0,
    max: 65535,
    doc: 'Gateway HTTP port (0 picks a free one).',
  }),
  adminHost: str({
    flag: 'admin-host',
    env: 'ADMIN_HOST',
    default: '127.0.0.1',
    doc: 'Address of the admin listener (loopback by default: it can open breakers).',
  }),
  adminPort: int({
    flag: 'admin-port',
    env: 'ADMIN_PORT',
    default: 9090,
    min: 0,
    max: 65535,
    doc: 'Admin port: /admin/state, /admin/breakers/:name/reset|open (0 picks a free one).',
  }),
  metricsPort: int({
    flag: 'metrics-port',
    env: 'METRICS_PORT',
    default: -1,
    min: -1,
    max: 65535,
    doc: 'Port of a listener that serves only GET /metrics, so the scrape stays off the public port (-1: /metrics on the HTTP port; 0 picks a free one).',
  }),
  metricsHost: str({
    flag: 'metrics-host',
    env: 'METRICS_HOST',
    default: '0.0.0.0',
    doc: 'Address of the metrics listener (with METRICS_PORT).',
  }),
  adminAllowedHosts: str({
    flag: 'admin-allowed-hosts',
    env: 'ADMIN_ALLOWED_HOSTS',
    default: '',
    doc: 'Extra Host values the admin port answers (comma-separated, host or host:port), besides localhost, 127.0.0.1 and [::1] with its port. Anything else gets 403 (DNS rebinding).',
  }),
  adminToken: str({
    flag: 'admin-token',
    env: 'ADMIN_TOKEN',
    default: '',
    doc: 'When set, breaker changes on the admin port need Authorization: Bearer <token>.',
  }),
  ...commonSpecs,
  mechanisms: bool({
    flag: 'mechanisms',
    env: 'MECHANISMS',
    default: true,
    doc: 'Master switch: false turns off shedding, the concurrency limit, breakers, bulkheads and the retry budget (the "before" runs).',
  }),
  shedding: bool({
    flag: 'shedding',
    env: 'SHEDDING',
    default: true,
    doc: 'Shed on event-loop delay/utilization and on deadlines the request would miss.',
  }),
  concurrencyLimit: oneOf<'adaptive' | 'static' | 'off'>({
    flag: 'concurrency-limit',
    env: 'CONCURRENCY_LIMIT',
    default: 'adaptive',
    values: ['adaptive', 'static', 'off'] as const,
    doc: 'Admission concurrency limit: adaptive (gradient, learned from latency), static, or off.',
  }),
  concurrencyLimitStatic: int({
    flag: 'concurrency-limit-static',
    env: 'CONCURRENCY_LIMIT_STATIC',
    default: 256,
    min: 1,
    max: 1_000_000,
    doc: "The static limit, and the adaptive limit's starting point.",
  }),
  concurrencyLimitMin: int({
    flag: 'concurrency-limit-min',
    env: 'CONCURRENCY_LIMIT_MIN',
    default: 16,
    min: 1,
    max: 1_000_000,
    doc: 'Lowest adaptive limit.',
  }),
  concurrencyLimitMax: int({
    flag: 'concurrency-limit-max',
    env: 'CONCURRENCY_LIMIT_MAX',
    default: 2048,
    min: 1,
    max: 1_000_000,
    doc: 'Highest adaptive limit.',
  }),
  sheddingSlowStartMs: int({
    flag: 'shedding-slow-start-ms',
    env: 'SHEDDING_SLOW_START_MS',
    default: 10_000,
    min: 0,
    max: 600_000,
    unit: 'ms',
    doc: "Slow start: after start-up, shedding on event-loop delay/utilization and on the expected worker-queue wait ramps in linearly over this window (a fresh process's busy loop and booting workers are warm-up, not overload). The concurrency limit, the deadline floor and the provider-bulkhead estimate apply at once. 0: no ramp.",
  }),
  loopDelayTargetMs: int({
    flag: 'loop-delay-target-ms',
    env: 'LOOP_DELAY_TARGET_MS',
    default: 50,
    min: 1,
    unit: 'ms',
    doc: 'Front-thread event-loop delay (p99) above which requests are shed, in proportion.',
  }),
  breakers: bool({ flag: 'breakers', env: 'BREAKERS', default: true, doc: 'Circuit breakers on the provider and fx.' }),
  breakerWindowMs: int({
    flag: 'breaker-window-ms',
    env: 'BREAKER_WINDOW_MS',
    default: 10000,
    min: 100,
    unit: 'ms',
    doc: 'Sliding window of the breakers.',
  }),
  breakerMinCalls: int({
    flag: 'breaker-min-calls',
    env: 'BREAKER_MIN_CALLS',
    default: 20,
    min: 1,
    doc: 'Calls in the window before a breaker may open.',
  }),
  breakerFailureRate: num({
    flag: 'breaker-failure-rate',
    env: 'BREAKER_FAILURE_RATE',
    default: 0.5,
    min: 0.01,
    max: 1,
    doc: "Failure share that opens a breaker. Timeouts count only for calls given the full per-attempt timeout; a call cut short by its client's deadline is neutral.",
  }),
  breakerSlowCallMs: int({
    flag: 'breaker-slow-call-ms',
    env: 'BREAKER_SLOW_CALL_MS',
    default: 500,
    min: 1,
    unit: 'ms',
    doc: 'A call slower than this is slow.',
  }),
  breakerSlowCallRate: num({
    flag: 'breaker-slow-call-rate',
    env: 'BREAKER_SLOW_CALL_RATE',
    default: 0.8,
    min: 0.01,
    max: 1,
    doc: 'Slow-call share that opens a breaker.',
  }),
  breakerOpenMs: int({
    flag: 'breaker-open-ms',
    env: 'BREAKER_OPEN_MS',
    default: 5000,
    min: 1,
    unit: 'ms',
    doc: 'How long a breaker stays open before probing, unless a health check ends it sooner (BREAKER_HEALTH_CHECK_MS).',
  }),
  breakerHealthCheckMs: int({
    flag: 'breaker-health-check-ms',
    env: 'BREAKER_HEALTH_CHECK_MS',
    default: 100,
    min: 0,
    unit: 'ms',
    doc: "While the provider's breaker is open, a worker asks the provider for a charge that does not exist this often, without waiting for the last check (at most one slow call's worth at once, never more than 8). An answer (200, or 404 with the provider's error object) faster than BREAKER_SLOW_CALL_MS makes the breaker due for half-open at once, no sooner than BREAKER_MIN_OPEN_MS after it opened; real calls then probe. 0: no health checks, the breaker waits out BREAKER_OPEN_MS.",
  }),
  breakerMinOpenMs: int({
    flag: 'breaker-min-open-ms',
    env: 'BREAKER_MIN_OPEN_MS',
    default: 1000,
    min: 0,
    unit: 'ms',
    doc: 'The shortest open period a passed health check may end (capped at BREAKER_OPEN_MS): a provider that answers lookups but fails charges is probed with real calls at most this often.',
  }),
  breakerHalfOpenProbes: int({
    flag: 'breaker-half-open-probes',
    env: 'BREAKER_HALF_OPEN_PROBES',
    default: 5,
    min: 1,
    doc: 'Probe calls admitted while half-open.',
  }),
  breakerHalfOpenSuccessRatio: num({
    flag: 'breaker-half-open-success-ratio',
    env: 'BREAKER_HALF_OPEN_SUCCESS_RATIO',
    default: 0.8,
    min: 0.01,
    max: 1,
    doc: 'Probe success share that closes a breaker.',
  }),
  breakerProbeTimeoutMs: int({
    flag: 'breaker-probe-timeout-ms',
    env: 'BREAKER_PROBE_TIMEOUT_MS',
    default: 2000,
    min: 1,
    unit: 'ms',
    doc: 'Life of a half-open probe permit: one let through but never called is released, a probe that has not reported (hung call, dead worker) counts as failed. Raised to PROVIDER_TIMEOUT_MS or FX_TIMEOUT_MS if either is longer.',
  }),
  bulkheads: bool({
    flag: 'bulkheads',
    env: 'BULKHEADS',
    default: true,
    doc: 'Bulkheads (global concurrency caps) on the provider and fx.',
  }),
  providerBulkhead: int({
    flag: 'provider-bulkhead',
    env: 'PROVIDER_BULKHEAD',
    default: 64,
    min: 1,
    doc: 'Concurrent provider calls, all workers together. At most PROVIDER_CONNECTIONS: start-up refuses more (each admitted call needs a connection of its own).',
  }),
  fxBulkhead: int({
    flag: 'fx-bulkhead',
    env: 'FX_BULKHEAD',
    default: 16,
    min: 1,
    doc: 'Concurrent fx calls, all workers together. At most FX_CONNECTIONS: start-up refuses more.',
  }),
  bulkheadAcquireTimeoutMs: int({
    flag: 'bulkhead-acquire-timeout-ms',
    env: 'BULKHEAD_ACQUIRE_TIMEOUT_MS',
    default: 100,
    min: 0,
    unit: 'ms',
    doc: 'Longest wait for a bulkhead slot before 503 bulkhead_full.',
  }),
  bulkheadMaxWaiting: int({
    flag: 'bulkhead-max-waiting',
    env: 'BULKHEAD_MAX_WAITING',
    default: 256,
    min: 0,
    doc: 'Callers that may wait for a bulkhead (or DB) slot at once.',
  }),
  dbAcquireTimeoutMs: int({
    flag: 'db-acquire-timeout-ms',
    env: 'DB_ACQUIRE_TIMEOUT_MS',
    default: 250,
    min: 1,
    unit: 'ms',
    doc: 'Longest wait for a DB pool slot before 503 db_unavailable.',
  }),
  retryBudget: bool({
    flag: 'retry-budget',
    env: 'RETRY_BUDGET',
    default: true,
    doc: 'Limit provider retries to a share of first attempts.',
  }),
  retryBudgetRatio: num({
    flag: 'retry-budget-ratio',
    env: 'RETRY_BUDGET_RATIO',
    default: 0.2,
    min: 0,
    max: 10,
    doc: 'Retries allowed per first attempt.',
  }),
  retryBudgetMinPerSecond: num({
    flag: 'retry-budget-min-per-second',
    env: 'RETRY_BUDGET_MIN_PER_SECOND',
    default: 10,
    min: 0,
    doc: 'Retries per second always allowed.',
  }),
  shutdownDelayMs: int({
    flag: 'shutdown-delay-ms',
    env: 'SHUTDOWN_DELAY_MS',
    default: 0,
    min: 0,
    unit: 'ms',
    doc: 'On SIGTERM, keep serving this long while /ready fails, so load balancers stop sending first.',
  }),
  groupCommit: bool({
    flag: 'group-commit',
    env: 'GROUP_COMMIT',
    default: true,
    doc: 'Group commit: each worker batches the claims and records of concurrent charges into one statement per phase (each request still waits for its own commit); a batch takes one DB slot. false: one statement per call, as the baseline does.',
  }),
  workers: int({
    flag: 'workers',
    env: 'WORKERS',
    default: 0,
    min: 0,
    max: 256,
    doc: `Worker threads that execute charges. 0 = one per available core less the front thread's, at least 1, at most ${AUTO_WORKERS_MAX} and at most DB_POOL_MAX (one worker on two cores).`,
  }),
  workerConcurrency: int({
    flag: 'worker-concurrency',
    env: 'WORKER_CONCURRENCY',
    default: 256,
    min: 1,
    max: 100000,
    doc: 'Tasks one worker runs at once (they are I/O-bound).',
  }),
  workerQueueMax: int({
    flag: 'worker-queue-max',
    env: 'WORKER_QUEUE_MAX',
    default: 1024,
    min: 1,
    max: 1000000,
    doc: 'Tasks waiting for a worker before new ones are refused with 503 overloaded.',
  }),
} satisfies Specs;

export const baselineSpecs = {
  port: int({
    flag: 'port',
    env: 'BASELINE_PORT',
    default: 8081,
    min: 0,
    max: 65535,
    doc: 'Baseline HTTP port (0 picks a free one).',
  }),
  ...commonSpecs,
  hardened: bool({
    flag: 'hardened',
    env: 'BASELINE_HARDENED',
    default: false,
    doc: 'Add @fastify/under-pressure load shedding and a DB health check, and an opossum breaker with a capacity around the provider.',
  }),
  processes: int({
    flag: 'processes',
    env: 'BASELINE_PROCESSES',
    default: 0,
    min: 0,
    max: 256,
    doc: 'Fastify processes behind node:cluster, each with its share of DB_POOL_MAX and PROVIDER_CONNECTIONS; 0 = one per available core, 1 = a single process without cluster.',
  }),
} satisfies Specs;

export type CommonConfig = Values<typeof commonSpecs>;
export type GatewayConfig = Values<typeof gatewaySpecs>;
export type BaselineConfig = Values<typeof baselineSpecs>;

/**
 * The headings of `serve --help` and `baseline --help`, by setting key. A
 * key no heading claims is listed under "Other", so a new setting is never
 * left out of the help.
 */
export const SERVICE_HELP_GROUPS: readonly HelpGroup[] = [
  ['Listeners', (k) => /^(host|port|admin|metrics(Port|Host)$)/.test(k)],
  [
    'Dependencies (unset: embedded Postgres and the simulator)',
    (k) => /^(databaseUrl|providerUrl|fxUrl|dataDir|embeddedPg|sim)/.test(k),
  ],
  [
    'Requests and deadlines',
    (k) =>
      /^(requestTimeoutMs|maxRequestTimeoutMs|minRequestTimeoutMs|maxBodyBytes|bodyTimeoutMs|maxConnections|maxRequestsPerAddress|fxCacheTtlMs)$/.test(
        k,
      ),
  ],
  ['Postgres', (k) => /^db/.test(k)],
  ['Charge lifecycle', (k) => /^(lease|reconcile|retention|reap|groupCommit|providerKey)/.test(k)],
  [
    'Downstream calls and retries',
    (k) => /^(provider(Timeout|Connections|MaxAttempts)|retry(Base|Max)Ms|fx(Timeout|Connections)|keepAlive)/.test(k),
  ],
  ['Mechanisms: admission and shedding', (k) => /^(mechanisms|shedding|concurrencyLimit|loopDelay)/.test(k)],
  [
    'Mechanisms: breakers, bulkheads, retry budget',
    (k) => /^(breaker|bulkhead|providerBulkhead|fxBulkhead|retryBudget)/.test(k),
  ],
  ['Process: workers and shutdown', (k) => /^(workers|worker|shutdown|logLevel|hardened|processes)/.test(k)],
];

/**
 * Production refuses the development conveniences: with NODE_ENV=production
 * the embedded Postgres and the simulator are never started (charges would
 * "succeed" against a fake provider, idempotency records would be split per
 * pod), and the provider key secret must be set. One line naming what is
 * missing, never a value.
 */
export function checkProduction(c: CommonConfig, nodeEnv: string | undefined): string | undefined {
  if (nodeEnv !== 'production') return undefined;
  const missing = [
    c.databaseUrl === undefined ? 'DATABASE_URL' : undefined,
    c.providerUrl === undefined ? 'PROVIDER_URL' : undefined,
    c.fxUrl === undefined ? 'FX_URL' : undefined,
    c.providerKeySecret === undefined ? 'PROVIDER_KEY_SECRET' : undefined,
  ].filter((m) => m !== undefined);
  if (missing.length === 0) return undefined;
  return `NODE_ENV=production needs ${missing.join(', ')} (missing); the embedded Postgres, the simulator and the development provider key secret are for development only`;
}

/** Cross-field rules, checked once at start. */
export function checkCommon(c: CommonConfig): string | undefined {
  if (c.leaseMs <= c.maxRequestTimeoutMs) {
    return `LEASE_MS must be greater than MAX_REQUEST_TIMEOUT_MS (${c.maxRequestTimeoutMs}); got ${c.leaseMs}`;
  }
  if (c.requestTimeoutMs > c.maxRequestTimeoutMs) {
    return `REQUEST_TIMEOUT_MS must be at most MAX_REQUEST_TIMEOUT_MS (${c.maxRequestTimeoutMs}); got ${c.requestTimeoutMs}`;
  }
  if (c.retryBaseMs > c.retryMaxMs) {
    return `RETRY_BASE_MS must be at most RETRY_MAX_MS (${c.retryMaxMs}); got ${c.retryBaseMs}`;
  }
  if (c.reconcileBackoffBaseMs > c.reconcileBackoffMaxMs) {
    return `RECONCILE_BACKOFF_BASE_MS must be at most RECONCILE_BACKOFF_MAX_MS (${c.reconcileBackoffMaxMs}); got ${c.reconcileBackoffBaseMs}`;
  }
  if (c.minRequestTimeoutMs > c.requestTimeoutMs) {
    return `MIN_REQUEST_TIMEOUT_MS must be at most REQUEST_TIMEOUT_MS (${c.requestTimeoutMs}); got ${c.minRequestTimeoutMs}`;
  }
  if ((c.providerUrl === undefined) !== (c.fxUrl === undefined)) {
    return 'PROVIDER_URL and FX_URL must be set together (or both left unset to spawn the simulator)';
  }
  return undefined;
}

/** The gateway's own cross-field rules, after the common ones. */
export function checkGateway(c: GatewayConfig): string | undefined {
  const common = checkCommon(c);
  if (common) return common;
  // Each worker opens floor(DB_POOL_MAX / WORKERS) connections, at least one.
  if (c.dbPoolMax < c.workers) {
    return `DB_POOL_MAX must be at least WORKERS (${c.workers}): each worker thread needs a Postgres connection of its own; got ${c.dbPoolMax}`;
  }
  // Behind a bulkhead each worker's pool may open min(connections, bulkhead)
  // (gatewayWorkerSettings): with more slots than connections, a call the
  // bulkhead admits can find every connection of its worker's pool busy and
  // wait inside the pool, where neither the bulkhead's wait histogram nor its
  // acquire timeout sees it, and the workers together may open more than the
  // connections set. Refused, not silently bounded: the setting says one thing
  // and would do another.
  if (c.mechanisms && c.bulkheads) {
    if (c.providerBulkhead > c.providerConnections) {
      return `PROVIDER_BULKHEAD must be at most PROVIDER_CONNECTIONS (${c.providerConnections}): a provider call the bulkhead admits needs a connection of its own; got ${c.providerBulkhead}`;
    }
    if (c.fxBulkhead > c.fxConnections) {
      return `FX_BULKHEAD must be at most FX_CONNECTIONS (${c.fxConnections}): an fx call the bulkhead admits needs a connection of its own; got ${c.fxBulkhead}`;
    }
  }
  if (c.concurrencyLimitMin > c.concurrencyLimitMax) {
    return `CONCURRENCY_LIMIT_MIN must be at most CONCURRENCY_LIMIT_MAX (${c.concurrencyLimitMax}); got ${c.concurrencyLimitMin}`;
  }
  // The adaptive limit starts at the static value: it must lie within its bounds. A static limit has none.
  if (
    c.concurrencyLimit === 'adaptive' &&
    (c.concurrencyLimitStatic < c.concurrencyLimitMin || c.concurrencyLimitStatic > c.concurrencyLimitMax)
  ) {
    return `CONCURRENCY_LIMIT_STATIC must be from CONCURRENCY_LIMIT_MIN (${c.concurrencyLimitMin}) to CONCURRENCY_LIMIT_MAX (${c.concurrencyLimitMax}); got ${c.concurrencyLimitStatic}`;
  }
  return undefined;
}

/**
 * The probe-permit life the breakers use: BREAKER_PROBE_TIMEOUT_MS, raised to
 * the longest per-attempt timeout. A permit that expired while its call could
 * still answer would be judged failed for a call that is only slow; raising
 * it (rather than refusing to start) keeps a longer FX_TIMEOUT_MS from
 * requiring a second setting.
 */
export function probeTimeoutMs(c: GatewayConfig): number {
  return Math.max(c.breakerProbeTimeoutMs, c.providerTimeoutMs, c.fxTimeoutMs);
}
