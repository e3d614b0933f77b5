import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseOptions } from '../../src/config/options.js';
import { checkGateway, gatewaySpecs } from '../../src/config/service.js';
import { chargeServiceSettings, workerConnections } from '../../src/charge/service.js';

const config = (env: Record<string, string>) => parseOptions(gatewaySpecs, [], env).values;

test('the gateway refuses DB_POOL_MAX below WORKERS, naming both settings and the value', () => {
  const msg = checkGateway(config({ WORKERS: '4', DB_POOL_MAX: '3' }));
  assert.ok(msg, 'refused');
  assert.match(msg, /DB_POOL_MAX/);
  assert.match(msg, /WORKERS \(4\)/);
  assert.match(msg, /got 3/);
  assert.equal(checkGateway(config({ WORKERS: '4', DB_POOL_MAX: '4' })), undefined);
  // The common rules still apply first.
  assert.match(checkGateway(config({ LEASE_MS: '1000' })) ?? '', /LEASE_MS/);
});

test('each worker opens floor(DB_POOL_MAX / WORKERS) connections, so together they never exceed DB_POOL_MAX; the baseline all of them', () => {
  const urls = { databaseUrl: 'postgres://x/y', providerUrl: 'http://p', fxUrl: 'http://f' };
  for (const [max, workers, each] of [
    [4, 2, 2],
    [16, 3, 5],
    [5, 5, 1],
    [7, 2, 3],
    [16, 1, 16],
  ] as const) {
    const c = config({ DB_POOL_MAX: String(max), WORKERS: String(workers) });
    const s = chargeServiceSettings(c, urls, 1 / workers);
    assert.equal(s.dbPoolMax, each, `${max} over ${workers} workers`);
    assert.ok(s.dbPoolMax * workers <= max);
  }
  assert.equal(chargeServiceSettings(config({ DB_POOL_MAX: '9' }), urls).dbPoolMax, 9);
});

test("behind a bulkhead shared by all workers, a worker's downstream pool is not split; without one the workers split the connections", () => {
  const urls = { databaseUrl: 'postgres://x/y', providerUrl: 'http://p', fxUrl: 'http://f' };
  const c = config({ WORKERS: '2', PROVIDER_CONNECTIONS: '64', FX_CONNECTIONS: '16' });
  const split = chargeServiceSettings(c, urls, 1 / 2);
  assert.equal(split.providerConnections, 32);
  // Bulkhead on: any one worker may carry every call the bulkhead admits.
  assert.equal(workerConnections(64, split.providerConnections, 64), 64);
  assert.equal(workerConnections(16, split.fxConnections, 16), 16);
  // A smaller bulkhead: no worker opens more than it lets through at once.
  assert.equal(workerConnections(64, 32, 40), 40);
  // A bulkhead larger than the connections: the connections still cap each pool.
  assert.equal(workerConnections(64, 32, 200), 64);
  // Bulkhead off: the even share, so the process stays within PROVIDER_CONNECTIONS.
  assert.equal(workerConnections(64, split.providerConnections, undefined), 32);
});
