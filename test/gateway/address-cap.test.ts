/**
 * MAX_REQUESTS_PER_ADDRESS never leaks: after 1000 requests from four client
 * addresses that end every way a request can (answered at once or by a
 * worker, aborted mid-body or while a worker runs it, timed out at
 * BODY_TIMEOUT_MS, refused by the cap itself), the gateway's per-address
 * table is empty and each address is served again. A leaked count would
 * show as an address left in bulwark_http_open_request_addresses, and would
 * lock that address out for good once it reached the cap.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'undici';
import { startSimulator, type Simulator } from '../../src/simulator/index.js';
import { call, until } from '../support/http.js';
import { mixedRequests } from '../support/mixed-requests.js';
import { startTestDb, type TestDb } from '../support/postgres.js';
import { startTarget, type Target } from '../support/target.js';

const BODY_TIMEOUT_MS = 300;
const CAP = 5;
const ADDRESSES = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'];
const ADDRESS_CAP_DETAIL = 'Too many requests open from this address';

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`no ${name} in /metrics`);
  return Number(m[1]);
}

void describe('per-address cap bookkeeping: gateway', () => {
  let db: TestDb;
  let sim: Simulator;
  let target: Target;

  before(async () => {
    db = await startTestDb();
    sim = await startSimulator({ providerPort: 0, fxPort: 0 });
    target = await startTarget('gateway', {
      databaseUrl: db.url,
      providerUrl: sim.providerUrl,
      fxUrl: sim.fxUrl,
      // Mechanisms off (the front door's caps stay on): on a loaded machine shedding and the provider
      // breaker would answer 503 too, and this test is about the cap's bookkeeping.
      env: { BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS), MAX_REQUESTS_PER_ADDRESS: String(CAP), MECHANISMS: 'false' },
    });
  });

  after(async () => {
    await target?.stop('SIGTERM', 10_000);
    await sim?.close();
    await db?.close();
  });

  void it(
    '1000 answered, aborted, timed-out and refused requests from 4 addresses leave the table empty',
    { timeout: 180_000 },
    async (t) => {
      const r = await mixedRequests(target.port, {
        total: 1000,
        // 32 at a time over 4 addresses: 8 per address against a cap of 5, so the cap refuses some.
        concurrency: 32,
        addresses: ADDRESSES,
        bodyTimeoutMs: BODY_TIMEOUT_MS,
      });
      t.diagnostic(
        `sent ${JSON.stringify(r.sent)}; answers ${JSON.stringify(r.statuses)}; 503s ${JSON.stringify(r.details503)}`,
      );
      for (const [ending, n] of Object.entries(r.sent)) assert.ok(n >= 100, `${n} requests ended ${ending}`);
      assert.ok((r.statuses[408] ?? 0) > 0, `some timed out: ${JSON.stringify(r.statuses)}`);
      const capped = r.details503[ADDRESS_CAP_DETAIL] ?? 0;
      assert.ok(capped > 0, `some were refused by the cap: ${JSON.stringify(r.details503)}`);
      assert.ok(
        (r.statuses[201] ?? 0) > 0 && (r.statuses[404] ?? 0) > 0 && (r.statuses[400] ?? 0) > 0,
        `answered every way: ${JSON.stringify(r)}`,
      );

      const m = await until(
        'no open request and no address left in the table',
        async () => {
          const text = (await call(target.url, 'GET', '/metrics')).text;
          return metric(text, 'bulwark_http_open_requests') === 0 &&
            metric(text, 'bulwark_http_open_request_addresses') === 0
            ? text
            : undefined;
        },
        // Aborted charges may still be running in a worker: their exchange ended, the task has not.
        10_000,
        100,
      );
      // Aborting clients do not read theirs: the metric counts at least the refusals that were read.
      assert.ok(
        metric(m, 'bulwark_http_address_cap_refusals_total') >= capped,
        `every refusal was counted (503s: ${JSON.stringify(r.details503)})`,
      );
      assert.ok(metric(m, 'bulwark_http_body_timeouts_total') >= (r.statuses[408] ?? 0));

      // Not locked out: CAP charges at once from every address are all served.
      for (const localAddress of ADDRESSES) {
        const client = new Pool(target.url, { localAddress, connections: CAP });
        try {
          const answers = await Promise.all(
            Array.from({ length: CAP }, () =>
              call(target.url, 'POST', '/charge', {
                dispatcher: client,
                headers: {
                  'content-type': 'application/json',
                  'idempotency-key': `after-${randomUUID()}`,
                  'x-request-timeout-ms': '10000',
                },
                body: JSON.stringify({ amount: 1000, currency: 'usd', source: 'tok_visa' }),
              }),
            ),
          );
          assert.deepEqual(
            answers.map((a) => a.status),
            Array(CAP).fill(201),
            `${localAddress}: ${answers.map((a) => a.text).join(' ')}`,
          );
        } finally {
          await client.destroy();
        }
      }
    },
  );
});
