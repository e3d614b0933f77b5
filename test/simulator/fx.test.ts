import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ManualClock } from '../../src/lib/clock.js';
import { startSimulator, type Simulator } from '../../src/simulator/index.js';
import { putFaults, request, reset } from './helpers.js';

const near = (actual: number, expected: number, tolerance = 0.01): boolean =>
  Math.abs(actual / expected - 1) <= tolerance;

void describe('fx-rates', () => {
  let sim: Simulator;
  let url: string;

  before(async () => {
    sim = await startSimulator({ providerPort: 0, fxPort: 0 });
    url = sim.fxUrl;
  });
  after(() => sim.close());
  beforeEach(() => reset(url));

  void it('quotes USD-EUR', async () => {
    const r = await request(`${url}/v1/rates/USD-EUR`);
    assert.equal(r.status, 200);
    assert.equal(r.body.pair, 'USD-EUR');
    assert.ok(near(r.body.rate, 0.92), String(r.body.rate));
    assert.ok(!Number.isNaN(Date.parse(r.body.as_of)));
  });

  void it('crosses two non-USD currencies via USD, case-insensitively', async () => {
    const r = await request(`${url}/v1/rates/gbp-jpy`);
    assert.equal(r.status, 200);
    assert.equal(r.body.pair, 'GBP-JPY');
    assert.ok(near(r.body.rate, 151.5 / 0.79), String(r.body.rate));
    const inverse = await request(`${url}/v1/rates/JPY-GBP`);
    assert.ok(near(inverse.body.rate * r.body.rate, 1, 1e-4));
  });

  void it('answers 404 for an unknown or malformed pair', async () => {
    for (const pair of ['USD-XYZ', 'USDEUR', 'US-EUR', 'USD-EURO', '']) {
      const r = await request(`${url}/v1/rates/${pair}`);
      assert.equal(r.status, 404, pair);
    }
    assert.equal((await request(`${url}/v2/rates/USD-EUR`)).status, 404);
  });

  void it('counts requests in its ledger', async () => {
    await request(`${url}/v1/rates/USD-EUR`);
    await request(`${url}/v1/rates/USD-SEK`);
    assert.deepEqual((await request(`${url}/_ledger`)).body, { requests: 2 });
    await request(`${url}/_ledger`, { method: 'DELETE' });
    assert.deepEqual((await request(`${url}/_ledger`)).body, { requests: 0 });
  });

  void it('has its own fault set', async () => {
    await putFaults(url, { errorRate: 1 });
    assert.equal((await request(`${url}/v1/rates/USD-EUR`)).status, 503);
    assert.deepEqual((await request(`${sim.providerUrl}/_faults`)).body, {}, 'the provider is untouched');
    const bad = await putFaults(url, { declineRate: 0.5 });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.field, 'declineRate');
  });
});

void describe('fx-rates drift', () => {
  void it('drifts with the clock under a seed and is fixed with no drift', async () => {
    const clock = new ManualClock();
    const sim = await startSimulator({ clock, seed: 5 });
    const fixed = await startSimulator({ clock, seed: 5, fxDriftFraction: 0 });
    try {
      const before = sim.fx.rate('USD', 'EUR')!;
      clock.advance(120_000);
      const later = sim.fx.rate('USD', 'EUR')!;
      assert.notEqual(before, later);
      assert.ok(near(later, 0.92, 0.005));
      assert.equal(fixed.fx.rate('USD', 'EUR'), 0.92);
      const r = await request(`${sim.fxUrl}/v1/rates/USD-EUR`);
      assert.equal(r.body.rate, later);
      assert.equal(r.body.as_of, new Date(clock.epochMs()).toISOString());
    } finally {
      await Promise.all([sim.close(), fixed.close()]);
    }
  });
});
