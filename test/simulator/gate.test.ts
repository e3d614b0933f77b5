import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Gate } from '../../src/simulator/gate.js';

void describe('Gate', () => {
  void it('admits without waiting while under the limit', () => {
    const g = new Gate();
    g.setLimit(2);
    assert.equal(g.acquire(), undefined);
    assert.equal(g.acquire(), undefined);
    assert.equal(g.active, 2);
  });

  void it('queues past the limit and lets waiters in FIFO order', async () => {
    const g = new Gate();
    g.setLimit(1);
    assert.equal(g.acquire(), undefined);
    const order: number[] = [];
    const waits = [1, 2, 3].map((n) => g.acquire()!.then(() => order.push(n)));
    assert.equal(g.queued, 3);
    g.release();
    await waits[0];
    assert.deepEqual(order, [1]);
    g.release();
    g.release();
    await Promise.all(waits);
    assert.deepEqual(order, [1, 2, 3]);
    assert.equal(g.active, 1);
  });

  void it('lets queued requests in when the limit is raised or removed', async () => {
    const g = new Gate();
    g.setLimit(1);
    assert.equal(g.acquire(), undefined);
    const waits = [g.acquire()!, g.acquire()!];
    g.setLimit(Infinity);
    await Promise.all(waits);
    assert.equal(g.active, 3);
    assert.equal(g.queued, 0);
  });

  void it('drain lets every waiter go', async () => {
    const g = new Gate();
    g.setLimit(1);
    assert.equal(g.acquire(), undefined);
    const waits = [g.acquire()!, g.acquire()!];
    g.drain();
    await Promise.all(waits);
    assert.equal(g.queued, 0);
  });
});
