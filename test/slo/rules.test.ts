/**
 * The deploy files as Prometheus and Grafana will read them: promtool checks
 * and unit-tests the rules (the real binary; see test/support/system-tools.ts), the
 * committed rules file is what the generator prints for the defaults, other
 * SLO settings generate rules that promtool also accepts, and the dashboard
 * is an importable Grafana export whose SLO panels read series the rules
 * record. Metric names against a live gateway: integration.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_RULES_CONFIG, leLabelFor, renderRules } from '../../src/slo/index.js';
import { promtoolTool } from '../support/system-tools.js';
import {
  bulwarkNames,
  DASHBOARD_FILE,
  dashboardQueries,
  PROMETHEUS_CONFIG,
  promtool,
  recordedNames,
  RULES_FILE,
  RULES_TEST_FILE,
  runCli,
} from './tools.js';

const promtoolMissing = promtoolTool().skip;

let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'bulwark-slo-rules-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const show = (r: { code: number | null; stdout: string; stderr: string }) =>
  `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

describe('Prometheus rules', () => {
  it('promtool check rules accepts bulwark-rules.yml', { skip: promtoolMissing }, () => {
    const r = promtool(['check', 'rules', RULES_FILE]);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /SUCCESS: 22 rules found/, show(r));
  });

  it(
    'promtool test rules passes bulwark-rules.test.yml (burn scenarios, recorded ratios, saturation alerts)',
    { skip: promtoolMissing },
    () => {
      const r = promtool(['test', 'rules', RULES_TEST_FILE]);
      assert.equal(r.code, 0, show(r));
      assert.match(r.stdout, /SUCCESS/, show(r));
    },
  );

  it(
    'promtool check config accepts the example prometheus.yml and the rules it loads',
    { skip: promtoolMissing },
    () => {
      const r = promtool(['check', 'config', PROMETHEUS_CONFIG]);
      assert.equal(r.code, 0, show(r));
    },
  );

  it('the committed rules file is what `bulwark slo rules` generates for the defaults', async () => {
    assert.equal(
      await readFile(RULES_FILE, 'utf8'),
      renderRules(DEFAULT_RULES_CONFIG),
      'regenerate: node dist/src/cli/main.js slo rules > deploy/prometheus/bulwark-rules.yml',
    );
  });

  it(
    'other SLO settings generate rules promtool accepts, with the threshold bucket, budget and window they ask for',
    { skip: promtoolMissing },
    async () => {
      const text = renderRules({
        objective: 0.995,
        latencyThresholdMs: 250,
        windowDays: 30,
        job: 'payments',
        runbookUrl: 'https://runbooks.example/bulwark',
      });
      assert.match(text, /le="0\.25"/);
      assert.doesNotMatch(text, /le="0\.3"/);
      assert.match(text, /job:bulwark_charge_slo_errors:ratio_rate5m \/ 0\.005$/m);
      assert.match(text, /\[30d\]/);
      assert.match(text, /expr: 1 - job:bulwark_charge_slo_burn:rate30d$/m);
      assert.match(text, /up\{job="payments"\} == 0/);
      assert.match(text, /runbook_url: "https:\/\/runbooks\.example\/bulwark#charge-slo-fast-burn"/);
      const file = path.join(tmp, 'variant.yml');
      await writeFile(file, text);
      const r = promtool(['check', 'rules', file]);
      assert.equal(r.code, 0, show(r));
    },
  );

  it('every alert links its runbook section by an absolute URL; a relative one is refused', async () => {
    const links = [...(await readFile(RULES_FILE, 'utf8')).matchAll(/runbook_url: "([^"]+)"/g)].map((m) => m[1]!);
    assert.ok(links.length >= 9, `${links.length} runbook links`);
    for (const l of links) assert.match(l, /^https?:\/\/[^#\s]+#[a-z0-9-]+$/, l);
    const r = await runCli(['slo', 'rules', '--runbook-url', 'docs/runbook.md']);
    assert.equal(r.code, 2, show(r));
    assert.match(r.stderr, /--runbook-url must be an absolute http\(s\) URL/);
  });

  it('a threshold between histogram bounds is refused: the SLI would be a guess', () => {
    assert.equal(leLabelFor(300), '0.3');
    assert.equal(leLabelFor(2.5), '0.0025');
    assert.throws(() => leLabelFor(200), /must be a histogram bucket bound, one of 1, 2\.5, 5, .*300.*; got 200/);
  });
});

describe('Grafana dashboard', () => {
  interface Panel {
    id: number;
    type: string;
    title: string;
    datasource?: { type: string; uid: string };
    gridPos?: { h: number; w: number; x: number; y: number };
    targets?: { expr: string; refId: string; datasource?: { uid: string } }[];
    panels?: Panel[];
  }
  let d: {
    schemaVersion: number;
    uid: string;
    __inputs?: unknown;
    panels: Panel[];
    templating: { list: { name: string; type: string; query?: unknown; datasource?: { uid: string } }[] };
  };
  before(async () => {
    d = JSON.parse(await readFile(DASHBOARD_FILE, 'utf8')) as typeof d;
  });

  it('loads by file provisioning: no import inputs, the Prometheus data source is the `datasource` variable everywhere', async () => {
    assert.equal(d.schemaVersion, 39);
    assert.equal(d.uid, 'bulwark-gateway');
    assert.equal(d.__inputs, undefined, '__inputs makes a dashboard importable through the UI only');
    assert.doesNotMatch(await readFile(DASHBOARD_FILE, 'utf8'), /\$\{DS_[A-Z_]+\}/, 'no import placeholder is left');
    const ds = d.templating.list[0]!;
    assert.deepEqual([ds.name, ds.type, ds.query], ['datasource', 'datasource', 'prometheus']);
    const ids = new Set<number>();
    for (const p of d.panels) {
      assert.ok(!ids.has(p.id), `panel id ${p.id} used twice`);
      ids.add(p.id);
      assert.ok(p.gridPos && p.gridPos.x + p.gridPos.w <= 24, `${p.title}: gridPos within 24 columns`);
      if (p.type === 'row') continue;
      assert.equal(p.datasource?.uid, '${datasource}', `${p.title}: datasource`);
      assert.ok(p.targets && p.targets.length > 0, `${p.title}: has queries`);
      for (const t of p.targets) assert.equal(t.datasource?.uid, '${datasource}', `${p.title} ${t.refId}: datasource`);
    }
    for (const v of d.templating.list.slice(1)) assert.equal(v.datasource?.uid, '${datasource}', `variable ${v.name}`);
    const provisioning = parseYaml(
      await readFile(path.join(path.dirname(DASHBOARD_FILE), 'provisioning/dashboards.yaml'), 'utf8'),
    ) as { apiVersion: number; providers: { type: string; options: { path: string } }[] };
    assert.equal(provisioning.apiVersion, 1);
    assert.deepEqual(
      provisioning.providers.map((p) => p.type),
      ['file'],
    );
  });

  it('has the rows of docs/design.md §6: RED, saturation, breakers, retries, SLO', () => {
    const rows = d.panels.filter((p) => p.type === 'row').map((p) => p.title);
    assert.equal(rows.length, 5, rows.join(' | '));
    for (const [i, re] of [/^RED/, /^Saturation/, /^Breakers/, /^Retries/, /^SLO/].entries())
      assert.match(rows[i]!, re);
    const exprs = dashboardQueries(d)
      .map((q) => q.expr)
      .join('\n');
    for (const q of ['0.5', '0.9', '0.99', '0.999'])
      assert.ok(
        exprs.includes(
          `histogram_quantile(${q}, sum by (le, route) (rate(bulwark_http_request_duration_seconds_bucket`,
        ),
        `p${q} per route`,
      );
    for (const w of ['5m', '30m', '1h', '6h', '3d', '28d'])
      assert.ok(exprs.includes(`job:bulwark_charge_slo_burn:rate${w}`), `burn rate ${w}`);
    assert.ok(exprs.includes('job:bulwark_charge_slo_error_budget:remaining_ratio'));
  });

  it('reads only recorded series the rules file defines', async () => {
    const recorded = recordedNames(await readFile(RULES_FILE, 'utf8'));
    for (const { panel, expr } of dashboardQueries(d)) {
      for (const name of bulwarkNames(expr))
        if (name.includes(':')) assert.ok(recorded.has(name), `${panel}: ${name} is not recorded by bulwark-rules.yml`);
    }
  });
});
