import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RECONNECT_BACKOFF_CAP_S, reconnectBackoffS } from '../../src/db/connect.js';
import { seededRandom } from '../../src/lib/random.js';

test('the reconnect backoff keeps postgres.js curve for the first failures and never waits past its cap, however many connects failed', () => {
  // postgres.js's own: (0.5..1) × 3^n / 100 s, up to 20 s.
  assert.equal(
    reconnectBackoffS(1, () => 0),
    0.5 * 0.03,
  );
  assert.equal(
    reconnectBackoffS(2, () => 1),
    0.09,
  );
  const random = seededRandom(7);
  for (let n = 0; n <= 200; n++) {
    const s = reconnectBackoffS(n, random);
    assert.ok(s >= 0 && s <= RECONNECT_BACKOFF_CAP_S, `after ${n} failed connects: ${s} s`);
  }
  // Jittered (half to full) at the cap: pools that lost the server together do not reconnect in lockstep.
  assert.equal(
    reconnectBackoffS(50, () => 0),
    RECONNECT_BACKOFF_CAP_S / 2,
  );
  assert.equal(
    reconnectBackoffS(50, () => 1),
    RECONNECT_BACKOFF_CAP_S,
  );
});
