import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildBaselineApp, type BaselineSettings } from '../../src/baseline/app.js';
import {
  BREAKER_OPTIONS,
  breakerOptionsFor,
  createProviderBreaker,
  registerUnderPressure,
} from '../../src/baseline/hardened.js';
import { ServiceState } from '../../src/service/state.js';
import { chargeServiceSettings, createChargeService } from '../../src/charge/service.js';
import { parseOptions } from '../../src/config/options.js';
import { baselineSpecs } from '../../src/config/service.js';
import { freePort } from '../../src/db/embedded.js';
import type { AttemptOutcome, Provider } from '../../src/downstream/provider-client.js';
import { json } from '../../src/errors/catalogue.js';
import { createLogger } from '../../src/runtime/logger.js';

const log = createLogger('silent', 'test');
const SETTINGS: BaselineSettings = {
  maxBodyBytes: 1024,
  requestTimeoutMs: 1000,
  minRequestTimeoutMs: 50,
  maxRequestTimeoutMs: 30_000,
  bodyTimeoutMs: 5000,
  maxConnections: 1000,
  maxRequestsPerAddress: 0,
  fxCacheTtlMs: 5000,
};
const CHARGE = {
  method: 'POST' as const,
  url: '/charge',
  headers: { 'content-type': 'application/json' },
  payload: JSON.stringify({ amount: 100, currency: 'usd', source: 'tok_visa' }),
};
const INPUT = { amount: 1, currency: 'USD', source: 'tok_visa' };

function scriptedProvider(outcome: () => AttemptOutcome): Provider & { calls: number } {
  const p = {
    calls: 0,
    createCharge: async () => {
      p.calls++;
      return outcome();
    },
    getCharge: async () => {
      p.calls++;
      return outcome();
    },
  };
  return p;
}

void describe('hardened: opossum breaker around the provider', () => {
  void it('passes final outcomes and unknown outcomes through unchanged', async () => {
    const b = createProviderBreaker(log);
    try {
      const declined: AttemptOutcome = { kind: 'declined', providerChargeId: 'p1', declineCode: 'card_declined' };
      assert.deepEqual(
        await b.decorateProvider(scriptedProvider(() => declined)).createCharge('k', 'r', INPUT, 100),
        declined,
      );
      const unknown: AttemptOutcome = { kind: 'unknown', reason: 'timeout' };
      assert.deepEqual(await b.decorateProvider(scriptedProvider(() => unknown)).getCharge('k', 100), unknown);
    } finally {
      b.shutdown();
    }
  });

  void it('opens after volumeThreshold calls at over 50 % unknown, then refuses without calling', async () => {
    const b = createProviderBreaker(log);
    try {
      const inner = scriptedProvider(() => ({ kind: 'unknown', reason: 'status_5xx', status: 503 }));
      const p = b.decorateProvider(inner);
      for (let i = 0; i < BREAKER_OPTIONS.volumeThreshold; i++) await p.createCharge(`k${i}`, 'r', INPUT, 100);
      assert.ok(b.breaker.opened);
      const calls = inner.calls;
      assert.deepEqual(await p.createCharge('k', 'r', INPUT, 100), { kind: 'refused', code: 'breaker_open' });
      assert.equal(inner.calls, calls);
    } finally {
      b.shutdown();
    }
  });

  void it('treats declines and 4xx rejections as the provider answering, not failing', async () => {
    const b = createProviderBreaker(log);
    try {
      const p = b.decorateProvider(scriptedProvider(() => ({ kind: 'rejected', status: 400, message: 'bad' })));
      for (let i = 0; i < BREAKER_OPTIONS.volumeThreshold * 2; i++) await p.createCharge(`k${i}`, 'r', INPUT, 100);
      assert.ok(b.breaker.closed);
    } finally {
      b.shutdown();
    }
  });
  void it('capacity: calls over it are refused with bulkhead_full at once, never sent, and do not open the breaker', async () => {
    const capacity = 3;
    const b = createProviderBreaker(log, breakerOptionsFor(capacity));
    const release: (() => void)[] = [];
    const ok: AttemptOutcome = { kind: 'succeeded', providerChargeId: 'p1' };
    const inner = scriptedProvider(() => ok);
    // Every call hangs until released: the provider is slow, so calls pile up.
    const hanging: Provider = {
      createCharge: (...a) => new Promise((r) => release.push(() => r(inner.createCharge(...a)))),
      getCharge: (...a) => new Promise((r) => release.push(() => r(inner.getCharge(...a)))),
    };
    try {
      const p = b.decorateProvider(hanging);
      const held = Array.from({ length: capacity }, (_, i) => p.createCharge(`held${i}`, 'r', INPUT, 1000));
      // Far more refusals than volumeThreshold: a refusal is local, so the breaker must stay closed.
      const over = BREAKER_OPTIONS.volumeThreshold * 2;
      const started = Date.now();
      for (let i = 0; i < over; i++) {
        assert.deepEqual(await p.createCharge(`over${i}`, 'r', INPUT, 1000), {
          kind: 'refused',
          code: 'bulkhead_full',
        });
        assert.deepEqual(await p.getCharge(`over${i}`, 1000), { kind: 'refused', code: 'bulkhead_full' });
      }
      // Refused without waiting for a slot (the held calls are still held).
      assert.equal(release.length, capacity, 'only the calls within capacity reached the provider');
      assert.ok(Date.now() - started < 5000);
      assert.ok(b.breaker.closed, 'refusals over capacity do not open the breaker');
      for (const r of release.splice(0)) r();
      for (const h of held) assert.deepEqual(await h, ok);
      // Slots come back: a call after the release is sent.
      const after = p.createCharge('after', 'r', INPUT, 1000);
      assert.equal(release.length, 1);
      release.pop()!();
      assert.deepEqual(await after, ok);
      assert.equal(inner.calls, capacity + 1);
    } finally {
      b.shutdown();
    }
  });
});

