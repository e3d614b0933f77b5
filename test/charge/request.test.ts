import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  chargeHead,
  completeCharge,
  DEADLINE_ANSWER_GRACE_MS,
  MAX_HEADER_SECTION_BYTES,
  pairsFromRaw,
  parseChargeKey,
  parseChargeRequest,
  problemFrom,
  replyByDeadline,
  type HeaderPairs,
} from '../../src/charge/request.js';
import { fingerprint } from '../../src/charge/fingerprint.js';
import { validateChargeBody } from '../../src/charge/validate.js';
import { catalogue, isErrorCode, json, type Reply } from '../../src/errors/catalogue.js';
import { ManualClock } from '../../src/lib/clock.js';
import { chargeRequestArb, contentLengthValue } from '../support/charge-requests.js';

const S = { maxBodyBytes: 16_384, requestTimeoutMs: 1000, minRequestTimeoutMs: 50, maxRequestTimeoutMs: 30_000 };
const NOW = 1_700_000_000_000;
const BODY = Buffer.from(JSON.stringify({ amount: 1000, currency: 'usd', source: 'tok_visa' }));
const base = (extra: [string, string][] = []): [string, string][] => [
  ['Content-Type', 'application/json'],
  ['Idempotency-Key', 'key-1'],
  ...extra,
];

function refused(headers: HeaderPairs, body: Uint8Array = BODY) {
  const r = parseChargeRequest(headers, body, S, NOW);
  assert.equal(r.ok, false, `expected a refusal for ${JSON.stringify(headers)}`);
  if (r.ok) throw new Error('unreachable');
  return r;
}

test('a valid request: key, deadline from the header, normalised input and its fingerprint', () => {
  const r = parseChargeRequest(base([['X-Request-Timeout-Ms', '2500']]), BODY, S, NOW);
  assert.ok(r.ok);
  assert.equal(r.value.key, 'key-1');
  assert.equal(r.value.deadline, NOW + 2500);
  assert.deepEqual(r.value.input, { amount: 1000, currency: 'USD', source: 'tok_visa' });
  assert.equal(r.value.fingerprint, fingerprint(r.value.input));
  const d = parseChargeRequest(base(), BODY, S, NOW);
  assert.ok(d.ok && d.value.deadline === NOW + S.requestTimeoutMs, 'no header: the default deadline');
});

test('each contract header sent twice is refused naming it, whatever the case and whether the values agree', () => {
  for (const [name, value] of [
    ['Idempotency-Key', 'key-2'],
    ['idempotency-key', 'key-1'],
    ['CONTENT-TYPE', 'application/json'],
    ['Content-Length', String(BODY.length)],
    ['x-request-timeout-ms', '500'],
  ] as const) {
    const headers = base([
      ['Content-Length', String(BODY.length)],
      ['X-Request-Timeout-Ms', '500'],
    ]);
    const r = refused([...headers, [name, value]]);
    assert.equal(r.code, 'invalid_header');
    assert.equal(r.field?.toLowerCase(), name.toLowerCase());
    assert.equal(problemFrom(r).status, 400);
  }
  // Other headers may repeat.
  assert.ok(
    parseChargeRequest(
      base([
        ['Accept', 'a'],
        ['accept', 'b'],
      ]),
      BODY,
      S,
      NOW,
    ).ok,
  );
});

test('Content-Length must be a plain non-negative integer, within the body limit', () => {
  for (const bad of ['abc', '-1', '+5', '5x', '1e3', '', ' 5', '0x10']) {
    const r = refused(base([['Content-Length', bad]]));
    assert.equal(r.code, 'invalid_header', bad);
    assert.equal(r.field, 'Content-Length', bad);
  }
  assert.equal(refused(base([['Content-Length', '16385']])).code, 'payload_too_large');
  const head = chargeHead(base([['Content-Length', '16384']]), S);
  assert.ok(head.ok && head.value.contentLength === 16_384);
});

