import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  duplicateMember,
  isJsonContentType,
  parseChargeBody,
  parseTimeoutHeader,
  validateIdempotencyKey,
} from '../../src/charge/validate.js';

const ok = { amount: 1000, currency: 'usd', source: 'tok_visa' };
const body = (o: unknown) => JSON.stringify(o);

test('a valid body is normalized (currency upper-cased)', () => {
  const r = parseChargeBody(body({ ...ok, description: 'x', metadata: { order: '42' } }));
  assert.deepEqual(r, {
    ok: true,
    value: { amount: 1000, currency: 'USD', source: 'tok_visa', description: 'x', metadata: { order: '42' } },
  });
});

const invalid: [string, unknown, string, string][] = [
  ['not JSON', '{"amount":', 'invalid_json', ''],
  ['array body', [], 'validation_failed', 'body'],
  ['null body', null, 'validation_failed', 'body'],
  ['missing amount', { currency: 'USD', source: 's' }, 'validation_failed', 'amount'],
  ['amount as string', { ...ok, amount: '1000' }, 'validation_failed', 'amount'],
  ['fractional amount', { ...ok, amount: 1.5 }, 'validation_failed', 'amount'],
  ['zero amount', { ...ok, amount: 0 }, 'validation_failed', 'amount'],
  ['amount above max', { ...ok, amount: 100_000_000 }, 'validation_failed', 'amount'],
  ['two-letter currency', { ...ok, currency: 'US' }, 'validation_failed', 'currency'],
  ['unknown currency', { ...ok, currency: 'XYZ' }, 'validation_failed', 'currency'],
  ['numeric currency', { ...ok, currency: 840 }, 'validation_failed', 'currency'],
  ['empty source', { ...ok, source: '' }, 'validation_failed', 'source'],
  ['long source', { ...ok, source: 's'.repeat(256) }, 'validation_failed', 'source'],
  ['long description', { ...ok, description: 'd'.repeat(1001) }, 'validation_failed', 'description'],
  ['nested metadata', { ...ok, metadata: { a: { b: 'c' } } }, 'validation_failed', 'metadata.a'],
  ['numeric metadata value', { ...ok, metadata: { a: 1 } }, 'validation_failed', 'metadata.a'],
  ['metadata array', { ...ok, metadata: ['a'] }, 'validation_failed', 'metadata'],
  [
    '21 metadata keys',
    { ...ok, metadata: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, 'v'])) },
    'validation_failed',
    'metadata',
  ],
  ['unknown field', { ...ok, ammount: 5 }, 'validation_failed', 'ammount'],
  [
    'U+0000 in the description (Postgres refuses it: was a 503)',
    { ...ok, description: 'a\u0000b' },
    'validation_failed',
    'description',
  ],
  ['a lone surrogate in the source', { ...ok, source: 'tok_\ud800' }, 'validation_failed', 'source'],
  [
    'a lone low surrogate in a metadata value',
    { ...ok, metadata: { a: '\udc00x' } },
    'validation_failed',
    'metadata.a',
  ],
  ['U+0000 in a metadata key', { ...ok, metadata: { 'a\u0000': 'x' } }, 'validation_failed', 'metadata.a\u0000'],
  ['a constructor key', { ...ok, constructor: 'x' }, 'validation_failed', 'constructor'],
  ['a prototype metadata key', { ...ok, metadata: { prototype: 'x' } }, 'validation_failed', 'metadata.prototype'],
  // JSON text, not an object literal: a literal __proto__ would set the prototype instead of making a key.
  [
    'a __proto__ key',
    '{"amount":1000,"currency":"usd","source":"tok_visa","__proto__":{"amount":1}}',
    'validation_failed',
    '__proto__',
  ],
  [
    'a __proto__ metadata key (dropped before, so left out of the fingerprint)',
    '{"amount":1000,"currency":"usd","source":"tok_visa","metadata":{"__proto__":"x"}}',
    'validation_failed',
    'metadata.__proto__',
  ],
];

