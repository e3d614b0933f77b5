import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseOptions } from '../../src/config/options.js';
import { autoWorkers, checkGateway, gatewaySpecs, withWorkerCount } from '../../src/config/service.js';
import { chargeServiceSettings, gatewayWorkerSettings } from '../../src/charge/service.js';
import { protectionSettings } from '../../src/resilience/protection.js';

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

test("each gateway worker's settings: behind a bulkhead its downstream pool is not split; with the bulkheads off the workers split the connections", () => {
  const urls = { databaseUrl: 'postgres://x/y', providerUrl: 'http://p', fxUrl: 'http://f' };
  const worker = (env: Record<string, string>) => {
    const c = config({ WORKERS: '2', PROVIDER_CONNECTIONS: '64', FX_CONNECTIONS: '16', ...env });
    const s = gatewayWorkerSettings(c, urls, protectionSettings(c));
    return [s.providerConnections, s.fxConnections];
  };
  // Defaults: any one worker may carry every call its bulkhead admits.
  assert.deepEqual(worker({}), [64, 16]);
  // Each downstream by its own bulkhead, never past its own connections.
  assert.deepEqual(worker({ PROVIDER_BULKHEAD: '40', FX_BULKHEAD: '4' }), [40, 4]);
  // No bulkhead to bound the process: the even split, however the bulkheads are switched off.
  assert.deepEqual(worker({ BULKHEADS: 'false' }), [32, 8]);
  assert.deepEqual(worker({ MECHANISMS: 'false' }), [32, 8]);
  assert.deepEqual(worker({ BULKHEADS: 'false', WORKERS: '4' }), [16, 4]);
  // Rounded down, so the workers' pools never add up to more than the connections; at least one each.
  assert.deepEqual(worker({ BULKHEADS: 'false', WORKERS: '3' }), [21, 5]);
  assert.deepEqual(
    worker({ BULKHEADS: 'false', WORKERS: '4', PROVIDER_CONNECTIONS: '2', FX_CONNECTIONS: '1' }),
    [1, 1],
  );
  // The rest is the shared split, the DB pool included.
  assert.equal(
    gatewayWorkerSettings(config({ WORKERS: '2', DB_POOL_MAX: '9' }), urls, protectionSettings(config({}))).dbPoolMax,
    4,
  );
});

test('the gateway refuses a bulkhead with more slots than connections (an admitted call would queue unseen inside a pool), naming both settings; not when the bulkheads are off', () => {
  const provider = checkGateway(config({ PROVIDER_BULKHEAD: '200' }));
  assert.ok(provider, 'refused');
  assert.match(provider, /PROVIDER_BULKHEAD must be at most PROVIDER_CONNECTIONS \(64\)/);
  assert.match(provider, /got 200/);
  const fx = checkGateway(config({ FX_BULKHEAD: '17' }));
  assert.match(fx ?? '', /FX_BULKHEAD must be at most FX_CONNECTIONS \(16\).*got 17/);
  // Equal is the default's shape and starts; so does a larger pool.
  assert.equal(checkGateway(config({ PROVIDER_BULKHEAD: '64', FX_BULKHEAD: '16' })), undefined);
  assert.equal(checkGateway(config({ PROVIDER_BULKHEAD: '200', PROVIDER_CONNECTIONS: '256' })), undefined);
  // No bulkhead, nothing to contradict.
  assert.equal(checkGateway(config({ PROVIDER_BULKHEAD: '200', BULKHEADS: 'false' })), undefined);
  assert.equal(checkGateway(config({ PROVIDER_BULKHEAD: '200', MECHANISMS: 'false' })), undefined);
});

test('WORKERS=0 (the default): a worker per core left after the front thread, at least 1, at most 3 and at most DB_POOL_MAX', () => {
  assert.equal(config({}).workers, 0, 'the default asks for the automatic count');
  for (const [cores, pool, want] of [
    [1, 16, 1],
    [2, 16, 1],
    [3, 16, 2],
    [4, 16, 3],
    [64, 16, 3],
    [8, 2, 2],
    [8, 1, 1],
  ] as const) {
    assert.equal(autoWorkers(cores, pool), want, `${cores} cores, DB_POOL_MAX=${pool}`);
    const c = withWorkerCount(config({ DB_POOL_MAX: String(pool) }), cores);
    assert.equal(c.workers, want);
    assert.equal(checkGateway(c), undefined, 'the automatic count always passes the DB_POOL_MAX rule');
  }
  // A set value is kept, even where the automatic count would differ; the rule still applies to it.
  assert.equal(withWorkerCount(config({ WORKERS: '2' }), 2).workers, 2);
  assert.equal(withWorkerCount(config({ WORKERS: '5' }), 64).workers, 5);
  assert.match(checkGateway(withWorkerCount(config({ WORKERS: '4', DB_POOL_MAX: '3' }), 2)) ?? '', /WORKERS \(4\)/);
});
