import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildBaselineApp, type BaselineSettings } from '../../src/baseline/app.js';
import { ServiceState } from '../../src/service/state.js';
import type { ChargeService } from '../../src/charge/service.js';
import type { ChargeInput } from '../../src/charge/input.js';
import type { RateOutcome } from '../../src/downstream/fx-client.js';
import { json, type Reply } from '../../src/errors/catalogue.js';
import { ManualClock } from '../../src/lib/clock.js';
import { createLogger } from '../../src/runtime/logger.js';

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
const BODY = JSON.stringify({ amount: 1000, currency: 'usd', source: 'tok_visa' });
const JSON_HEADERS = { 'content-type': 'application/json', 'idempotency-key': 'key-1' };

type Service = Pick<ChargeService, 'charge' | 'getCharge' | 'rate'>;

interface Harness {
  app: FastifyInstance;
  state: ServiceState;
  clock: ManualClock;
  charges: { key: string; input: ChargeInput; deadline: number }[];
  rateCalls: () => number;
}

function harness(over: Partial<Service> = {}, settings: BaselineSettings = SETTINGS): Harness {
  const clock = new ManualClock();
  const state = new ServiceState(clock);
  const charges: Harness['charges'] = [];
  let rateCalls = 0;
  const service: Service = {
    charge: async (key, input, deadline) => {
      charges.push({ key, input, deadline });
      return json(201, { id: 'ch_1', status: 'succeeded' });
    },
    getCharge: async (key) => json(200, { idempotency_key: key }),
    rate: async (): Promise<RateOutcome> => {
      rateCalls++;
      return { ok: true, rate: 0.9, asOf: '2026-01-01T00:00:00.000Z' };
    },
    ...over,
  };
  const app = buildBaselineApp({ settings, service, state, clock, log: createLogger('silent', 'test') });
  return { app, state, clock, charges, rateCalls: () => rateCalls };
}

function problemOf(body: string): Record<string, unknown> {
  const p = JSON.parse(body) as Record<string, unknown>;
  assert.equal(typeof p.type, 'string');
  assert.equal(typeof p.title, 'string');
  assert.equal(typeof p.detail, 'string');
  assert.equal(p.stack, undefined);
  return p;
}

void describe('baseline app: routes', () => {
  void it('answers an unknown route 404 problem+json without reading its body', async () => {
    const { app } = harness();
    const r = await app.inject({
      method: 'POST',
      url: '/nope',
      headers: { 'content-type': 'application/json' },
      payload: 'x'.repeat(50_000),
    });
    assert.equal(r.statusCode, 404);
    assert.equal(r.headers['content-type'], 'application/problem+json');
    assert.equal(problemOf(r.body).code, 'not_found');
  });

  void it('answers a known path with the wrong method 405 with Allow, before the body', async () => {
    const { app } = harness();
    const cases: [string, string, string][] = [
      ['PUT', '/charge', 'POST'],
      ['GET', '/charge', 'POST'],
      ['DELETE', '/charges/abc', 'GET'],
      ['POST', '/health', 'GET'],
      ['HEAD', '/version', 'GET'],
      ['OPTIONS', '/quote', 'GET'],
    ];
    for (const [method, url, allow] of cases) {
      const r = await app.inject({
        method: method as 'GET',
        url,
        headers: { 'content-type': 'application/json' },
        payload: method === 'PUT' ? 'x'.repeat(50_000) : undefined,
      });
      assert.equal(r.statusCode, 405, `${method} ${url}`);
      assert.equal(r.headers.allow, allow);
      if (method !== 'HEAD') assert.equal(problemOf(r.body).code, 'method_not_allowed');
    }
  });

  void it('routes /charges/:key like uWS: empty is no route, bad encoding and long keys are 400', async () => {
    const { app } = harness();
    assert.equal((await app.inject({ url: '/charges/' })).statusCode, 404);
    // %20: a space is not visible ASCII, so it is no key (the header rule, applied to the path).
    for (const url of ['/charges/%zz', `/charges/${'k'.repeat(300)}`, '/charges/a%20b']) {
      const r = await app.inject({ url });
      assert.equal(r.statusCode, 400, url);
      const p = problemOf(r.body);
      assert.equal(p.code, 'invalid_idempotency_key');
      assert.equal(p.field, 'idempotencyKey');
    }
    assert.equal((await app.inject({ method: 'POST', url: '/charges/%zz' })).statusCode, 405);
    assert.equal((await app.inject({ url: '/quote%zz' })).statusCode, 404);
    const ok = await app.inject({ url: '/charges/a%2Fb' });
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(JSON.parse(ok.body), { idempotency_key: 'a/b' });
  });
});

