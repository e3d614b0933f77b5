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
