import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  duplicateMember,
  isIntegerLiteral,
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

test('an amount is judged as written: a fraction JSON.parse rounds to a whole number is refused, an integer in any JSON form is accepted', () => {
  const text = (amount: string) => `{"amount":${amount},"currency":"USD","source":"tok_visa"}`;
  // Each of these parsed to an integer and was charged (1, 5, 99 999 999).
  for (const amount of ['0.99999999999999999', '4.9999999999999999', '99999998.999999999', '1.00000000000000001']) {
    const r = parseChargeBody(text(amount));
    assert.equal(r.ok, false, amount);
    assert.deepEqual(r.ok ? null : [r.code, r.field], ['validation_failed', 'amount'], amount);
  }
  for (const [amount, value] of [
    ['1000', 1000],
    ['1000.0', 1000],
    ['1000.000', 1000],
    ['1e3', 1000],
    ['1E+3', 1000],
    ['100000e-2', 1000],
    ['10.5e1', 105],
    ['0.5e1', 5],
  ] as const) {
    const r = parseChargeBody(text(amount));
    assert.ok(r.ok, `${amount}: ${JSON.stringify(r)}`);
    assert.equal(r.value.amount, value, amount);
  }
  // Spaces around the colon, the member last, escaped names: the same judgement.
  assert.equal(parseChargeBody('{"currency":"USD","source":"tok_visa", "amount" :\n 4.9999999999999999 }').ok, false);
  assert.equal(parseChargeBody('{"\\u0061mount":4.9999999999999999,"currency":"USD","source":"tok_visa"}').ok, false);
  // Only the top-level amount: a nested member of that name is metadata's business (strings only).
  assert.equal(
    parseChargeBody('{"amount":5,"currency":"USD","source":"tok_visa","metadata":{"amount":"4.99"}}').ok,
    true,
  );
});

test('isIntegerLiteral: the exact value of the text, not its nearest double', () => {
  const cases: [string, boolean][] = [
    ['0', true],
    ['-0', true],
    ['7', true],
    ['7.0', true],
    ['7.5', false],
    ['7e0', true],
    ['75e-1', false],
    ['750e-2', false],
    ['7500e-3', false],
    ['7000e-3', true],
    ['0.7e1', true],
    ['0.75e1', false],
    ['0.75e2', true],
    ['0.00e-5', true],
    ['9007199254740993', true],
    ['0.99999999999999999', false],
    ['abc', false],
  ];
  for (const [text, expected] of cases) assert.equal(isIntegerLiteral(text), expected, text);
});
