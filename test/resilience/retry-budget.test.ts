import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initRetryBudgetRegion, RetryBudget, RETRY_BUDGET_REGION } from '../../src/resilience/retry-budget.js';
import { localRegion } from '../../src/shm/regions.js';

function make(ratio: number, minPerSecond: number, maxTokens: number, now = 0) {
  const r = localRegion(RETRY_BUDGET_REGION);
  const c = { ratio, minPerSecond, maxTokens };
  initRetryBudgetRegion(r, c, now);
  return new RetryBudget(r, c);
}

test('retries are capped at the ratio of first attempts once the bank is spent', () => {
  const b = make(0.2, 0, 1);
  assert.equal(b.tryWithdraw(0), true, 'starts with a full (small) bank');
  assert.equal(b.tryWithdraw(0), false);
  let allowed = 0;
  for (let i = 0; i < 1000; i++) {
    b.deposit(0);
    if (b.tryWithdraw(0)) allowed++;
  }
  assert.ok(allowed >= 199 && allowed <= 200, `allowed ${allowed} retries for 1000 requests`);
  assert.deepEqual(
    { ...b.stats(), tokens: Math.round(b.stats().tokens * 10) / 10 },
    { tokens: 0, deposits: 1000, retries: allowed + 1, refused: 1000 - allowed + 1 },
  );
});

test('the floor trickles in with time; the bank is capped', () => {
  const b = make(0, 10, 5);
  for (let i = 0; i < 5; i++) assert.equal(b.tryWithdraw(0), true);
  assert.equal(b.tryWithdraw(0), false);
  assert.equal(b.tryWithdraw(99), false, '0.99 tokens after 99 ms');
  assert.equal(b.tryWithdraw(100), true, '1 token after 100 ms at 10/s');
  // A long calm spell banks at most maxTokens.
  let n = 0;
  while (b.tryWithdraw(3_600_000)) n++;
  assert.equal(n, 5);
});
