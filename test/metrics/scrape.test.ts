/**
 * A live scrape of a real gateway passes `promtool check metrics`, and its
 * numbers follow the traffic that was sent.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startSimulator, type Simulator } from '../../src/simulator/index.js';
import { startTestDb, type TestDb } from '../support/postgres.js';
import { startTarget, type Target } from '../support/target.js';
import { call } from '../support/http.js';
import { promtoolTool } from '../support/system-tools.js';

const promtool = promtoolTool();

let db: TestDb;
let sim: Simulator;
let gw: Target;

before(async () => {
  db = await startTestDb();
  sim = await startSimulator({ providerPort: 0, fxPort: 0 });
  gw = await startTarget('gateway', { databaseUrl: db.url, providerUrl: sim.providerUrl, fxUrl: sim.fxUrl });
});
after(async () => {
  await gw?.kill();
  await sim?.close();
  await db?.close();
});

test('GET /metrics counts what happened', async () => {
  const body = { amount: 500, currency: 'USD', source: 'tok_visa' };
  for (let i = 0; i < 12; i++) assert.equal((await call(gw.url, 'POST', '/charge', { headers: { 'idempotency-key': `scrape-${i}` }, body })).status, 201);
  assert.equal((await call(gw.url, 'POST', '/charge', { headers: { 'idempotency-key': 'scrape-0' }, body })).status, 201);
  assert.equal((await call(gw.url, 'POST', '/charge', { headers: {}, body })).status, 400);
  assert.equal((await call(gw.url, 'GET', '/charges/scrape-1')).status, 200);
  assert.equal((await call(gw.url, 'GET', '/quote?from=USD&to=EUR&amount=100')).status, 200);
  assert.equal((await call(gw.url, 'GET', '/nowhere')).status, 404);
  const scrape = await call(gw.url, 'GET', '/metrics');
  assert.equal(scrape.status, 200);
  assert.match(scrape.headers['content-type'] ?? '', /^text\/plain; version=0\.0\.4/);
  const value = (re: RegExp) => Number(re.exec(scrape.text)?.[1]);
  assert.equal(value(/^bulwark_http_requests_total\{route="\/charge",code="201"\} (\d+)$/m), 13);
  assert.equal(value(/^bulwark_http_requests_total\{route="\/charge",code="400"\} (\d+)$/m), 1);
  assert.equal(value(/^bulwark_http_requests_total\{route="other",code="404"\} (\d+)$/m), 1);
  assert.equal(value(/^bulwark_http_request_duration_seconds_count\{route="\/charge",status_class="2xx"\} (\d+)$/m), 13);
  assert.ok(value(/^bulwark_stage_duration_seconds_count\{stage="claim"\} (\d+)$/m) >= 12, 'workers record stage timings');
  assert.ok(value(/^bulwark_stage_duration_seconds_count\{stage="provider_attempt"\} (\d+)$/m) >= 12);
  assert.equal(value(/^bulwark_breaker_state\{downstream="provider",state="closed"\} (\d+)$/m), 1);
  assert.ok(value(/^bulwark_db_pool_limit (\d+)$/m) > 0);
  // Counter series exist from the first scrape on, at 0 until they happen.
  assert.equal(value(/^bulwark_http_requests_total\{route="\/quote",code="504"\} (\d+)$/m), 0);
  // The process and Node.js families every dashboard expects (prom-client's default collectors).
  for (const family of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_p99_seconds']) {
    assert.match(scrape.text, new RegExp(`^# TYPE ${family} `, 'm'), family);
    assert.ok(value(new RegExp(`^${family} (\\S+)$`, 'm')) >= 0, `${family} has a value`);
  }
  assert.ok(value(/^process_start_time_seconds (\S+)$/m) <= Date.now() / 1000, 'start time is in the past');
  assert.match(scrape.text, /^# TYPE nodejs_gc_duration_seconds histogram$/m);
  assert.match(scrape.text, /^bulwark_build_info\{version="[^"]+",git_commit="[^"]+",node="v20[^"]*",uws="native [^"]+"\} 1$/m);
});

test('GET /metrics passes promtool check metrics', { skip: promtool.skip }, async () => {
  const scrape = await call(gw.url, 'GET', '/metrics');
  assert.equal(scrape.status, 200);
  const check = spawnSync(promtool.path!, ['check', 'metrics'], { input: scrape.text, encoding: 'utf8' });
  assert.ok(!check.error, String(check.error));
  assert.equal(check.status, 0, `promtool check metrics:\n${check.stdout}${check.stderr}`);
});

test('METRICS_PORT: /metrics moves to a listener of its own and leaves the public port', async () => {
  const own = await startTarget('gateway', { databaseUrl: db.url, providerUrl: sim.providerUrl, fxUrl: sim.fxUrl, env: { METRICS_PORT: '0', METRICS_HOST: '127.0.0.1' } });
  try {
    const line = own.logLines().find((l) => l.msg === 'listening');
    const metricsPort = line?.metricsPort;
    assert.equal(typeof metricsPort, 'number');
    assert.notEqual(metricsPort, line?.port);
    const scrape = await call(`http://127.0.0.1:${String(metricsPort)}`, 'GET', '/metrics');
    assert.equal(scrape.status, 200);
    assert.match(scrape.text, /^bulwark_build_info\{/m);
    assert.match(scrape.text, /^process_resident_memory_bytes /m);
    assert.equal((await call(own.url, 'GET', '/metrics')).status, 404, 'the public port no longer serves /metrics');
    assert.equal((await call(`http://127.0.0.1:${String(metricsPort)}`, 'GET', '/charges/x')).status, 404, 'the metrics port serves nothing else');
  } finally {
    await own.kill();
  }
});
