import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startSimulator, type Simulator } from '../../src/simulator/index.js';
import { postCharge, putFaults, request, reset, VISA, waitFor } from './helpers.js';

void describe('provider faults', () => {
  let sim: Simulator;
  let url: string;

  before(async () => {
    sim = await startSimulator({ providerPort: 0, fxPort: 0 });
    url = sim.providerUrl;
  });
  after(() => sim.close());
  beforeEach(() => reset(url));

  void it('declineRate 1 declines new charges and stores the decline', async () => {
    assert.equal((await putFaults(url, { declineRate: 1 })).status, 200);
    const r = await postCharge(url, 'd-1');
    assert.equal(r.status, 402);
    assert.equal(r.body.decline_code, 'card_declined');
    await request(`${url}/_faults`, { method: 'DELETE' });
    const replay = await postCharge(url, 'd-1');
    assert.equal(replay.status, 402, "the decline is the key's final outcome");
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
  });

  void it('errorRate 1 answers errorStatus and creates nothing', async () => {
    await putFaults(url, { errorRate: 1 });
    const r = await postCharge(url, 'e-1');
    assert.equal(r.status, 503);
    await putFaults(url, { errorRate: 1, errorStatus: 502 });
    assert.equal((await postCharge(url, 'e-1')).status, 502);
    const entry = await request(`${url}/_ledger/e-1`);
    assert.equal(entry.body.attempts, 2);
    assert.equal(entry.body.created, 0);
    assert.equal(entry.body.charge, null);
    assert.equal((await request(`${url}/v1/charges/e-1`)).status, 502, 'faults apply to reads too');
  });

  void it("errorBody and errorContentType answer a raw page (a proxy's 404) and create nothing", async () => {
    await putFaults(url, {
      errorRate: 1,
      errorStatus: 404,
      errorBody: '<html>404 Not Found</html>',
      errorContentType: 'text/html',
    });
    const res = await fetch(`${url}/v1/charges`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'e-html' },
      body: JSON.stringify(VISA),
    });
    assert.equal(res.status, 404);
    assert.equal(res.headers.get('content-type'), 'text/html');
    assert.equal(await res.text(), '<html>404 Not Found</html>');
    assert.equal((await request(`${url}/_ledger/e-html`)).body.created, 0);
  });

  void it('ambiguousMode error creates the charge, then answers the error page; a retry replays the charge', async () => {
    await putFaults(url, {
      ambiguousRate: 1,
      ambiguousMode: 'error',
      errorStatus: 404,
      errorBody: '<html>gone</html>',
      errorContentType: 'text/html',
    });
    const res = await fetch(`${url}/v1/charges`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'a-html' },
      body: JSON.stringify(VISA),
    });
    assert.equal(res.status, 404);
    assert.equal(await res.text(), '<html>gone</html>');
    const entry = await request(`${url}/_ledger/a-html`);
    assert.equal(entry.body.created, 1);
    await request(`${url}/_faults`, { method: 'DELETE' });
    const retry = await postCharge(url, 'a-html');
    assert.equal(retry.status, 201);
    assert.equal(retry.body.id, entry.body.charge.id);
  });

  void it('ambiguousRate 1 answers 500 but the charge exists, and a retry replays it', async () => {
    await putFaults(url, { ambiguousRate: 1 });
    const r = await postCharge(url, 'a-1');
    assert.equal(r.status, 500);
    const entry = await request(`${url}/_ledger/a-1`);
    assert.equal(entry.body.created, 1);
    await request(`${url}/_faults`, { method: 'DELETE' });
    const retry = await postCharge(url, 'a-1');
    assert.equal(retry.status, 201);
    assert.equal(retry.headers.get('idempotent-replayed'), 'true');
    assert.equal(retry.body.id, entry.body.charge.id);
  });

  void it('ambiguousMode reset loses the connection after creating the charge', async () => {
    await putFaults(url, { ambiguousRate: 1, ambiguousMode: 'reset' });
    await assert.rejects(postCharge(url, 'a-2'));
    assert.equal((await request(`${url}/_ledger/a-2`)).body.created, 1);
  });

  void it('resetRate 1 destroys the connection and creates nothing', async () => {
    await putFaults(url, { resetRate: 1 });
    await assert.rejects(postCharge(url, 'r-1'));
    const entry = await request(`${url}/_ledger/r-1`);
    assert.equal(entry.body.attempts, 1);
    assert.equal(entry.body.created, 0);
  });

  void it('hang never answers: a client with a short timeout gives up', async () => {
    await putFaults(url, { hang: true });
    await assert.rejects(postCharge(url, 'h-1', VISA, { signal: AbortSignal.timeout(150) }), { name: 'TimeoutError' });
    assert.equal((await request(`${url}/_ledger/h-1`)).body.created, 0);
  });

  void it('a hung request is released when the simulator closes', async () => {
    const own = await startSimulator();
    await putFaults(own.providerUrl, { hangRate: 1 });
    const pending = postCharge(own.providerUrl, 'h-2');
    await waitFor(() => own.provider.stats().hung === 1);
    const closing = own.close();
    await assert.rejects(pending);
    await closing;
  });

  void it('fixed latency of 200 ms is measurable and the charge exists before the answer', async () => {
    await putFaults(url, { latencyMs: 200 });
    const start = performance.now();
    let answered = false;
    const pending = postCharge(url, 'l-1').finally(() => (answered = true));
    await waitFor(() => sim.provider.ledger.get('l-1')?.charge != null);
    assert.equal(answered, false, 'the charge is created on arrival, before the delay');
    const r = await pending;
    const elapsed = performance.now() - start;
    assert.equal(r.status, 201);
    assert.ok(elapsed >= 180, `elapsed ${elapsed.toFixed(1)} ms`);
  });

  void it('a concurrency cap queues requests: cap 1 at 100 ms serves 3 in >= ~300 ms', async () => {
    await putFaults(url, { concurrency: 1, latencyMs: { dist: 'fixed', ms: 100 } });
    const start = performance.now();
    const results = await Promise.all(['c-1', 'c-2', 'c-3'].map((k) => postCharge(url, k)));
    const elapsed = performance.now() - start;
    assert.ok(results.every((r) => r.status === 201));
    assert.ok(elapsed >= 280, `elapsed ${elapsed.toFixed(1)} ms`);
    assert.deepEqual(sim.provider.stats(), { active: 0, queued: 0, hung: 0 });
  });

  void it('PUT /_faults names a bad field and keeps the old set', async () => {
    await putFaults(url, { errorRate: 0.5 });
    const bad = await putFaults(url, { errorRate: 2 });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.type, 'invalid_faults');
    assert.equal(bad.body.error.field, 'errorRate');
    const unknown = await putFaults(url, { errorRate: 0.1, explode: true });
    assert.equal(unknown.body.error.field, 'explode');
    const nested = await putFaults(url, { latencyMs: { dist: 'uniform', minMs: 10 } });
    assert.equal(nested.body.error.field, 'latencyMs.maxMs');
    const notJson = await request(`${url}/_faults`, { method: 'PUT', body: '{' });
    assert.equal(notJson.status, 400);
    assert.deepEqual((await request(`${url}/_faults`)).body, { errorRate: 0.5 });
  });

  void it('PUT replaces the whole set and DELETE restores health', async () => {
    await putFaults(url, { errorRate: 1, latencyMs: 5 });
    const replaced = await putFaults(url, { errorRate: 1 });
    assert.deepEqual(replaced.body, { errorRate: 1 });
    assert.deepEqual((await request(`${url}/_faults`)).body, { errorRate: 1 });
    assert.equal((await postCharge(url, 'x-1')).status, 503);
    const cleared = await request(`${url}/_faults`, { method: 'DELETE' });
    assert.equal(cleared.status, 200);
    assert.deepEqual((await request(`${url}/_faults`)).body, {});
    assert.equal((await postCharge(url, 'x-1')).status, 201);
  });

  void it('control routes are never faulted', async () => {
    await putFaults(url, { hang: true, latencyMs: 5000 });
    const start = performance.now();
    assert.equal((await request(`${url}/_ledger`)).status, 200);
    assert.equal((await request(`${url}/_faults`)).status, 200);
    assert.equal((await request(`${url}/_faults`, { method: 'DELETE' })).status, 200);
    assert.ok(performance.now() - start < 2000);
  });
});

void describe('provider determinism', () => {
  async function declinePattern(seed: number): Promise<string> {
    const sim = await startSimulator({ seed });
    try {
      await putFaults(sim.providerUrl, { declineRate: 0.5, latencyMs: { dist: 'exponential', meanMs: 1 } });
      let pattern = '';
      for (let i = 0; i < 40; i++) {
        const r = await postCharge(sim.providerUrl, `det-${i}`);
        pattern += r.status === 402 ? 'D' : r.status === 201 ? 'S' : '?';
      }
      return pattern;
    } finally {
      await sim.close();
    }
  }

  void it('replays the same decline pattern for the same seed and request order', async () => {
    const a = await declinePattern(7);
    const b = await declinePattern(7);
    assert.equal(a, b);
    assert.match(a, /^[SD]+$/);
    assert.ok(a.includes('S') && a.includes('D'), a);
  });
});
