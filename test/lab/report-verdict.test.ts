/**
 * The verdict a reader sees first: the scenario × variant table and "Where
 * bulwark loses" in words, on synthetic reports where the answer is known —
 * a peer that wins one scenario must be named there and only there, with
 * its margin; when nothing wins, the closest peer and margin are named (the
 * section is never empty); a difference the table cannot show is no win;
 * and any variant the report holds gets a column (peers are not a fixed list).
 * Then the chart files: written beside report.md, each one linked, each link
 * pointing at a file, stale charts removed, the HTML still self-contained.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { renderHtml, renderMarkdown } from '../../src/lab/report/render.js';
import { lossReport, notGoodText, verdictOf } from '../../src/lab/report/verdict-table.js';
import type { BenchReport, ScenarioResult, VariantName, VariantResult } from '../../src/lab/report/types.js';
import { writeReport } from '../../src/lab/scenario/write/report-files.js';
import { fixtureReport } from './fixtures/report-fixture.js';

interface Row {
  id: string;
  /** SLO good share 0..1. */
  good: number;
  goodput: number;
}

const LABELS: Record<string, string> = {
  gateway: 'bulwark (mechanisms on)',
  'gateway-off': 'bulwark (mechanisms off)',
  baseline: 'Fastify baseline',
  'baseline-cluster': 'Fastify ×2 (node:cluster)',
  'baseline-haproxy': 'Fastify ×2 behind HAProxy',
};

function variant(r: Row): VariantResult {
  const total = 10_000;
  const good = Math.round(r.good * total);
  return {
    variant: r.id as VariantName,
    label: LABELS[r.id] ?? r.id,
    timeline: [0, 1, 2].map((t) => ({ t, offered: 100, goodput: r.goodput, p99_ms: 10, rate_503: 0, timeouts: 0 })),
    phases: {},
    totals: {
      goodput_per_s: r.goodput,
      p99_ms: 10,
      rate_503: 0,
      timeouts: 0,
      offered: total,
      goodput: r.goodput * 100,
      p999_ms: 20,
    },
    audit: { client_final: total, duplicates: 0, lost: 0, pending: 0, findings: [] },
    slo: { total, good, error_ratio: 1 - good / total, burn_rate: 1 },
    events: [],
    behind_schedule: false,
  };
}

function scenario(name: string, rows: Row[]): ScenarioResult {
  return {
    scenario: name,
    title: name,
    claim: '',
    phases: [{ name: 'warm-up', start_s: 0, end_s: 3 }],
    variants: rows.map(variant),
    checks: [],
  };
}

function report(scenarios: ScenarioResult[]): BenchReport {
  return {
    machine: { cores: 2, cpu_model: 'cpu', memory_gib: 4, node: 'v20.0.0', platform: 'linux x64', date: 'd' },
    command: 'bulwark bench',
    started_at: 's',
    finished_at: 'f',
    scenarios,
  };
}

/** The Markdown section under a `## heading`, up to the next `## `. */
function section(md: string, heading: string): string {
  const at = md.indexOf(`\n## ${heading}\n`);
  assert.ok(at >= 0, `no section ${heading}`);
  const next = md.indexOf('\n## ', at + 4);
  return md.slice(at, next < 0 ? undefined : next);
}

const cells = (row: string): string[] =>
  row
    .trim()
    .replace(/^\||\|$/g, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());