void describe('hardened: @fastify/under-pressure', () => {
  void it('sheds with the catalogue overloaded problem but never sheds probes', async () => {
    const state = new ServiceState();
    const app = buildBaselineApp({
      settings: SETTINGS,
      service: {
        charge: async () => json(201, {}),
        getCharge: async () => json(200, {}),
        rate: async () => ({ ok: false, reason: 'timeout' }),
      },
      state,
      log,
      // Any event-loop use at all counts as pressure, sampled every 10 ms.
      plugins: (a) =>
        registerUnderPressure(a, state, undefined, {
          maxEventLoopUtilization: 1e-9,
          maxEventLoopDelay: 0,
          sampleInterval: 10,
        }),
    });
    try {
      await app.ready();
      const until = Date.now() + 5000;
      while (!app.isUnderPressure() && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      assert.ok(app.isUnderPressure());
      const r = await app.inject({
        method: 'POST',
        url: '/charge',
        headers: { 'content-type': 'application/json', 'idempotency-key': 'k' },
        payload: '{}',
      });
      assert.equal(r.statusCode, 503);
      assert.equal(r.headers['content-type'], 'application/problem+json');
      assert.equal(r.headers['retry-after'], '1');
      assert.equal((JSON.parse(r.body) as { code: string }).code, 'overloaded');
      assert.equal((await app.inject({ url: '/health' })).statusCode, 200);
      assert.equal((await app.inject({ url: '/version' })).statusCode, 200);
    } finally {
      await app.close();
    }
  });
});

void describe('hardened: the database health check', () => {
  const ok201 = json(201, { id: 'ch_1' });
  const appWith = (dbHealthy: () => Promise<boolean>, charged: { n: number }) => {
    const state = new ServiceState();
    return buildBaselineApp({
      settings: SETTINGS,
      service: {
        charge: async () => (charged.n++, ok201),
        getCharge: async () => json(200, {}),
        rate: async () => ({ ok: false, reason: 'timeout' }),
      },
      state,
      log,
      // Utilisation and delay limits out of the way: only the health check may refuse.
      plugins: (a) =>
        registerUnderPressure(a, state, dbHealthy, {
          healthCheckInterval: 10,
          maxEventLoopUtilization: 1,
          maxEventLoopDelay: 60_000,
        }),
    });
  };
  const charge = (app: ReturnType<typeof appWith>, key: string) =>
    app.inject({ ...CHARGE, headers: { ...CHARGE.headers, 'idempotency-key': key } });

  void it('refuses charges with 503 db_unavailable while the check fails, serves again once it passes', async () => {
    let healthy = false;
    const charged = { n: 0 };
    const app = appWith(async () => healthy, charged);
    try {
      await app.ready();
      for (const key of ['a', 'b', 'c']) {
        const r = await charge(app, key);
        assert.equal(r.statusCode, 503);
        assert.equal(r.headers['content-type'], 'application/problem+json');
        assert.equal((JSON.parse(r.body) as { code: string }).code, 'db_unavailable');
        assert.equal(r.headers['retry-after'], '1');
      }
      assert.equal(charged.n, 0, 'a refused charge never reaches the service');
      // Probes are never refused: an orchestrator still sees the process alive.
      assert.equal((await app.inject({ url: '/health' })).statusCode, 200);
      healthy = true;
      const until = Date.now() + 5000;
      let r = await charge(app, 'd');
      while (r.statusCode !== 201 && Date.now() < until) {
        await new Promise((res) => setTimeout(res, 10));
        r = await charge(app, 'd');
      }
      assert.equal(r.statusCode, 201);
      // And it fails again: a check that throws counts as unhealthy.
      healthy = false;
      const until2 = Date.now() + 5000;
      let r2 = await charge(app, 'e');
      while (r2.statusCode === 201 && Date.now() < until2) {
        await new Promise((res) => setTimeout(res, 10));
        r2 = await charge(app, 'e');
      }
      assert.equal(r2.statusCode, 503);
    } finally {
      await app.close();
    }
  });

  void it('a check that throws refuses as a failed one does', async () => {
    const charged = { n: 0 };
    const app = appWith(() => Promise.reject(new Error('boom')), charged);
    try {
      await app.ready();
      const r = await charge(app, 'k');
      assert.equal(r.statusCode, 503);
      assert.equal((JSON.parse(r.body) as { code: string }).code, 'db_unavailable');
      assert.equal(charged.n, 0);
    } finally {
      await app.close();
    }
  });

  void it("the command's check, the service's ping through its pool, fails within its bound when Postgres is unreachable", async () => {
    // A port nobody listens on: the ping's connection is refused.
    const port = await freePort();
    const c = parseOptions(baselineSpecs, [], {}).values;
    const service = createChargeService(
      chargeServiceSettings(c, {
        databaseUrl: `postgres://u:p@127.0.0.1:${port}/db`,
        providerUrl: 'http://127.0.0.1:1',
        fxUrl: 'http://127.0.0.1:1',
      }),
      { log },
    );
    const charged = { n: 0 };
    const app = appWith(() => service.ping(), charged);
    try {
      const started = Date.now();
      await app.ready();
      // The plugin awaits the first check at start: bounded by the ping budget (1 s) plus slack.
      assert.ok(Date.now() - started < 5000, `first check took ${Date.now() - started} ms`);
      const r = await charge(app, 'k');
      assert.equal(r.statusCode, 503);
      assert.equal((JSON.parse(r.body) as { code: string }).code, 'db_unavailable');
      assert.equal(charged.n, 0);
    } finally {
      await app.close();
      await service.close();
    }
  });
});
