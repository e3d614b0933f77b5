import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startSimulator, type Simulator } from '../../src/simulator/index.js';
import { postCharge, request, reset, VISA } from './helpers.js';

void describe('provider: idempotent charges and the ledger', () => {
  let sim: Simulator;
  let url: string;

  before(async () => {
    sim = await startSimulator({ providerPort: 0, fxPort: 0 });
    url = sim.providerUrl;
  });
  after(() => sim.close());
  beforeEach(() => reset(url));

  void it('creates a charge and replays it for the same key', async () => {
    const first = await postCharge(url, 'key-1', { ...VISA, reference: 'client-1' });
    assert.equal(first.status, 201);
    assert.match(first.body.id, /^pch_[0-9a-f]{24}$/);
    assert.equal(first.body.object, 'charge');
    assert.equal(first.body.status, 'succeeded');
    assert.equal(first.body.amount, 1000);
    assert.equal(first.body.currency, 'usd');
    assert.equal(first.body.reference, 'client-1');
    assert.equal(typeof first.body.created, 'number');
    assert.equal(first.headers.get('idempotent-replayed'), null);

    const again = await postCharge(url, 'key-1', { ...VISA, reference: 'client-1' });
    assert.equal(again.status, 201);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(again.body, first.body);

    const entry = await request(`${url}/_ledger/key-1`);
    assert.deepEqual(entry.body, { key: 'key-1', attempts: 2, created: 1, charge: first.body, reference: 'client-1' });
  });

  void it('creates exactly one charge for 50 concurrent requests with one key', async () => {
    const results = await Promise.all(Array.from({ length: 50 }, () => postCharge(url, 'same-key')));
    assert.ok(results.every((r) => r.status === 201));
    assert.equal(new Set(results.map((r) => r.body.id)).size, 1);
    assert.equal(results.filter((r) => r.headers.get('idempotent-replayed') === 'true').length, 49);
    const l = await request(`${url}/_ledger`);
    assert.equal(l.body.created, 1);
    assert.equal(l.body.attempts, 50);
    assert.equal(l.body.keys, 1);
  });

  void it('answers 409 when a key is reused with another amount, currency or source', async () => {
    assert.equal((await postCharge(url, 'key-2')).status, 201);
    for (const body of [
      { ...VISA, amount: 999 },
      { ...VISA, currency: 'eur' },
      { ...VISA, source: 'tok_mastercard' },
    ]) {
      const r = await postCharge(url, 'key-2', body);
      assert.equal(r.status, 409);
      assert.equal(r.body.error.type, 'idempotency_mismatch');
    }
    assert.equal((await request(`${url}/_ledger`)).body.created, 1);
  });

  void it('declines tok_chargeDeclined, stores the decline and replays it', async () => {
    const body = { ...VISA, source: 'tok_chargeDeclined' };
    const first = await postCharge(url, 'key-3', body);
    assert.equal(first.status, 402);
    assert.equal(first.body.status, 'declined');
    assert.equal(first.body.decline_code, 'card_declined');
    const again = await postCharge(url, 'key-3', body);
    assert.equal(again.status, 402);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(again.body.id, first.body.id);
    const l = await request(`${url}/_ledger`);
    assert.equal(l.body.created, 1);
    assert.equal(l.body.declined, 1);
  });

  void it('rejects a missing key or a bad body with 400 and creates nothing', async () => {
    const noKey = await postCharge(url, undefined);
    assert.equal(noKey.status, 400);
    assert.equal(noKey.body.error.type, 'invalid_request');
    assert.equal((await postCharge(url, 'k', '{not json')).status, 400);
    for (const body of [
      { currency: 'usd', source: 'tok_visa' },
      { ...VISA, amount: 1.5 },
      { ...VISA, currency: 'dollars' },
      { ...VISA, source: '' },
    ]) {
      const r = await postCharge(url, 'k', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.error.type, 'invalid_request');
    }
    assert.deepEqual((await request(`${url}/_ledger`)).body, {
      attempts: 0,
      created: 0,
      declined: 0,
      keys: 0,
      duplicates: [],
    });
  });

  void it('reads a key outcome with GET /v1/charges/:key without creating anything', async () => {
    const missing = await request(`${url}/v1/charges/nope`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.type, 'not_found');
    const created = await postCharge(url, 'key/4 with space');
    const read = await request(`${url}/v1/charges/${encodeURIComponent('key/4 with space')}`);
    assert.equal(read.status, 200);
    assert.deepEqual(read.body, created.body);
    assert.equal((await request(`${url}/_ledger`)).body.created, 1);
  });

  void it('reports a client reference charged under two provider keys as a duplicate', async () => {
    const a = await postCharge(url, 'prov-a', { ...VISA, reference: 'client-dup' });
    const b = await postCharge(url, 'prov-b', { ...VISA, reference: 'client-dup' });
    await postCharge(url, 'prov-c', { ...VISA, reference: 'client-single' });
    const l = await request(`${url}/_ledger`);
    assert.deepEqual(l.body.duplicates, [{ reference: 'client-dup', charges: 2, keys: ['prov-a', 'prov-b'] }]);
    const byRef = await request(`${url}/_ledger?reference=client-dup`);
    assert.deepEqual(
      byRef.body.charges.map((c: { id: string }) => c.id),
      [a.body.id, b.body.id],
    );
  });

  void it('answers 404 for an unknown ledger key and route, 405 for a wrong method', async () => {
    assert.equal((await request(`${url}/_ledger/never-seen`)).status, 404);
    assert.equal((await request(`${url}/v2/whatever`)).status, 404);
    const r = await request(`${url}/v1/charges`);
    assert.equal(r.status, 405);
    assert.equal(r.headers.get('allow'), 'POST');
  });

  void it('DELETE /_ledger empties it', async () => {
    await postCharge(url, 'key-5');
    const cleared = await request(`${url}/_ledger`, { method: 'DELETE' });
    assert.equal(cleared.body.created, 0);
    assert.equal((await request(`${url}/_ledger/key-5`)).status, 404);
  });
});
