/**
 * The check building blocks that compare the gateway with its peers and
 * measure a capacity: the gateway must hold the best peer's SLO good %
 * (within the tolerance), mechanisms off is no peer, a run without peers
 * gets no check rather than a pass; a capacity is the best sustained window
 * before a collapse, never a mean across it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  beatsPeersCheck,
  beatsPeersOverSeedsCheck,
  bestWindowGoodput,
  peerRuns,
} from '../../src/lab/scenario/plan/checks.js';
import type { VariantRun } from '../../src/lab/scenario/plan/definition.js';
import type { Phase, TimelinePoint } from '../../src/lab/report/types.js';
import {
  belowCeilingCheck,
  ladderReachedCheck,
  p99OverSeedsCheck,
} from '../../src/lab/scenario/plan/scenarios/capacity.js';

function run(variant: string, good: number, total = 1000, goodput = 100): VariantRun {
  return {
    result: { variant, slo: { total, good }, totals: { goodput_per_s: goodput }, timeline: [] },
  } as unknown as VariantRun;
}

const points = (goodputs: readonly number[], from = 0): TimelinePoint[] =>
  goodputs.map((goodput, i) => ({ t: from + i, offered: 600, goodput, p99_ms: 1, rate_503: 0, timeouts: 0 }));

describe("gateway's SLO good % against the best peer", () => {
  it('fails when a peer is ahead by more than the tolerance, naming it and the margin', () => {
    const [c] = beatsPeersCheck([
      run('gateway', 741),
      run('gateway-off', 386),
      run('baseline', 850),
      run('baseline-hardened', 877),
    ]);
    assert.equal(c!.passed, false);
    assert.match(c!.detail, /gateway 74\.1 % vs best peer baseline-hardened 87\.7 % \(-13\.6 points\)/);
    assert.match(c!.detail, /gateway-off 38\.6 %/);
  });

  it('passes within the tolerance and when ahead; a tolerance of 0 holds the gateway to strictly not behind', () => {
    assert.equal(beatsPeersCheck([run('gateway', 975), run('baseline', 984)])[0]!.passed, true);
    assert.equal(beatsPeersCheck([run('gateway', 975), run('baseline', 984)], 0)[0]!.passed, false);
    assert.equal(beatsPeersCheck([run('gateway', 975), run('baseline', 975)], 0)[0]!.passed, true);
    assert.equal(beatsPeersCheck([run('gateway', 975), run('baseline', 986)])[0]!.passed, false);
  });

  it('mechanisms off is the control, not a peer; any other variant is, whatever its name', () => {
    assert.deepEqual(
      peerRuns([run('gateway', 1), run('gateway-off', 1), run('baseline-cluster', 1), run('baseline-haproxy', 1)]).map(
        (r) => r.result.variant,
      ),
      ['baseline-cluster', 'baseline-haproxy'],
    );
    // Off far ahead does not fail the check: it answers another question (the before/after rows).
    assert.equal(
      beatsPeersCheck([run('gateway', 450), run('gateway-off', 530), run('baseline-haproxy', 440)])[0]!.passed,
      true,
    );
    assert.equal(
      beatsPeersCheck([run('gateway', 450), run('gateway-off', 530), run('baseline-haproxy', 470)])[0]!.passed,
      false,
    );
  });

  it('gives no check, not a pass, when there is nothing to compare', () => {
    assert.deepEqual(beatsPeersCheck([run('gateway', 900), run('gateway-off', 100)]), []);
    assert.deepEqual(beatsPeersCheck([run('baseline', 900)]), []);
  });

  it('a gateway whose SLO saw nothing fails', () => {
    assert.equal(beatsPeersCheck([run('gateway', 0, 0), run('baseline', 0, 10)])[0]!.passed, false);
  });
});

describe("over several seeds, the gateway's median SLO good % against the best peer's median", () => {
  const seeds = (...rounds: [number, number, number][]) =>
    rounds.map(([gw, fastify, hardened], i) => ({
      seed: i + 1,
      runs: [run('gateway', gw), run('gateway-off', 100), run('baseline', fastify), run('baseline-hardened', hardened)],
    }));

  it("passes on the medians when one seed's run alone would fail, and says every seed's figure", () => {
    // deploy on this machine: one seed where Fastify ran high, two where the gateway led.
    const [c] = beatsPeersOverSeedsCheck(seeds([793, 856, 700], [813, 741, 690], [834, 691, 705]));
    assert.equal(c!.passed, true);
    assert.equal(c!.name, "gateway: over 3 seeds, the median SLO good % >= the best peer's median (less 1 point)");
    assert.match(c!.detail, /gateway median 81\.3 % vs best peer baseline 74\.1 % \(7\.2 points\)/);
    assert.match(c!.detail, /baseline 85\.6, 74\.1, 69\.1/);
  });

  it("fails when the best peer's median is ahead by more than the tolerance, whichever peer that is", () => {
    const [c] = beatsPeersOverSeedsCheck(seeds([700, 740, 800], [710, 750, 812], [720, 760, 820]));
    assert.equal(c!.passed, false);
    assert.match(c!.detail, /best peer baseline-hardened 81\.2 %/);
    // Mechanisms off far ahead is the control, not a peer.
    assert.equal(
      beatsPeersOverSeedsCheck([
        { seed: 1, runs: [run('gateway', 500), run('gateway-off', 900), run('baseline', 490)] },
        { seed: 2, runs: [run('gateway', 510), run('gateway-off', 900), run('baseline', 495)] },
      ])[0]!.passed,
      true,
    );
  });

  it('counts the seeds a variant ran under, and one gateway run cannot pass it', () => {
    const [c] = beatsPeersOverSeedsCheck([
      { seed: 1, runs: [run('gateway', 900), run('baseline', 800)] },
      { seed: 2, runs: [run('baseline', 810)] },
    ]);
    assert.equal(c!.passed, false);
    assert.match(c!.detail, /gateway 90\.0 \(1 of 2 seeds\)/);
  });

  it('gives no check without the gateway and a peer', () => {
    assert.deepEqual(beatsPeersOverSeedsCheck([{ seed: 1, runs: [run('gateway', 900), run('gateway-off', 1)] }]), []);
    assert.deepEqual(beatsPeersOverSeedsCheck([{ seed: 1, runs: [run('baseline', 900)] }]), []);
  });
});

describe('capacity: the best sustained window before a collapse', () => {
  it("credits a collapsing variant with what it sustained, not its phase's mean", () => {
    // The timeline: ~395/s for two seconds, then 114, then 0 (the phase's mean was 127.8/s).
    const tl = points([395, 396, 114, 0, 0], 5);
    const w2 = bestWindowGoodput(tl, 5, 10, 2);
    assert.deepEqual(w2, { goodput: 395.5, from: 5 });
    const w3 = bestWindowGoodput(tl, 5, 10, 3);
    assert.equal(w3.from, 5);
    assert.ok(Math.abs(w3.goodput - (395 + 396 + 114) / 3) < 1e-9);
  });

  it('takes the best window anywhere in the range, only inside it, and a missing second as zero', () => {
    const tl = points([10, 10, 50, 60, 70, 10, 900]);
    assert.deepEqual(bestWindowGoodput(tl, 0, 6, 3), { goodput: 60, from: 2 });
    // t = 3 missing: the windows through it count a zero there.
    const gap = tl.filter((p) => p.t !== 3);
    assert.deepEqual(bestWindowGoodput(gap, 0, 6, 3), { goodput: 40, from: 2 });
  });

  it('a range shorter than the window is one window; an empty one is zero', () => {
    assert.deepEqual(bestWindowGoodput(points([100, 200]), 0, 2, 3), { goodput: 150, from: 0 });
    assert.deepEqual(bestWindowGoodput([], 0, 4, 3).goodput, 0);
  });
});

describe('capacity: what the protection costs below the ceiling', () => {
  const phases: Phase[] = [
    { name: 'warm-up', start_s: 0, end_s: 3 },
    { name: '800/s', start_s: 3, end_s: 6 },
    { name: '2400/s', start_s: 6, end_s: 9 },
  ];
  const capRun = (
    variant: string,
    p99: [number, number, number],
    shed: (t: number) => TimelinePoint['shed_reasons_per_s'],
  ) =>
    ({
      result: {
        variant,
        phases: { 'warm-up': { p99_ms: p99[0] }, '800/s': { p99_ms: p99[1] }, '2400/s': { p99_ms: p99[2] } },
        timeline: Array.from({ length: 9 }, (_, t) => {
          const reasons = shed(t);
          const n = Object.values(reasons ?? {}).reduce((a, b) => a + (b ?? 0), 0);
          return {
            t,
            offered: 1,
            goodput: 1,
            p99_ms: 1,
            rate_503: 0,
            timeouts: 0,
            shed_per_s: n,
            ...(reasons ? { shed_reasons_per_s: reasons } : {}),
          };
        }),
      },
    }) as unknown as VariantRun;
  const none = () => undefined;

  it('passes with no shed and p99 within 10 % of off below the ceiling, whatever happens above it', () => {
    const c = belowCeilingCheck(
      capRun('gateway', [20, 55, 900], (t) => (t >= 6 ? { downstream: 400 } : undefined)),
      capRun('gateway-off', [20, 50, 3000], none),
      phases,
      [200, 800, 2400],
      2000,
    );
    assert.equal(c.passed, true, c.detail);
    assert.match(c.detail, /800\/s: 0 shed, p99 55 vs 50 ms/);
    assert.doesNotMatch(c.detail, /2400/);
  });

  it('fails on one shed below the ceiling, naming its reason and step; the warm-up first second is not counted', () => {
    const c = belowCeilingCheck(
      capRun('gateway', [20, 50, 900], (t) => (t === 4 ? { concurrency: 1 } : t === 0 ? { event_loop: 9 } : undefined)),
      capRun('gateway-off', [20, 50, 3000], none),
      phases,
      [200, 800, 2400],
      2000,
    );
    assert.equal(c.passed, false);
    assert.match(c.detail, /warm-up: 0 shed/);
    assert.match(c.detail, /800\/s: 1 shed \(concurrency 1\)/);
  });

  it('fails when p99 is over 10 % above off at a step below the ceiling', () => {
    const c = belowCeilingCheck(
      capRun('gateway', [20, 56, 900], none),
      capRun('gateway-off', [20, 50, 3000], none),
      phases,
      [200, 800, 2400],
      2000,
    );
    assert.equal(c.passed, false);
    assert.match(c.detail, /800\/s: 0 shed, p99 56 vs 50 ms/);
  });
});

describe('capacity: whether the ladder reached the ceiling at all', () => {
  const top: Phase = { name: '2400/s', start_s: 10, end_s: 13 };
  const topRun = (offered: number, goodputs: readonly number[]) =>
    ({
      result: {
        variant: 'gateway',
        timeline: goodputs.map((goodput, i) => ({ ...points([goodput], 10 + i)[0]!, offered })),
      },
    }) as unknown as VariantRun;

  it('fails when the top step served what it offered: the checks below the ceiling then tested healthy load only', () => {
    // The committed bench at 35388a5: 2 417/s served of 2 400/s offered.
    const c = ladderReachedCheck(topRun(2400, [2410, 2430, 2411]), top);
    assert.equal(c.passed, false);
    assert.match(c.detail, /top step \(2400\/s\) 2417\.0\/s of 2400\.0\/s offered: no ceiling reached/);
  });

  it('passes when the top step served less than 95 % of it; the border is strict', () => {
    // The bench at 227301e: 1 889/s of 2 400/s.
    assert.equal(ladderReachedCheck(topRun(2400, [1889, 1889, 1889]), top).passed, true);
    assert.equal(ladderReachedCheck(topRun(2000, [1900, 1900, 1900]), top).passed, false);
    assert.equal(ladderReachedCheck(topRun(2000, [1899, 1899, 1899]), top).passed, true);
  });

  it('fails on a step that offered nothing', () => {
    assert.equal(ladderReachedCheck(topRun(0, [0, 0, 0]), top).passed, false);
  });
});

describe('capacity: the p99 comparison over the seeds of a bench', () => {
  const phases: Phase[] = [
    { name: 'warm-up', start_s: 0, end_s: 3 },
    { name: '800/s', start_s: 3, end_s: 6 },
    { name: '2400/s', start_s: 6, end_s: 9 },
  ];
  /** A run whose goodput follows the steps up to `top`; p99 per step; `shed` requests each second of the 800/s step. */
  const seedRun = (variant: string, p99: [number, number, number], top = 2000, shed = 0) =>
    ({
      result: {
        variant,
        phases: { 'warm-up': { p99_ms: p99[0] }, '800/s': { p99_ms: p99[1] }, '2400/s': { p99_ms: p99[2] } },
        timeline: Array.from({ length: 9 }, (_, t) => ({
          t,
          offered: 1,
          goodput: Math.min(top, [200, 800, 2400][Math.floor(t / 3)]!),
          p99_ms: 1,
          rate_503: 0,
          timeouts: 0,
          shed_per_s: t >= 3 && t < 6 ? shed : 0,
          ...(t >= 3 && t < 6 && shed > 0 ? { shed_reasons_per_s: { downstream: shed } } : {}),
        })),
      },
    }) as unknown as VariantRun;
  const seeds = (gw: readonly number[], off: readonly number[], tops: readonly number[] = [2000, 2000, 2000]) =>
    gw.map((g, i) => ({
      seed: i + 1,
      runs: [seedRun('gateway', [20, g, 900], tops[i]), seedRun('gateway-off', [20, off[i]!, 3000])],
    }));

  it('passes on the medians when one seed is an outlier that one run against one run would fail', () => {
    const [c] = p99OverSeedsCheck(seeds([55, 120, 52], [50, 48, 60]), phases, [200, 800, 2400]);
    assert.equal(c!.passed, true, c!.detail);
    assert.match(c!.name, /over 3 seeds/);
    assert.match(c!.detail, /800\/s: p99 55, 120, 52 vs 50, 48, 60 ms \(median 55 vs 50\), shed 0, 0, 0/);
    assert.doesNotMatch(c!.detail, /2400\/s/);
  });

  it('fails when the median is more than 10 % above the mechanisms-off build at a step below the ceiling', () => {
    const [c] = p99OverSeedsCheck(seeds([70, 72, 68], [50, 55, 60]), phases, [200, 800, 2400]);
    assert.equal(c!.passed, false);
    assert.match(c!.detail, /median 70 vs 55/);
  });

  it("judges only the steps below the lowest of the gateway's ceilings over the seeds, and names each seed's sheds", () => {
    // Seed 2's gateway tops out at 700/s: the 800/s step is not below every ceiling.
    const slow = seeds([90, 90, 90], [50, 50, 50], [2000, 700, 2000]);
    const [c] = p99OverSeedsCheck(slow, phases, [200, 800, 2400]);
    assert.equal(c!.passed, true, c!.detail);
    assert.match(c!.detail, /lowest gateway ceiling 700/);
    assert.doesNotMatch(c!.detail, /800\/s:/);
    const shedding = [1, 2].map((seed) => ({
      seed,
      runs: [seedRun('gateway', [20, 50, 900], 2000, seed === 2 ? 4 : 0), seedRun('gateway-off', [20, 50, 900])],
    }));
    assert.match(
      p99OverSeedsCheck(shedding, phases, [200, 800, 2400])[0]!.detail,
      /800\/s: .*shed 0, 12 \(downstream 12\)/,
    );
  });

  it('fails a step that one seed did not measure, rather than taking the median of the rest', () => {
    const gaps = seeds([50, 50, 50], [50, 50, 50]);
    (gaps[1]!.runs[1]!.result.phases as Record<string, unknown>)['800/s'] = {};
    const [c] = p99OverSeedsCheck(gaps, phases, [200, 800, 2400]);
    assert.equal(c!.passed, false);
    assert.match(c!.detail, /800\/s: p99 50, 50, 50 vs 50, n\/a, 50 ms \(median 50 vs n\/a\)/);
  });

  it('gives no check without the mechanisms-off build, and a failed one when only one seed ran both', () => {
    assert.deepEqual(
      p99OverSeedsCheck([{ seed: 1, runs: [seedRun('gateway', [1, 1, 1])] }], phases, [200, 800, 2400]),
      [],
    );
    const [c] = p99OverSeedsCheck(
      [seeds([50], [50])[0]!, { seed: 2, runs: [seedRun('gateway', [1, 1, 1])] }],
      phases,
      [200, 800, 2400],
    );
    assert.equal(c!.passed, false);
    assert.match(c!.detail, /only seed 1 ran both builds/);
  });
});
