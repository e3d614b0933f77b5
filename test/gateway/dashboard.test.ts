/**
 * GET /admin/dashboard in a real headless Chromium against a real gateway,
 * Postgres and simulator: the page must load with no request outside the
 * admin origin, show the numbers /admin/state reports, follow them under
 * load, show a breaker that a slow provider opened, and close it again from
 * its Reset button. The numbers are read through data-testid, the contract
 * a runbook or a later test can rely on.
 *
 * The gateway uses a 2 s breaker window (the load phase's successes age out
 * before the slow phase) and a 60 s open period (the page shows `open`
 * until the button resets it, not until a probe does), and an ADMIN_TOKEN:
 * the buttons work only once the token is typed into the page.
 */
import { launchChromium } from '../support/browser.js';
import { chromiumTool } from '../support/system-tools.js';

const chromium = chromiumTool();
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { startSimulator, type Simulator } from '../../src/simulator/index.js';
import { startTestDb, type TestDb } from '../support/postgres.js';
import { adminUrl, startTarget, type Target } from '../support/target.js';
import { call, until } from '../support/http.js';
import { clearFaults, setFaults } from '../support/simulator.js';

const SCREENSHOT = '/tmp/bulwark-dashboard.png';
const TOKEN = 'dashboard-test-token';

let db: TestDb | undefined;
let sim: Simulator | undefined;
let gw: Target | undefined;
let browser: Browser | undefined;
let page: Page;
let admin: string;
const requests: string[] = [];
const pageErrors: string[] = [];
const dialogs: string[] = [];

before(async () => {
  if (chromium.skip) return;
  db = await startTestDb();
  sim = await startSimulator({ providerPort: 0, fxPort: 0 });
  gw = await startTarget('gateway', {
    databaseUrl: db.url,
    providerUrl: sim.providerUrl,
    fxUrl: sim.fxUrl,
    env: {
      BREAKER_MIN_CALLS: '5',
      BREAKER_WINDOW_MS: '2000',
      BREAKER_OPEN_MS: '60000',
      RECONCILE_INTERVAL_MS: '600000',
      ADMIN_TOKEN: TOKEN,
    },
  });
  admin = adminUrl(gw);
  browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  page = await context.newPage();
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => pageErrors.push(e.message));
  // A CSP violation or a failed fetch shows up as a console error.
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(m.text());
  });
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.accept();
  });
});

after(async () => {
  await browser?.close();
  await gw?.kill();
  await sim?.close();
  await db?.close();
});

const text = async (id: string): Promise<string> => ((await page.getByTestId(id).textContent()) ?? '').trim();
const num = async (id: string): Promise<number> => Number((await text(id)).replace(/,/g, ''));

const charge = (key: string, timeoutMs = 1000) =>
  call(gw!.url, 'POST', '/charge', {
    headers: { 'idempotency-key': key, 'x-request-timeout-ms': String(timeoutMs) },
    body: { amount: 1000, currency: 'USD', source: 'tok_visa' },
    timeoutMs: 30_000,
  });

/**
 * `total` charges from `concurrency` loops, each pausing `pauseMs` between its
 * charges. A 503 is retried with the same key after its Retry-After (at most
 * 5 attempts), as a client does: on a machine busy with Chromium and the
 * test's own processes the gateway may shed a few, which is its job.
 */
async function load(
  prefix: string,
  total: number,
  concurrency: number,
  pauseMs: number,
): Promise<{ statuses: number[]; shed: number }> {
  const statuses: number[] = [];
  let shed = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        let res = await charge(`${prefix}-${i}`);
        for (let attempt = 1; res.status === 503 && attempt < 5; attempt++) {
          shed++;
          const after = Number(res.headers['retry-after'] ?? 1);
          await new Promise((r) => setTimeout(r, Math.min(1000, 1000 * (Number.isFinite(after) ? after : 1))));
          res = await charge(`${prefix}-${i}`);
        }
        statuses.push(res.status);
        await new Promise((r) => setTimeout(r, pauseMs));
      }
    }),
  );
  return { statuses, shed };
}

