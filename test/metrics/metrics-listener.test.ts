/**
 * The metrics port on its own listener (METRICS_PORT): GET /metrics, 404 for
 * the rest, and a HEAD answered with status and headers only, so the next
 * request on the connection is answered as itself.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { MetricsListener } from '../../src/gateway/metrics-listener.js';
import { call, headThenGet } from '../support/http.js';

let listener: MetricsListener;
let port: number;
before(async () => {
  listener = new MetricsListener(
    async () => '# TYPE up gauge\nup 1\n',
    (e) => {
      throw e;
    },
  );
  port = await listener.listen('127.0.0.1', 0);
});
after(() => listener.close());

test('GET /metrics renders; any other path is 404', async () => {
  const r = await call(`http://127.0.0.1:${port}`, 'GET', '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.text, /^up 1$/m);
  assert.equal((await call(`http://127.0.0.1:${port}`, 'GET', '/nope')).status, 404);
});

test('HEAD gets status and headers only, with the length the body would have', async () => {
  const { headAnswer, rest, bytes } = await headThenGet(port, '/anything', '/metrics');
  assert.match(headAnswer, /^HTTP\/1\.1 404 /, JSON.stringify(bytes));
  assert.match(headAnswer, /\r\nContent-Length: [1-9]\d*/i);
  assert.match(rest, /^HTTP\/1\.1 200 /, JSON.stringify(bytes));
});
