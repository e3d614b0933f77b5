/**
 * The gateway's protection mechanisms against a real Postgres and the
 * simulator, each with its own gateway configured for the case. Timing
 * assertions are relative to the injected fault (a read must take a small
 * fraction of the provider's latency), never absolute speeds.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayHarness } from '../support/gateway-harness.js';
import type { Target } from '../support/target.js';
import { Client } from 'undici';
import { call, RawConnection, until } from '../support/http.js';
import { clearFaults, ledger, ledgerForReference, setFaults } from '../support/simulator.js';

const h = gatewayHarness();
const { targets, gateway } = h;

async function stop(t: Target): Promise<void> {
  await t.stop('SIGTERM', 15_000);
  targets.splice(targets.indexOf(t), 1);
}

type State = {
  breakers: Record<string, { state: string; transitions: number; rejections: number }>;
  bulkheads: Record<string, { inUse: number; limit: number; rejectedFull: number; rejectedTimeout: number }>;
  admission: { shed: Record<string, number>; inFlight: number };
  events: Record<string, number>;
};
const state = async (admin: string): Promise<State> => (await call(admin, 'GET', '/admin/state')).body as State;

const charge = (
  t: Target,
  key: string,
  timeoutMs = 1000,
  body: object = { amount: 1000, currency: 'USD', source: 'tok_visa' },
) =>
  call(t.url, 'POST', '/charge', {
    headers: { 'idempotency-key': key, 'x-request-timeout-ms': String(timeoutMs) },
    body,
    timeoutMs: 30_000,
  });

describe('gateway resilience', () => {
  it('a 4 s provider opens the breaker, holds no DB connection, and leaves GET /charges/:key fast', async () => {
    const { t, admin } = await gateway({ BREAKER_MIN_CALLS: '10', RECONCILE_INTERVAL_MS: '600000' });
    assert.equal((await charge(t, 'slow-known')).status, 201);
    await setFaults(h.sim.providerUrl, { latencyMs: 4000 });
    try {
      const wave = Array.from({ length: 20 }, (_, i) => charge(t, `slow-${i}`));
      // While 20 charges wait on the provider: no DB slot is held, and reads stay fast.
      // Once every charge is waiting on the provider, no DB slot is in use.
      const during = await until(
        'all 20 charges at the provider',
        async () => {
          const s = await state(admin);
          return s.bulkheads.provider!.inUse === 20 && s;
        },
        3000,
        10,
      );
      assert.equal(during.bulkheads.db!.inUse, 0, 'no DB connection is held across a provider call');
      const read = await call(t.url, 'GET', '/charges/slow-known');
      assert.equal(read.status, 200);
      assert.ok(read.ms < 400, `read took ${read.ms} ms while the provider takes 4000 ms`);
      const answers = await Promise.all(wave);
      for (const a of answers) assert.ok([503, 504].includes(a.status), `got ${a.status}`);
      const s = await state(admin);
      assert.equal(s.breakers.provider!.state, 'open');
      // Open breaker: refused on the front thread, fast, and nothing claimed.
      const refused = await charge(t, 'after-open');
      assert.equal(refused.status, 503);
      assert.equal(refused.body.code, 'breaker_open');
      assert.ok(refused.headers['retry-after']);
      assert.ok(refused.ms < 400, `breaker_open took ${refused.ms} ms`);
      assert.equal((await call(t.url, 'GET', '/charges/after-open')).status, 404);
      const log = t.logLines().find((l) => l.msg === 'breaker transition' && l.to === 'open');
      assert.ok(log, 'the transition is logged');
    } finally {
      await clearFaults(h.sim.providerUrl);
    }
    await stop(t);
  });

  it('an open breaker closes within about a second of the provider healing, by health check, not after BREAKER_OPEN_MS', async () => {
    const openBreaker = async (t: Target, admin: string, tag: string) => {
      await setFaults(h.sim.providerUrl, { latencyMs: 2000 });
      await Promise.all(Array.from({ length: 10 }, (_, i) => charge(t, `${tag}-slow-${i}`)));
      await until('the breaker open', async () => (await state(admin)).breakers.provider!.state === 'open', 5000, 20);
      // Still open while the provider is slow: the health checks time out (a slow call), nothing ends it.
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal((await state(admin)).breakers.provider!.state, 'open', 'a slow provider keeps it open');
      await clearFaults(h.sim.providerUrl);
      return Date.now();
    };
    // BREAKER_OPEN_MS 30 s: only a health check can end the open period within this test.
    const env = { BREAKER_MIN_CALLS: '5', BREAKER_OPEN_MS: '30000', RECONCILE_INTERVAL_MS: '600000' };
    const { t, admin } = await gateway(env);
    try {
      const healed = await openBreaker(t, admin, 'hc');
      // Half-open takes real charges as probes; a few succeed and it closes.
      const served = await until(
        'a charge served again',
        async () => {
          const r = await charge(t, `hc-after-${Date.now()}`);
          return r.status === 201 && Date.now();
        },
        5000,
        50,
      );
      assert.ok(served - healed < 2000, `first 201 ${served - healed} ms after the heal`);
      // Probes are real charges: keep sending until enough succeeded to close it.
      await until(
        'the breaker closed',
        async () => {
          assert.equal((await charge(t, `hc-close-${Date.now()}`)).status, 201);
          return (await state(admin)).breakers.provider!.state === 'closed';
        },
        3000,
        20,
      );
      assert.ok(t.logLines().some((l) => l.msg === 'health check passed: the open period ends now, probes next'));
    } finally {
      await clearFaults(h.sim.providerUrl);
    }
    await stop(t);

    // The control: without health checks the same heal is refused for the whole open period.
    const off = await gateway({ ...env, BREAKER_HEALTH_CHECK_MS: '0' });
    try {
      await openBreaker(off.t, off.admin, 'nohc');
      await new Promise((r) => setTimeout(r, 1500));
      const r = await charge(off.t, 'nohc-after');
      assert.equal(r.status, 503);
      assert.equal(r.body.code, 'breaker_open');
    } finally {
      await clearFaults(h.sim.providerUrl);
    }
    await stop(off.t);
  });

  it('a hung fx fills only the fx bulkhead while /charge keeps succeeding', async () => {
    const { t, admin } = await gateway({
      FX_BULKHEAD: '3',
      FX_TIMEOUT_MS: '3000',
      BULKHEAD_ACQUIRE_TIMEOUT_MS: '50',
      REQUEST_TIMEOUT_MS: '2000',
      BREAKERS: 'false',
    });
    await setFaults(h.sim.fxUrl, { hang: true });
    try {
      const currencies = ['EUR', 'GBP', 'JPY', 'CHF', 'CAD', 'AUD', 'SEK', 'NOK', 'DKK'];
      const quotes = currencies.map((c) =>
        call(t.url, 'GET', `/quote?from=USD&to=${c}&amount=100`, { timeoutMs: 10_000 }),
      );
      await until('fx bulkhead full', async () => (await state(admin)).bulkheads.fx!.inUse === 3, 3000);
      const charges = await Promise.all(Array.from({ length: 10 }, (_, i) => charge(t, `fx-hung-${i}`, 2000)));
      for (const c of charges) assert.equal(c.status, 201, JSON.stringify(c.body));
      const s = await state(admin);
      assert.equal(s.bulkheads.fx!.inUse, 3);
      assert.ok(s.bulkheads.provider!.inUse <= 1, 'the provider bulkhead is untouched by fx');
      const answers = await Promise.all(quotes);
      for (const q of answers) assert.equal(q.status, 503);
      assert.ok(answers.filter((q) => q.body.code === 'fx_unavailable').length === answers.length);
      assert.ok(
        (await state(admin)).bulkheads.fx!.rejectedTimeout + (await state(admin)).bulkheads.fx!.rejectedFull >= 6,
        'the quotes past the bulkhead were refused',
      );
    } finally {
      await clearFaults(h.sim.fxUrl);
    }
    await stop(t);
  });

  it('once the provider bulkhead cannot seat a charge within its acquire timeout, charges are refused on admission at once, not after the wait', async () => {
    const { t, admin } = await gateway({
      PROVIDER_BULKHEAD: '4',
      BULKHEAD_ACQUIRE_TIMEOUT_MS: '1000',
      REQUEST_TIMEOUT_MS: '1500',
      BREAKERS: 'false',
      RECONCILE_INTERVAL_MS: '600000',
    });
    await setFaults(h.sim.providerUrl, { hang: true });
    try {
      const holders = Array.from({ length: 4 }, (_, i) => charge(t, `seat-${i}`, 1500));
      await until('provider bulkhead full', async () => (await state(admin)).bulkheads.provider!.inUse === 4, 3000);
      // Probes, one every 150 ms: the first may still wait at the bulkhead
      // (the acquire rate is not measured yet); once a whole window has
      // seated nobody the wait is unbounded and admission refuses at once.
      const pending: Promise<unknown>[] = [...holders];
      let refused: Awaited<ReturnType<typeof charge>> | undefined;
      let key = '';
      for (let i = 0; i < 20 && !refused; i++) {
        key = `probe-${i}`;
        const p = charge(t, key, 1500);
        pending.push(p);
        const r = await Promise.race([p, new Promise<null>((res) => setTimeout(() => res(null), 150))]);
        if (r && r.status === 503 && r.body.code === 'bulkhead_full') refused = r;
      }
      assert.ok(refused, 'a probe was refused with 503 bulkhead_full');
      assert.ok(refused.ms < 100, `refused in ${refused.ms} ms, not after the 1000 ms acquire timeout`);
      assert.ok(refused.headers['retry-after']);
      const s = await state(admin);
      assert.ok(s.admission.shed.downstream! >= 1, `shed by reason: ${JSON.stringify(s.admission.shed)}`);
      // Refused before the claim: nothing stored, nothing sent to the provider.
      assert.equal((await call(t.url, 'GET', `/charges/${key}`)).status, 404);
      assert.equal((await ledgerForReference(h.sim.providerUrl, key)).length, 0);
      await Promise.allSettled(pending);
    } finally {
      await clearFaults(h.sim.providerUrl);
    }
    await stop(t);
  });

  it('a burst far above capacity gets fast 503s while admitted charges finish within their deadlines', async () => {
    const { t, admin } = await gateway({
      CONCURRENCY_LIMIT: 'static',
      CONCURRENCY_LIMIT_STATIC: '8',
      SHEDDING: 'false',
    });
    await setFaults(h.sim.providerUrl, { latencyMs: 200 });
    try {
      const burst = await Promise.all(Array.from({ length: 120 }, (_, i) => charge(t, `burst-${i}`, 3000)));
      const ok = burst.filter((r) => r.status === 201);
      const shed = burst.filter((r) => r.status === 503);
      assert.equal(
        ok.length + shed.length,
        burst.length,
        `statuses: ${[...new Set(burst.map((r) => r.status))].join(',')}`,
      );
      assert.ok(ok.length >= 8, `${ok.length} admitted`);
      assert.ok(shed.length >= 60, `${shed.length} shed`);
      for (const r of shed) {
        assert.equal(r.body.code, 'overloaded');
        assert.ok(r.headers['retry-after']);
      }
      for (const r of ok) assert.ok(r.ms < 3000, `an admitted charge took ${r.ms} ms past its 3000 ms deadline`);
      const slowestShed = Math.max(...shed.map((r) => r.ms));
      const fastestOk = Math.min(...ok.map((r) => r.ms));
      assert.ok(
        slowestShed < fastestOk,
        `shed answers (max ${slowestShed} ms) come before any admitted one (min ${fastestOk} ms)`,
      );
      assert.equal((await state(admin)).admission.shed.concurrency, shed.length);
      // Every admitted slot came back: invalid, refused and finished requests alike.
      for (const bad of ['{"amount":', '{"amount":0,"currency":"USD","source":"s"}']) {
        assert.equal(
          (
            await call(t.url, 'POST', '/charge', {
              headers: { 'idempotency-key': `bad-${bad.length}`, 'content-type': 'application/json' },
              body: bad,
            })
          ).status,
          400,
        );
      }
      await until('admission drained', async () => (await state(admin)).admission.inFlight === 0, 3000);
      // Shedding happens before the claim: nothing stored for a shed key.
      const shedKey = `burst-${burst.indexOf(shed[0]!)}`;
      assert.equal((await call(t.url, 'GET', `/charges/${shedKey}`)).status, 404);
      assert.equal((await ledgerForReference(h.sim.providerUrl, shedKey)).length, 0);
    } finally {
      await clearFaults(h.sim.providerUrl);
    }
    await stop(t);
  });

  it('a shed charge is answered at its headers, before its body; the connection is kept only when its body is bounded (Content-Length)', async () => {
    // One slot, held by a slow charge (5 s): every charge after it is shed on concurrency.
    const { t, admin } = await gateway({
      CONCURRENCY_LIMIT: 'static',
      CONCURRENCY_LIMIT_MIN: '1',
      CONCURRENCY_LIMIT_STATIC: '1',
      SHEDDING: 'false',
      PROVIDER_TIMEOUT_MS: '8000',
    });
    await setFaults(h.sim.providerUrl, { latencyMs: 5000 });
    try {
      const holder = charge(t, 'holds-the-slot', 10_000);
      await until('the slot is held', async () => (await state(admin)).admission.inFlight === 1, 3000);
      const port = Number(new URL(t.url).port);
      const body = JSON.stringify({ amount: 1000, currency: 'USD', source: 'tok_visa' });
      const cases = {
        // A declared length: the rest is dropped and the connection serves the next request.
        'content-length': { header: `Content-Length: ${body.length}`, rest: body, kept: true },
        // No bound on what follows: closed after the 503.
        chunked: {
          header: 'Transfer-Encoding: chunked',
          rest: `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
          kept: false,
        },
      };
      for (const [name, c] of Object.entries(cases)) {
        const conn = await RawConnection.open(port);
        try {
          await conn.write(
            `POST /charge HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
              `Idempotency-Key: shed-early-${name}\r\n${c.header}\r\n\r\n`,
          );
          // Not one byte of the body is sent yet: the 503 must not wait for it.
          const shed = await conn.readResponse(3000);
          assert.equal(shed?.status, 503, `${name}: shed at the headers`);
          assert.equal((shed?.body as { code?: string }).code, 'overloaded');
          if (c.kept) {
            // The body that follows is dropped, not read as a request.
            await conn.write(c.rest);
            await conn.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
            const next = await conn.readResponse(3000);
            assert.equal(next?.status, 200, `${name}: the next request on the connection is served`);
            assert.equal(conn.closed, false, `${name}: the connection stays open`);
          } else {
            assert.equal(shed?.headers.connection?.toLowerCase(), 'close', `${name}: the 503 says Connection: close`);
            assert.ok(await conn.waitClosed(3000), `${name}: the gateway closes the connection`);
          }
        } finally {
          conn.destroy();
        }
      }
      assert.equal((await state(admin)).admission.shed.concurrency, Object.keys(cases).length);
      assert.equal((await holder).status, 201);
      // (Read once the slot is free: a read takes a slot too.)
      for (const name of Object.keys(cases))
        assert.equal(
          (await call(t.url, 'GET', `/charges/shed-early-${name}`)).status,
          404,
          'a shed key stores nothing',
        );
    } finally {
      await clearFaults(h.sim.providerUrl);
    }
    await stop(t);
  });

  it('provider attempts never exceed the attempt cap nor the retry budget', async () => {
    const env = {
      PROVIDER_MAX_ATTEMPTS: '3',
      RETRY_BASE_MS: '1',
      RETRY_MAX_MS: '2',
      BREAKERS: 'false',
      RECONCILE_INTERVAL_MS: '600000',
      RETRY_BUDGET_MIN_PER_SECOND: '0',
    };
    await setFaults(h.sim.providerUrl, { errorRate: 1, errorStatus: 503 });
    try {
      // Without a budget: exactly the cap.
      const plain = await gateway({ ...env, RETRY_BUDGET: 'false' });
      const before1 = (await ledger(h.sim.providerUrl)).attempts;
      for (let i = 0; i < 20; i++) assert.equal((await charge(plain.t, `cap-${i}`, 2000)).status, 503);
      assert.equal((await ledger(h.sim.providerUrl)).attempts - before1, 60, '20 charges × 3 attempts');
      await stop(plain.t);
      // With a budget of 20 % (and a bank of 10): far fewer.
      const budgeted = await gateway({ ...env, RETRY_BUDGET_RATIO: '0.2' });
      const before2 = (await ledger(h.sim.providerUrl)).attempts;
      for (let i = 0; i < 50; i++) assert.equal((await charge(budgeted.t, `budget-${i}`, 2000)).status, 503);
      const attempts = (await ledger(h.sim.providerUrl)).attempts - before2;
      assert.ok(attempts <= 50 + 0.2 * 50 + 10, `${attempts} attempts for 50 charges`);
      assert.ok(attempts >= 50);
      const s = await state(budgeted.admin);
      assert.ok(s.events.retry_suppressed_budget! > 0, 'suppressed retries are counted by reason');
      await stop(budgeted.t);
    } finally {
      await clearFaults(h.sim.providerUrl);
    }
  });

  it('SIGTERM with charges in flight exits 0 inside the grace period, every charge recorded once', async () => {
    const { t } = await gateway({ SHUTDOWN_GRACE_MS: '8000' });
    // Below the 800 ms provider attempt timeout: slow, not failing.
    await setFaults(h.sim.providerUrl, { latencyMs: 600 });
    try {
      const keys = Array.from({ length: 10 }, (_, i) => `drain-${i}`);
      const inFlight = keys.map((k) => charge(t, k, 5000));
      await until(
        'all charges reached the provider',
        async () => {
          const seen = await Promise.all(keys.map((k) => ledgerForReference(h.sim.providerUrl, k)));
          return seen.every((s) => s.length === 1);
        },
        5000,
      );
      const started = performance.now();
      const exit = t.stop('SIGTERM', 15_000);
      const answers = await Promise.all(inFlight);
      assert.equal(await exit, 0);
      const took = performance.now() - started;
      assert.ok(took < 8000, `drained in ${took} ms, inside the 8000 ms grace`);
      for (const a of answers) {
        assert.equal(a.status, 201, a.text);
        assert.equal(a.headers.connection, 'close', 'answers while draining close the connection');
      }
      const rows = await h.db.sql<
        { status: string }[]
      >`SELECT status FROM charges WHERE idempotency_key LIKE 'drain-%'`;
      assert.equal(rows.length, 10);
      assert.ok(rows.every((r) => r.status === 'succeeded'));
      for (const k of keys) assert.equal((await ledgerForReference(h.sim.providerUrl, k)).length, 1);
      assert.equal((await ledger(h.sim.providerUrl)).duplicates.length, 0);
      const finished = t.logLines().find((l) => l.msg === 'drain finished');
      assert.ok(finished, 'drain end is logged');
      assert.equal(finished.abandoned, 0);
      assert.ok(typeof finished.drain_duration_seconds === 'number');
      targets.splice(targets.indexOf(t), 1);
    } finally {
      await clearFaults(h.sim.providerUrl);
    }
  });

  it('a charge sent on a kept-alive connection during the drain gets 503 draining with Retry-After: 0 and Connection: close, and stores nothing', async () => {
    const { t } = await gateway({ SHUTDOWN_GRACE_MS: '8000' });
    await setFaults(h.sim.providerUrl, { latencyMs: 600 });
    // One connection, opened before the drain and kept alive into it.
    const kept = new Client(t.url, { pipelining: 1 });
    try {
      assert.equal((await call(t.url, 'GET', '/health', { dispatcher: kept })).status, 200);
      const held = charge(t, 'drain-held', 5000);
      await until(
        'the held charge to reach the provider',
        async () => (await ledgerForReference(h.sim.providerUrl, 'drain-held')).length === 1,
        5000,
      );
      const exit = t.stop('SIGTERM', 15_000);
      await until('the drain to begin', async () => t.logLines().some((l) => l.msg === 'drain started'), 5000, 10);
      const late = await call(t.url, 'POST', '/charge', {
        headers: { 'idempotency-key': 'drain-late', 'x-request-timeout-ms': '2000' },
        body: { amount: 1000, currency: 'USD', source: 'tok_visa' },
        dispatcher: kept,
        timeoutMs: 5000,
      });
      assert.equal(late.status, 503, late.text);
      assert.equal((late.body as { code: string }).code, 'draining');
      // Retry now, elsewhere: a second's wait brought every refused client back at once on the replacement.
      assert.equal(late.headers['retry-after'], '0');
      assert.equal(late.headers.connection, 'close', 'the refusal closes the kept-alive connection');
      assert.equal((await held).status, 201, 'the charge in flight still completes');
      assert.equal(await exit, 0);
      targets.splice(targets.indexOf(t), 1);
      assert.equal((await h.db.sql`SELECT 1 FROM charges WHERE idempotency_key = 'drain-late'`).length, 0);
      assert.deepEqual(await ledgerForReference(h.sim.providerUrl, 'drain-late'), []);
    } finally {
      await kept.close().catch(() => {});
      await clearFaults(h.sim.providerUrl);
    }
  });

  it('SHUTDOWN_DELAY_MS: /ready fails at once while charges are still served, then the drain proceeds', async () => {
    const { t } = await gateway({ SHUTDOWN_DELAY_MS: '1500' });
    assert.equal((await call(t.url, 'GET', '/ready')).status, 200);
    t.child.kill('SIGTERM');
    const notReady = await until(
      'not ready',
      async () => {
        const r = await call(t.url, 'GET', '/ready');
        return r.status === 503 && r;
      },
      1000,
      20,
    );
    assert.equal(notReady.body.code, 'draining');
    assert.equal((await charge(t, 'during-delay')).status, 201, 'still serving during the delay');
    assert.equal(await t.waitForExit(10_000), 0);
    targets.splice(targets.indexOf(t), 1);
  });

  it('charges still running at the end of the grace period are abandoned to the reconciler, which finishes them once', async () => {
    const { t } = await gateway({ SHUTDOWN_GRACE_MS: '200', LEASE_MS: '3000', MAX_REQUEST_TIMEOUT_MS: '2500' });
    await setFaults(h.sim.providerUrl, { latencyMs: 700 });
    try {
      const keys = ['abandon-1', 'abandon-2', 'abandon-3'];
      const inFlight = keys.map((k) => charge(t, k, 2500).catch(() => undefined));
      await until(
        'reached the provider',
        async () =>
          (await Promise.all(keys.map((k) => ledgerForReference(h.sim.providerUrl, k)))).every((c) => c.length === 1),
        5000,
      );
      assert.equal(await t.stop('SIGTERM', 10_000), 0);
      targets.splice(targets.indexOf(t), 1);
      await Promise.all(inFlight);
      const finished = t.logLines().find((l) => l.msg === 'drain finished');
      assert.ok(finished && (finished.abandoned as number) >= 1, `abandoned: ${String(finished?.abandoned)}`);
    } finally {
      await clearFaults(h.sim.providerUrl);
    }
    // A new instance's reconciler finishes every abandoned charge, each charged once.
    const { t: next } = await gateway({
      LEASE_MS: '3000',
      MAX_REQUEST_TIMEOUT_MS: '2500',
      RECONCILE_INTERVAL_MS: '200',
    });
    await until(
      'no started rows',
      async () =>
        (await h.db.sql`SELECT 1 FROM charges WHERE status = 'started' AND idempotency_key LIKE 'abandon-%'`).length ===
        0,
      15_000,
      200,
    );
    for (const k of ['abandon-1', 'abandon-2', 'abandon-3']) {
      assert.equal((await ledgerForReference(h.sim.providerUrl, k)).length, 1);
      const row = await call(next.url, 'GET', `/charges/${k}`);
      assert.equal(row.body.status, 'succeeded');
    }
    await stop(next);
  });

  it('a second signal stops at once', async () => {
    const { t, admin } = await gateway({ SHUTDOWN_GRACE_MS: '20000' });
    await setFaults(h.sim.providerUrl, { hang: true });
    try {
      const hung = charge(t, 'second-signal', 10_000).catch(() => undefined);
      await until('a charge in flight', async () => (await state(admin)).admission.inFlight === 1, 3000);
      t.child.kill('SIGTERM');
      await until('drain started', () => t.logLines().some((l) => l.msg === 'drain started'), 3000);
      const started = performance.now();
      t.child.kill('SIGTERM');
      const code = await t.waitForExit(5000);
      assert.equal(code, 1);
      assert.ok(performance.now() - started < 5000);
      targets.splice(targets.indexOf(t), 1);
      await hung;
    } finally {
      await clearFaults(h.sim.providerUrl);
    }
  });
});
