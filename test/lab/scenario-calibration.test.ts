/**
 * Ladders fitted to the machine (src/lab/scenario/plan/calibration.ts): the
 * arithmetic with plain numbers, the plans capacity and cpu-overload build
 * from a calibration, and the runner end to end against the real gateway
 * with a tiny ramp (one calibration for every seed of a bench, the plan
 * given what it measured, the report saying so).
 */
import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { calibrationOf, fittedRates, rampPlan } from '../../src/lab/scenario/plan/calibration.js';
import type { Calibration, ScenarioDefinition, VariantRun } from '../../src/lab/scenario/plan/definition.js';
import { phasesOf } from '../../src/lab/scenario/run/runner.js';
import { runBench } from '../../src/lab/scenario/run/bench.js';
import { capacity } from '../../src/lab/scenario/plan/scenarios/capacity.js';
import { cpuOverload } from '../../src/lab/scenario/plan/scenarios/cpu-overload.js';
import { renderMarkdown } from '../../src/lab/report/render-md.js';
import type { TimelinePoint } from '../../src/lab/report/types.js';

function cal(ceiling: number, top = 6000): Calibration {
  return {
    ceiling_per_s: ceiling,
    top_per_s: top,
    top_served_per_s: Math.min(top, ceiling),
    reached: ceiling < 0.95 * top,
    generator_lag_max_ms: 12,
    ramp: 'test',
  };
}

const stepRates = (plan: ReturnType<ScenarioDefinition['plan']>) => plan.load.steps!.map((s) => s.rate);

describe('fitted rates', () => {
  it('are fractions of the ceiling rounded to 50, capped at the ramp top, strictly rising', () => {
    assert.deepEqual(fittedRates(cal(2000), [0.25, 0.5, 0.9, 1.15]), [500, 1000, 1800, 2300]);
    assert.deepEqual(fittedRates(cal(1234), [0.5]), [600]);
    // Capped at the top: a fraction that caps onto the rate before it is dropped.
    assert.deepEqual(fittedRates(cal(5000), [0.9, 1.15, 1.35]), [4500, 5750, 6000]);
    assert.deepEqual(fittedRates(cal(6000), [1, 1.2, 1.4]), [6000]);
    assert.deepEqual(fittedRates(cal(10, 6000), [0.1, 0.2]), [50]);
  });
});

describe('what the ramp measured', () => {
  const plan = rampPlan({ rates: [1000, 2000, 3000], stepSeconds: 2 });
  const phases = phasesOf(plan);
  const runOf = (goodputs: number[], lags: number[]): VariantRun => {
    const offered = [1000, 1000, 2000, 2000, 3000, 3000];
    const timeline: TimelinePoint[] = goodputs.map((goodput, t) => ({
      t,
      offered: offered[t]!,
      goodput,
      p99_ms: 5,
      rate_503: 0,
      timeouts: 0,
    }));
    return {
      result: { variant: 'gateway', timeline },
      load: { seconds: lags.map((lag_max_ms) => ({ generator: { lag_max_ms, cpu_ms: 100 } })) },
    } as unknown as VariantRun;
  };

  it('the ramp: the gateway alone, Poisson, each rate held its step', () => {
    assert.deepEqual(plan.variants, ['gateway']);
    assert.equal(plan.load.arrivals, 'poisson');
    assert.deepEqual(stepRates(plan), [1000, 2000, 3000]);
    assert.deepEqual(
      phases.map((p) => [p.name, p.start_s, p.end_s]),
      [
        ['ramp 1000/s', 0, 2],
        ['ramp 2000/s', 2, 4],
        ['ramp 3000/s', 4, 6],
      ],
    );
  });

  it('the ceiling is the best 2 s window; reached when the top step served < 95 % of its rate', () => {
    const c = calibrationOf(runOf([990, 1000, 1990, 2000, 2500, 2400], [3, 8, 41, 5]), phases);
    assert.equal(c.ceiling_per_s, 2450);
    assert.equal(c.top_per_s, 3000);
    assert.equal(c.top_served_per_s, 2450);
    assert.equal(c.reached, true);
    assert.equal(c.generator_lag_max_ms, 41);
    assert.match(c.ramp, /1000\/s, 2000\/s, 3000\/s × 2 s/);
  });

  it('a top step served in full is no ceiling reached', () => {
    const c = calibrationOf(runOf([990, 1000, 1990, 2000, 2990, 2980], []), phases);
    assert.equal(c.ceiling_per_s, 2985);
    assert.equal(c.reached, false);
    assert.equal(c.generator_lag_max_ms, null);
  });
});

