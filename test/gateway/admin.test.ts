/**
 * The admin port against DNS rebinding and cross-origin pages, over real
 * HTTP on a real uWebSockets.js listener: a web page the engineer visits can
 * make the browser send requests to 127.0.0.1:<admin port>, with `Host:
 * evil.example:<port>` once evil.example is rebound to 127.0.0.1. None of
 * them may read the state or change a breaker; curl and the dashboard can.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AdminServer, parseAllowedHosts } from '../../src/gateway/admin.js';
import { Breaker, breakerRegionSpec, initBreakerRegion, type BreakerConfig } from '../../src/resilience/breaker.js';
import { localRegion } from '../../src/shm/regions.js';
import { call, headThenGet, type HttpResult } from '../support/http.js';

const config: BreakerConfig = {
  windowMs: 10_000,
  buckets: 10,
  minCalls: 20,
  failureRateThreshold: 0.5,
  slowCallMs: 500,
  slowCallRateThreshold: 0.8,
  openMs: 5000,
  minOpenMs: 1000,
  halfOpenProbes: 5,
  halfOpenSuccessRatio: 0.8,
  probeTimeoutMs: 2000,
};

function breaker(): Breaker {
  const r = localRegion(breakerRegionSpec(config));
  initBreakerRegion(r, config);
  return new Breaker('provider', r, config);
}

async function start(opts: { token?: string; allowedHosts?: string[] } = {}) {
  const provider = breaker();
  const server = new AdminServer({ state: () => ({ secret: 'traffic figures' }), breakers: { provider }, ...opts });
  const port = await server.listen('127.0.0.1', 0);
  return { server, provider, port, base: `http://127.0.0.1:${port}` };
}

const ADMIN = { 'x-bulwark-admin': '1' };

function expectProblem(r: HttpResult, status: number, code: string): void {
  assert.equal(r.status, status, r.text);
  assert.match(r.headers['content-type'] ?? '', /application\/problem\+json/);
  assert.equal(r.body.code, code);
}

describe('admin port without a token', () => {
  let s: Awaited<ReturnType<typeof start>>;
  before(async () => {
    s = await start();
  });
  after(() => s.server.close());

  it('HEAD gets status and headers only, for an admin Host and a foreign one, so the next request on the connection is answered as itself', async () => {
    for (const host of [`127.0.0.1:${s.port}`, 'evil.example']) {
      const { headAnswer, rest, bytes } = await headThenGet(s.port, '/admin/nothing-here', '/admin/state', host);
      assert.match(headAnswer, /^HTTP\/1\.1 (404|403) /, JSON.stringify(bytes));
      assert.match(headAnswer, /\r\nContent-Length: [1-9]\d*/i, 'the length the body would have');
      assert.match(rest, /^HTTP\/1\.1 (200|403) /, `after HEAD (${host}): ${JSON.stringify(bytes)}`);
    }
  });

  it('answers loopback Host values with its port: localhost, 127.0.0.1, [::1]', async () => {
    for (const host of [`localhost:${s.port}`, `127.0.0.1:${s.port}`, `[::1]:${s.port}`, `LOCALHOST:${s.port}`]) {
      const r = await call(s.base, 'GET', '/admin/state', { headers: { host } });
      assert.equal(r.status, 200, host);
      assert.equal(r.body.secret, 'traffic figures');
    }
  });

  it('refuses a rebound Host on every route, reads included, with and without Origin', async () => {
    const hosts = [
      `evil.example:${s.port}`,
      'evil.example',
      `localhost:${s.port + 1}`,
      'localhost',
      `127.0.0.1.evil.example:${s.port}`,
      '',
    ];
    for (const host of hosts) {
      for (const origin of [undefined, `http://${host}`]) {
        const headers: Record<string, string> = { host, ...(origin ? { origin } : {}) };
        const state = await call(s.base, 'GET', '/admin/state', { headers });
        expectProblem(state, 403, 'forbidden');
        assert.doesNotMatch(state.text, /traffic figures/);
        expectProblem(await call(s.base, 'GET', '/admin/dashboard', { headers }), 403, 'forbidden');
        expectProblem(await call(s.base, 'GET', '/nope', { headers }), 403, 'forbidden');
        // Even with the custom header (a rebound page is same-origin to the browser and may send it).
        expectProblem(
          await call(s.base, 'POST', '/admin/breakers/provider/open', { headers: { ...headers, ...ADMIN } }),
          403,
          'forbidden',
        );
      }
    }
    assert.equal(s.provider.state(), 'closed');
  });

  it('refuses a breaker change without the X-Bulwark-Admin header (what a simple cross-origin POST looks like)', async () => {
    const host = `127.0.0.1:${s.port}`;
    expectProblem(await call(s.base, 'POST', '/admin/breakers/provider/open', { headers: { host } }), 403, 'forbidden');
    expectProblem(
      await call(s.base, 'POST', '/admin/breakers/provider/open', { headers: { host, 'x-bulwark-admin': '0' } }),
      403,
      'forbidden',
    );
    expectProblem(
      await call(s.base, 'POST', '/admin/breakers/provider/open', {
        headers: { host, 'content-type': 'text/plain', origin: 'http://evil.example' },
        body: 'x',
      }),
      403,
      'forbidden',
    );
    assert.equal(s.provider.state(), 'closed');
  });

  it('refuses a change from another Origin even with the header', async () => {
    const r = await call(s.base, 'POST', '/admin/breakers/provider/open', {
      headers: { host: `127.0.0.1:${s.port}`, origin: 'http://evil.example', ...ADMIN },
    });
    expectProblem(r, 403, 'forbidden');
    assert.equal(s.provider.state(), 'closed');
  });

  it('accepts curl with the header, and the dashboard (its own origin)', async () => {
    const open = await call(s.base, 'POST', '/admin/breakers/provider/open', { headers: ADMIN });
    assert.equal(open.status, 200);
    assert.equal(s.provider.state(), 'forced_open');
    const reset = await call(s.base, 'POST', '/admin/breakers/provider/reset', {
      headers: { ...ADMIN, origin: `http://127.0.0.1:${s.port}` },
    });
    assert.equal(reset.status, 200);
    assert.equal(reset.body.state, 'closed');
  });
});

