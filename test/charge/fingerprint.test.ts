import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fingerprint } from '../../src/charge/fingerprint.js';

test('fingerprint ignores metadata key order and differs on any field', () => {
  const a = fingerprint({ amount: 100, currency: 'USD', source: 's', metadata: { a: '1', b: '2' } });
  const b = fingerprint({ amount: 100, currency: 'USD', source: 's', metadata: { b: '2', a: '1' } });
  assert.equal(a, b);
  assert.notEqual(a, fingerprint({ amount: 101, currency: 'USD', source: 's', metadata: { a: '1', b: '2' } }));
  assert.notEqual(a, fingerprint({ amount: 100, currency: 'EUR', source: 's', metadata: { a: '1', b: '2' } }));
  assert.notEqual(a, fingerprint({ amount: 100, currency: 'USD', source: 't', metadata: { a: '1', b: '2' } }));
  assert.notEqual(a, fingerprint({ amount: 100, currency: 'USD', source: 's', metadata: { a: '1' } }));
  assert.notEqual(
    fingerprint({ amount: 1, currency: 'USD', source: 's' }),
    fingerprint({ amount: 1, currency: 'USD', source: 's', description: '' }),
  );
});
