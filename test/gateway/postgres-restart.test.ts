/**
 * Postgres stopped with an immediate stop under steady charge load and
 * started again (crash recovery): the running gateway, with its protection
 * on as deployed, serves 201s again within seconds of Postgres accepting
 * connections, by itself, without a restart.
 *
 * The trap: postgres.js schedules a closed connection's reconnect after a
 * backoff that grows with every failed connect across the pool (to 20 s),
 * so a pool that lost every connection at once and kept trying while the
 * server was down does not reconnect for 10-20 s after it is back, and
 * every statement waits its whole deadline meanwhile.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crashStack, immediateStop, postCharge } from '../support/crash.js';

/** Goodput must be back within this long after Postgres accepts connections (the crash scenario allows 5 s). */
const BACK_WITHIN_MS = 3000;
/** A window counts as served when this share of the charges sent in it got 201. */
const SERVED_SHARE = 0.8;
const WINDOW_MS = 500;

// The crash scenario's settings; mechanisms (adaptive limit, bulkheads, breakers) stay on.
const stack = crashStack('pg-restart', {
  MAX_REQUEST_TIMEOUT_MS: '2000',
  LEASE_MS: '2500',
  RECONCILE_INTERVAL_MS: '200',
});

interface Sent {
  at: number;
  status?: number;
}

/** Charges at a steady rate with a 1 s deadline, each answer recorded against the time it was sent. */
function steadyLoad(url: string, tag: string, everyMs: number): { sent: Sent[]; stop(): Promise<void> } {
  const sent: Sent[] = [];
  const answers: Promise<void>[] = [];
  let i = 0;
  const timer = setInterval(() => {
    const s: Sent = { at: Date.now() };
    sent.push(s);
    answers.push(
      postCharge(url, `${tag}-${i++}`, { amount: 100, currency: 'USD', source: 'tok_visa' }, 1000).then(
        (a) => void (s.status = a.status),
      ),
    );
  }, everyMs);
  return {
    sent,
    async stop() {
      clearInterval(timer);
      await Promise.all(answers);
    },
  };
}

/** Start of the first window (ms after `from`) in which SERVED_SHARE of the charges sent got 201; null when none. */
function servedFrom(sent: readonly Sent[], from: number, until: number): number | null {
  for (let w = from; w + WINDOW_MS <= until; w += WINDOW_MS) {
    const inWindow = sent.filter((s) => s.at >= w && s.at < w + WINDOW_MS);
    if (inWindow.length >= 5 && inWindow.filter((s) => s.status === 201).length >= SERVED_SHARE * inWindow.length)
      return w - from;
  }
  return null;
}

const summary = (sent: readonly Sent[], from: number) => {
  const bySecond = new Map<number, Record<string, number>>();
  for (const s of sent) {
    const k = Math.floor((s.at - from) / 1000);
    const m = bySecond.get(k) ?? {};
    m[String(s.status)] = (m[String(s.status)] ?? 0) + 1;
    bySecond.set(k, m);
  }
  return [...bySecond].map(([k, m]) => `t${k >= 0 ? '+' : ''}${k}s ${JSON.stringify(m)}`).join('; ');
};

test('twice: Postgres stopped immediately under load and started again; the gateway serves again within seconds, without a restart', async () => {
  for (let round = 1; round <= 2; round++) {
    const load = steadyLoad(stack.service.url, `pgrestart-${round}-${Date.now()}`, 20);
    try {
      await new Promise((r) => setTimeout(r, 2500));
      const warm = servedFrom(load.sent, load.sent[0]!.at, Date.now() - 1200);
      assert.notEqual(
        warm,
        null,
        `round ${round}: the gateway serves before the stop (sent: ${summary(load.sent, load.sent[0]!.at)})`,
      );
      await immediateStop(stack.pgDataDir);
      // Down long enough for the pool to fail many connects in a row, as in the crash scenario.
      await new Promise((r) => setTimeout(r, 2500));
      await stack.restartPostgres();
      const up = Date.now();
      await new Promise((r) => setTimeout(r, BACK_WITHIN_MS + 2000));
      await load.stop();
      const back = servedFrom(load.sent, up, up + BACK_WITHIN_MS + 2000);
      const detail = `round ${round}: back ${back === null ? 'never' : `${back} ms`} after Postgres accepted connections (sent: ${summary(load.sent, up)})`;
      assert.ok(back !== null && back <= BACK_WITHIN_MS, detail);
      assert.ok(stack.service.alive(), 'the same gateway process served throughout');
    } finally {
      await load.stop();
    }
  }
});
