/**
 * The baseline's MAX_REQUESTS_PER_ADDRESS bookkeeping never leaks: the same
 * 1000 mixed requests as the gateway's test (answered, aborted mid-body or
 * while the service runs, timed out at BODY_TIMEOUT_MS, refused by the cap)
 * from four addresses, against the Fastify app on a real socket with a fake
 * service; afterwards its per-address table is empty.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildBaselineApp, type BaselineSettings } from '../../src/baseline/app.js';
import { ServiceState } from '../../src/service/state.js';
import { json, problem } from '../../src/errors/catalogue.js';
import { AddressCap } from '../../src/resilience/address-cap.js';
import { createLogger } from '../../src/runtime/logger.js';
import { until } from '../support/http.js';
import { mixedRequests } from '../support/mixed-requests.js';

const CAP = 5;
const SETTINGS: BaselineSettings = {
  maxBodyBytes: 16_384,
  requestTimeoutMs: 1000,
  minRequestTimeoutMs: 50,
  maxRequestTimeoutMs: 30_000,
  bodyTimeoutMs: 300,
  maxConnections: 10_000,
  maxRequestsPerAddress: CAP,
  fxCacheTtlMs: 5000,
};
const ADDRESSES = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'];

const later = <T>(ms: number, v: T) => new Promise<T>((res) => setTimeout(() => res(v), ms));

void describe('per-address cap bookkeeping: baseline', () => {
  let app: FastifyInstance;
  let port: number;
  const addresses = new AddressCap(CAP);

  before(async () => {
    app = buildBaselineApp({
      settings: SETTINGS,
      // A service that takes a while, so aborts land while it runs.
      service: {
        charge: () => later(5 + Math.floor(Math.random() * 20), json(201, { status: 'succeeded' })),
        getCharge: () => later(5, problem('not_found')),
        rate: () => later(5, { ok: true as const, rate: 1, asOf: '2026-01-01T00:00:00.000Z' }),
      },
      state: new ServiceState(),
      log: createLogger('silent', 'test'),
      addresses,
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as { port: number }).port;
  });

  after(async () => {
    await app?.close();
  });

  void it(
    '1000 answered, aborted, timed-out and refused requests from 4 addresses leave the table empty',
    { timeout: 120_000 },
    async (t) => {
      const r = await mixedRequests(port, {
        total: 1000,
        concurrency: 32,
        addresses: ADDRESSES,
        bodyTimeoutMs: SETTINGS.bodyTimeoutMs,
      });
      t.diagnostic(
        `sent ${JSON.stringify(r.sent)}; answers ${JSON.stringify(r.statuses)}; 503s ${JSON.stringify(r.details503)}`,
      );
      for (const [ending, n] of Object.entries(r.sent)) assert.ok(n >= 100, `${n} requests ended ${ending}`);
      assert.ok((r.statuses[408] ?? 0) > 0, `some timed out: ${JSON.stringify(r.statuses)}`);
      assert.ok(
        (r.details503['Too many requests open from this address'] ?? 0) > 0,
        `some were refused by the cap: ${JSON.stringify(r)}`,
      );
      assert.ok(addresses.refusals >= (r.details503['Too many requests open from this address'] ?? 0));
      assert.ok(
        (r.statuses[201] ?? 0) > 0 && (r.statuses[404] ?? 0) > 0 && (r.statuses[400] ?? 0) > 0,
        `answered every way: ${JSON.stringify(r)}`,
      );
      // 'close' events of the last responses may still be on their way.
      await until('the per-address table to be empty', async () => addresses.addresses === 0 || undefined, 5000, 20);
      for (const a of ADDRESSES) assert.equal(addresses.openFrom(a), 0);
    },
  );
});