void describe('baseline app: POST /charge', () => {
  void it('hands the service the key, the validated input and arrival + timeout as the deadline', async () => {
    const h = harness();
    const r = await h.app.inject({
      method: 'POST',
      url: '/charge',
      headers: { ...JSON_HEADERS, 'x-request-timeout-ms': '2500' },
      payload: BODY,
    });
    assert.equal(r.statusCode, 201);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(h.charges.length, 1);
    const [c] = h.charges;
    assert.equal(c!.key, 'key-1');
    assert.deepEqual(c!.input, { amount: 1000, currency: 'USD', source: 'tok_visa' });
    // The manual clock does not move; only real routing time is subtracted.
    const expected = h.clock.epochMs() + 2500;
    assert.ok(c!.deadline <= expected && c!.deadline > expected - 1000, `deadline ${c!.deadline} vs ${expected}`);
  });

  void it('sends the service reply as is: status, content type without charset, headers, body', async () => {
    const replay: Reply = {
      status: 402,
      contentType: 'application/problem+json',
      body: '{"code":"card_declined"}',
      headers: { 'Idempotent-Replayed': 'true' },
    };
    const { app } = harness({ charge: async () => replay });
    const r = await app.inject({ method: 'POST', url: '/charge', headers: JSON_HEADERS, payload: BODY });
    assert.equal(r.statusCode, 402);
    assert.equal(r.headers['content-type'], 'application/problem+json');
    assert.equal(r.headers['idempotent-replayed'], 'true');
    assert.equal(r.body, replay.body);
  });

  void it('checks in the gateway order: size, media type, key, timeout header, then the body', async () => {
    const { app, charges } = harness();
    const post = (headers: Record<string, string>, payload: string) =>
      app.inject({ method: 'POST', url: '/charge', headers, payload });
    const big = 'x'.repeat(2000);
    const cases: [Record<string, string>, string, number, string, string?][] = [
      [{ 'content-type': 'text/plain' }, big, 413, 'payload_too_large'],
      [{ 'content-type': 'text/plain' }, 'not json', 415, 'unsupported_media_type', 'Content-Type'],
      [{ 'content-type': 'garbage' }, 'x', 415, 'unsupported_media_type', 'Content-Type'],
      [{ 'content-type': 'application/json' }, 'not json', 400, 'missing_idempotency_key', 'Idempotency-Key'],
      [{ ...JSON_HEADERS, 'x-request-timeout-ms': '0' }, 'not json', 400, 'invalid_header', 'X-Request-Timeout-Ms'],
      [JSON_HEADERS, '{"amount":', 400, 'invalid_json'],
      [JSON_HEADERS, '', 400, 'invalid_json'],
      [JSON_HEADERS, '{"amount":"10","currency":"usd","source":"s"}', 400, 'validation_failed', 'amount'],
    ];
    for (const [headers, payload, status, code, field] of cases) {
      const r = await post(headers, payload);
      assert.equal(r.statusCode, status, `${code}: ${r.body}`);
      assert.equal(r.headers['content-type'], 'application/problem+json');
      const p = problemOf(r.body);
      assert.equal(p.code, code);
      assert.equal(p.field, field);
    }
    assert.equal(charges.length, 0, 'no invalid request reaches the service');
  });

  void it('refuses a chunked body that crosses the limit with 413 and Connection: close', async () => {
    const { app } = harness();
    const r = await app.inject({
      method: 'POST',
      url: '/charge',
      headers: JSON_HEADERS,
      payload: Readable.from([Buffer.alloc(600, 'a'), Buffer.alloc(600, 'a')]),
    });
    assert.equal(r.statusCode, 413);
    assert.equal(r.headers.connection, 'close');
    assert.equal(problemOf(r.body).code, 'payload_too_large');
  });

  void it('answers 504 deadline_exceeded when the service has not answered by the deadline plus grace', async () => {
    // A 1 ms deadline needs the static floor lowered to 1.
    const { app, state, clock } = harness(
      { charge: () => new Promise<Reply>(() => {}) },
      { ...SETTINGS, minRequestTimeoutMs: 1 },
    );
    const answered = app.inject({
      method: 'POST',
      url: '/charge',
      headers: { ...JSON_HEADERS, 'x-request-timeout-ms': '1' },
      payload: BODY,
    });
    // The 504 is a timer of the injected clock: armed once the service holds the charge.
    while (clock.pendingTimers === 0) await new Promise((r) => setImmediate(r));
    // Past the 1 ms deadline, within the 50 ms grace (the deadline counts from
    // Fastify's real arrival stamp, so keep a margin for a slow machine).
    clock.advance(25);
    await new Promise((r) => setImmediate(r));
    assert.equal(state.inFlight, 1, 'no answer within the grace after the deadline');
    clock.advance(50);
    const r = await answered;
    assert.equal(r.statusCode, 504);
    assert.equal(problemOf(r.body).code, 'deadline_exceeded');
    assert.equal(state.inFlight, 0);
  });

  void it('turns a service failure into 500 internal_error without a stack trace', async () => {
    const { app } = harness({ charge: () => Promise.reject(new Error('boom')) });
    const r = await app.inject({ method: 'POST', url: '/charge', headers: JSON_HEADERS, payload: BODY });
    assert.equal(r.statusCode, 500);
    assert.equal(problemOf(r.body).code, 'internal_error');
    assert.ok(!r.body.includes('boom'));
  });

  void it('while draining: refuses charges with 503 draining and asks every client to close', async () => {
    const { app, state, charges } = harness();
    state.draining = true;
    const r = await app.inject({ method: 'POST', url: '/charge', headers: JSON_HEADERS, payload: BODY });
    assert.equal(r.statusCode, 503);
    // Retry at once, on a new connection: the same catalogue answer as the gateway's.
    assert.equal(r.headers['retry-after'], '0');
    assert.equal(r.headers.connection, 'close');
    assert.equal(problemOf(r.body).code, 'draining');
    const health = await app.inject({ url: '/health' });
    assert.equal(health.statusCode, 200);
    assert.equal(health.headers.connection, 'close');
    assert.equal(charges.length, 0);
  });
});

