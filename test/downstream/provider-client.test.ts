/**
 * What a provider answer means. Only the provider's explicit answers are
 * final (a well-formed charge, a well-formed decline, a validation refusal in
 * its own error shape); everything else must leave the charge `started`
 * (unknown) and count as a failure for the breaker. A wrongly final answer is
 * the expensive mistake: it is replayed to the client for 72 h.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHook } from 'node:async_hooks';
import { Pool } from 'undici';
import {
  classifyAnswer,
  LOGGED_BODY_CHARS,
  ProviderClient,
  type AttemptOutcome,
} from '../../src/downstream/provider-client.js';
import { finalAnswer } from '../../src/charge/lifecycle.js';
import { GuardedProvider } from '../../src/downstream/guarded.js';
import { Breaker, breakerRegionSpec, initBreakerRegion, type BreakerConfig } from '../../src/resilience/breaker.js';
import { localRegion } from '../../src/shm/regions.js';
import { ManualClock, systemClock } from '../../src/lib/clock.js';

const input = { amount: 500, currency: 'USD', source: 'tok_visa' };
const HTML_404 =
  '<html><head><title>404 Not Found</title></head><body><center><h1>404 Not Found</h1></center><hr><center>nginx</center></body></html>';
const charge = (status: string, extra: object = {}) =>
  JSON.stringify({ id: 'pch_1', object: 'charge', status, amount: 500, currency: 'USD', ...extra });
const providerError = (type: string, message: string) => JSON.stringify({ error: { type, message, param: 'amount' } });

describe('classifyAnswer: final answers', () => {
  it('2xx with a well-formed succeeded charge is a success', () => {
    assert.deepEqual(classifyAnswer(201, charge('succeeded')), { kind: 'succeeded', providerChargeId: 'pch_1' });
    assert.deepEqual(classifyAnswer(200, charge('succeeded')), { kind: 'succeeded', providerChargeId: 'pch_1' });
  });

  it('402 with a well-formed declined charge is a decline (its code kept, card_declined when absent)', () => {
    assert.deepEqual(classifyAnswer(402, charge('declined', { decline_code: 'insufficient_funds' })), {
      kind: 'declined',
      providerChargeId: 'pch_1',
      declineCode: 'insufficient_funds',
    });
    assert.deepEqual(classifyAnswer(402, charge('declined')), {
      kind: 'declined',
      providerChargeId: 'pch_1',
      declineCode: 'card_declined',
    });
    // A retrieve answers 200 with the stored charge, declined ones included.
    assert.equal(classifyAnswer(200, charge('declined')).kind, 'declined');
  });

  it("400 and 422 in the provider's own validation-error shape are a final refusal, with the message kept for logs only", () => {
    assert.deepEqual(classifyAnswer(400, providerError('invalid_request', 'amount must be a positive integer')), {
      kind: 'rejected',
      status: 400,
      message: 'amount must be a positive integer',
    });
    assert.equal(classifyAnswer(422, providerError('invalid_request', 'x')).kind, 'rejected');
    const long = classifyAnswer(400, providerError('invalid_request', 'y'.repeat(5000)));
    assert.ok(
      long.kind === 'rejected' && long.message.length < LOGGED_BODY_CHARS + 40,
      'the kept message is truncated',
    );
  });
});

describe('classifyAnswer: everything else is unknown', () => {
  const unknown = (status: number, body: string, reason: string) => {
    const o = classifyAnswer(status, body);
    assert.equal(o.kind, 'unknown', `${status} ${body.slice(0, 60)} → ${JSON.stringify(o)}`);
    assert.equal(o.kind === 'unknown' && o.reason, reason, `${status} ${body.slice(0, 60)}`);
  };

  it("401, 403, 404, 405, 408, 410, 413 and other 4xx, whatever the body (the provider's JSON shape included)", () => {
    for (const status of [401, 403, 404, 405, 408, 410, 413, 418, 451]) {
      unknown(status, HTML_404, 'status_4xx');
      unknown(status, providerError('invalid_request', 'bad'), 'status_4xx');
      unknown(status, providerError('not_found', 'no such route'), 'status_4xx');
      unknown(status, '', 'status_4xx');
    }
  });

  it('409 (in progress, or a key mismatch) and 429', () => {
    unknown(409, providerError('idempotency_mismatch', 'different amount'), 'status_409');
    unknown(429, '{}', 'status_429');
  });

  it('5xx, with or without a charge body', () => {
    for (const status of [500, 502, 503, 504]) unknown(status, charge('succeeded'), 'status_5xx');
    unknown(502, HTML_404, 'status_5xx');
  });

  it('a 402 that is not a well-formed decline: an HTML page, empty, no id, another status', () => {
    unknown(402, HTML_404, 'bad_response');
    unknown(402, '', 'bad_response');
    unknown(402, JSON.stringify({ status: 'declined' }), 'bad_response');
    unknown(402, JSON.stringify({ id: '', status: 'declined' }), 'bad_response');
    unknown(402, charge('succeeded'), 'bad_response');
    unknown(402, charge('declined', { decline_code: 7 }), 'bad_response');
    unknown(402, providerError('card_error', 'declined'), 'bad_response');
  });

  it("a 400/422 not in the provider's validation shape: HTML, other JSON, another error type", () => {
    for (const status of [400, 422]) {
      unknown(status, HTML_404, 'bad_response');
      unknown(status, '', 'bad_response');
      unknown(status, JSON.stringify({ message: 'Bad Request' }), 'bad_response');
      unknown(status, JSON.stringify({ error: 'bad request' }), 'bad_response');
      unknown(status, providerError('api_error', 'try later'), 'bad_response');
      unknown(status, JSON.stringify({ error: { type: 'invalid_request' } }), 'bad_response');
      unknown(status, '[]', 'bad_response');
    }
  });

  it('a 2xx that is not a well-formed charge: HTML, empty, array, missing id, a pending status', () => {
    unknown(200, HTML_404, 'bad_response');
    unknown(200, '', 'bad_response');
    unknown(201, '[{"id":"pch_1","status":"succeeded"}]', 'bad_response');
    unknown(201, JSON.stringify({ status: 'succeeded' }), 'bad_response');
    unknown(201, JSON.stringify({ id: 42, status: 'succeeded' }), 'bad_response');
    unknown(201, charge('pending'), 'bad_response');
    unknown(204, '', 'bad_response');
  });

  it('a redirect (a misconfigured URL behind a proxy) is unknown', () => {
    unknown(301, '<html>Moved</html>', 'bad_response');
    unknown(302, '', 'bad_response');
  });
});

describe("the client never sees the provider's words", () => {
  it('a final refusal answers 402 charge_rejected with a fixed detail', () => {
    const secret = 'upstream db-7.internal refused: token tok_visa invalid for merchant acct_123';
    const a = finalAnswer('ch_1', input, '2026-01-01T00:00:00.000Z', {
      kind: 'rejected',
      status: 400,
      message: secret,
    });
    assert.equal(a.status, 'failed');
    assert.equal(a.reply.status, 402);
    const body = JSON.parse(a.reply.body) as Record<string, unknown>;
    assert.equal(body.code, 'charge_rejected');
    assert.ok(!a.reply.body.includes('db-7') && !a.reply.body.includes('acct_123'), a.reply.body);
  });
});

describe('ProviderClient over the wire', () => {
  let server: Server;
  let pool: Pool;
  let answer: (res: import('node:http').ServerResponse) => void = () => {};
  before(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => answer(res));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, {
      connections: 4,
      headersTimeout: 5000,
      bodyTimeout: 5000,
    });
  });
  after(async () => {
    await pool.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const send =
    (status: number, body: string, type = 'application/json') =>
    (res: import('node:http').ServerResponse) => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };

  it("a proxy's 404 page is unknown, logged once per interval with the body truncated, the rest counted", async () => {
    const lines: { fields: Record<string, unknown>; msg: string }[] = [];
    const clock = new ManualClock();
    const client = new ProviderClient(pool, { warn: (fields, msg) => lines.push({ fields, msg }) }, clock);
    answer = send(404, HTML_404 + 'x'.repeat(2000), 'text/html');
    for (let i = 0; i < 3; i++)
      assert.deepEqual(await client.createCharge('k1', 'ref', input, 1000), {
        kind: 'unknown',
        reason: 'status_4xx',
        status: 404,
      });
    assert.equal(lines.length, 1, 'a misconfigured provider does not flood the log');
    assert.equal(lines[0]!.fields.status, 404);
    const logged = lines[0]!.fields.body as string;
    assert.ok(logged.startsWith('<html>') && logged.length < LOGGED_BODY_CHARS + 40, logged);
    clock.advance(5000);
    await client.createCharge('k1', 'ref', input, 1000);
    assert.equal(lines.length, 2);
    assert.equal(lines[1]!.fields.similar_answers_not_logged, 2);
  });

  it("a refusal in the provider's shape is rejected and logged; a success is not logged", async () => {
    const lines: unknown[] = [];
    const client = new ProviderClient(pool, { warn: (f) => lines.push(f) }, new ManualClock());
    answer = send(400, providerError('invalid_request', 'currency must be a three-letter ISO 4217 code'));
    assert.deepEqual(await client.createCharge('k2', 'ref', input, 1000), {
      kind: 'rejected',
      status: 400,
      message: 'currency must be a three-letter ISO 4217 code',
    });
    assert.equal(lines.length, 1);
    answer = send(201, charge('succeeded'));
    assert.deepEqual(await client.createCharge('k3', 'ref', input, 1000), {
      kind: 'succeeded',
      providerChargeId: 'pch_1',
    });
    assert.equal(lines.length, 1);
  });

  it('a reset connection and a timeout are unknown', async () => {
    const client = new ProviderClient(pool);
    answer = (res) => res.socket?.destroy();
    assert.deepEqual(await client.createCharge('k4', 'ref', input, 1000), { kind: 'unknown', reason: 'connection' });
    answer = () => {}; // never answers
    assert.deepEqual(await client.createCharge('k5', 'ref', input, 50), { kind: 'unknown', reason: 'timeout' });
  });

  it('a body that trickles and never ends is a timeout, the deadline covering the body too', async () => {
    const client = new ProviderClient(pool);
    answer = (res) => {
      res.writeHead(201, { 'content-type': 'application/json', 'content-length': '500' });
      res.write('{"id":"pch_');
    };
    const t0 = performance.now();
    assert.deepEqual(await client.createCharge('k6', 'ref', input, 80), { kind: 'unknown', reason: 'timeout' });
    assert.ok(performance.now() - t0 < 2000, 'answered by its own deadline, not the pool backstop');
  });

  it('an answered call leaves no timer behind: the deadline timer ends with the call', async () => {
    // Each charge's timer used to stay armed for its whole length after the
    // answer (AbortSignal.timeout), one live timer per charge in flight or not.
    const open = new Set<number>();
    const hook = createHook({
      init: (id, type) => void (type === 'Timeout' && open.add(id)),
      destroy: (id) => void open.delete(id),
    }).enable();
    try {
      const client = new ProviderClient(pool);
      answer = send(201, charge('succeeded'));
      // The pool keeps timers of its own (keep-alive): what must not grow is one per call.
      const armedAfter = async (calls: number) => {
        for (let i = 0; i < calls; i++)
          assert.deepEqual(await client.createCharge(`k7-${calls}-${i}`, 'ref', input, 60_000), {
            kind: 'succeeded',
            providerChargeId: 'pch_1',
          });
        await new Promise((resolve) => setImmediate(resolve));
        return open.size;
      };
      // Warm first: a new connection and the server's keep-alive bring a
      // timer or two of their own, once. A leak adds one per call.
      await armedAfter(5);
      const few = await armedAfter(20);
      const many = await armedAfter(100);
      assert.ok(many - few <= 2, `timers still armed: ${few} after 25 answered calls, ${many} after 100 more`);
    } finally {
      hook.disable();
    }
  });

  it('ambiguous answers count as failures for the breaker: a provider answering 404 HTML opens it', async () => {
    const config: BreakerConfig = {
      windowMs: 10_000,
      buckets: 10,
      minCalls: 5,
      failureRateThreshold: 0.5,
      slowCallMs: 5000,
      slowCallRateThreshold: 1,
      openMs: 60_000,
      minOpenMs: 1000,
      halfOpenProbes: 1,
      halfOpenSuccessRatio: 1,
      probeTimeoutMs: 2000,
    };
    const region = localRegion(breakerRegionSpec(config));
    initBreakerRegion(region, config);
    const breaker = new Breaker('provider', region, config);
    const guarded = new GuardedProvider(new ProviderClient(pool), {
      breaker,
      acquireTimeoutMs: 0,
      attemptTimeoutMs: 1000,
      clock: systemClock,
    });
    answer = send(404, HTML_404, 'text/html');
    const outcomes: AttemptOutcome[] = [];
    for (let i = 0; i < 6; i++) outcomes.push(await guarded.createCharge(`k6-${i}`, 'ref', input, 1000));
    assert.deepEqual(
      outcomes.slice(0, 5).map((o) => o.kind),
      ['unknown', 'unknown', 'unknown', 'unknown', 'unknown'],
    );
    assert.deepEqual(outcomes[5], { kind: 'refused', code: 'breaker_open' });
    assert.equal(breaker.state(), 'open');
  });
});
