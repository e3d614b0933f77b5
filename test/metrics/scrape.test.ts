/**
 * A live scrape of a real gateway passes `promtool check metrics`, and its
 * numbers follow the traffic that was sent.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startSimulator, type Simulator } from '../../src/simulator/index.js';
import { startTestDb, type TestDb } from '../support/postgres.js';
import { adminUrl, startTarget, type Target } from '../support/target.js';
import { call } from '../support/http.js';
import { promtoolTool } from '../support/system-tools.js';

const promtool = promtoolTool();
import { ChargeStore } from '../../src/charge/store.js';
import { fingerprint } from '../../src/charge/fingerprint.js';
import { keyHash } from '../../src/charge/key-hash.js';
import { DEV_PROVIDER_KEY_SECRET, providerKeys } from '../../src/charge/provider-key.js';

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
  for (let i = 0; i < 12; i++)
    assert.equal(
      (await call(gw.url, 'POST', '/charge', { headers: { 'idempotency-key': `scrape-${i}` }, body })).status,
      201,
    );
  assert.equal(
    (await call(gw.url, 'POST', '/charge', { headers: { 'idempotency-key': 'scrape-0' }, body })).status,
    201,
  );
  assert.equal((await call(gw.url, 'POST', '/charge', { headers: {}, body })).status, 400);
  assert.equal((await call(gw.url, 'GET', '/charges/scrape-1')).status, 200);
  assert.equal((await call(gw.url, 'GET', '/quote?from=USD&to=EUR&amount=100')).status, 200);
  assert.equal((await call(gw.url, 'GET', '/nowhere')).status, 404);
  assert.equal((await call(gw.url, 'GET', '/openapi.json')).status, 200);
  const scrape = await call(gw.url, 'GET', '/metrics');
  assert.equal(scrape.status, 200);
  assert.match(scrape.headers['content-type'] ?? '', /^text\/plain; version=0\.0\.4/);
  const value = (re: RegExp) => Number(re.exec(scrape.text)?.[1]);
  assert.equal(value(/^bulwark_http_requests_total\{route="\/charge",code="201"\} (\d+)$/m), 13);
  assert.equal(value(/^bulwark_http_requests_total\{route="\/charge",code="400"\} (\d+)$/m), 1);
  assert.equal(value(/^bulwark_http_requests_total\{route="other",code="404"\} (\d+)$/m), 1);
  assert.equal(value(/^bulwark_http_requests_total\{route="\/openapi\.json",code="200"\} (\d+)$/m), 1);
  assert.equal(value(/^bulwark_http_requests_total\{route="other",code="200"\} (\d+)$/m), 0);
  assert.equal(
    value(/^bulwark_http_request_duration_seconds_count\{route="\/charge",status_class="2xx"\} (\d+)$/m),
    13,
  );
  assert.ok(
    value(/^bulwark_stage_duration_seconds_count\{stage="claim"\} (\d+)$/m) >= 12,
    'workers record stage timings',
  );
  assert.ok(value(/^bulwark_stage_duration_seconds_count\{stage="provider_attempt"\} (\d+)$/m) >= 12);
  assert.equal(value(/^bulwark_breaker_state\{downstream="provider",state="closed"\} (\d+)$/m), 1);
  assert.ok(value(/^bulwark_db_pool_limit (\d+)$/m) > 0);
  // Counter series exist from the first scrape on, at 0 until they happen.
  assert.equal(value(/^bulwark_http_requests_total\{route="\/quote",code="504"\} (\d+)$/m), 0);
  // The process and Node.js families every dashboard expects (prom-client's default collectors).
  for (const family of [
    'process_cpu_seconds_total',
    'process_resident_memory_bytes',
    'process_start_time_seconds',
    'nodejs_heap_size_used_bytes',
    'nodejs_eventloop_lag_p99_seconds',
  ]) {
    assert.match(scrape.text, new RegExp(`^# TYPE ${family} `, 'm'), family);
    assert.ok(value(new RegExp(`^${family} (\\S+)$`, 'm')) >= 0, `${family} has a value`);
  }
  assert.ok(value(/^process_start_time_seconds (\S+)$/m) <= Date.now() / 1000, 'start time is in the past');
  assert.match(scrape.text, /^# TYPE nodejs_gc_duration_seconds histogram$/m);
  assert.match(scrape.text, /^# TYPE bulwark_event_loop_lag_seconds histogram$/m);
  assert.ok(value(/^bulwark_event_loop_lag_seconds_count (\d+)$/m) > 0, 'loop ticks counted since start');
  assert.match(
    scrape.text,
    /^bulwark_build_info\{version="[^"]+",git_commit="[^"]+",node="v20[^"]*",uws="native [^"]+"\} 1$/m,
  );
});

test('GET /metrics passes promtool check metrics', { skip: promtool.skip }, async () => {
  const scrape = await call(gw.url, 'GET', '/metrics');
  assert.equal(scrape.status, 200);
  const check = spawnSync(promtool.path!, ['check', 'metrics'], { input: scrape.text, encoding: 'utf8' });
  assert.ok(!check.error, String(check.error));
  assert.equal(check.status, 0, `promtool check metrics:\n${check.stdout}${check.stderr}`);
});

test('METRICS_PORT: /metrics moves to a listener of its own and leaves the public port', async () => {
  const own = await startTarget('gateway', {
    databaseUrl: db.url,
    providerUrl: sim.providerUrl,
    fxUrl: sim.fxUrl,
    env: { METRICS_PORT: '0', METRICS_HOST: '127.0.0.1' },
  });
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
    assert.equal(
      (await call(`http://127.0.0.1:${String(metricsPort)}`, 'GET', '/charges/x')).status,
      404,
      'the metrics port serves nothing else',
    );
  } finally {
    await own.kill();
  }
});

test('the backlog gauges follow the rows nobody has finished, and /admin/state names them by hash only', async () => {
  const body = { amount: 900, currency: 'EUR', source: 'tok_visa' };
  const store = new ChargeStore(db.sql, providerKeys(DEV_PROVIDER_KEY_SECRET));
  // A charge started 10 minutes ago whose lease is held (the reconciler leaves it), and one handed to an operator.
  await store.claim('gauge-stuck', fingerprint(body), body, 3_600_000);
  await db.sql`UPDATE charges SET created_at = now() - interval '10 minutes' WHERE idempotency_key = 'gauge-stuck'`;
  const attentionKey = 'gauge-attention-order-77';
  await store.claim(attentionKey, fingerprint(body), body, 60_000);
  await db.sql`UPDATE charges SET status = 'needs_attention', lease_token = NULL, lease_expires_at = NULL, reconcile_attempts = 20 WHERE idempotency_key = ${attentionKey}`;
  const value = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  // Refreshed by a worker every few seconds, whatever the scrape rate.
  let scrape = '';
  for (let i = 0; i < 100; i++) {
    scrape = (await call(gw.url, 'GET', '/metrics')).text;
    if (value(scrape, 'bulwark_charges_needing_attention') === 1) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(value(scrape, 'bulwark_charges_needing_attention'), 1, scrape);
  const age = value(scrape, 'bulwark_oldest_started_charge_age_seconds');
  assert.ok(age >= 600 && age < 700, `oldest started age ${age}`);
  assert.match(scrape, /^# TYPE bulwark_oldest_started_charge_age_seconds gauge$/m);
  assert.match(scrape, /^bulwark_charge_errors_total\{stage="claim"\} 0$/m);
  if (promtool.path) {
    const check = spawnSync(promtool.path, ['check', 'metrics'], { input: scrape, encoding: 'utf8' });
    assert.equal(check.status, 0, `promtool check metrics:\n${check.stdout}${check.stderr}`);
  }

  const state = await call(adminUrl(gw), 'GET', '/admin/state');
  const charges = (
    state.body as {
      charges: {
        needs_attention: { count: number; oldest: { key_hash: string; reconcile_attempts: number }[] };
        oldest_started_age_seconds: number;
      };
    }
  ).charges;
  assert.equal(charges.needs_attention.count, 1);
  assert.deepEqual(
    charges.needs_attention.oldest.map((o) => [o.key_hash, o.reconcile_attempts]),
    [[keyHash(attentionKey), 20]],
  );
  assert.ok(charges.oldest_started_age_seconds >= 600);
  assert.ok(!state.text.includes(attentionKey) && !state.text.includes('gauge-stuck'), 'raw keys stay in the database');

  // A client retry of that key: a clear 409, nothing replayed.
  const retry = await call(gw.url, 'POST', '/charge', { headers: { 'idempotency-key': attentionKey }, body });
  assert.equal(retry.status, 409);
  assert.equal(retry.body?.code, 'charge_needs_attention');

  // The rows gone (removed by the test, not the way to resolve them: docs/runbook.md): the gauges go back to 0.
  await db.sql`DELETE FROM charges WHERE idempotency_key IN ('gauge-stuck', ${attentionKey})`;
  for (let i = 0; i < 100; i++) {
    scrape = (await call(gw.url, 'GET', '/metrics')).text;
    if (value(scrape, 'bulwark_charges_needing_attention') === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(value(scrape, 'bulwark_charges_needing_attention'), 0);
  assert.ok(value(scrape, 'bulwark_oldest_started_charge_age_seconds') < 60);
});

test('a claim that fails in a worker is logged once by the gateway, without card data or the raw key, and counted in /metrics', async () => {
  const key = 'scrape-error-key-do-not-log';
  const body = { amount: 4242, currency: 'USD', source: 'tok_live_do_not_log', description: 'holder Jane Roe' };
  // A real Postgres error whose detail carries the failing row.
  await db.sql`ALTER TABLE charges ADD CONSTRAINT test_refuse_4242 CHECK (amount <> 4242) NOT VALID`;
  try {
    const r = await call(gw.url, 'POST', '/charge', { headers: { 'idempotency-key': key }, body });
    assert.equal(r.status, 503);
    assert.equal(r.body?.code, 'db_unavailable');
  } finally {
    await db.sql`ALTER TABLE charges DROP CONSTRAINT test_refuse_4242`;
  }
  let lines: Record<string, unknown>[] = [];
  for (let i = 0; i < 50 && lines.length === 0; i++) {
    lines = gw.logLines().filter((l) => l.stage === 'claim');
    if (lines.length === 0) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(lines.length, 1, gw.logs());
  assert.equal(lines[0]!.level, 'error', 'levels are names');
  assert.equal(lines[0]!.key_hash, keyHash(key));
  assert.equal((lines[0]!.error as { code: string }).code, '23514');
  for (const leak of [key, 'tok_live_do_not_log', 'Jane Roe'])
    assert.ok(!gw.logs().includes(leak), `the gateway log holds ${leak}`);
  const scrape = (await call(gw.url, 'GET', '/metrics')).text;
  assert.match(scrape, /^bulwark_charge_errors_total\{stage="claim"\} 1$/m);
  // The key was never claimed: a retry now succeeds, charged once.
  assert.equal((await call(gw.url, 'POST', '/charge', { headers: { 'idempotency-key': key }, body })).status, 201);
});
