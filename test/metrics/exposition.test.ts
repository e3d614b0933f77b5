import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Exposition } from '../../src/metrics/prometheus.js';
import { spawnSync } from 'node:child_process';
import { HISTOGRAM_BUCKETS, SharedHistogram } from '../../src/metrics/histogram.js';
import { renderGatewayMetrics } from '../../src/metrics/gateway-metrics.js';
import { createTelemetryLayout, ROUTE_LABELS, STATUSES, Telemetry } from '../../src/metrics/telemetry.js';
import { catalogue } from '../../src/errors/catalogue.js';
import { ROUTES } from '../../src/http/contract.js';
import { openApiDocument } from '../../src/http/openapi.js';
import { parsePrometheus } from '../../src/lab/scenario/measure/scrape.js';
import { RecentWindow } from '../../src/metrics/window.js';
import { createProtectionLayout, openProtection } from '../../src/resilience/protection.js';
import { promtoolTool } from '../support/system-tools.js';

const promtool = promtoolTool();

test('families, escaped labels, and histograms with sorted le up to +Inf', () => {
  const h = new SharedHistogram(new Int32Array(HISTOGRAM_BUCKETS));
  h.recordMs(2);
  h.recordMs(400);
  const text = new Exposition()
    .family('x_total', 'counter', 'A counter.')
    .sample('x_total', 3, { route: 'a"b\\c\nd' })
    .family('x_seconds', 'histogram', 'A histogram.')
    .histogram('x_seconds', h.snapshot(), { route: '/charge' })
    .text();
  assert.match(text, /^# HELP x_total A counter\.\n# TYPE x_total counter\nx_total\{route="a\\"b\\\\c\\nd"\} 3\n/);
  const les = [...text.matchAll(/x_seconds_bucket\{route="\/charge",le="([^"]+)"\} (\d+)/g)].map(
    (m) => [m[1], Number(m[2])] as const,
  );
  assert.equal(les.at(-1)![0], '+Inf');
  assert.equal(les.at(-1)![1], 2);
  const finite = les.slice(0, -1).map(([le]) => Number(le));
  assert.deepEqual(
    finite,
    [...finite].sort((a, b) => a - b),
  );
  assert.equal(les.find(([le]) => le === '0.3')![1], 1);
  assert.match(text, /x_seconds_count\{route="\/charge"\} 2\n/);
  assert.ok(text.endsWith('\n'));
});

/** The gateway exposition with a backlog the caller sets: null until the database answered. */
function backlogRender() {
  const bulkhead = { limit: 4, maxWaiting: 4 };
  const settings = {
    breakers: true,
    breaker: {
      windowMs: 10_000,
      buckets: 10,
      minCalls: 20,
      failureRateThreshold: 0.5,
      slowCallMs: 500,
      slowCallRateThreshold: 0.8,
      openMs: 5000,
      minOpenMs: 1000,
      halfOpenProbes: 5,
      halfOpenSuccessRatio: 0.8,
      probeTimeoutMs: 2000,
    },
    bulkheads: true,
    providerBulkhead: bulkhead,
    fxBulkhead: bulkhead,
    bulkheadAcquireTimeoutMs: 100,
    db: bulkhead,
    dbAcquireTimeoutMs: 100,
    retryBudget: false,
    budget: { ratio: 0.2, minPerSecond: 10, maxTokens: 100 },
  };
  const protection = openProtection(createProtectionLayout(settings, 0), settings);
  protection.events.inc('error_record', 3);
  protection.events.inc('reconcile_needs_attention', 2);
  const telemetry = new Telemetry(createTelemetryLayout());
  const window = new RecentWindow(() => telemetry.http);
  const state: {
    backlog: { oldestStartedAgeSeconds: number; needsAttention: number; oldestNeedingAttention: [] } | null;
  } = { backlog: null };
  const render = () =>
    renderGatewayMetrics({
      build: { version: 't', git_commit: 't', node: 't', uws: 't' },
      telemetry,
      protection,
      window,
      admission: () => ({
        limit: null,
        inFlight: 0,
        shed: { concurrency: 0, event_loop: 0, deadline: 0, downstream: 0 },
        expectedQueueWaitMs: 0,
        loopDelayMs: 0,
        loopUtilization: 0,
      }),
      pool: () => ({ threads: 1, queueSize: 0 }),
      drain: () => ({ draining: false, elapsedSeconds: 0, abandoned: 0 }),
      backlog: () => state.backlog,
      nowEpochMs: () => 0,
    });
  return { state, render, close: () => window.close() };
}

const BACKLOG = { oldestStartedAgeSeconds: 1234.5, needsAttention: 7, oldestNeedingAttention: [] as [] };

test('the backlog gauges: absent until the first backlog query answered, then its values', () => {
  const { state, render, close } = backlogRender();
  try {
    const before = render();
    assert.doesNotMatch(
      before,
      /bulwark_oldest_started_charge_age_seconds|bulwark_charges_needing_attention/,
      'no made-up 0 before the database answered',
    );
    assert.match(before, /^bulwark_charge_errors_total\{stage="record"\} 3$/m);
    assert.match(before, /^bulwark_reconciler_charges_total\{outcome="needs_attention"\} 2$/m);
    state.backlog = BACKLOG;
    const after = render();
    assert.match(
      after,
      /^# TYPE bulwark_oldest_started_charge_age_seconds gauge\nbulwark_oldest_started_charge_age_seconds 1234\.5$/m,
    );
    assert.match(after, /^# TYPE bulwark_charges_needing_attention gauge\nbulwark_charges_needing_attention 7$/m);
  } finally {
    close();
  }
});

test('the gateway exposition is promtool-clean with and without the backlog gauges', { skip: promtool.skip }, () => {
  const { state, render, close } = backlogRender();
  try {
    const check = (text: string) => {
      const r = spawnSync(promtool.path!, ['check', 'metrics'], { input: text, encoding: 'utf8' });
      assert.ok(!r.error, String(r.error));
      assert.equal(r.status, 0, r.stdout + r.stderr);
    };
    check(render());
    state.backlog = BACKLOG;
    check(render());
  } finally {
    close();
  }
});

test('a fresh scrape has every route × known code at 0: routes from the route table, codes from the contract', () => {
  const doc = openApiDocument({
    maxBodyBytes: 16384,
    minRequestTimeoutMs: 50,
    maxRequestTimeoutMs: 30000,
    requestTimeoutMs: 1000,
  }) as {
    paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
  };
  // Every status the public listener can answer: the document's, 404/405 for
  // unknown paths and methods, and the catalogue's less the admin-only 401/403.
  const adminOnly = new Set([401, 403]);
  const publicCodes = new Set<number>([
    ...Object.values(doc.paths).flatMap((ops) =>
      Object.values(ops).flatMap((op) => Object.keys(op.responses).map(Number)),
    ),
    ...Object.values(catalogue)
      .map((e) => e.status)
      .filter((s) => !adminOnly.has(s)),
  ]);
  assert.deepEqual(
    [...publicCodes].filter((c) => !(STATUSES as readonly number[]).includes(c)),
    [],
    'known STATUSES',
  );
  // Every route the table serves (plus /metrics) is a label of its own.
  for (const route of [...Object.keys(ROUTES), '/metrics'])
    assert.ok((ROUTE_LABELS as readonly string[]).includes(route), `${route} is a route label, not "other"`);

  const { render, close } = backlogRender();
  try {
    const samples = parsePrometheus(render()).filter((s) => s.name === 'bulwark_http_requests_total');
    const seen = new Map(samples.map((s) => [`${s.labels.route} ${s.labels.code}`, s.value]));
    const missing: string[] = [];
    for (const route of ROUTE_LABELS)
      for (const code of [...STATUSES.map(String), 'other'])
        if (seen.get(`${route} ${code}`) !== 0) missing.push(`${route} ${code}=${seen.get(`${route} ${code}`)}`);
    assert.deepEqual(missing, []);
    assert.equal(samples.length, ROUTE_LABELS.length * (STATUSES.length + 1), 'no other series');
  } finally {
    close();
  }
});
