import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRandom } from '../../src/lib/random.js';
import { DEFAULT_SHEDDER, shed, type Signals } from '../../src/resilience/shedder.js';

const calm: Signals = { inFlight: 0, limit: 100, loopDelayMs: 5, utilization: 0.3, expectedMs: 1, remainingMs: 1000 };

test('a calm gateway admits everything', () => {
  const r = seededRandom(1);
  for (const cls of ['charge', 'read', 'quote'] as const) assert.equal(shed(cls, calm, r), null);
});

test('concurrency: charges may use the whole limit, reads 90 %, quotes 80 %', () => {
  const r = () => 0.99;
  const at = (inFlight: number) => ({ ...calm, inFlight });
  assert.equal(shed('charge', at(99), r), null);
  assert.equal(shed('charge', at(100), r), 'concurrency');
  assert.equal(shed('read', at(89), r), null);
  assert.equal(shed('read', at(90), r), 'concurrency');
  assert.equal(shed('quote', at(79), r), null);
  assert.equal(shed('quote', at(80), r), 'concurrency');
});

function shedShare(cls: 'charge' | 'read' | 'quote', s: Signals, n = 10_000): number {
  const r = seededRandom(7);
  let shedCount = 0;
  for (let i = 0; i < n; i++) if (shed(cls, s, r) === 'event_loop') shedCount++;
  return shedCount / n;
}

test('event-loop pressure sheds in proportion, quotes first, never everything', () => {
  const mild = { ...calm, loopDelayMs: DEFAULT_SHEDDER.loopDelayTargetMs + 50 }; // 25 % over the span
  assert.ok(Math.abs(shedShare('quote', mild) - 0.25) < 0.02);
  assert.ok(Math.abs(shedShare('charge', mild) - 0.125) < 0.02);
  const severe = { ...calm, loopDelayMs: 10_000, utilization: 1 };
  const q = shedShare('quote', severe);
  assert.ok(q > 0.93 && q < 0.97, `severe overload still admits ~5 %: shed ${q}`);
  assert.ok(shedShare('charge', severe) < 0.55);
});

test('sheds a request whose deadline is shorter than the expected queue wait, keeping a few probes', () => {
  const s = { ...calm, expectedMs: 300, remainingMs: 200 };
  const r = seededRandom(3);
  let n = 0;
  for (let i = 0; i < 10_000; i++) if (shed('charge', s, r) === 'deadline') n++;
  assert.ok(n / 10_000 > 0.93 && n / 10_000 < 0.97);
  assert.equal(shed('charge', { ...s, remainingMs: 301 }, r), null);
});

test('a charge the provider bulkhead could not seat within half its acquire timeout is shed as downstream; reads and quotes are not', () => {
  const r = () => 0.5;
  const budget = { downstreamBudgetMs: 100 };
  assert.equal(shed('charge', { ...calm, ...budget, downstreamWaitMs: 0 }, r), null);
  assert.equal(shed('charge', { ...calm, ...budget, downstreamWaitMs: 50 }, r), null);
  assert.equal(shed('charge', { ...calm, ...budget, downstreamWaitMs: 51 }, r), 'downstream');
  assert.equal(shed('charge', { ...calm, ...budget, downstreamWaitMs: Infinity }, r), 'downstream');
  // Less time left than the acquire timeout: the deadline is the budget.
  assert.equal(shed('charge', { ...calm, ...budget, downstreamWaitMs: 30, remainingMs: 40 }, r), 'downstream');
  assert.equal(shed('read', { ...calm, ...budget, downstreamWaitMs: Infinity }, r), null);
  assert.equal(shed('quote', { ...calm, ...budget, downstreamWaitMs: Infinity }, r), null);
  // No estimate given (bulkheads off): never shed for it.
  assert.equal(shed('charge', calm, r), null);
});

test("deadline floor: a charge with less time left than the provider's fastest recent answer is refused, every time", () => {
  const r = () => 0; // would admit every deadline probe: the floor takes no chance
  const floor = { ...calm, downstreamFloorMs: 50 };
  assert.equal(shed('charge', { ...floor, remainingMs: 49 }, r), 'deadline');
  assert.equal(shed('charge', { ...floor, remainingMs: 50 }, r), null, 'exactly the fastest answer may still make it');
  assert.equal(shed('charge', { ...floor, remainingMs: 1000 }, r), null, 'the default 1 s deadline is admitted');
  // Before the concurrency check: the reason says why the request cannot succeed at all.
  assert.equal(shed('charge', { ...floor, remainingMs: 20, inFlight: 1000 }, r), 'deadline');
  // Reads and quotes do not call the provider.
  assert.equal(shed('read', { ...floor, remainingMs: 20 }, r), null);
  // Nothing measured (0): no refusal on no evidence.
  assert.equal(shed('charge', { ...calm, downstreamFloorMs: 0, remainingMs: 1 }, r), null);
});

test('warmth (slow start) scales the loop and queue-wait shedding, never the concurrency cap, the deadline floor or the bulkhead estimate', () => {
  const severe: Signals = {
    ...calm,
    loopDelayMs: 10_000,
    utilization: 1,
    expectedMs: 5000,
    downstreamWaitMs: Infinity,
    downstreamBudgetMs: 100,
  };
  const share = (warmth: number) => {
    const r = seededRandom(5);
    let n = 0;
    for (let i = 0; i < 10_000; i++) if (shed('quote', { ...severe, warmth }, r) === 'event_loop') n++;
    return n / 10_000;
  };
  assert.equal(share(0), 0);
  assert.ok(Math.abs(share(0.5) - 0.475) < 0.02, `half warm: ${share(0.5)}`);
  assert.ok(Math.abs(share(1) - 0.95) < 0.02);
  // Cold: nothing shed on the loop or the queue wait, whatever the dice.
  for (const r of [() => 0, () => 0.5, () => 0.999])
    for (const cls of ['read', 'quote'] as const) assert.equal(shed(cls, { ...severe, warmth: 0 }, r), null);
  assert.equal(
    shed('charge', { ...severe, warmth: 0, downstreamWaitMs: 0 }, () => 0),
    null,
  );
  // The bulkhead estimate reads live counters: in force at once.
  assert.equal(
    shed('charge', { ...severe, warmth: 0 }, () => 0.999),
    'downstream',
  );
  assert.equal(
    shed('charge', { ...severe, warmth: 0, inFlight: 100 }, () => 0.5),
    'concurrency',
  );
  assert.equal(
    shed('charge', { ...severe, warmth: 0, downstreamFloorMs: 2000 }, () => 0.5),
    'deadline',
  );
  // Out of range values are clamped, not trusted.
  assert.equal(
    shed('quote', { ...severe, warmth: -3 }, () => 0),
    null,
  );
  assert.equal(
    shed('quote', { ...severe, warmth: 7 }, () => 0),
    'event_loop',
  );
});