test('keys: 1-255 bytes of visible ASCII (0x21-0x7e) only', () => {
  const key = (k: string) =>
    parseChargeRequest(
      [
        ['Content-Type', 'application/json'],
        ['Idempotency-Key', k],
      ],
      BODY,
      S,
      NOW,
    );
  assert.ok(key('!').ok && key('~'.repeat(255)).ok && key('a/b:c=d').ok);
  for (const bad of ['a b', 'tab\there', 'é', 'a\u00ffb', 'a\ufffdb', '\x7f', 'k'.repeat(256)]) {
    const r = key(bad);
    assert.ok(!r.ok && r.code === 'invalid_idempotency_key' && r.field === 'Idempotency-Key', JSON.stringify(bad));
  }
  const missing = key('');
  assert.ok(!missing.ok && missing.code === 'missing_idempotency_key');
});

test('X-Request-Timeout-Ms below MIN_REQUEST_TIMEOUT_MS is deadline_too_short; 0, junk and above the ceiling stay invalid_header', () => {
  const t = (v: string) => parseChargeRequest(base([['X-Request-Timeout-Ms', v]]), BODY, S, NOW);
  const short = t('49');
  assert.ok(!short.ok && short.code === 'deadline_too_short' && short.field === 'X-Request-Timeout-Ms');
  assert.equal(problemFrom(short as never).status, 400);
  assert.ok(t('50').ok);
  for (const v of ['0', '30001', 'abc', '-5', '1.5']) {
    const r = t(v);
    assert.ok(!r.ok && r.code === 'invalid_header', v);
  }
});

test('a body that is not UTF-8 is invalid_encoding, never decoded with replacement characters', () => {
  for (const bad of [[0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xff]]) {
    const body = Buffer.concat([
      Buffer.from('{"amount":1000,"currency":"usd","source":"tok_'),
      Buffer.from(bad),
      Buffer.from('"}'),
    ]);
    const r = refused(base(), body);
    assert.equal(r.code, 'invalid_encoding', Buffer.from(bad).toString('hex'));
    assert.equal(problemFrom(r).status, 400);
  }
  const ok = parseChargeRequest(
    base(),
    Buffer.from(JSON.stringify({ amount: 5, currency: 'eur', source: 'tok_€' })),
    S,
    NOW,
  );
  assert.ok(ok.ok && ok.value.input.source === 'tok_€');
});

test('__proto__, constructor and prototype keys are refused naming the field, at the top level and in metadata', () => {
  const head = JSON.stringify({ amount: 1000, currency: 'usd', source: 'tok_visa' }).slice(0, -1);
  for (const k of ['__proto__', 'constructor', 'prototype']) {
    const top = refused(base(), Buffer.from(`${head},"${k}":{"x":1}}`));
    assert.equal(top.code, 'validation_failed');
    assert.equal(top.field, k);
    const meta = refused(base(), Buffer.from(`${head},"metadata":{"order":"1","${k}":"x"}}`));
    assert.equal(meta.code, 'validation_failed');
    assert.equal(meta.field, `metadata.${k}`);
  }
});

test('the order the contract fixes: 415 before the key, the key before the deadline, the deadline before the body', () => {
  const r1 = refused(
    [
      ['Content-Type', 'text/plain'],
      ['X-Request-Timeout-Ms', '1'],
    ],
    Buffer.from([0xff]),
  );
  assert.equal(r1.code, 'unsupported_media_type');
  const r2 = refused(
    [
      ['Content-Type', 'application/json'],
      ['X-Request-Timeout-Ms', '1'],
    ],
    Buffer.from([0xff]),
  );
  assert.equal(r2.code, 'missing_idempotency_key');
  const r3 = refused(base([['X-Request-Timeout-Ms', '1']]), Buffer.from([0xff]));
  assert.equal(r3.code, 'deadline_too_short');
  assert.equal(refused(base(), Buffer.from([0xff])).code, 'invalid_encoding');
  // Framing first of all: a repeated header wins over a bad media type.
  assert.equal(
    refused([
      ['Content-Type', 'text/plain'],
      ['content-type', 'text/plain'],
    ]).field,
    'Content-Type',
  );
});

