import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnswerTime, ANSWER_TIME_REGION, initAnswerTimeRegion } from '../../src/resilience/answer-time.js';
import { localRegion } from '../../src/shm/regions.js';

function make(): AnswerTime {
  const r = localRegion(ANSWER_TIME_REGION);
  initAnswerTimeRegion(r);
  return new AnswerTime(r, 1000);
}

test('no answer measured: the floor is 0 (admission refuses nothing on no evidence)', () => {
  assert.equal(make().floorMs(1_700_000_000_000), 0);
});

test('the floor is the fastest answer of the last ten seconds', () => {
  const a = make();
  const t = 1_700_000_000_000;
  a.note(t, 80);
  a.note(t + 10, 50);
  a.note(t + 3000, 120);
  assert.equal(a.floorMs(t + 3000), 50);
  // The 50 ms answer leaves the window after ten buckets; the 120 ms one is still in it.
  assert.equal(a.floorMs(t + 9999), 50);
  assert.equal(a.floorMs(t + 10_000), 120);
  assert.equal(a.floorMs(t + 13_000), 0, 'a quiet window forgets');
});

test('a provider that got slower raises the floor once its fast answers age out; a faster one lowers it at once', () => {
  const a = make();
  const t = 1_700_000_000_000;
  for (let s = 0; s < 10; s++) a.note(t + s * 1000, 20);
  for (let s = 10; s < 20; s++) a.note(t + s * 1000, 300);
  assert.equal(a.floorMs(t + 19_500), 300);
  a.note(t + 19_600, 15);
  assert.equal(a.floorMs(t + 19_600), 15);
});

test('a bucket reused after the ring wraps starts from its new answers, not the old minimum', () => {
  const a = make();
  const t = 1_700_000_000_000;
  a.note(t, 5);
  a.note(t + 10_000, 200); // same ring slot, ten seconds later
  assert.equal(a.floorMs(t + 10_000), 200);
});
