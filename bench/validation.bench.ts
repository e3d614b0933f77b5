// Body validation and the idempotency fingerprint (front thread, every charge).
import assert from 'node:assert/strict';
import { fingerprint } from '../src/charge/fingerprint.js';
import { parseChargeBody } from '../src/charge/validate.js';
import type { Suite } from './harness.js';

const body = JSON.stringify({
  amount: 2500,
  currency: 'usd',
  source: 'tok_visa',
  description: 'two books',
  metadata: { order: '1001', channel: 'web' },
});
const parsed = parseChargeBody(body);
if (!parsed.ok) throw new Error('fixture must be valid');
const input = parsed.value;

export const suite: Suite = {
  name: 'validation',
  cases: [
    {
      name: 'parseChargeBody (JSON.parse + schema)',
      check: () => {
        const r = parseChargeBody(body);
        assert.ok(r.ok && r.value.currency === 'USD' && r.value.metadata?.order === '1001');
        assert.equal(parseChargeBody('{"amount":0,"currency":"USD","source":"s"}').ok, false);
      },
      fn: () => parseChargeBody(body),
    },
    {
      name: 'fingerprint (canonical JSON + sha256)',
      check: () =>
        assert.equal(fingerprint(input), fingerprint({ ...input, metadata: { channel: 'web', order: '1001' } })),
      fn: () => fingerprint(input),
    },
  ],
};
