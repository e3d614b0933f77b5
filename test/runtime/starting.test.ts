/**
 * The starting listener: /health 200 and every other request 503 `starting`
 * while the service waits for its database (Retry-After: 1: the wait may be
 * long), then `Retry-After: 0` once the database is ready and only the
 * server's own start is left, so a deploy's clients come back on their own
 * short backoff instead of together a second later.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { listenWhileStarting } from '../../src/runtime/starting.js';

test('starting answers ask for a second while the database is awaited, then for no wait once it is ready; /health stays 200', async () => {
  const s = await listenWhileStarting('127.0.0.1', 0);
  try {
    const url = `http://127.0.0.1:${s.port}`;
    const charge = () =>
      request(`${url}/charge`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': 'k1' },
        body: '{"amount":100,"currency":"USD","source":"tok_visa"}',
      });
    const before = await charge();
    const beforeBody = (await before.body.json()) as { code: string };
    assert.equal(before.statusCode, 503);
    assert.equal(before.headers['retry-after'], '1');
    assert.equal(beforeBody.code, 'starting');

    s.databaseReady();
    const after = await charge();
    const afterBody = (await after.body.json()) as { code: string; detail: string };
    assert.equal(after.statusCode, 503);
    assert.equal(after.headers['retry-after'], '0');
    assert.equal(after.headers['content-type'], 'application/problem+json');
    assert.equal(afterBody.code, 'starting');
    assert.match(afterBody.detail, /database is ready/);

    const health = await request(`${url}/health`);
    assert.equal(health.statusCode, 200);
    assert.deepEqual(await health.body.json(), { status: 'starting' });
  } finally {
    await s.close();
  }
});
