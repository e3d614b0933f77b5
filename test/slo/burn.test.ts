/**
 * The SLO arithmetic with numbers worked out by hand, the result-file
 * contract and the gate's verdict. The burn figures of the SRE workbook
 * (14.4x for 1h, 6x for 6h, 1x for 3d of a 30-day window spend 2 %, 5 % and
 * 10 % of the budget) are the anchor: if they do not come out, nothing does.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LoadResult } from '../../src/lab/load/types.js';
import {
  computeBurn,
  errorBudget,
  gateVerdict,
  formatShare,
  parseLoadTestResult,
  ResultError,
  sliCountsOf,
  type SloResultBlock,
} from '../../src/slo/index.js';

const close = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-12 * Math.max(1, Math.abs(expected)), `${what}: ${actual} ≠ ${expected}`);
const SLO = { objective: 0.999, windowDays: 28 };

describe('computeBurn', () => {
  it('150 bad of 100 000 in an hour: error ratio 0.15 %, burn 1.5, 1.5/672 of the 28-day budget spent', () => {
    const b = computeBurn({ total: 100_000, good: 99_850, durationSeconds: 3600 }, SLO);
    assert.equal(b.bad, 150);
    close(b.errorRatio, 0.0015, 'errorRatio');
    assert.equal(b.errorBudget, 0.001);
    close(b.burnRate, 1.5, 'burnRate');
    // 28 days = 672 hours; an hour at 1.5x spends 1.5 of those 672 hours' worth.
    close(b.budgetConsumed, 1.5 / 672, 'budgetConsumed');
    close(b.remainingAfterRun, 1 - 1.5 / 672, 'remainingAfterRun');
    // A whole window at 1.5x overspends by half a budget.
    close(b.projectedRemaining, -0.5, 'projectedRemaining');
    // 2 419 200 s / 1.5 = 1 612 800 s = 18.67 days.
    close(b.exhaustionSeconds, 1_612_800, 'exhaustionSeconds');
  });

  it('reproduces the workbook: 14.4x for 1h, 6x for 6h, 1x for 3d spend 2 %, 5 %, 10 % of a 30-day budget', () => {
    const slo30 = { objective: 0.999, windowDays: 30 };
    // 14.4x = 1.44 % bad; 6x = 0.6 %; 1x = 0.1 %.
    close(
      computeBurn({ total: 10_000, good: 9_856, durationSeconds: 3600 }, slo30).budgetConsumed,
      0.02,
      '14.4x for 1h',
    );
    close(
      computeBurn({ total: 10_000, good: 9_940, durationSeconds: 6 * 3600 }, slo30).budgetConsumed,
      0.05,
      '6x for 6h',
    );
    close(
      computeBurn({ total: 10_000, good: 9_990, durationSeconds: 3 * 86_400 }, slo30).budgetConsumed,
      0.1,
      '1x for 3d',
    );
  });

  it('a burn of 1 spends exactly one budget over the window and lasts exactly the window', () => {
    const b = computeBurn(
      { total: 1000, good: 990, durationSeconds: 28 * 86_400 },
      { objective: 0.99, windowDays: 28 },
    );
    assert.equal(b.errorBudget, 0.01);
    close(b.burnRate, 1, 'burnRate');
    close(b.budgetConsumed, 1, 'budgetConsumed');
    close(b.remainingAfterRun, 0, 'remainingAfterRun');
    close(b.projectedRemaining, 0, 'projectedRemaining');
    close(b.exhaustionSeconds, 28 * 86_400, 'exhaustionSeconds');
  });

  it('every request bad: burn 1000 at 99.9 %, the budget lasts 40 minutes 19.2 s of a 28-day window', () => {
    const b = computeBurn({ total: 10, good: 0, durationSeconds: 60 }, SLO);
    assert.equal(b.errorRatio, 1);
    close(b.burnRate, 1000, 'burnRate');
    close(b.exhaustionSeconds, 2419.2, 'exhaustionSeconds');
    close(b.budgetConsumed, 60 / 2419.2, 'budgetConsumed');
  });

  it('no requests spend nothing', () => {
    const b = computeBurn({ total: 0, good: 0, durationSeconds: 60 }, SLO);
    assert.deepEqual(
      [b.errorRatio, b.burnRate, b.budgetConsumed, b.remainingAfterRun, b.projectedRemaining, b.exhaustionSeconds],
      [0, 0, 0, 1, 1, Infinity],
    );
  });

  it('the budget is 1 − objective without binary noise', () => {
    assert.equal(errorBudget(0.999), 0.001);
    assert.equal(errorBudget(0.9995), 0.0005);
    assert.equal(errorBudget(0.99), 0.01);
  });

  it('refuses inputs that would give a meaningless burn, naming them', () => {
    assert.throws(
      () => computeBurn({ total: 10, good: 11, durationSeconds: 1 }, SLO),
      /good must be a finite number from 0 to total \(10\); got 11/,
    );
    assert.throws(() => computeBurn({ total: -1, good: 0, durationSeconds: 1 }, SLO), /total must be/);
    assert.throws(
      () => computeBurn({ total: 1, good: 1, durationSeconds: 0 }, SLO),
      /durationSeconds must be a finite number > 0; got 0/,
    );
    assert.throws(
      () => computeBurn({ total: 1, good: 1, durationSeconds: 1 }, { objective: 1, windowDays: 28 }),
      /objective must be a number greater than 0 and less than 1; got 1/,
    );
    assert.throws(
      () => computeBurn({ total: 1, good: 1, durationSeconds: 1 }, { objective: 0.999, windowDays: 0 }),
      /windowDays must be/,
    );
  });
});

describe('load-test result contract', () => {
  const block = { route: '/charge', total: 1000, good: 999, duration_seconds: 60 };

  it('accepts the slo block and ignores the rest of the report', () => {
    assert.deepEqual(parseLoadTestResult({ scenario: 'provider-slow', latencies: [1, 2], slo: block }), { slo: block });
    assert.deepEqual(
      parseLoadTestResult({ slo: { ...block, latency_threshold_ms: 300 } }).slo?.latency_threshold_ms,
      300,
    );
  });

  it('the load generator writes the contract: its slo block type-checks as one and validates', () => {
    // Compile-time: if `bulwark load` changes its slo block incompatibly, this file stops compiling.
    const written: LoadResult['slo'] = {
      route: '/charge',
      total: 150,
      good: 149,
      duration_seconds: 3,
      latency_threshold_ms: 300,
    };
    const contract: SloResultBlock = written;
    assert.deepEqual(parseLoadTestResult(JSON.parse(JSON.stringify({ run_id: 'r', totals: {}, slo: written }))), {
      slo: contract,
    });
  });

  it('a report without an slo block has none', () => {
    assert.deepEqual(parseLoadTestResult({ scenario: 'x' }), {});
  });

  const refuses = (value: unknown, field: string, message: RegExp) => {
    assert.throws(
      () => parseLoadTestResult(value),
      (e: unknown) => {
        assert.ok(e instanceof ResultError, String(e));
        assert.equal(e.field, field);
        assert.match(e.message, message);
        return true;
      },
    );
  };

  it('refuses anything else, naming the field', () => {
    refuses([block], '', /a result must be a JSON object; got an array/);
    refuses({ slo: 'all good' }, 'slo', /slo must be an object/);
    refuses(
      { slo: { ...block, durationSeconds: 60 } },
      'slo.durationSeconds',
      /slo\.durationSeconds is not a field of the slo block \(allowed: route, total, good, duration_seconds, latency_threshold_ms\)/,
    );
    refuses(
      { slo: { ...block, route: undefined } },
      'slo.route',
      /slo\.route must be a route path such as "\/charge"; got nothing/,
    );
    refuses({ slo: { ...block, total: 10.5 } }, 'slo.total', /slo\.total must be an integer >= 0; got 10\.5/);
    refuses({ slo: { ...block, total: '1000' } }, 'slo.total', /got "1000"/);
    refuses(
      { slo: { ...block, good: 1001 } },
      'slo.good',
      /slo\.good must be an integer from 0 to slo\.total \(1000\); got 1001/,
    );
    refuses(
      { slo: { ...block, duration_seconds: 0 } },
      'slo.duration_seconds',
      /slo\.duration_seconds must be a number > 0; got 0/,
    );
    refuses(
      { slo: { ...block, latency_threshold_ms: -5 } },
      'slo.latency_threshold_ms',
      /must be a number > 0; got -5/,
    );
  });

  it('counts judged at another latency threshold are refused, not silently compared', () => {
    assert.deepEqual(sliCountsOf(block, 300), { total: 1000, good: 999, durationSeconds: 60 });
    assert.throws(
      () => sliCountsOf({ ...block, latency_threshold_ms: 250 }, 300),
      /slo\.latency_threshold_ms is 250 ms but the SLO is judged at 300 ms/,
    );
    assert.throws(() => sliCountsOf(block, 250), /is 300 ms but the SLO is judged at 250 ms/);
  });
});

describe('gate verdict', () => {
  it('passes at the threshold and fails just under it, saying the numbers and the source', () => {
    assert.deepEqual(gateVerdict({ remaining: 0.25, minRemaining: 0.25, source: 'test' }), {
      pass: true,
      line: 'pass: error budget remaining 0.25 (25 %) is at or above the threshold 0.25; source: test',
    });
    assert.deepEqual(gateVerdict({ remaining: 0.2499996, minRemaining: 0.25, source: 'prometheus x' }), {
      pass: false,
      line: 'fail: error budget remaining 0.2499996 (24.99996 %) is below the threshold 0.25; source: prometheus x',
    });
  });

  it('an overspent budget fails any threshold', () => {
    assert.equal(gateVerdict({ remaining: -3.5, minRemaining: 0, source: 's' }).pass, false);
  });

  it('refuses NaN: no number is not a pass', () => {
    assert.throws(() => gateVerdict({ remaining: NaN, minRemaining: 0, source: 's' }), /NaN/);
  });

  it('formats shares with six significant digits, more only when six would hide why a gate failed', () => {
    assert.equal(formatShare(0.123456789), '0.123457');
    assert.equal(formatShare(-499), '-499');
    assert.equal(formatShare(1 / 3), '0.333333');
  });
});
