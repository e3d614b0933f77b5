// Body validation and the idempotency fingerprint (front thread, every charge).
import assert from 'node:assert/strict';
import { fingerprint } from '../src/charge/fingerprint.js';
import { duplicateMember, parseChargeBody } from '../src/charge/validate.js';
import { FramingCheck } from '../src/http/framing.js';
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

const headers: [string, string][] = [
  ['host', '127.0.0.1:8080'],
  ['content-type', 'application/json'],
  ['idempotency-key', 'k-4f1c2a9e-0d7b-4c55-9a1e-2b3c4d5e6f70'],
  ['content-length', String(body.length)],
  ['x-request-id', 'r-1'],
];
const check = new FramingCheck();
function framing(hs: [string, string][]): boolean {
  const f = check.reset(); // as the gateway does: one check, reset per request
  for (const [n, v] of hs) f.see(n, v);
  return f.inDoubt;
}

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
      name: 'duplicateMember (the scan parseChargeBody adds)',
      check: () => {
        assert.equal(duplicateMember(body), undefined);
        assert.equal(duplicateMember(body.replace('}}', '},"amount":1}')), 'amount');
      },
      fn: () => duplicateMember(body),
    },
    {
      name: "FramingCheck over a charge's headers (every request)",
      check: () => assert.equal(framing(headers), false),
      fn: () => framing(headers),
    },
    {
      name: 'fingerprint (canonical JSON + sha256)',
      check: () =>
        assert.equal(fingerprint(input), fingerprint({ ...input, metadata: { channel: 'web', order: '1001' } })),
      fn: () => fingerprint(input),
    },
  ],
};