void describe('baseline app: probes and quote', () => {
  void it('/ready follows the cached DB check and the draining flag, with the gateway body', async () => {
    const { app, state, clock } = harness();
    let r = await app.inject({ url: '/ready' });
    assert.equal(r.statusCode, 503);
    assert.equal(JSON.parse(r.body).code, 'db_unavailable');
    await state.refreshDbCheck(async () => true);
    r = await app.inject({ url: '/ready' });
    assert.equal(r.statusCode, 200);
    assert.deepEqual(JSON.parse(r.body), {
      ready: true,
      checks: { draining: false, workers_up: true, db_reachable: true },
    });
    clock.advance(3000); // a check nobody refreshed no longer counts
    assert.equal((await app.inject({ url: '/ready' })).statusCode, 503);
    await state.refreshDbCheck(async () => true);
    state.draining = true;
    r = await app.inject({ url: '/ready' });
    const body = JSON.parse(r.body) as Record<string, unknown>;
    assert.equal(r.statusCode, 503);
    assert.equal(body.code, 'draining');
    assert.equal(body.ready, false);
  });

  void it('/version reports uws as null and /health is shallow', async () => {
    const { app } = harness();
    const v = JSON.parse((await app.inject({ url: '/version' })).body) as Record<string, unknown>;
    assert.equal(v.service, 'bulwark');
    assert.equal(v.uws, null);
    assert.deepEqual(JSON.parse((await app.inject({ url: '/health' })).body), { status: 'ok' });
  });

  void it('/quote caches, falls back to the last rate marked stale, and maps an unknown pair to 400', async () => {
    let fail = false;
    const h = harness({
      rate: async (_from, to): Promise<RateOutcome> => {
        if (to === 'BRL') return { ok: false, reason: 'not_found' };
        if (fail) return { ok: false, reason: 'timeout' };
        return { ok: true, rate: 0.9, asOf: '2026-01-01T00:00:00.000Z' };
      },
    });
    const get = (q: string) => h.app.inject({ url: `/quote?${q}` });
    const first = await get('from=usd&to=eur&amount=1000');
    assert.deepEqual(JSON.parse(first.body), {
      from: 'USD',
      to: 'EUR',
      amount: 1000,
      rate: 0.9,
      converted_amount: 900,
      as_of: '2026-01-01T00:00:00.000Z',
      stale: false,
    });
    fail = true;
    assert.equal(JSON.parse((await get('from=usd&to=eur&amount=10')).body).stale, false, 'fresh from the cache');
    h.clock.advance(SETTINGS.fxCacheTtlMs);
    assert.equal(JSON.parse((await get('from=usd&to=eur&amount=10')).body).stale, true);
    const none = await get('from=usd&to=gbp&amount=10');
    assert.equal(none.statusCode, 503);
    assert.equal(problemOf(none.body).code, 'fx_unavailable');
    const brl = await get('from=usd&to=brl&amount=10');
    assert.equal(brl.statusCode, 400);
    assert.equal(problemOf(brl.body).field, 'to');
    assert.equal((await get('from=usd&to=eur')).statusCode, 400);
  });

  void it('makes one fx call for concurrent misses of one pair', async () => {
    const h = harness();
    const rs = await Promise.all([1, 2, 3].map(() => h.app.inject({ url: '/quote?from=usd&to=eur&amount=1' })));
    assert.deepEqual(
      rs.map((r) => r.statusCode),
      [200, 200, 200],
    );
    assert.equal(h.rateCalls(), 1);
    assert.equal(h.state.inFlight, 0);
  });
});