test('pairsFromRaw keeps every header and its order, as Node hands them over', () => {
  assert.deepEqual(pairsFromRaw(['A', '1', 'b', '2', 'A', '3']), [
    ['A', '1'],
    ['b', '2'],
    ['A', '3'],
  ]);
  assert.equal(MAX_HEADER_SECTION_BYTES, 16_384);
});

/** What a correct parser must say, computed independently of it, for what the oracle can decide. */
function headerCounts(headers: HeaderPairs): Map<string, number> {
  const m = new Map<string, number>();
  for (const [n] of headers) m.set(n.toLowerCase(), (m.get(n.toLowerCase()) ?? 0) + 1);
  return m;
}

function isUtf8(b: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}

const CONTRACT = ['idempotency-key', 'content-type', 'content-length', 'x-request-timeout-ms'];

test('property: every generated request is either a well-formed charge or one catalogue refusal with an RFC 9457 body', () => {
  const arb = fc.record({
    req: chargeRequestArb('prop'),
    length: fc.option(contentLengthValue, { freq: 3 }),
    dupLength: fc.boolean(),
  });
  fc.assert(
    fc.property(arb, ({ req, length, dupLength }) => {
      const headers: [string, string][] = [...req.headers];
      if (length !== null) {
        headers.push(['Content-Length', length]);
        if (dupLength) headers.push(['content-length', length]);
      }
      const r = parseChargeRequest(headers, req.body, S, NOW);
      const counts = headerCounts(headers);
      const repeated = CONTRACT.some((h) => (counts.get(h) ?? 0) > 1);
      if (r.ok) {
        const { key, deadline, input } = r.value;
        assert.ok(!repeated, 'no repeated contract header is accepted');
        assert.match(key, /^[\x21-\x7e]{1,255}$/);
        assert.ok(
          deadline - NOW >= S.minRequestTimeoutMs && deadline - NOW <= S.maxRequestTimeoutMs,
          `deadline within the floor and the ceiling: ${deadline - NOW}`,
        );
        assert.ok(isUtf8(req.body), 'an accepted body is UTF-8');
        assert.deepEqual(
          validateChargeBody(input),
          { ok: true, value: input },
          'the input is a valid, normalised charge',
        );
        assert.equal(r.value.fingerprint, fingerprint(input));
        const text = Buffer.from(req.body).toString('utf8');
        assert.doesNotMatch(text, /"(__proto__|constructor|prototype)"\s*:/, 'no prototype key is accepted');
        // JSON.stringify escapes exactly U+0000 and lone surrogates among these: none may reach Postgres.
        assert.doesNotMatch(JSON.stringify(input), /\\u0000|\\ud[89a-f]/i, 'no text Postgres cannot store');
        return;
      }
      assert.ok(isErrorCode(r.code));
      const reply = problemFrom(r);
      assert.ok(
        [400, 413, 415].includes(reply.status),
        `a refusal before the claim is 400, 413 or 415, got ${reply.status} ${r.code}`,
      );
      assert.equal(reply.status, catalogue[r.code].status);
      const body = JSON.parse(reply.body) as Record<string, unknown>;
      assert.equal(reply.contentType, 'application/problem+json');
      assert.equal(body.status, reply.status);
      assert.equal(body.code, r.code);
      assert.equal(body.type, `urn:bulwark:problem:${r.code}`);
      assert.ok(
        typeof body.title === 'string' && typeof body.detail === 'string' && (body.detail as string).length > 0,
      );
      if (repeated) {
        assert.equal(r.code, 'invalid_header', 'a repeated contract header is refused as such, before anything else');
        assert.ok(CONTRACT.includes(String(r.field).toLowerCase()), `the repeated header is named: ${r.field}`);
      }
      if (r.code === 'invalid_encoding') assert.ok(!isUtf8(req.body));
    }),
    { numRuns: 3000, seed: 1337 },
  );
});

