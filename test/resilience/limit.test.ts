import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FixedLimit, GradientLimit, type GradientConfig } from '../../src/resilience/limit.js';

const c: GradientConfig = {
  initial: 50,
  min: 10,
  max: 500,
  smoothing: 0.2,
  tolerance: 1.5,
  longWindow: 100,
  shortWindow: 5,
};

test('grows while latency holds steady and the limit is in use', () => {
  const l = new GradientLimit(c);
  for (let i = 0; i < 200; i++) l.onSample(10, l.current, false);
  assert.ok(l.current > 100, `limit ${l.current}`);
  assert.ok(l.current <= 500);
});

test('does not grow when app-limited (little in flight)', () => {
  const l = new GradientLimit(c);
  for (let i = 0; i < 200; i++) l.onSample(10, 5, false);
  assert.equal(l.current, 50);
});

test('shrinks when latency rises, in steps, down to the minimum, never to zero', () => {
  const l = new GradientLimit(c);
  for (let i = 0; i < 100; i++) l.onSample(10, l.current, false);
  const before = l.current;
  const seen: number[] = [];
  for (let i = 0; i < 20; i++) {
    l.onSample(100, l.current, false);
    seen.push(l.current);
  }
  assert.ok(l.current < before / 2, `${before} → ${l.current}`);
  assert.ok(l.current >= 10);
  // A latency that stays high becomes the new baseline (Gradient2 reacts to
  // change, not to a level); a latency that keeps climbing keeps shrinking it.
  for (let rtt = 100; rtt < 10_000; rtt *= 1.2) l.onSample(rtt, l.current, false);
  assert.ok(l.current <= 15, `limit ${l.current}`);
  for (let i = 1; i < seen.length; i++)
    assert.ok(seen[i]! >= seen[i - 1]! * 0.85, 'no cliff: each step keeps at least 85 %');
});

test('drops count as overload; recovery brings the limit back up', () => {
  const l = new GradientLimit(c);
  for (let i = 0; i < 100; i++) l.onSample(10, l.current, false);
  for (let i = 0; i < 50; i++) l.onSample(10, l.current, true);
  const low = l.current;
  assert.ok(low < 100);
  for (let i = 0; i < 300; i++) l.onSample(10, l.current, false);
  assert.ok(l.current > low, `${low} → ${l.current}`);
});

test('fixed limit never moves', () => {
  const l = new FixedLimit(7);
  l.onSample(1000, 7, true);
  assert.equal(l.current, 7);
});
