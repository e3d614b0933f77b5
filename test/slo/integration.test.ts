/**
 * The observability chain end to end, with real processes: a gateway on a
 * real Postgres and the simulator, scraped every second by a real Prometheus
 * loading deploy/prometheus/bulwark-rules.yml. Charges succeed, then the
 * provider turns slow (4 s) until its breaker opens; what Prometheus then
 * holds — latency quantiles, breaker state, recorded burn, a pending page, the
 * remaining budget the gate reads — is read back through its HTTP API, as
 * Grafana and `bulwark slo gate` would. Every metric name the dashboard and
 * the rules use must exist in the gateway's live /metrics.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { queryInstant, type InstantSample } from '../../src/slo/index.js';
import { startSimulator, type Simulator } from '../../src/simulator/index.js';
import { call, until } from '../support/http.js';
import { startTestDb, type TestDb } from '../support/postgres.js';
import { clearFaults, setFaults } from '../support/simulator.js';
import { startTarget, type Target } from '../support/target.js';
import { prometheusTool } from '../support/system-tools.js';
import {
  bulwarkNames,
  DASHBOARD_FILE,
  dashboardQueries,
  exposedNames,
  prometheusBinary,
  recordedNames,
  RULES_FILE,
  runCli,
} from './tools.js';

let db: TestDb | undefined;
let sim: Simulator | undefined;
let gateway: Target | undefined;
let prom: ChildProcess | undefined;
let promLog = '';
let promUrl = '';
let tmp: string | undefined;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

let keySeq = 0;
const charge = (timeoutMs = 1000) =>
  call(gateway!.url, 'POST', '/charge', {
    headers: { 'idempotency-key': `slo-${process.pid}-${++keySeq}`, 'x-request-timeout-ms': String(timeoutMs) },
    body: { amount: 1000, currency: 'USD', source: 'tok_visa' },
    timeoutMs: 15_000,
  });

const query = (q: string): Promise<InstantSample[]> => queryInstant(promUrl, q, { timeoutMs: 3000 });
const withLogs = (e: unknown): never => {
  if (e instanceof Error) e.message += `\n--- prometheus log (tail) ---\n${promLog.slice(-3000)}`;
  throw e;
};

const prometheus = prometheusTool();

before(async () => {
  if (prometheus.skip) return;
  const promBin = prometheusBinary('prometheus'); // fails fast, with how to install it
  tmp = await mkdtemp(path.join(tmpdir(), 'bulwark-slo-prom-'));
  db = await startTestDb();
  sim = await startSimulator({ providerPort: 0, fxPort: 0 });
  gateway = await startTarget('gateway', {
    databaseUrl: db.url,
    providerUrl: sim.providerUrl,
    fxUrl: sim.fxUrl,
    // Five calls are enough to judge the provider; once open, stay open for the whole test.
    env: { BREAKER_MIN_CALLS: '5', BREAKER_OPEN_MS: '60000', RECONCILE_INTERVAL_MS: '600000' },
  });
  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  const config = path.join(tmp, 'prometheus.yml');
  await writeFile(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      '  evaluation_interval: 1s',
      'rule_files:',
      `  - ${JSON.stringify(RULES_FILE)}`,
      'scrape_configs:',
      '  - job_name: bulwark',
      '    metrics_path: /metrics',
      '    static_configs:',
      `      - targets: ['127.0.0.1:${gateway.port}']`,
      '',
    ].join('\n'),
  );
  prom = spawn(
    promBin,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${path.join(tmp, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const append = (d: Buffer) => {
    if (promLog.length < 200_000) promLog += d.toString();
  };
  prom.stdout!.on('data', append);
  prom.stderr!.on('data', append);
  const p = prom;
  await until(
    'prometheus ready',
    async () => {
      if (p.exitCode !== null || p.signalCode !== null)
        throw new Error(`prometheus exited (${p.exitCode ?? p.signalCode})`);
      const r = await fetch(`${promUrl}/-/ready`, { signal: AbortSignal.timeout(1000) });
      return r.status === 200;
    },
    20_000,
    100,
  ).catch(withLogs);
});

after(async () => {
  const errors: unknown[] = [];
  const attempt = async (f: () => Promise<unknown>) => {
    try {
      await f();
    } catch (e) {
      errors.push(e);
    }
  };
  await attempt(async () => {
    if (sim) await clearFaults(sim.providerUrl);
  });
  await attempt(async () => {
    const p = prom;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((resolve) => p.once('exit', resolve));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  });
  await attempt(async () => gateway?.stop('SIGTERM', 15_000));
  await attempt(async () => sim?.close());
  await attempt(async () => db?.close());
  await attempt(async () => tmp && rm(tmp, { recursive: true, force: true }));
  if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
});

describe('SLO observability against a live gateway and Prometheus', { skip: prometheus.skip }, () => {
  it('every metric the dashboard and the rules name is in a live /metrics scrape (or recorded by the rules)', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await charge()).status, 201);
    const scrape = await call(gateway!.url, 'GET', '/metrics');
    assert.equal(scrape.status, 200);
    const exposed = exposedNames(scrape.text);
    const rulesText = await readFile(RULES_FILE, 'utf8');
    const recorded = recordedNames(rulesText);
    const used: [string, string][] = [...bulwarkNames(rulesText)].map((n) => [n, 'bulwark-rules.yml']);
    const dashboard = JSON.parse(await readFile(DASHBOARD_FILE, 'utf8')) as unknown;
    for (const { panel, expr } of dashboardQueries(dashboard))
      for (const n of bulwarkNames(expr)) used.push([n, `dashboard panel "${panel}"`]);
    assert.ok(used.length > 40, `found ${used.length} names`);
    const missing = used.filter(([n]) => !exposed.has(n) && !recorded.has(n)).map(([n, where]) => `${n} (${where})`);
    assert.deepEqual([...new Set(missing)], [], 'names used but neither scraped nor recorded');
  });

  it('Prometheus scrapes the gateway, evaluates the rules, and sees the breaker open when the provider turns slow', async () => {
    try {
      await until('the gateway scraped', async () => (await query('up{job="bulwark"}'))[0]?.value === 1, 15_000, 200);
      for (let i = 0; i < 10; i++) assert.equal((await charge()).status, 201);
      await setFaults(sim!.providerUrl, { latencyMs: 4000 });
      // Waves of charges that time out on the provider until the breaker refuses one.
      const statuses: number[] = [];
      await until(
        'the provider breaker to open',
        async () => {
          const wave = await Promise.all(Array.from({ length: 8 }, () => charge()));
          statuses.push(...wave.map((r) => r.status));
          return wave.some((r) => r.body?.code === 'breaker_open');
        },
        20_000,
        0,
      );
      assert.ok(
        statuses.every((s) => s === 503 || s === 504),
        `statuses under the slow provider: ${statuses.join(',')}`,
      );

      const open = await until(
        'prometheus to see the open breaker',
        async () => {
          const r = await query('bulwark_breaker_state{downstream="provider",state="open"} == 1');
          return r.length === 1 && r;
        },
        15_000,
        250,
      );
      assert.equal(open[0]!.value, 1);
      assert.equal(open[0]!.labels.job, 'bulwark');

      const p99 = await until(
        'a /charge p99',
        async () => {
          const r = await query(
            'histogram_quantile(0.99, sum by (le) (rate(bulwark_http_request_duration_seconds_bucket{route="/charge"}[30s])))',
          );
          return r.length === 1 && Number.isFinite(r[0]!.value) && r[0]!.value > 0 && r[0]!.value;
        },
        15_000,
        250,
      );
      // The timed-out charges took about a second: p99 lands in the (0.5, 1] or (1, 2.5] bucket.
      assert.ok(p99 > 0.3 && p99 <= 2.5, `p99 ${p99} s`);

      // The recording rules see the burn: every window is far past 14.4x, so the fast page is pending (it needs 2m to fire).
      const burn = await until(
        'a recorded 5m burn rate past 14.4',
        async () => {
          const v = (await query('job:bulwark_charge_slo_burn:rate5m{job="bulwark"}'))[0]?.value;
          return v !== undefined && v > 14.4 && v;
        },
        15_000,
        250,
      );
      assert.ok(burn > 14.4, `5m burn ${burn}`);
      const pending = await until(
        'the fast-burn page pending',
        async () => {
          const r = await query('ALERTS{alertname="BulwarkChargeErrorBudgetFastBurn"}');
          return r.length === 1 && r[0]!;
        },
        15_000,
        250,
      );
      assert.deepEqual(
        [pending.labels.alertstate, pending.labels.severity, pending.labels.job],
        ['pending', 'page', 'bulwark'],
      );

      const rules = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as {
        data: { groups: { name: string; rules: { name: string; health: string; lastError?: string }[] }[] };
      };
      const unhealthy = rules.data.groups.flatMap((g) =>
        g.rules.filter((r) => r.health !== 'ok').map((r) => `${g.name}/${r.name}: ${r.health} ${r.lastError ?? ''}`),
      );
      assert.deepEqual(unhealthy, [], 'every rule evaluates without error');

      // The gate reads the same recorded budget: far overspent, so it fails the ship (1), and says why.
      await until(
        'the remaining budget recorded',
        async () =>
          ((await query('job:bulwark_charge_slo_error_budget:remaining_ratio{job="bulwark"}'))[0]?.value ?? 1) < 0.25,
        15_000,
        250,
      );
      const gate = await runCli(['slo', 'gate', '--prometheus', promUrl, '--min-remaining', '0.25']);
      assert.equal(gate.code, 1, `exit ${gate.code}\n${gate.stdout}${gate.stderr}`);
      assert.match(
        gate.stdout,
        new RegExp(
          `^slo gate: fail: error budget remaining -\\d+(\\.\\d+)? .* is below the threshold 0\\.25; source: prometheus ${promUrl}, job:bulwark_charge_slo_error_budget:remaining_ratio\\{job="bulwark"\\}\\n$`,
        ),
      );
    } catch (e) {
      withLogs(e);
    } finally {
      await clearFaults(sim!.providerUrl);
    }
  });

  it('every dashboard query is PromQL that Prometheus evaluates', async () => {
    const dashboard = JSON.parse(await readFile(DASHBOARD_FILE, 'utf8')) as unknown;
    const failures: string[] = [];
    for (const { panel, expr } of dashboardQueries(dashboard)) {
      const promql = expr
        .replace(/^label_values\((.*),\s*\w+\)$/s, '$1') // a Grafana variable query: its series selector
        .replaceAll('$__rate_interval', '1m')
        .replaceAll('$job', 'bulwark')
        .replaceAll('$instance', '.*')
        .replaceAll('$route', '.*');
      try {
        await query(promql);
      } catch (e) {
        failures.push(`${panel}: ${(e as Error).message}`);
      }
    }
    assert.deepEqual(failures, []);
  });
});