describe('plans fitted to a calibration', () => {
  it('capacity: the warm-up at 200/s, then four steps below the ceiling and two past it', () => {
    assert.deepEqual(stepRates(capacity.plan('full', cal(4000))), [200, 1000, 2000, 3000, 3600, 4600, 5400]);
    assert.deepEqual(
      capacity.plan('full', cal(4000)).phases.map((p) => p.name),
      ['warm-up', '1000/s', '2000/s', '3000/s', '3600/s', '4600/s', '5400/s'],
    );
    // Past the ramp's reach the top steps stop at its top.
    assert.deepEqual(stepRates(capacity.plan('full', cal(6000))), [200, 1500, 3000, 4500, 5400, 6000]);
  });

  it('capacity: the fixed ladders without a calibration, in the quick form, and after a ramp that measured next to nothing', () => {
    const fixed = [200, 800, 1200, 1600, 2000, 2400];
    assert.deepEqual(stepRates(capacity.plan('full')), fixed);
    assert.deepEqual(stepRates(capacity.plan('full', cal(100))), fixed);
    // A slow machine's small ceiling is still fitted to.
    assert.deepEqual(stepRates(capacity.plan('full', cal(300))), [200, 250, 350, 400]);
    assert.deepEqual(stepRates(capacity.plan('quick', cal(4000))), [200, 800, 2000]);
  });

  it('cpu-overload: the ladder climbs past the ceiling and the surge is 1.6× it, within the ramp top', () => {
    const rates = stepRates(cpuOverload.plan('full', cal(2000)));
    // warm-up, six ladder steps, pre-surge, surge, recovery.
    assert.deepEqual(rates, [300, 400, 800, 1200, 1600, 2000, 2400, 300, 3200, 300]);
    const fast = stepRates(cpuOverload.plan('full', cal(5000)));
    assert.deepEqual(fast.slice(1, 7), [1000, 2000, 3000, 4000, 5000, 6000]);
    assert.equal(fast[8], 6000, 'capped at the ramp top: the generator is asked for no more');
    assert.equal(stepRates(cpuOverload.plan('full', cal(5500, 9000)))[8], 8800);
    assert.match(cpuOverload.plan('full', cal(2000)).phases.find((p) => p.name === 'fault')!.fault!.text, /3200\/s/);
  });

  it('cpu-overload: the fixed ladder and surge without a usable calibration', () => {
    const fixed = stepRates(cpuOverload.plan('full'));
    // warm-up, seven ladder steps, pre-surge, surge, recovery.
    assert.equal(fixed[9], 3600);
    assert.deepEqual(stepRates(cpuOverload.plan('full', cal(1000))), fixed, 'a ladder starting under the base rate');
  });
});

test(
  'a calibrated scenario ramps the gateway once per bench, plans every seed on what it measured, and the report says so',
  { timeout: 600_000 },
  async () => {
    const seen: (number | undefined)[] = [];
    const def: ScenarioDefinition = {
      name: 'fitted',
      title: 'fitted',
      claim: 'a test scenario',
      calibrate: { rates: [40, 80], stepSeconds: 2, modes: ['quick'] },
      plan: (_mode, c) => {
        seen.push(c?.ceiling_per_s);
        const rate = c ? Math.max(10, Math.round(c.ceiling_per_s / 2)) : 5;
        return {
          phases: [{ name: `step ${rate}/s`, seconds: 2 }],
          load: { rate, arrivals: 'poisson' },
          variants: ['gateway'],
        };
      },
      headline: () => ({ goodput_per_s: 1, recovery_s: null }),
      checks: ({ calibration }) => [
        {
          name: 'given the calibration',
          passed: calibration !== undefined,
          detail: String(calibration?.ceiling_per_s),
        },
      ],
    };
    const logs: string[] = [];
    const { report } = await runBench([def], {
      mode: 'quick',
      command: 'test',
      seed: 3,
      seeds: 2,
      log: (m) => void logs.push(m),
    });
    assert.equal(logs.filter((l) => /calibration ramp \(/.test(l)).length, 1, logs.join('\n'));
    const s = report.scenarios[0]!;
    const c = s.calibration!;
    assert.ok(c, 'the result carries the calibration');
    // 40/s then 80/s, far below any ceiling: the gateway served about what was offered.
    assert.ok(c.ceiling_per_s >= 30 && c.ceiling_per_s <= 100, `ceiling ${c.ceiling_per_s}`);
    assert.ok(c.top_per_s >= 60 && c.top_per_s <= 100, `top ${c.top_per_s}`);
    assert.equal(c.reached, false, 'a ramp the gateway served in full reached no ceiling');
    // Every plan after the ramp got the same calibration: seed 3's and seed 4's.
    assert.deepEqual(seen.slice(-2), [c.ceiling_per_s, c.ceiling_per_s]);
    assert.equal(s.phases[0]!.name, `step ${Math.max(10, Math.round(c.ceiling_per_s / 2))}/s`);
    assert.ok(s.checks.some((x) => x.name === 'given the calibration' && x.passed));
    assert.match(renderMarkdown(report), /\*\*Fitted to this machine:\*\* calibrated ceiling \d+\/s \(gateway alone/);
  },
);
