/**
 * Docs cannot drift from the committed lab report: every figure README.md
 * and docs/*.md mark as the report's is what docs/lab/report.json gives
 * (`npm run docs:figures` rewrites them), every marker resolves, and a
 * report that changes makes the marked figures differ, so this test fails
 * until the docs are regenerated from it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPORT_JSON, docFiles, fillFigures, resolve } from '../../scripts/report-figures.js';
import type { BenchReport } from '../../src/lab/report/types.js';

const committed = (): BenchReport => JSON.parse(readFileSync(REPORT_JSON, 'utf8')) as BenchReport;

describe('figures quoted from the committed report', () => {
  it('every marked figure in README.md and docs/*.md is what report.json gives (run `npm run docs:figures`)', () => {
    const report = committed();
    let markers = 0;
    for (const file of docFiles()) {
      const text = readFileSync(file, 'utf8');
      const f = fillFigures(text, report);
      assert.deepEqual(f.problems, [], `${path.basename(file)}: markers that do not resolve`);
      assert.equal(f.text, text, `${path.basename(file)} differs from docs/lab/report.json: run npm run docs:figures`);
      markers += f.markers;
    }
    // The docs that quote the lab (mechanisms, performance, readiness) do so through markers.
    assert.ok(markers >= 60, `${markers} marked figures`);
  });

  it('a changed report makes the marked docs differ: a figure, a check detail, the command', () => {
    const report = committed();
    const docs = docFiles().map((f) => readFileSync(f, 'utf8'));
    const differs = (r: BenchReport) => docs.some((t) => fillFigures(t, r).text !== t);
    assert.equal(differs(report), false);

    const timeouts = committed();
    const fastify = timeouts.scenarios
      .find((s) => s.scenario === 'overload')!
      .variants.find((v) => v.variant === 'baseline')!;
    fastify.phases.fault!.timeouts += 1;
    assert.ok(differs(timeouts), 'one more timeout in one phase');

    const detail = committed();
    const c = detail.scenarios
      .find((s) => s.scenario === 'slow-provider')!
      .checks.find((x) => x.name.includes('unrelated reads'))!;
    c.detail = c.detail.replace(/worst ([\d.]+) ms/, 'worst 36.0 ms');
    assert.ok(differs(detail), 'a check measured another worst read p99');

    const command = committed();
    command.command = 'bulwark bench --out docs/lab';
    assert.ok(differs(command), 'another command');
  });

  it('resolves each kind of query, formats as the docs write numbers, and names what is missing', () => {
    const r: BenchReport = {
      ...committed(),
      command: 'bulwark bench',
      git_commit: 'abcdef0123456789abcdef0123456789abcdef01',
      started_at: '2026-01-01T00:00:00.000Z',
      finished_at: '2026-01-01T00:30:30.000Z',
    };
    assert.equal(resolve(r, 'command'), 'bulwark bench');
    assert.equal(resolve(r, 'commit'), 'abcdef0');
    assert.equal(resolve(r, 'minutes'), '30.5');
    const text = 'x <!-- report: v:capacity:gateway:totals.offered:int -->0<!-- /report --> y';
    const offered = r.scenarios.find((s) => s.scenario === 'capacity')!.variants[0]!.totals.offered;
    assert.ok(offered >= 1000);
    const want = String(offered).replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
    assert.equal(
      fillFigures(text, r).text,
      `x <!-- report: v:capacity:gateway:totals.offered:int -->${want}<!-- /report --> y`,
    );
    assert.match(resolve(r, 'v:overload:gateway:good_pct:1'), /^\d+\.\d$/);
    // A check's figure, rounded to 0 decimals as `| 0` asks: -1.1 % growth reads -1, 6.9 % reads 7.
    const memory = r.scenarios
      .find((s) => s.scenario === 'overload')!
      .checks.find((c) => c.name.includes('memory flat'))!;
    const pct = Number(/\(([-\d.]+) %\)/.exec(memory.detail)![1]);
    assert.equal(resolve(r, 'check:overload:memory flat:\\((-?[\\d.]+) %\\) | 0'), pct.toFixed(0));
    // VARIANT@TEXT picks that variant's check, where TEXT alone finds the first variant's.
    const drains = r.scenarios
      .find((s) => s.scenario === 'deploy')!
      .checks.filter((c) => c.name.includes('every drain'));
    const durations = (name: string) =>
      /durations ([^;]+);/.exec(drains.find((c) => c.name.startsWith(`${name}: `))!.detail)![1];
    assert.equal(resolve(r, 'check:deploy:every drain:durations ([^;]+);'), durations(drains[0]!.name.split(':')[0]!));
    assert.equal(
      resolve(r, 'check:deploy:baseline-hardened@every drain:durations ([^;]+);'),
      durations('baseline-hardened'),
    );
    assert.equal(resolve(r, 'check:deploy:baseline@every drain:durations ([^;]+);'), durations('baseline'));
    // Phases named after fitted rates are reached by position: `#N` from the start, `#-N` from the end.
    const phases = r.scenarios.find((s) => s.scenario === 'capacity')!.variants[0]!.phases;
    const names = Object.keys(phases);
    assert.ok(names.length >= 3);
    assert.equal(resolve(r, 'phase:capacity:gateway:0'), names[0]);
    assert.equal(resolve(r, 'phase:capacity:gateway:-1'), names.at(-1));
    assert.equal(resolve(r, 'v:capacity:gateway:phases.#1.goodput_per_s'), String(phases[names[1]!]!.goodput_per_s));
    assert.equal(resolve(r, 'v:capacity:gateway:phases.#-1.p99_ms'), String(phases[names.at(-1)!]!.p99_ms));
    // A seeded scenario's spread: the min-median-max of each variant over its seeds.
    const spread = r.scenarios
      .find((s) => s.scenario === 'capacity')!
      .spread!.rows.find((x) => x.variant === 'gateway')!;
    assert.equal(resolve(r, 'spread:capacity:gateway:slo_good_pct.median:1'), spread.slo_good_pct.median.toFixed(1));
    for (const [q, why] of [
      ['spread:capacity:nobody:slo_good_pct.median', /no spread row nobody/],
      ['spread:cascade:gateway:slo_good_pct.median', /no spread row gateway in cascade/],
      ['check:deploy:nobody@every drain:(\\d)', /no check/],
      ['v:nope:gateway:totals.offered', /no scenario nope/],
      ['v:capacity:nobody:totals.offered', /no variant nobody/],
      ['v:capacity:gateway:totals.nothing', /no nothing/],
      ['v:capacity:gateway:phases.#99.p99_ms', /no entry #99 among/],
      ['phase:capacity:gateway:-99', /no entry #-99 among/],
      ['phase:capacity:gateway:last', /phase wants a number/],
      ['check:capacity:no such check:(x)', /no check/],
      ['check:overload:memory flat:(zzz)', /captures nothing/],
      ['v:capacity:gateway:label:int', /not a number/],
      ['what', /unknown query/],
    ] as const) {
      assert.throws(() => resolve(r, q), why, q);
      const f = fillFigures(`<!-- report: ${q} -->keep<!-- /report -->`, r);
      assert.equal(f.problems.length, 1, q);
      assert.equal(
        f.text,
        `<!-- report: ${q} -->keep<!-- /report -->`,
        'an unresolved figure is left for a person to see',
      );
    }
  });
});
