import { test } from 'node:test';
import assert from 'node:assert/strict';
import { catalogue, isErrorCode, problem, type ErrorCode } from '../../src/errors/catalogue.js';

test('the catalogue: every entry renders an RFC 9457 body with its stable code', () => {
  const codes = Object.keys(catalogue) as ErrorCode[];
  assert.equal(codes.length, 31, 'adding or removing an error code is a contract change: update this count on purpose');
  for (const code of codes) {
    assert.ok(isErrorCode(code));
    const r = problem(code, { detail: 'd', field: 'f' });
    const body = JSON.parse(r.body) as Record<string, unknown>;
    assert.equal(r.contentType, 'application/problem+json');
    assert.equal(r.status, catalogue[code].status);
    assert.deepEqual(Object.keys(body).sort(), ['code', 'detail', 'field', 'status', 'title', 'type']);
    assert.equal(body.status, r.status);
    assert.equal(body.code, code);
    assert.equal(body.type, `urn:bulwark:problem:${code}`);
    assert.ok(r.status >= 400 && r.status < 600);
    if (r.status === 503 || code === 'idempotency_in_progress')
      assert.match(r.headers?.['Retry-After'] ?? '', /^\d+$/, code);
  }
  assert.equal(isErrorCode('nope'), false);
  assert.equal(isErrorCode('toString'), false);
});

test('extension members follow the standard ones, in order, byte for byte what a stored replay holds', () => {
  const r = problem('card_declined', {
    detail: 'declined',
    members: { id: 'ch_1', charge_status: 'declined', amount: 5 },
  });
  assert.equal(
    r.body,
    '{"type":"urn:bulwark:problem:card_declined","title":"The card was declined","status":402,"detail":"declined",' +
      '"code":"card_declined","id":"ch_1","charge_status":"declined","amount":5}',
  );
  assert.deepEqual(r.headers, {});
  const ready = problem('draining', { detail: 'Not ready', members: { ready: false } });
  assert.equal((JSON.parse(ready.body) as { ready: boolean }).ready, false);
  assert.equal(ready.headers?.['Retry-After'], '0', 'members leave the headers alone');
});
