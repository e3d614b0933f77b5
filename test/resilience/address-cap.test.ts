import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AddressCap } from '../../src/resilience/address-cap.js';
import { seededRandom } from '../../src/lib/random.js';

test('the limit-th request from an address is admitted, the next is not; other addresses are not affected', () => {
  const cap = new AddressCap(20);
  for (let i = 0; i < 20; i++) assert.equal(cap.take('127.0.0.1'), true, `request ${i + 1}`);
  assert.equal(cap.take('127.0.0.1'), false, 'the 21st');
  assert.equal(cap.take('127.0.0.2'), true, 'another address');
  assert.equal(cap.openFrom('127.0.0.1'), 21, 'a refused request is counted until it ends');
  cap.release('127.0.0.1');
  cap.release('127.0.0.1');
  assert.equal(cap.take('127.0.0.1'), true, 'a request ended: room for one more');
});

test('every take released once, in any order: the table ends empty (random interleavings)', () => {
  const random = seededRandom(7);
  for (let round = 0; round < 50; round++) {
    const cap = new AddressCap(1 + Math.floor(random() * 5));
    const open: string[] = [];
    for (let i = 0; i < 1000; i++) {
      if (open.length > 0 && random() < 0.45) {
        open.splice(Math.floor(random() * open.length), 1).forEach((a) => cap.release(a));
      } else {
        const a = `10.0.0.${Math.floor(random() * 8)}`;
        cap.take(a);
        open.push(a);
      }
      assert.ok(cap.addresses <= 8);
    }
    for (const a of open) cap.release(a);
    assert.equal(cap.addresses, 0);
  }
});

test('a release without a take (a bug elsewhere) does not go negative or resurrect the address', () => {
  const cap = new AddressCap(1);
  cap.release('a');
  assert.equal(cap.addresses, 0);
  assert.equal(cap.take('a'), true);
  assert.equal(cap.take('a'), false);
});
