/**
 * The spread over seeds (`--seeds N`): min, median and max of each
 * variant's headline figures, with nothing dropped silently (a seed that
 * never recovered, a variant that did not run under every seed), and the
 * small table the Markdown and HTML reports show for it, and only for it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Headline, VariantRun } from '../../src/lab/scenario/plan/definition.js';
import type { Phase, ScenarioResult, VariantName } from '../../src/lab/report/types.js';
import { minMedianMax, spreadOf } from '../../src/lab/scenario/measure/spread.js';
import { spreadHtml, spreadMarkdown } from '../../src/lab/report/render-spread.js';
import { renderHtml, renderMarkdown } from '../../src/lab/report/render.js';
import { fixtureReport } from './fixtures/report-fixture.js';

test('minMedianMax: odd and even counts, order-free, empty is null', () => {
  assert.deepEqual(minMedianMax([3, 1, 2]), { min: 1, median: 2, max: 3 });
  assert.deepEqual(minMedianMax([40, 10, 30, 20]), { min: 10, median: 25, max: 40 });
  assert.deepEqual(minMedianMax([7]), { min: 7, median: 7, max: 7 });
  assert.equal(minMedianMax([]), null);
  const xs = [5, 3, 9];
  minMedianMax(xs);
  assert.deepEqual(xs, [5, 3, 9], 'the input is not sorted in place');
});

/** A run as far as the spread reads it: the variant, its SLO counts, its goodput (here half its headline's), and what the headline reads. */
function run(variant: VariantName, good: number, total: number, h: Headline): VariantRun {
  return {
    result: {
      variant,
      slo: { total, good, error_ratio: 0, burn_rate: 0 },
      totals: { goodput_per_s: h.goodput_per_s / 2 },
    },
    h,
  } as unknown as VariantRun;
}
const headline = (r: VariantRun) => (r as unknown as { h: Headline }).h;
const phases: Phase[] = [{ name: 'recovery', start_s: 0, end_s: 10 }];

test('spreadOf: per variant min-median-max over the seeds; never-recovered seeds and missing runs are counted, not dropped', () => {
  const s = spreadOf(
    [
      {
        seed: 1,
        runs: [
          run('gateway', 90, 100, { goodput_per_s: 1000, recovery_s: 2 }),
          run('baseline', 50, 100, { goodput_per_s: 400, recovery_s: null }),
        ],
        checks: [
          { name: 'a', passed: true },
          { name: 'b', passed: false },
        ],
      },
      {
        seed: 2,
        runs: [run('gateway', 80, 100, { goodput_per_s: 1200, recovery_s: 4 })],
        checks: [
          { name: 'a', passed: false },
          { name: 'b', passed: false },
        ],
      },
      {
        seed: 3,
        runs: [
          run('gateway', 99, 100, { goodput_per_s: 900, recovery_s: 3 }),
          run('baseline', 25, 50, { goodput_per_s: 600, recovery_s: 5 }),
        ],
        checks: [
          { name: 'a', passed: true },
          { name: 'b', passed: true },
        ],
      },
    ],
    phases,
    headline,
    true,
  );
  assert.deepEqual(s.seeds, [1, 2, 3]);
  assert.deepEqual(s.checks_passed, [
    { seed: 1, passed: 1, total: 2, failed: ['b'] },
    { seed: 2, passed: 0, total: 2, failed: ['a', 'b'] },
    { seed: 3, passed: 2, total: 2, failed: [] },
  ]);
  assert.deepEqual(s.rows, [
    {
      variant: 'gateway',
      runs: 3,
      goodput_per_s: { min: 900, median: 1000, max: 1200 },
      slo_good_pct: { min: 80, median: 90, max: 99 },
      run_goodput_per_s: { min: 450, median: 500, max: 600 },
      recovery_s: { min: 2, median: 3, max: 4 },
      not_recovered: 0,
    },
    {
      variant: 'baseline',
      runs: 2,
      goodput_per_s: { min: 400, median: 500, max: 600 },
      slo_good_pct: { min: 50, median: 50, max: 50 },
      run_goodput_per_s: { min: 200, median: 250, max: 300 },
      recovery_s: { min: 5, median: 5, max: 5 },
      not_recovered: 1,
    },
  ]);
  // A scenario without a recovery (capacity) has no not_recovered count to report.
  const cap = spreadOf(
    [
      { seed: 7, runs: [run('gateway', 1, 1, { goodput_per_s: 10, recovery_s: null })], checks: [] },
      { seed: 8, runs: [run('gateway', 0, 0, { goodput_per_s: 30, recovery_s: null })], checks: [] },
    ],
    [],
    headline,
    false,
  );
  assert.deepEqual(cap.rows, [
    {
      variant: 'gateway',
      runs: 2,
      goodput_per_s: { min: 10, median: 20, max: 30 },
      slo_good_pct: { min: 0, median: 50, max: 100 },
      run_goodput_per_s: { min: 5, median: 10, max: 15 },
      recovery_s: null,
    },
  ]);
});

