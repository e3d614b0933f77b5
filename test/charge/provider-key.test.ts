import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEV_PROVIDER_KEY_SECRET, providerKeys } from '../../src/charge/provider-key.js';
import { fingerprint } from '../../src/charge/fingerprint.js';

const body = { amount: 1234, currency: 'USD', source: 'tok_visa', metadata: { order: '42', shop: 'a' } };

test('the same Idempotency-Key and body give the same provider key, in any process and any key order', () => {
  const a = providerKeys('secret-one-0123456789');
  const b = providerKeys('secret-one-0123456789'); // another replica, another restart
  const reordered = { metadata: { shop: 'a', order: '42' }, source: 'tok_visa', currency: 'USD', amount: 1234 };
  assert.equal(a('k-1', fingerprint(body)), b('k-1', fingerprint(reordered)));
  assert.match(a('k-1', fingerprint(body)), /^bw_[0-9a-f]{64}$/);
});

test('a different body or a different key gives a different provider key', () => {
  const f = providerKeys('secret-one-0123456789');
  const base = f('k-1', fingerprint(body));
  assert.notEqual(f('k-1', fingerprint({ ...body, amount: 1235 })), base);
  assert.notEqual(f('k-1', fingerprint({ ...body, metadata: { order: '43', shop: 'a' } })), base);
  assert.notEqual(f('k-2', fingerprint(body)), base);
  // The two inputs cannot be shifted into each other.
  assert.notEqual(f('ab', 'c'), f('a', 'bc'));
  assert.notEqual(f('a:1', 'x'), f('a', '1:x'));
});

test('the secret matters: another secret, another key; not a plain hash of the inputs', () => {
  const fp = fingerprint(body);
  assert.notEqual(providerKeys('secret-one-0123456789')('k-1', fp), providerKeys('secret-two-0123456789')('k-1', fp));
  assert.notEqual(providerKeys(DEV_PROVIDER_KEY_SECRET)('k-1', fp), providerKeys('secret-one-0123456789')('k-1', fp));
  assert.throws(() => providerKeys(''), /must not be empty/);
});