describe('admin port with ADMIN_TOKEN and ADMIN_ALLOWED_HOSTS', () => {
  const token = 's3cret-token-value';
  let s: Awaited<ReturnType<typeof start>>;
  before(async () => {
    s = await start({ token, allowedHosts: parseAllowedHosts(' Admin.Internal , tunnel.local:19090,') });
  });
  after(() => s.server.close());

  it('a missing, wrong, truncated or differently-schemed token gets 401 and changes nothing', async () => {
    const variants: (string | undefined)[] = [
      undefined,
      '',
      'Bearer',
      'Bearer ',
      'Bearer wrong',
      `Bearer ${token.slice(0, -1)}`,
      `Bearer ${token}x`,
      `Basic ${token}`,
      token,
      `Bearer ${token} extra`,
    ];
    for (const authorization of variants) {
      const r = await call(s.base, 'POST', '/admin/breakers/provider/open', {
        headers: { ...ADMIN, ...(authorization !== undefined ? { authorization } : {}) },
      });
      expectProblem(r, 401, 'unauthorized');
      assert.match(r.headers['www-authenticate'] ?? '', /^Bearer/);
    }
    assert.equal(s.provider.state(), 'closed');
  });

  it('the right token still needs the header and a good Host', async () => {
    const authorization = `Bearer ${token}`;
    expectProblem(
      await call(s.base, 'POST', '/admin/breakers/provider/open', { headers: { authorization } }),
      403,
      'forbidden',
    );
    expectProblem(
      await call(s.base, 'POST', '/admin/breakers/provider/open', {
        headers: { authorization, ...ADMIN, host: `evil.example:${s.port}` },
      }),
      403,
      'forbidden',
    );
    assert.equal(s.provider.state(), 'closed');
    const ok = await call(s.base, 'POST', '/admin/breakers/provider/open', { headers: { authorization, ...ADMIN } });
    assert.equal(ok.status, 200);
    assert.equal(s.provider.state(), 'forced_open');
  });

  it('configured hosts are answered: a bare name on any port, host:port on that port only', async () => {
    assert.equal((await call(s.base, 'GET', '/admin/state', { headers: { host: 'admin.internal:8443' } })).status, 200);
    assert.equal((await call(s.base, 'GET', '/admin/state', { headers: { host: 'admin.internal' } })).status, 200);
    assert.equal((await call(s.base, 'GET', '/admin/state', { headers: { host: 'tunnel.local:19090' } })).status, 200);
    expectProblem(
      await call(s.base, 'GET', '/admin/state', { headers: { host: 'tunnel.local:19091' } }),
      403,
      'forbidden',
    );
    expectProblem(
      await call(s.base, 'GET', '/admin/state', { headers: { host: 'evil.admin.internal' } }),
      403,
      'forbidden',
    );
    // Loopback with the admin port still works alongside the list.
    assert.equal((await call(s.base, 'GET', '/admin/state')).status, 200);
  });
});
