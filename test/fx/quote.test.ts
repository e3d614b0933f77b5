import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convert, parseQuoteQuery, RateCache } from '../../src/fx/quote.js';

test('quote query: currencies and amount validated, field named', () => {
  assert.deepEqual(parseQuoteQuery('from=usd&to=eur&amount=1000'), {
    ok: true,
    value: { from: 'USD', to: 'EUR', amount: 1000 },
  });
  const cases: [string, string][] = [
    ['to=eur&amount=1', 'from'],
    ['from=usd&to=xx&amount=1', 'to'],
    ['from=usd&to=eur', 'amount'],
    ['from=usd&to=eur&amount=0', 'amount'],
    ['from=usd&to=eur&amount=1.5', 'amount'],
  ];
  for (const [q, field] of cases) {
    const r = parseQuoteQuery(q);
    assert.ok(!r.ok && r.code === 'invalid_query' && r.field === field, q);
  }
});

test('conversion respects minor units of each currency', () => {
  assert.equal(convert(1000, 'USD', 'EUR', 0.9), 900);
  assert.equal(convert(1000, 'USD', 'JPY', 150), 1500); // $10.00 → ¥1500
  assert.equal(convert(1500, 'JPY', 'USD', 1 / 150), 1000);
});

test('rate cache: fresh within TTL, last known rate kept for the stale fallback', () => {
  const c = new RateCache(1000);
  assert.equal(c.fresh('USD-EUR', 0), undefined);
  c.put('USD-EUR', 0.9, 't0', 0);
  assert.equal(c.fresh('USD-EUR', 999)?.rate, 0.9);
  assert.equal(c.fresh('USD-EUR', 1000), undefined);
  assert.equal(c.last('USD-EUR')?.rate, 0.9);
});

test('single flight: concurrent misses share one fetch', async () => {
  const c = new RateCache(1000);
  let fetches = 0;
  let release!: (v: number) => void;
  const fetch = () => {
    fetches++;
    return new Promise<number>((r) => {
      release = r;
    });
  };
  const a = c.singleFlight('P', fetch);
  const b = c.singleFlight('P', fetch);
  release(7);
  assert.deepEqual(await Promise.all([a, b]), [7, 7]);
  assert.equal(fetches, 1);
  await c.singleFlight('P', async () => {
    fetches++;
    return 1;
  });
  assert.equal(fetches, 2, 'a finished flight is not reused');
});
