/**
 * The reconciler and reaper timers of both servers: a pass that throws is
 * logged and counted and the timer keeps running; a failure that is not an
 * error of ours (the gateway's full worker queue) is neither; stop() waits
 * for the run in progress. Both servers run these timers through
 * startServiceTimers; each case runs with the gateway's options (counted,
 * queue-full expected) and the baseline's (logged only).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ReconcileReport } from '../../src/charge/reconciler.js';
import { systemClock } from '../../src/lib/clock.js';
import { ServiceState } from '../../src/service/state.js';
import { startServiceTimers, timerErrors, type ServiceJobs } from '../../src/service/timers.js';
import { isQueueFull } from '../../src/gateway/server.js';
import { capturedLogger } from '../support/log-capture.js';

const INTERVAL_MS = 10;
const SETTINGS = { reconcileIntervalMs: INTERVAL_MS, reapIntervalMs: INTERVAL_MS, reconcileBatch: 10 };
const REPORT: ReconcileReport = { leased: 1, succeeded: 1, declined: 0, failed: 0, deferred: 0, needsAttention: 0 };

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

for (const server of ['gateway', 'baseline'] as const) {
  void describe(`${server} timers`, () => {
    function setup(jobs: Partial<ServiceJobs>) {
      const { log, lines } = capturedLogger();
      const counted: string[] = [];
      const failed = timerErrors({
        clock: systemClock,
        log,
        ...(server === 'gateway' ? { count: (stage) => counted.push(stage), expected: isQueueFull } : {}),
      });
      const all: ServiceJobs = {
        ping: async () => true,
        reconcile: async () => ({ ...REPORT, leased: 0, succeeded: 0 }),
        reap: async () => 0,
        ...jobs,
      };
      const state = new ServiceState();
      return { state, start: () => startServiceTimers(SETTINGS, state, all, log, failed), lines, counted };
    }

    for (const stage of ['reconcile', 'reap'] as const) {
      test(`a ${stage} pass that throws is logged with its stage and message, counted, and the timer keeps running`, async () => {
        let runs = 0;
        const boom = async (): Promise<never> => {
          runs++;
          throw new Error(`pass ${runs} failed for key-secret-123`);
        };
        const h = setup(stage === 'reconcile' ? { reconcile: boom } : { reap: boom });
        const timers = await h.start();
        try {
          await until('five failed passes', () => runs >= 5);
        } finally {
          await timers.stop();
        }
        const errors = h.lines().filter((l) => l.msg === `${stage} failed`);
        assert.ok(errors.length >= 1, `logged: ${JSON.stringify(h.lines())}`);
        // Rate-limited like the charge path's reports: a dead database is not a log flood.
        assert.ok(errors.length <= 5, `at most 5 lines per 10 s: ${errors.length}`);
        assert.equal(errors[0]!.stage, stage);
        assert.equal((errors[0]!.error as { message: string }).message, 'pass 1 failed for key-secret-123');
        if (server === 'gateway') {
          assert.ok(h.counted.length >= 5, `every failed run counted: ${h.counted.length} of ${runs}`);
          assert.ok(h.counted.every((s) => s === stage));
        }
        const after = runs;
        await new Promise((r) => setTimeout(r, INTERVAL_MS * 5));
        assert.equal(runs, after, 'stop() ends the timer');
      });
    }

    test('a pass that fails then recovers goes on reporting its work', async () => {
      let runs = 0;
      const h = setup({
        reconcile: async () => {
          runs++;
          if (runs <= 2) throw new Error('database restarting');
          return runs === 3 ? REPORT : { ...REPORT, leased: 0, succeeded: 0 };
        },
      });
      const timers = await h.start();
      try {
        await until('the reconciler finished a charge after two failures', () =>
          h.lines().some((l) => l.msg === 'reconciler finished charges'),
        );
      } finally {
        await timers.stop();
      }
      assert.equal(h.lines().filter((l) => l.msg === 'reconcile failed').length, 2);
    });

    test('stop() waits for the pass in progress; the first database check has run when the timers start', async () => {
      let release!: () => void;
      let started = false;
      let pings = 0;
      const h = setup({
        ping: async () => {
          pings++;
          return true;
        },
        reap: () => {
          started = true;
          return new Promise<number>((r) => (release = () => r(3)));
        },
      });
      const timers = await h.start();
      assert.equal(pings, 1);
      assert.equal(h.state.readiness().status, 200);
      await until('a reap pass running', () => started);
      let stopped = false;
      const stopping = timers.stop().then(() => (stopped = true));
      await new Promise((r) => setTimeout(r, INTERVAL_MS * 3));
      assert.equal(stopped, false, 'stop() returned while a pass was still running');
      release();
      await stopping;
      assert.ok(h.lines().some((l) => l.msg === 'reaper pruned completed keys' && l.reaped === 3));
    });
  });
}

test('gateway: a full worker queue is overload, already shed and counted: neither logged nor counted as an error', async () => {
  const { log, lines } = capturedLogger();
  const counted: string[] = [];
  const failed = timerErrors({ clock: systemClock, log, count: (s) => counted.push(s), expected: isQueueFull });
  failed('reconcile')(new Error('Task queue is at limit'));
  failed('backlog')(new Error('worker exited with code: 1'));
  assert.deepEqual(counted, ['backlog']);
  assert.deepEqual(
    lines().map((l) => l.msg),
    ['backlog failed'],
  );
});
