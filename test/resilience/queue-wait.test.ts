import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QueueWait, QUEUE_WAIT_REGION } from '../../src/resilience/queue-wait.js';
import { localRegion } from '../../src/shm/regions.js';

test('the worst fresh worker estimate counts; stale ones expire', () => {
  const q = new QueueWait(localRegion(QUEUE_WAIT_REGION), 1000);
  assert.equal(q.expectedMs(10_000), 0);
  q.note(1, 10_000, 10_050); // 50 ms wait on worker 1
  q.note(2, 10_000, 10_010); // 10 ms on worker 2
  assert.equal(q.expectedMs(10_100), 50);
  q.note(1, 10_100, 10_100); // EWMA moves toward 0
  assert.equal(q.expectedMs(10_200), 40);
  assert.equal(q.expectedMs(11_101), 0, 'a second without tasks and the estimate is gone');
});