for (const [name, input, code, field] of invalid) {
  test(`rejects ${name} with ${code}${field ? ` naming ${field}` : ''}`, () => {
    const r = parseChargeBody(typeof input === 'string' ? input : body(input));
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.code, code);
    if (field) assert.equal(r.field, field);
    assert.ok(r.detail.length > 0);
  });
}

test('text beyond ASCII, surrogate pairs included, is accepted as sent', () => {
  const r = parseChargeBody(body({ ...ok, description: 'café 😀 €', metadata: { ключ: '值' } }));
  assert.ok(r.ok && r.value.description === 'café 😀 €' && r.value.metadata?.['ключ'] === '值');
});

test('amount bounds are inclusive', () => {
  assert.equal(parseChargeBody(body({ ...ok, amount: 1 })).ok, true);
  assert.equal(parseChargeBody(body({ ...ok, amount: 99_999_999 })).ok, true);
});

test('idempotency key: required, 1-255 visible ASCII', () => {
  assert.equal(validateIdempotencyKey(undefined).ok, false);
  const missing = validateIdempotencyKey('');
  assert.ok(!missing.ok && missing.code === 'missing_idempotency_key');
  assert.deepEqual(validateIdempotencyKey('k'.repeat(255)), { ok: true, value: 'k'.repeat(255) });
  for (const bad of ['k'.repeat(256), 'tab\tkey', 'ünïcode', 'nl\n', 'a space', ' ', '\x7f']) {
    const r = validateIdempotencyKey(bad);
    assert.ok(!r.ok && r.code === 'invalid_idempotency_key', JSON.stringify(bad));
  }
});

test('content type: application/json with or without parameters, any case', () => {
  assert.equal(isJsonContentType('application/json'), true);
  assert.equal(isJsonContentType('Application/JSON; charset=utf-8'), true);
  assert.equal(isJsonContentType('text/plain'), false);
  assert.equal(isJsonContentType('application/jsonx'), false);
  assert.equal(isJsonContentType(''), false);
  assert.equal(isJsonContentType(undefined), false);
});

test('X-Request-Timeout-Ms: default when absent, 1..max otherwise', () => {
  assert.deepEqual(parseTimeoutHeader(undefined, 1000, 5000), { ok: true, value: 1000 });
  assert.deepEqual(parseTimeoutHeader('', 1000, 5000), { ok: true, value: 1000 });
  assert.deepEqual(parseTimeoutHeader('250', 1000, 5000), { ok: true, value: 250 });
  for (const bad of ['0', '5001', 'abc', '-5', '1.5']) assert.equal(parseTimeoutHeader(bad, 1000, 5000).ok, false, bad);
  const short = parseTimeoutHeader('49', 1000, 5000, 50);
  assert.ok(!short.ok && short.code === 'deadline_too_short' && short.field === 'X-Request-Timeout-Ms');
  assert.deepEqual(parseTimeoutHeader('50', 1000, 5000, 50), { ok: true, value: 50 });
});

test('a member name twice in one object is refused, at any depth; the same name in different objects is not', () => {
  const body = (extra: string) => `{"amount":100,"currency":"USD","source":"tok_visa"${extra}}`;
  assert.equal(duplicateMember(body('')), undefined);
  assert.equal(duplicateMember(body(',"amount":99999999')), 'amount');
  assert.equal(duplicateMember(body(',"metadata":{"a":"1","a":"2"}')), 'a');
  assert.equal(duplicateMember(body(',"\\u0061mount":5')), 'amount', 'compared decoded');
  assert.equal(duplicateMember(body(',"metadata":{"amount":"1"}')), undefined, 'another object');
  assert.equal(duplicateMember(body(',"description":"\\"amount\\":{,[","metadata":{}')), undefined, 'inside a string');
  assert.equal(duplicateMember('[{"a":1},{"a":2}]'), undefined);
  assert.equal(duplicateMember('{"a":[{"b":1,"b":2}]}'), 'b');
  assert.equal(duplicateMember('{"a":{},"a":{}}'), 'a');
  const r = parseChargeBody(body(',"amount":99999999'));
  assert.ok(!r.ok && r.code === 'validation_failed' && r.field === 'amount', JSON.stringify(r));
});
