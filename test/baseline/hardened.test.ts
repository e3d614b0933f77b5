import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildBaselineApp } from '../../src/baseline/app.js';
import { BREAKER_OPTIONS, createProviderBreaker, registerUnderPressure } from '../../src/baseline/hardened.js';
import { ServiceState } from '../../src/baseline/state.js';
import type { AttemptOutcome, Provider } from '../../src/downstream/provider-client.js';
import { json } from '../../src/errors/catalogue.js';
import { createLogger } from '../../src/runtime/logger.js';

const log = createLogger('silent', 'test');
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
});

void describe('hardened: @fastify/under-pressure', () => {
  void it('sheds with the catalogue overloaded problem but never sheds probes', async () => {
    const state = new ServiceState();
    const app = buildBaselineApp({
      settings: {
        maxBodyBytes: 1024,
        requestTimeoutMs: 1000,
        minRequestTimeoutMs: 50,
        maxRequestTimeoutMs: 30_000,
        bodyTimeoutMs: 5000,
        maxConnections: 1000,
        maxRequestsPerAddress: 0,
        fxCacheTtlMs: 5000,
      },
      service: {
        charge: async () => json(201, {}),
        getCharge: async () => json(200, {}),
        rate: async () => ({ ok: false, reason: 'timeout' }),
      },
      state,
      log,
      // Any event-loop use at all counts as pressure, sampled every 10 ms.
      plugins: (a) =>
        registerUnderPressure(a, state, { maxEventLoopUtilization: 1e-9, maxEventLoopDelay: 0, sampleInterval: 10 }),
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