describe('verdict table and where bulwark loses', () => {
  // A peer wins `deploy` only (on SLO good %, while bulwark keeps the goodput); bulwark wins everywhere else.
  const oneLoss = report([
    scenario('overload', [
      { id: 'gateway', good: 0.95, goodput: 390 },
      { id: 'gateway-off', good: 0.1, goodput: 40 },
      { id: 'baseline', good: 0.05, goodput: 20 },
      { id: 'baseline-haproxy', good: 0.4, goodput: 160 },
    ]),
    scenario('deploy', [
      { id: 'gateway', good: 0.741, goodput: 259 },
      { id: 'gateway-off', good: 0.386, goodput: 250 },
      { id: 'baseline', good: 0.7, goodput: 240 },
      { id: 'baseline-haproxy', good: 0.85, goodput: 255 },
    ]),
  ]);

  it('names the one peer that wins, in the scenario it wins, with the margin, and nowhere else', () => {
    const md = renderMarkdown(oneLoss);
    const words = section(md, 'Where bulwark loses');
    assert.match(words, /beaten in 1 of 2 scenarios/);
    assert.match(
      words,
      /In deploy, Fastify ×2 behind HAProxy is ahead on SLO good % \(85\.0 % vs bulwark's 74\.1 %, 10\.9 points more\)\./,
    );
    assert.doesNotMatch(words, /overload/);
    assert.doesNotMatch(words, /goodput \(/, 'bulwark kept the goodput in deploy: not a loss');
    assert.doesNotMatch(words, /Fastify baseline|mechanisms off\)/, 'only the winner is named');
    const html = renderHtml(oneLoss);
    assert.match(
      html,
      /In deploy, Fastify ×2 behind HAProxy is ahead on SLO good % \(85\.0 % vs bulwark&#39;s 74\.1 %/,
    );
  });

  it('opens the report: the verdict right after the header, before the checks and every scenario', () => {
    const md = renderMarkdown(oneLoss);
    const order = ['## Verdict', '## Where bulwark loses', '## Summary', '## overload'].map((h) =>
      md.indexOf(`\n${h}\n`),
    );
    assert.ok(
      order.every((x, i) => x > 0 && (i === 0 || x > order[i - 1]!)),
      `order ${order.join(', ')}`,
    );
    assert.ok(md.indexOf('## Verdict') > md.indexOf('Started s, finished f.'));
    const html = renderHtml(oneLoss);
    const h = ['id="verdict"', 'id="losses"', 'id="summary"', 'class="scenario"'].map((x) => html.indexOf(x));
    assert.ok(
      h.every((x, i) => x > 0 && (i === 0 || x > h[i - 1]!)),
      `order ${h.join(', ')}`,
    );
  });

  it('has a column per variant present, best of each row in bold per metric', () => {
    const md = renderMarkdown(oneLoss);
    const lines = section(md, 'Verdict')
      .split('\n')
      .filter((l) => l.startsWith('|'));
    assert.deepEqual(cells(lines[0]!), [
      'Scenario',
      'bulwark (mechanisms on)',
      'bulwark (mechanisms off)',
      'Fastify baseline',
      'Fastify ×2 behind HAProxy',
    ]);
    assert.deepEqual(cells(lines[2]!), [
      'overload',
      '**95.0 %** · **390/s**',
      '10.0 % · 40/s',
      '5.0 % · 20/s',
      '40.0 % · 160/s',
    ]);
    assert.deepEqual(cells(lines[3]!), [
      'deploy',
      '74.1 % · **259/s**',
      '38.6 % · 250/s',
      '70.0 % · 240/s',
      '**85.0 %** · 255/s',
    ]);
  });

  it('takes the gateway first whatever the order, and leaves a missing variant as a dash', () => {
    const r = report([
      scenario('capacity', [
        { id: 'baseline-cluster', good: 0.9, goodput: 900 },
        { id: 'gateway', good: 0.99, goodput: 1000 },
      ]),
      scenario('rolling-restart', [
        { id: 'gateway', good: 0.975, goodput: 200 },
        { id: 'baseline', good: 0.984, goodput: 200 },
      ]),
    ]);
    const v = verdictOf(r);
    assert.deepEqual(
      v.variants.map((x) => x.id),
      ['gateway', 'baseline-cluster', 'baseline'],
    );
    const lines = section(renderMarkdown(r), 'Verdict')
      .split('\n')
      .filter((l) => l.startsWith('|'));
    assert.deepEqual(cells(lines[3]!), ['rolling-restart', '97.5 % · **200/s**', '—', '**98.4 %** · **200/s**']);
    // A goodput tie is no loss; the SLO good % is.
    assert.deepEqual(
      v.losses.map((c) => [c.scenario, c.peer, c.metric, c.margin]),
      [['rolling-restart', 'baseline', 'good', 0.9]],
    );
  });

  it('when nothing beats bulwark, says so and names the closest peer and its margin', () => {
    const r = report([
      scenario('overload', [
        { id: 'gateway', good: 0.95, goodput: 390 },
        { id: 'baseline', good: 0.05, goodput: 20 },
      ]),
      scenario('deploy', [
        { id: 'gateway', good: 0.9, goodput: 300 },
        { id: 'baseline-cluster', good: 0.8, goodput: 297 },
        { id: 'baseline', good: 0.85, goodput: 250 },
      ]),
    ]);
    const words = section(renderMarkdown(r), 'Where bulwark loses');
    assert.match(
      words,
      /No peer beats bulwark \(mechanisms on\) on SLO good % or goodput in any scenario\. The closest is Fastify ×2 \(node:cluster\) in deploy, on goodput \(297\/s vs bulwark's 300\/s, 1\.0 % less\)\./,
    );
    assert.doesNotMatch(words, /^- /m, 'no list of losses');
    assert.match(renderHtml(r), /No peer beats bulwark/);
  });

  it('a difference the table cannot show is not a win', () => {
    const r = report([
      scenario('bulkhead', [
        { id: 'gateway', good: 0.9731, goodput: 200.2 },
        { id: 'baseline', good: 0.9734, goodput: 200.4 },
      ]),
    ]);
    const v = verdictOf(r);
    assert.deepEqual(v.losses, []);
    assert.equal(v.closest?.margin, 0);
    assert.match(
      lossReport(v).lead,
      /The closest is Fastify baseline in bulkhead, on (SLO good % \(97\.3 %|goodput \(200\/s) for both\)/,
    );
  });

  it('says what the losing charges met: the client side and what the service refused, in plain words', () => {
    const r = structuredClone(oneLoss);
    const gw = r.scenarios[1]!.variants.find((v) => v.variant === 'gateway')!;
    gw.not_good = {
      threshold_ms: 300,
      failed_5xx: 1_800,
      timeout: 40,
      error: 150,
      slow: 600,
      slow_after_retry: 450,
      shed: { concurrency: 900, event_loop: 0, deadline: 12, downstream: 5_200 },
      bulkhead_refusals: 300,
    };
    const words = section(renderMarkdown(r), 'Where bulwark loses');
    assert.match(
      words,
      /In deploy, .*10\.9 points more\)\. Of bulwark's 10,000 charges, 2,590 were not good: 1,800 ended in a 5xx, 40 got no answer in time, 150 ended in a connection error, 600 were answered over 300 ms \(450 of them on a retry\)\. The service shed 6,112 requests at admission \(5,200 on the provider bulkhead's expected wait, 900 on the concurrency limit, 12 on deadlines it could not meet\) and its provider bulkhead refused 300 calls\./,
    );
    assert.doesNotMatch(words, /event-loop/, 'a reason that shed nothing is left out');
    // A peer without /metrics: the client side only.
    delete gw.not_good.shed;
    delete gw.not_good.bulkhead_refusals;
    const clientOnly = lossReport(verdictOf(r)).items.join('\n');
    assert.match(clientOnly, /2,590 were not good: .*on a retry\)\.$/);
    assert.doesNotMatch(clientOnly, /shed/);
    // A report written before it was recorded: the loss alone, as before.
    assert.doesNotMatch(lossReport(verdictOf(oneLoss)).items.join('\n'), /were not good/);
  });

  it('counts of one and of none read as words', () => {
    const none = { concurrency: 0, event_loop: 0, deadline: 0, downstream: 0 };
    const base = { threshold_ms: 300, failed_5xx: 0, timeout: 0, error: 0, slow_after_retry: 0 };
    assert.equal(
      notGoodText(10, { ...base, slow: 1, shed: none, bulkhead_refusals: 0 }),
      "Of bulwark's 10 charges, 1 was not good: 1 was answered over 300 ms. The service shed no request at admission and its provider bulkhead refused no call.",
    );
    assert.equal(
      notGoodText(10, { ...base, slow: 0, shed: { ...none, deadline: 1 }, bulkhead_refusals: 1 }),
      "Every one of bulwark's 10 charges was good.",
    );
    assert.match(
      notGoodText(10, { ...base, failed_5xx: 1, slow: 0, shed: { ...none, deadline: 1 }, bulkhead_refusals: 1 }),
      /shed 1 request at admission \(1 on deadlines it could not meet\) and its provider bulkhead refused 1 call\.$/,
    );
  });

  it('a scenario run over several seeds is judged on the medians, and says so', () => {
    // Seed 1's run: Fastify ahead by 6.3 points. Over three seeds the gateway's median leads.
    const s = scenario('deploy', [
      { id: 'gateway', good: 0.793, goodput: 250 },
      { id: 'baseline', good: 0.856, goodput: 260 },
    ]);
    const median = (min: number, median: number, max: number) => ({ min, median, max });
    s.spread = {
      seeds: [1, 2, 3],
      checks_passed: [],
      rows: [
        {
          variant: 'gateway',
          runs: 3,
          goodput_per_s: median(240, 250, 260),
          slo_good_pct: median(79.3, 81.3, 83.4),
          run_goodput_per_s: median(250, 262, 270),
          recovery_s: null,
        },
        {
          variant: 'baseline',
          runs: 3,
          goodput_per_s: median(230, 240, 260),
          slo_good_pct: median(69.1, 74.1, 85.6),
          run_goodput_per_s: median(230, 241, 260),
          recovery_s: null,
        },
      ],
    };
    const seeded = report([s]);
    const v = verdictOf(seeded);
    assert.deepEqual(v.rows[0]!.seeds, [1, 2, 3]);
    assert.deepEqual(v.losses, []);
    assert.equal(v.rows[0]!.cells.baseline!.good, 0.741);
    const md = renderMarkdown(seeded);
    const row = section(md, 'Verdict')
      .split('\n')
      .find((l) => l.startsWith('| deploy'))!;
    assert.deepEqual(cells(row), ['deploy (median of 3 seeds)', '**81.3 %** · **262/s**', '74.1 % · 241/s']);
    assert.match(section(md, 'Verdict'), /several seeds shows the medians/);
    assert.match(renderHtml(seeded), />deploy \(median of 3 seeds\)</);

    // A loss on the medians names the run its not-good charges come from.
    s.spread.rows[1]!.slo_good_pct = median(80, 88, 90);
    s.variants[0]!.not_good = { failed_5xx: 5, timeout: 0, error: 0, slow: 0, slow_after_retry: 0, threshold_ms: 300 };
    const words = lossReport(verdictOf(report([s]))).items.join(' ');
    assert.match(
      words,
      /SLO good % \(88\.0 % vs bulwark's 81\.3 %, 6\.7 points more\)\. In seed 1's run: Of bulwark's/,
    );

    // An older report's spread, without the run's goodput: the first seed's run, as before.
    for (const r of s.spread.rows) delete r.run_goodput_per_s;
    const old = verdictOf(report([s]));
    assert.equal(old.rows[0]!.seeds, undefined);
    assert.equal(old.rows[0]!.cells.baseline!.good, 0.856);
  });

  it('a report without the gateway still says something', () => {
    const r = report([scenario('capacity', [{ id: 'baseline', good: 0.9, goodput: 900 }])]);
    assert.match(section(renderMarkdown(r), 'Where bulwark loses'), /nothing to compare/);
    assert.match(section(renderMarkdown(report([])), 'Verdict'), /No scenario ran/);
  });
});

describe('chart files beside report.md', () => {
  it('writes every chart as an SVG file that report.md links relatively, and removes stale ones', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bulwark-report-'));
    try {
      // A chart left by an earlier run of another scenario must not survive.
      await mkdir(path.join(dir, 'charts'));
      await writeFile(path.join(dir, 'charts', 'gone-goodput.svg'), '<svg/>');
      await writeFile(path.join(dir, 'charts', 'notes.txt'), 'kept: not a chart');
      const r = fixtureReport();
      const written = await writeReport(dir, r);
      const md = await readFile(written.markdown, 'utf8');
      const links = [...md.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]!);
      const withTimeline = r.scenarios.filter((s) => s.variants.some((v) => v.timeline.length > 0));
      assert.equal(links.length, withTimeline.length * 3);
      assert.deepEqual(
        links.filter((l) => !/^charts\/[a-z0-9-]+-(goodput|p99|503)\.svg$/.test(l)),
        [],
        'relative links into charts/',
      );
      assert.deepEqual(
        (await readdir(path.join(dir, 'charts'))).sort(),
        [...links.map((l) => path.basename(l)), 'notes.txt'].sort(),
      );
      for (const l of links) {
        const svg = await readFile(path.join(dir, l), 'utf8');
        assert.match(
          svg,
          /^<!-- Generated by bulwark [^\n]*do not edit[^\n]*-->\n<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/,
        );
        assert.match(svg, /<\/svg>\n$/);
        // XML forbids `--` inside a comment: an SVG file with one is not drawn at all.
        for (const [, body] of svg.matchAll(/<!--([\s\S]*?)-->/g)) assert.doesNotMatch(body!, /--/, `${l}: comment`);
        // The same drawing the HTML inlines (ids aside).
        assert.ok(svg.includes('<polyline') || svg.includes('<path'), `${l} draws lines`);
      }
      assert.match(md, /^<!-- Generated by bulwark [^\n]*do not edit/);
      const html = await readFile(written.html, 'utf8');
      assert.match(html, /^<!doctype html>\n<!-- Generated by bulwark [^\n]*do not edit/);
      assert.doesNotMatch(html, /charts\//, 'the HTML stays self-contained');
      assert.equal((html.match(/<svg [^>]*class="chart"/g) ?? []).length, links.length);
      // Same report again: same files, byte for byte.
      const before = await Promise.all(links.map((l) => readFile(path.join(dir, l), 'utf8')));
      await writeReport(dir, r);
      assert.deepEqual(await Promise.all(links.map((l) => readFile(path.join(dir, l), 'utf8'))), before);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps two scenarios of one name apart', async () => {
    const r = report([
      scenario('deploy', [{ id: 'gateway', good: 1, goodput: 1 }]),
      scenario('deploy', [{ id: 'gateway', good: 1, goodput: 2 }]),
    ]);
    const links = [...renderMarkdown(r).matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]!);
    assert.equal(new Set(links).size, 6);
  });
});