test('property: completeCharge never throws and agrees with parseChargeRequest given the same head', () => {
  fc.assert(
    fc.property(chargeRequestArb('agree'), (req) => {
      const head = chargeHead(req.headers, S);
      const whole = parseChargeRequest(req.headers, req.body, S, NOW);
      if (!head.ok) return assert.deepEqual(whole, head);
      assert.deepEqual(completeCharge(head.value, req.body, S, NOW), whole);
    }),
    { numRuns: 1000, seed: 7 },
  );
});

test('GET /charges/:key: the raw segment is %-decoded; a bad encoding, an empty or over-long key is 400 on idempotencyKey', () => {
  assert.deepEqual(parseChargeKey('order%2F42%7Ea'), { ok: true, value: 'order/42~a' });
  assert.deepEqual(parseChargeKey('k'.repeat(255)), { ok: true, value: 'k'.repeat(255) });
  for (const raw of ['%zz', '%E0%A4%A', '', '%00', '%20', 'k'.repeat(256), '%C3%A9']) {
    const r = parseChargeKey(raw);
    assert.equal(r.ok, false, raw);
    if (r.ok) continue;
    // Never missing_idempotency_key (a header's error): the path named a key, a bad one.
    assert.equal(r.code, 'invalid_idempotency_key', raw);
    assert.equal(r.field, 'idempotencyKey', raw);
    assert.equal(problemFrom(r).status, 400);
  }
});

test("replyByDeadline: the work's reply when it comes in time; 504 only after the deadline plus the grace; a late reply is dropped", async () => {
  const clock = new ManualClock();
  const deadline = clock.epochMs() + 100;
  let settle!: (r: Reply) => void;
  const late = answerOf(replyByDeadline(clock, deadline, new Promise<Reply>((r) => (settle = r)), () => json(500, {})));
  clock.advance(100 + DEADLINE_ANSWER_GRACE_MS - 1);
  await tick();
  assert.equal(late(), undefined, 'the service still has the grace to answer');
  clock.advance(1);
  await tick();
  assert.equal(late()?.status, 504);
  assert.equal((JSON.parse(late()!.body) as { code: string }).code, 'deadline_exceeded');
  settle(json(201, {}));
  await tick();
  assert.equal(late()?.status, 504, 'the late reply does not replace the 504');

  const inTime = replyByDeadline(clock, clock.epochMs() + 100, Promise.resolve(json(201, { id: 1 })), () =>
    json(500, {}),
  );
  assert.equal((await inTime).status, 201);
  assert.equal(clock.pendingTimers, 0, 'the 504 timer is cancelled once the reply came');
});

test("replyByDeadline: a rejection becomes the caller's reply; a deadline already past still waits the grace", async () => {
  const clock = new ManualClock();
  const failed: unknown[] = [];
  const r = await replyByDeadline(clock, clock.epochMs() + 1000, Promise.reject(new Error('lost')), (e) => {
    failed.push(e);
    return json(503, { code: 'x' });
  });
  assert.equal(r.status, 503);
  assert.equal((failed[0] as Error).message, 'lost');
  assert.equal(clock.pendingTimers, 0);

  const past = answerOf(
    replyByDeadline(clock, clock.epochMs() - 5000, new Promise<Reply>(() => {}), () => json(500, {})),
  );
  clock.advance(DEADLINE_ANSWER_GRACE_MS - 1);
  await tick();
  assert.equal(past(), undefined);
  clock.advance(1);
  await tick();
  assert.equal(past()?.status, 504);
});

const tick = () => new Promise((r) => setImmediate(r));

/** What `p` has settled with so far (undefined while pending). */
function answerOf(p: Promise<Reply>): () => Reply | undefined {
  let answer: Reply | undefined;
  void p.then((r) => (answer = r));
  return () => answer;
}