function withSpread(): ScenarioResult {
  const s = structuredClone(fixtureReport().scenarios[0]!);
  s.spread = {
    seeds: [4, 5, 6],
    checks_passed: [
      { seed: 4, passed: 3, total: 3 },
      { seed: 5, passed: 2, total: 3, failed: ['gateway: the ladder reached its ceiling'] },
      { seed: 6, passed: 3, total: 3 },
    ],
    rows: [
      {
        variant: 'gateway',
        runs: 3,
        goodput_per_s: { min: 1234, median: 1500, max: 1620.5 },
        slo_good_pct: { min: 91.25, median: 95, max: 99 },
        recovery_s: { min: 1, median: 2, max: 3 },
        not_recovered: 0,
      },
      {
        variant: 'baseline',
        runs: 2,
        goodput_per_s: { min: 0, median: 5, max: 10 },
        slo_good_pct: { min: 0, median: 1, max: 2 },
        recovery_s: null,
        not_recovered: 2,
      },
    ],
  };
  return s;
}

test('the spread table: rendered with its seeds, ranges and per-seed checks; nothing for a single-seed run', () => {
  const s = withSpread();
  const md = spreadMarkdown(s).join('\n');
  assert.match(md, /^### Spread over seeds/);
  assert.match(md, /over 3 seeds \(4, 5, 6\)/);
  assert.match(md, /seed 5: 2\/3/);
  // A later seed's failures are named (the first seed's are in its own check table).
  assert.match(md, /Seed 5 failed: gateway: the ladder reached its ceiling\./);
  assert.ok(
    md.includes('| bulwark (mechanisms on) | 1,234 – 1,500 – 1,621 | 91.3% – 95.0% – 99.0% | 1 s – 2 s – 3 s |'),
    md,
  );
  assert.ok(
    md.includes(
      '| Fastify baseline (ran under 2 of 3 seeds) | 0 – 5.0 – 10 | 0.0% – 1.0% – 2.0% | — (2 not recovered) |',
    ),
    md,
  );
  const html = spreadHtml(s);
  assert.match(html, /<h3>Spread over seeds<\/h3>/);
  assert.match(html, /<td class="num">1 s – 2 s – 3 s<\/td>/);
  // The full renderers carry it, and a report without a spread (every committed one) renders exactly as before.
  const report = fixtureReport();
  const plainMd = renderMarkdown(report);
  const plainHtml = renderHtml(report);
  assert.doesNotMatch(plainMd, /Spread over seeds/);
  assert.doesNotMatch(plainHtml, /Spread over seeds/);
  report.scenarios[0] = s;
  assert.ok(renderMarkdown(report).includes(md));
  assert.ok(renderHtml(report).includes(html));
  // One seed is no spread.
  s.spread!.seeds = [4];
  assert.deepEqual(spreadMarkdown(s), []);
  assert.equal(spreadHtml(s), '');
  delete s.spread;
  assert.deepEqual(spreadMarkdown(s), []);
});