describe('admin dashboard', { skip: chromium.skip }, () => {
  it('is one self-contained HTML page on the admin port', async () => {
    const res = await call(admin, 'GET', '/admin/dashboard');
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
    assert.match(res.headers['content-security-policy'] ?? '', /default-src 'none'/);
    assert.match(res.headers['content-security-policy'] ?? '', /connect-src 'self'/);
    assert.match(res.text, /^<!doctype html>/i);
    assert.doesNotMatch(res.text, /(?:src|href)\s*=\s*["']?(?:https?:)?\/\//i, 'no external script, style or font');
    assert.doesNotMatch(res.text, /@import|url\(/i, 'no CSS that loads anything');
  });

  it('shows the live state and follows it under load', async () => {
    await page.goto(`${admin}/admin/dashboard`);
    await until('the page polled /admin/state', async () => (await text('poll-status')).startsWith('live'), 5000);
    assert.equal(await text('draining'), 'serving');
    assert.equal(await text('breaker-provider-state'), 'closed');
    assert.equal(await text('mechanism-breakers'), 'on');
    const state = (await call(admin, 'GET', '/admin/state')).body;
    assert.equal(await num('bulkhead-provider-limit'), state.bulkheads.provider.limit);
    assert.equal(await num('bulkhead-db-limit'), state.bulkheads.db.limit);
    assert.equal(await num('admission-limit'), state.admission.limit);
    assert.equal(await num('workers-threads'), state.workers.threads);
    assert.equal(await num('red-charge-rate'), 0);
    assert.equal(await num('red-charge-p99'), 0);

    // 200 charges over a couple of seconds; sample in-flight while they run.
    const inflight = new Set<number>();
    const sampling = setInterval(() => {
      num('admission-inflight').then(
        (n) => inflight.add(n),
        () => {},
      );
    }, 100);
    const { statuses, shed } = await load('dash-load', 200, 4, 30).finally(() => clearInterval(sampling));
    assert.equal(statuses.filter((s) => s === 201).length, 200, `statuses: ${statuses.join(',')}`);

    await until(
      'the page shows the charges',
      async () =>
        (await num('red-charge-rate')) > 0 &&
        (await num('red-charge-p99')) > 0 &&
        (await num('bulkhead-provider-acquired')) >= 200,
      5000,
      100,
    );
    assert.ok((await num('red-charge-p50')) <= (await num('red-charge-p99')));
    // The page's error share follows what the client saw: none, or the sheds it retried.
    if (shed === 0) assert.equal(await num('red-charge-errors'), 0);
    else assert.ok((await num('red-charge-errors')) > 0, `${shed} answers were 503 and the page shows no errors`);
    assert.ok(inflight.size >= 1, 'in-flight was read during the load');
    // The sparkline has drawn the history the page keeps.
    const line = await page
      .getByTestId('red-charge-rate')
      .locator('xpath=ancestor::div[contains(@class,"m")][1]//*[local-name()="path" and contains(@class,"l0")]')
      .getAttribute('d');
    assert.match(line ?? '', /^M[\d.]+ [\d.]+(L[\d.]+ [\d.]+)+$/);
  });

  it('shows a breaker a slow provider opened, and Reset closes it', async () => {
    await setFaults(sim!.providerUrl, { latencyMs: 4000 });
    try {
      // Wait until the load phase's successes left the 2 s breaker window.
      await until(
        'the breaker window is empty',
        async () => (await call(admin, 'GET', '/admin/state')).body.breakers.provider.calls === 0,
        5000,
        100,
      );
      const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => charge(`dash-slow-${i}`)));
      for (const a of answers) assert.ok([503, 504].includes(a.status), `got ${a.status}`);
      await until(
        'the page shows the provider breaker open',
        async () => (await text('breaker-provider-state')) === 'open',
        5000,
        100,
      );
      assert.equal(await page.getByTestId('breaker-provider-state').getAttribute('data-state'), 'open');
      assert.ok((await num('breaker-provider-transitions')) >= 1);
      // One refused charge makes the rejection count move.
      assert.equal((await charge('dash-refused')).status, 503);
      await until(
        'the page counts the rejection',
        async () => (await num('breaker-provider-rejections')) >= 1,
        5000,
        100,
      );
      await page.screenshot({ path: SCREENSHOT, fullPage: true });

      // Without the token the gateway refuses, and the page says so.
      const errorsBefore = pageErrors.length;
      await page.getByTestId('breaker-provider-reset').click();
      await until(
        'the page shows the refusal',
        async () => /reset failed: .*Bearer/.test(await text('breaker-provider-message')),
        5000,
        100,
      );
      assert.equal((await call(admin, 'GET', '/admin/state')).body.breakers.provider.state, 'open');
      // Chromium logs the refused fetch as a console error: that one, and only that one, is expected.
      await until('the browser logged the 401', () => pageErrors.length > errorsBefore, 5000, 50);
      assert.deepEqual(
        pageErrors.splice(errorsBefore).map((e) => /401/.test(e)),
        [true],
      );
      await page.getByTestId('admin-token').fill(TOKEN);
      await page.getByTestId('breaker-provider-reset').click();
      await until(
        'the page shows the provider breaker closed',
        async () => (await text('breaker-provider-state')) === 'closed',
        5000,
        100,
      );
      assert.equal((await call(admin, 'GET', '/admin/state')).body.breakers.provider.state, 'closed');
      assert.match(dialogs.at(-1) ?? '', /Reset the provider breaker/);
    } finally {
      await clearFaults(sim!.providerUrl);
    }

    // Force open from the page, then reset, on fx.
    await page.getByTestId('breaker-fx-open').click();
    await until(
      'the page shows fx forced open',
      async () => (await text('breaker-fx-state')) === 'forced open',
      5000,
      100,
    );
    assert.match(dialogs.at(-1) ?? '', /Force the fx breaker OPEN/);
    await page.getByTestId('breaker-fx-reset').click();
    await until('the page shows fx closed', async () => (await text('breaker-fx-state')) === 'closed', 5000, 100);
  });

  it('made no request outside the admin origin and logged no error', () => {
    assert.ok(requests.length > 3, `requests: ${requests.join(', ')}`);
    const outside = requests.filter((u) => !u.startsWith(`${admin}/`) && !u.startsWith('data:'));
    assert.deepEqual(outside, []);
    assert.deepEqual(pageErrors, []);
  });

  it('refuses breaker changes from another origin (a page in a local browser), allows curl and the dashboard', async () => {
    const before = (await call(admin, 'GET', '/admin/state')).body.breakers.fx.state as string;
    const evil = await call(admin, 'POST', '/admin/breakers/fx/open', {
      headers: { origin: 'http://evil.example', 'x-bulwark-admin': '1' },
    });
    assert.equal(evil.status, 403);
    assert.equal(evil.body.code, 'forbidden');
    // A simple POST (no custom header) is what a cross-origin page can send without a preflight.
    const simple = await call(admin, 'POST', '/admin/breakers/fx/open');
    assert.equal(simple.status, 403);
    assert.equal((await call(admin, 'GET', '/admin/state')).body.breakers.fx.state, before);
    const cli = await call(admin, 'POST', '/admin/breakers/fx/reset', {
      headers: { 'x-bulwark-admin': '1', authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(cli.status, 200);
    assert.equal(cli.body.state, 'closed');
  });
});
