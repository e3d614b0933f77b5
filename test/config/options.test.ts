import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, bool, int, oneOf, parseOptions, renderHelp, url } from '../../src/config/options.js';
import { checkCommon, checkGateway, gatewaySpecs } from '../../src/config/service.js';

const specs = {
  port: int({ flag: 'port', env: 'PORT', default: 8080, min: 0, max: 65535, doc: 'Port.' }),
  hardened: bool({ flag: 'hardened', default: false, doc: 'Harden.' }),
  level: oneOf({ flag: 'level', env: 'LEVEL', default: 'info', values: ['info', 'warn'] as const, doc: 'Level.' }),
  db: url({ flag: 'db', env: 'DB', default: undefined, doc: 'DB.' }),
};

test('precedence is flag > environment > default, and the result is frozen', () => {
  assert.equal(parseOptions(specs, [], {}).values.port, 8080);
  assert.equal(parseOptions(specs, [], { PORT: '9000' }).values.port, 9000);
  const r = parseOptions(specs, ['--port', '7000'], { PORT: '9000' });
  assert.equal(r.values.port, 7000);
  assert.equal(Object.isFrozen(r.values), true);
  assert.equal(parseOptions(specs, ['--port=7001'], {}).values.port, 7001);
});

test('switches take no value; --help is reported', () => {
  assert.equal(parseOptions(specs, ['--hardened'], {}).values.hardened, true);
  assert.equal(parseOptions(specs, ['--hardened', '--port', '1'], {}).values.hardened, true);
  assert.equal(parseOptions(specs, ['--hardened=false'], {}).values.hardened, false);
  assert.equal(parseOptions(specs, ['--help'], {}).help, true);
});

test('a bad value names the option, the value and what is allowed, on one line', () => {
  assert.throws(
    () => parseOptions(specs, [], { PORT: 'abc' }),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.message, 'PORT must be an integer from 0 to 65535; got "abc"');
      return true;
    },
  );
  assert.throws(
    () => parseOptions(specs, ['--port', '70000'], {}),
    /--port must be an integer from 0 to 65535; got "70000"/,
  );
  assert.throws(() => parseOptions(specs, [], { LEVEL: 'loud' }), /LEVEL must be one of info, warn; got "loud"/);
  assert.throws(() => parseOptions(specs, [], { DB: 'not a url' }), /DB must be an absolute URL/);
  assert.throws(() => parseOptions(specs, ['--nope'], {}), /unknown option --nope/);
  assert.throws(() => parseOptions(specs, ['--port'], {}), /--port needs a value/);
});

test('help lists every option with env, unit and default', () => {
  const help = renderHelp('bulwark serve', 'Run it.', gatewaySpecs);
  for (const spec of Object.values(gatewaySpecs)) {
    assert.ok(help.includes(`--${spec.flag}`), spec.flag);
    if (spec.env) assert.ok(help.includes(`env ${spec.env}`), spec.env);
  }
  assert.match(help, /Unit: ms\. Default: 1000\./);
});

test('cross-field rules of the service config', () => {
  const base = parseOptions(gatewaySpecs, [], {}).values;
  assert.equal(checkCommon(base), undefined);
  assert.match(checkCommon({ ...base, leaseMs: 1000 }) ?? '', /LEASE_MS must be greater than MAX_REQUEST_TIMEOUT_MS/);
  assert.match(checkCommon({ ...base, providerUrl: 'http://x' }) ?? '', /PROVIDER_URL and FX_URL must be set together/);
});

test('cross-field rules name both settings: retry backoff, and the concurrency limits min <= static <= max', () => {
  const base = parseOptions(gatewaySpecs, [], {}).values;
  assert.equal(checkGateway(base), undefined);
  assert.equal(
    checkCommon({ ...base, retryBaseMs: 300, retryMaxMs: 250 }),
    'RETRY_BASE_MS must be at most RETRY_MAX_MS (250); got 300',
  );
  assert.equal(
    checkGateway({ ...base, concurrencyLimitMin: 500, concurrencyLimitMax: 100 }),
    'CONCURRENCY_LIMIT_MIN must be at most CONCURRENCY_LIMIT_MAX (100); got 500',
  );
  assert.match(
    checkGateway({ ...base, concurrencyLimitStatic: 4000 }) ?? '',
    /^CONCURRENCY_LIMIT_STATIC must be from CONCURRENCY_LIMIT_MIN \(16\) to CONCURRENCY_LIMIT_MAX \(2048\); got 4000$/,
  );
  assert.equal(
    checkGateway({ ...base, concurrencyLimit: 'static', concurrencyLimitStatic: 8 }),
    undefined,
    'a static limit has no min or max',
  );
  assert.match(checkGateway({ ...base, leaseMs: 1000 }) ?? '', /LEASE_MS/, 'the common rules still apply');
});

test('--help works whatever the environment says, and names no value it could not parse', () => {
  const r = parseOptions(gatewaySpecs, ['--help'], { WORKERS: 'many', PORT: '-1' });
  assert.equal(r.help, true);
  assert.equal(r.values.workers, 0, 'defaults, not the bad environment');
});
