/**
 * `--seeds N` end to end: a headline scenario (one with a `headline`) runs
 * N times with seeds seed..seed+N-1 and its result carries the spread and
 * the checks judged over every seed (`seededChecks`, and the comparison
 * with the peers on the medians, in place of each run's own); a
 * scenario without one runs once and carries none. Two tiny scenarios
 * against the real gateway keep this short; the spread arithmetic itself
 * is tested in scenario-spread.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBench } from '../../src/lab/scenario/run/bench.js';
import type { ScenarioDefinition } from '../../src/lab/scenario/plan/definition.js';
import { goodputThrough } from '../../src/lab/scenario/plan/checks.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

function tiny(name: string, withHeadline: boolean): ScenarioDefinition {
  return {
    name,
    title: name,
    claim: 'a test scenario',
    plan: () => ({
      phases: [
        { name: 'warm-up', seconds: 2 },
        { name: 'recovery', seconds: 2 },
      ],
      load: { rate: 40, arrivals: 'poisson' },
      // A peer beside the gateway: compared over the seeds in the headline scenario, in its one run in the other.
      variants: ['gateway', 'baseline'],
    }),
    ...(withHeadline ? { headline: goodputThrough('warm-up') } : {}),
    checks: () => [{ name: 'always', passed: true, detail: '' }],
    // Called only for a repeated (headline) scenario, with every seed's runs.
    seededChecks: ({ seeded }) => [
      {
        name: 'over the seeds',
        passed: true,
        detail: seeded.map((x) => `${x.seed}:${x.runs.map((r) => r.result.variant).join('+')}`).join(' '),
      },
    ],
  };
}

test(
  '--seeds 3: the headline scenario runs three times (seeds 5, 6, 7) and carries the spread; the other runs once',
  { timeout: 600_000 },
  async () => {
    const logs: string[] = [];
    const { report } = await runBench([tiny('with-headline', true), tiny('without', false)], {
      mode: 'quick',
      command: 'test',
      seed: 5,
      seeds: 3,
      log: (m) => void logs.push(m),
    });
    const done = logs.filter((l) => /: done in/.test(l));
    assert.deepEqual(
      done.map((l) => l.replace(/: done in .*/, '')),
      ['with-headline (seed 5)', 'with-headline (seed 6)', 'with-headline (seed 7)', 'without'],
    );
    const [h, w] = report.scenarios;
    assert.equal(w!.spread, undefined);
    const sp = h!.spread!;
    assert.deepEqual(sp.seeds, [5, 6, 7]);
    assert.deepEqual(
      sp.checks_passed.map((c) => c.seed),
      [5, 6, 7],
    );
    // Every seed's audit checks (one per variant) plus the scenario's own; no one-run peer check.
    assert.ok(sp.checks_passed.every((c) => c.total === 3));
    assert.deepEqual(
      sp.rows.map((r) => r.variant),
      ['gateway', 'baseline'],
    );
    const row = sp.rows[0]!;
    assert.equal(row.variant, 'gateway');
    assert.equal(row.runs, 3);
    assert.ok(row.goodput_per_s.min <= row.goodput_per_s.median && row.goodput_per_s.median <= row.goodput_per_s.max);
    assert.ok(row.goodput_per_s.max > 0, 'charges were served');
    assert.ok(row.slo_good_pct.min >= 0 && row.slo_good_pct.max <= 100);
    assert.equal(typeof row.not_recovered, 'number', 'the scenario has a recovery phase');
    // The result shown in full is the first seed's, plus the checks judged over every seed.
    assert.equal(h!.checks.length, sp.checks_passed[0]!.total + 2);
    const peers = h!.checks.at(-2)!;
    assert.equal(peers.name, "gateway: over 3 seeds, the median SLO good % >= the best peer's median (less 1 point)");
    assert.match(
      peers.detail,
      /SLO good % by seed 5, 6, 7: gateway [\d.]+, [\d.]+, [\d.]+; baseline [\d.]+, [\d.]+, [\d.]+$/,
    );
    assert.deepEqual(h!.checks.at(-1), {
      name: 'over the seeds',
      passed: true,
      detail: '5:gateway+baseline 6:gateway+baseline 7:gateway+baseline',
    });
    // A scenario run once has no such check, and the runner compared its one run with the peer.
    assert.ok(!w!.checks.some((c) => c.name === 'over the seeds'));
    assert.deepEqual(
      w!.checks.filter((c) => /best peer/.test(c.name)).map((c) => c.name),
      ["gateway: SLO good % >= the best peer's (less 1 point)"],
    );
  },
);

test('--seeds must be a whole number from 1 to 20: one line, exit 2', () => {
  for (const bad of ['0', '21', 'two']) {
    const r = spawnSync(process.execPath, [CLI, 'scenario', 'capacity', '--seeds', bad], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /--seeds/);
  }
});
