// One whole GET /metrics render on the front thread: the gateway's own
// families and prom-client's default collectors (process_*, nodejs_*, and
// bulwark_event_loop_lag_seconds). A scrape is a stall every request on the
// front thread shares. prom-client's process_open_fds collector lists
// /proc/self/fd on every collect, so its cost grows with open sockets: timed
// with the process's own few fds and with 5 000 more open (files here; uWS
// sockets are plain fds too, and not Node handles).
import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';
import { renderGatewayMetrics, type GatewayMetricSources } from '../src/metrics/gateway-metrics.js';
import { createProcessMetrics } from '../src/metrics/process-metrics.js';
import { createTelemetryLayout, Telemetry } from '../src/metrics/telemetry.js';
import { RecentWindow } from '../src/metrics/window.js';
import { createProtectionLayout, openProtection } from '../src/resilience/protection.js';
import { parsePrometheus } from '../src/lab/scenario/measure/scrape.js';
import type { Case, Suite } from './harness.js';

const EXTRA_FDS = 5000;

const bulkhead = { limit: 64, maxWaiting: 256 };
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
  retryBudget: true,
  budget: { ratio: 0.2, minPerSecond: 10, maxTokens: 100 },
};
const telemetry = new Telemetry(createTelemetryLayout());
// Traffic on the charge route, so the histograms have buckets to walk.
for (let i = 0; i < 20_000; i++) telemetry.request('/charge', 201, 5 + (i % 200));
const window = new RecentWindow(() => telemetry.http);
const sources: GatewayMetricSources = {
  build: { version: 'bench', git_commit: 'bench', node: process.version, uws: 'native' },
  telemetry,
  protection: openProtection(createProtectionLayout(settings, 0), settings),
  window,
  admission: () => ({
    limit: 100,
    inFlight: 3,
    shed: { concurrency: 0, event_loop: 0, deadline: 0, downstream: 0 },
    expectedQueueWaitMs: 0,
    loopDelayMs: 1,
    loopUtilization: 0.1,
  }),
  pool: () => ({ threads: 2, queueSize: 0 }),
  drain: () => ({ draining: false, elapsedSeconds: 0, abandoned: 0 }),
  backlog: () => ({ oldestStartedAgeSeconds: 0, needsAttention: 0, oldestNeedingAttention: [] }),
  nowEpochMs: () => Date.now(),
};
const processMetrics = createProcessMetrics();

/** What serve.ts answers GET /metrics with. */
const scrape = async (): Promise<string> => renderGatewayMetrics(sources) + (await processMetrics.render());

const opened: number[] = [];
const openFds = () => {
  for (let i = 0; i < EXTRA_FDS; i++) opened.push(openSync('/dev/null', 'r'));
};
const closeFds = () => {
  for (const fd of opened.splice(0)) closeSync(fd);
};

function scrapeCase(name: string, fds: 'own' | 'extra'): Case {
  return {
    name,
    beforeAll: fds === 'extra' ? openFds : undefined,
    afterAll: fds === 'extra' ? closeFds : undefined,
    check: async () => {
      const samples = parsePrometheus(await scrape());
      const one = (n: string) => samples.find((s) => s.name === n)?.value;
      const open = one('process_open_fds')!;
      assert.ok(fds === 'extra' ? open >= EXTRA_FDS : open < 1000, `process_open_fds ${open}`);
      const ok = samples.find(
        (s) => s.name === 'bulwark_http_requests_total' && s.labels.route === '/charge' && s.labels.code === '201',
      );
      assert.equal(ok?.value, 20_000);
      for (const family of [
        'process_cpu_seconds_total',
        'nodejs_heap_size_used_bytes',
        'bulwark_event_loop_lag_seconds_count',
      ])
        assert.ok(one(family) !== undefined, family);
    },
    fn: scrape,
  };
}

export const suite: Suite = {
  name: 'scrape',
  cases: [
    scrapeCase('GET /metrics render, own fds', 'own'),
    scrapeCase(`GET /metrics render, +${EXTRA_FDS} fds`, 'extra'),
    {
      name: 'gateway families only (renderGatewayMetrics)',
      check: () => assert.match(renderGatewayMetrics(sources), /^bulwark_build_info\{/m),
      fn: () => renderGatewayMetrics(sources),
    },
    {
      name: 'prom-client collectors only, own fds',
      check: async () => assert.match(await processMetrics.render(), /^process_open_fds \d+$/m),
      fn: () => processMetrics.render(),
    },
    {
      name: `prom-client collectors only, +${EXTRA_FDS} fds`,
      beforeAll: openFds,
      afterAll: closeFds,
      check: async () => assert.match(await processMetrics.render(), /^process_open_fds [5-9]\d{3}$/m),
      fn: () => processMetrics.render(),
    },
  ],
  teardown: () => {
    window.close();
    processMetrics.close();
  },
};
