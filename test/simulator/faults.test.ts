import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededRandom } from '../../src/lib/random.js';
import { parseFaults, roll } from '../../src/simulator/faults.js';

function fieldOf(json: unknown, service: 'provider' | 'fx' = 'provider'): string {
  const r = parseFaults(json, service);
  assert.equal(r.ok, false, `expected ${JSON.stringify(json)} to be rejected`);
  return r.ok ? '' : r.field;
}

void describe('parseFaults', () => {
  void it('accepts an empty set', () => {
    assert.deepEqual(parseFaults({}), { ok: true, faults: {} });
  });

  void it('accepts every field and returns a frozen set', () => {
    const r = parseFaults({
      latencyMs: { dist: 'lognormal', medianMs: 50, sigma: 0.5 },
      errorRate: 0.1,
      errorStatus: 502,
      hangRate: 0.01,
      hang: false,
      resetRate: 0.02,
      declineRate: 0.05,
      ambiguousRate: 0.03,
      ambiguousMode: 'reset',
      concurrency: 8,
    });
    assert.ok(r.ok);
    assert.equal(r.faults.errorStatus, 502);
    assert.equal(r.faults.concurrency, 8);
    assert.deepEqual(r.faults.latencyMs, { dist: 'lognormal', medianMs: 50, sigma: 0.5 });
    assert.ok(Object.isFrozen(r.faults));
  });

  void it('turns a bare latency number into a fixed distribution', () => {
    const r = parseFaults({ latencyMs: 200 });
    assert.ok(r.ok);
    assert.deepEqual(r.faults.latencyMs, { dist: 'fixed', ms: 200 });
  });

  void it('accepts every latency distribution', () => {
    for (const latencyMs of [
      { dist: 'fixed', ms: 5 },
      { dist: 'uniform', minMs: 1, maxMs: 9 },
      { dist: 'normal', meanMs: 100, stdDevMs: 20 },
      { dist: 'exponential', meanMs: 30 },
      { dist: 'lognormal', medianMs: 40, sigma: 1 },
    ]) {
      const r = parseFaults({ latencyMs });
      assert.ok(r.ok, JSON.stringify(latencyMs));
      assert.deepEqual(r.faults.latencyMs, latencyMs);
    }
  });

  void it('canonicalises ambiguousMode 500 given as a number', () => {
    const r = parseFaults({ ambiguousMode: 500 });
    assert.ok(r.ok);
    assert.equal(r.faults.ambiguousMode, '500');
  });

  void it('names an unknown field', () => {
    assert.equal(fieldOf({ errorRate: 0.1, latency: 5 }), 'latency');
  });

  void it('names a rate outside 0..1 or of the wrong type', () => {
    assert.equal(fieldOf({ errorRate: 1.5 }), 'errorRate');
    assert.equal(fieldOf({ hangRate: -0.1 }), 'hangRate');
    assert.equal(fieldOf({ resetRate: '0.1' }), 'resetRate');
    assert.equal(fieldOf({ ambiguousRate: null }), 'ambiguousRate');
  });

  void it('names bad scalar fields', () => {
    assert.equal(fieldOf({ errorStatus: 200 }), 'errorStatus');
    assert.equal(fieldOf({ errorStatus: 503.5 }), 'errorStatus');
    assert.equal(fieldOf({ hang: 'yes' }), 'hang');
    assert.equal(fieldOf({ ambiguousMode: 'lost' }), 'ambiguousMode');
    assert.equal(fieldOf({ concurrency: 0 }), 'concurrency');
    assert.equal(fieldOf({ concurrency: 2.5 }), 'concurrency');
  });

  void it('names the bad part of a latency distribution', () => {
    assert.equal(fieldOf({ latencyMs: -1 }), 'latencyMs');
    assert.equal(fieldOf({ latencyMs: 'slow' }), 'latencyMs');
    assert.equal(fieldOf({ latencyMs: { dist: 'pareto' } }), 'latencyMs.dist');
    assert.equal(fieldOf({ latencyMs: { dist: 'uniform', minMs: 1 } }), 'latencyMs.maxMs');
    assert.equal(fieldOf({ latencyMs: { dist: 'uniform', minMs: 9, maxMs: 1 } }), 'latencyMs.maxMs');
    assert.equal(fieldOf({ latencyMs: { dist: 'fixed', ms: 5, meanMs: 3 } }), 'latencyMs.meanMs');
    assert.equal(fieldOf({ latencyMs: { dist: 'lognormal', medianMs: 5, sigma: -1 } }), 'latencyMs.sigma');
    assert.equal(fieldOf({ latencyMs: { dist: 'normal', meanMs: Infinity, stdDevMs: 1 } }), 'latencyMs.meanMs');
  });

  void it('rejects a value that is not an object', () => {
    for (const v of [null, [], 'x', 3]) assert.equal(fieldOf(v), '(faults)');
  });

  void it('rejects provider-only fields on fx and accepts the rest', () => {
    assert.equal(fieldOf({ declineRate: 0.5 }, 'fx'), 'declineRate');
    assert.ok(parseFaults({ errorRate: 0.5, latencyMs: 10 }, 'fx').ok);
  });

  void it('takes a raw error body and content type, and refuses what would break the answer', () => {
    const r = parseFaults({
      errorRate: 1,
      errorStatus: 404,
      errorBody: '<html>404</html>',
      errorContentType: 'text/html',
      ambiguousMode: 'error',
    });
    assert.ok(r.ok);
    assert.equal(r.faults.errorBody, '<html>404</html>');
    assert.equal(r.faults.errorContentType, 'text/html');
    assert.equal(r.faults.ambiguousMode, 'error');
    assert.equal(fieldOf({ errorBody: 42 }), 'errorBody');
    assert.equal(fieldOf({ errorBody: 'x'.repeat(64 * 1024 + 1) }), 'errorBody');
    assert.equal(fieldOf({ errorContentType: '' }), 'errorContentType');
    assert.equal(fieldOf({ errorContentType: 'text/html\r\nx-injected: 1' }), 'errorContentType');
    assert.equal(fieldOf({ ambiguousMode: 'html' }), 'ambiguousMode');
  });

  void it('says what is allowed in the message', () => {
    const r = parseFaults({ errorRate: 2 });
    assert.ok(!r.ok);
    assert.match(r.message, /errorRate must be a number from 0 to 1; got 2/);
  });
});

void describe('roll', () => {
  void it('never fires for absent or zero rates and always for 1, without drawing', () => {
    let draws = 0;
    const random = () => {
      draws++;
      return 0;
    };
    assert.equal(roll(random, undefined), false);
    assert.equal(roll(random, 0), false);
    assert.equal(roll(random, 1), true);
    assert.equal(draws, 0);
  });

  void it('fires about rate of the time', () => {
    const random = seededRandom(1);
    let hits = 0;
    for (let i = 0; i < 10_000; i++) if (roll(random, 0.3)) hits++;
    assert.ok(hits > 2800 && hits < 3200, `hits=${hits}`);
  });
});
