import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Ledger, type Charge } from '../../src/simulator/ledger.js';

function charge(id: string, reference: string | null, status: Charge['status'] = 'succeeded'): Charge {
  return { id, object: 'charge', status, amount: 100, currency: 'usd', reference, created: 1 };
}

void describe('Ledger', () => {
  void it('counts attempts per key and in total', () => {
    const l = new Ledger();
    l.attempt('a', 'r1');
    l.attempt('a', 'r1');
    l.attempt('b', null);
    assert.equal(l.get('a')!.attempts, 2);
    assert.deepEqual(l.summary(), { attempts: 3, created: 0, declined: 0, keys: 2, duplicates: [] });
  });

  void it('records one charge per key and refuses a second', () => {
    const l = new Ledger();
    const e = l.attempt('a', 'r1');
    l.record(e, charge('pch_1', 'r1'), 'tok_visa');
    assert.equal(l.get('a')!.charge!.id, 'pch_1');
    assert.equal(JSON.parse(l.get('a')!.json!).id, 'pch_1');
    assert.throws(() => l.record(e, charge('pch_2', 'r1'), 'tok_visa'));
    assert.equal(l.summary().created, 1);
  });

  void it('reports a reference charged under two provider keys as a duplicate', () => {
    const l = new Ledger();
    l.record(l.attempt('k1', 'client-1'), charge('pch_1', 'client-1'), 'tok_visa');
    l.record(l.attempt('k2', 'client-1'), charge('pch_2', 'client-1', 'declined'), 'tok_visa');
    l.record(l.attempt('k3', 'client-2'), charge('pch_3', 'client-2'), 'tok_visa');
    l.record(l.attempt('k4', null), charge('pch_4', null), 'tok_visa');
    const s = l.summary();
    assert.equal(s.created, 4);
    assert.equal(s.declined, 1);
    assert.deepEqual(s.duplicates, [{ reference: 'client-1', charges: 2, keys: ['k1', 'k2'] }]);
    assert.deepEqual(
      l.chargesFor('client-1').map((c) => c.id),
      ['pch_1', 'pch_2'],
    );
    assert.deepEqual(l.chargesFor('nobody'), []);
  });

  void it('clear empties everything', () => {
    const l = new Ledger();
    l.record(l.attempt('k1', 'r'), charge('pch_1', 'r'), 'tok_visa');
    l.clear();
    assert.equal(l.get('k1'), undefined);
    assert.deepEqual(l.summary(), { attempts: 0, created: 0, declined: 0, keys: 0, duplicates: [] });
  });
});
