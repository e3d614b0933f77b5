import assert from 'node:assert/strict';
import { test } from 'node:test';
import { reconcileBacklog, type ReconcileReport } from '../../src/charge/reconciler.js';
import { every } from '../../src/runtime/process.js';

/** A pass over a backlog of `rows` expired charges; `finishes` says whether the provider answers. */
function backlog(
  rows: number,
  batch: number,
  finishes = true,
): { pass: () => Promise<ReconcileReport>; passes: () => number } {
  let left = rows;
  let passes = 0;
  return {
    passes: () => passes,
    pass: async () => {
      passes++;
      const leased = Math.min(batch, left);
      if (finishes) left -= leased;
      return finishes
        ? { leased, succeeded: leased, declined: 0, failed: 0, deferred: 0, needsAttention: 0 }
        : { leased, succeeded: 0, declined: 0, failed: 0, deferred: leased, needsAttention: 0 };
    },
  };
}

test('a backlog after an incident drains in one tick, pass after pass, with the totals summed', async () => {
  const b = backlog(230, 50);
  const r = await reconcileBacklog(b.pass, 50);
  assert.equal(b.passes(), 5);
  assert.deepEqual(r, { leased: 230, succeeded: 230, declined: 0, failed: 0, deferred: 0, needsAttention: 0 });
});

test('an exact multiple of the batch stops at the first empty pass', async () => {
  const b = backlog(100, 50);
  const r = await reconcileBacklog(b.pass, 50);
  assert.equal(b.passes(), 3);
  assert.equal(r.succeeded, 100);
});

test('while the provider still fails, one pass per tick: deferred rows are not churned', async () => {
  const b = backlog(1000, 50, false);
  const r = await reconcileBacklog(b.pass, 50);
  assert.equal(b.passes(), 1);
  assert.equal(r.deferred, 50);
});

test('one tick is bounded by maxPasses however large the backlog', async () => {
  const b = backlog(100_000, 50);
  const r = await reconcileBacklog(b.pass, 50, 7);
  assert.equal(b.passes(), 7);
  assert.equal(r.leased, 350);
});

test('a shutdown stops the backlog between passes: the drain waits for one pass, not for all of them', async () => {
  const b = backlog(10_000, 50);
  let stopping = false;
  const pass = async () => {
    const r = await b.pass();
    if (b.passes() === 3) stopping = true; // SIGTERM arrives during the third pass
    return r;
  };
  const r = await reconcileBacklog(pass, 50, 20, () => stopping);
  assert.equal(b.passes(), 3, 'the pass in progress finishes, no further one starts');
  assert.equal(r.leased, 150);
});

test("every(): a job sees stopping() turn true when stop() is called, and stop() waits for the job's current step", async () => {
  const seen: boolean[] = [];
  let release!: () => void;
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  const periodic = every(1, async (stopping) => {
    started();
    for (let step = 0; step < 1000 && !stopping(); step++) {
      seen.push(stopping());
      await new Promise<void>((r) => (release = r));
    }
  });
  await running;
  const stopped = periodic.stop();
  release();
  await stopped;
  assert.deepEqual(seen, [false], 'one step ran; the loop saw the stop before its second');
});
