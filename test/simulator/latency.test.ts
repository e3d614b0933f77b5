import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededRandom } from '../../src/lib/random.js';
import { sampleLatencyMs, type LatencyDist } from '../../src/simulator/latency.js';

function samples(d: LatencyDist, n = 20_000): number[] {
  const random = seededRandom(3);
  return Array.from({ length: n }, () => sampleLatencyMs(d, random));
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

void describe('sampleLatencyMs', () => {
  void it('fixed returns its value', () => {
    assert.equal(sampleLatencyMs({ dist: 'fixed', ms: 200 }, seededRandom(1)), 200);
  });

  void it('uniform stays within its bounds', () => {
    const xs = samples({ dist: 'uniform', minMs: 10, maxMs: 20 });
    assert.ok(xs.every((x) => x >= 10 && x <= 20));
    assert.ok(Math.abs(mean(xs) - 15) < 0.3);
  });

  void it('normal is centred on its mean and never negative', () => {
    const xs = samples({ dist: 'normal', meanMs: 100, stdDevMs: 10 });
    assert.ok(Math.abs(mean(xs) - 100) < 1);
    const wide = samples({ dist: 'normal', meanMs: 5, stdDevMs: 50 });
    assert.ok(wide.every((x) => x >= 0));
    assert.ok(wide.some((x) => x === 0));
  });

  void it('exponential has its mean', () => {
    assert.ok(Math.abs(mean(samples({ dist: 'exponential', meanMs: 50 })) - 50) < 2);
  });

  void it('lognormal has its median and a long tail', () => {
    const xs = samples({ dist: 'lognormal', medianMs: 40, sigma: 1 });
    assert.ok(Math.abs(median(xs) - 40) < 2);
    assert.ok(mean(xs) > 60, 'mean exceeds median for a right-skewed tail');
  });

  void it('replays exactly under a seed', () => {
    const d: LatencyDist = { dist: 'lognormal', medianMs: 40, sigma: 0.7 };
    assert.deepEqual(samples(d, 100), samples(d, 100));
  });
});
