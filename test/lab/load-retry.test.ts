/**
 * Client behaviour the scenarios rely on: retry policies (same key, counted
 * as extra sends), goodput counting only final outcomes within the deadline,
 * timeouts distinct from statuses, the request mix, and one outcome per key.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { runLoad } from '../../src/lab/load/run.js';
import { answerAfter, charged, send, startServer, type TestServer } from './fixtures/load-servers.js';

const servers: TestServer[] = [];
after(() => Promise.all(servers.map((s) => s.close())));

/** 503 for the first `failures` attempts of each key, then 201. */
async function failFirst(failures: number, headers: Record<string, string> = {}): Promise<TestServer> {
  const s = await startServer((seen, _req, res, srv) => {
    const n = srv.attempts.get(seen.key ?? '') ?? 0;
    if (n <= failures) send(res, 503, { code: 'overloaded' }, headers);
    else send(res, 201, charged(seen.key));
  });
  servers.push(s);
  return s;
}

const base = { rate: 20, durationSeconds: 1, retryBaseMs: 20, seed: 11 };

test('retry none sends each key once; capped reaches 201 on the third attempt with the same key', async () => {
  const none = await failFirst(2);
  const r0 = await runLoad({ ...base, url: none.url, retry: 'none' });
  assert.equal(r0.totals.sent, 20);
  assert.equal(r0.totals.retries, 0);
  assert.deepEqual(r0.totals.statuses, { '503': 20 });
  assert.equal(r0.totals.goodput, 0);
  assert.ok([...none.attempts.values()].every((n) => n === 1));
  assert.ok(r0.outcomes.every((o) => o.codes?.join() === 'overloaded'));

  const capped = await failFirst(2);
  const r = await runLoad({ ...base, url: capped.url, retry: 'capped' });
  assert.equal(r.totals.offered, 20, 'retries are not arrivals');
  assert.equal(r.totals.sent, 20);
  assert.equal(r.totals.retries, 40);
  assert.deepEqual(r.totals.statuses, { '201': 20 });
  assert.deepEqual(r.totals.attempt_statuses, { '201': 20, '503': 40 });
  assert.equal(r.totals.goodput, 20, 'answered within the deadline after retrying');
  assert.equal(capped.attempts.size, 20, 'every retry reused its key');
  assert.ok([...capped.attempts.values()].every((n) => n === 3));
  for (const o of r.outcomes) {
    assert.equal(o.status, 201);
    assert.equal(o.attempts, 3);
    assert.deepEqual(o.history, [503, 503, 201]);
    assert.deepEqual(o.codes, ['overloaded', 'overloaded', ''], 'the problem code of each attempt');
    assert.equal(o.provider_charge_id, `pc_${o.key}`);
  }
});

test('a storm client hammers: up to 10 immediate attempts per key, against 3 for capped and 1 for none', async () => {
  const sends = async (retry: 'none' | 'capped' | 'storm') => {
    const s = await failFirst(1_000_000);
    const r = await runLoad({ ...base, url: s.url, retry });
    assert.equal(r.totals.sent + r.totals.retries, s.seen.length, 'the report counts what the server saw');
    return s.seen.length;
  };
  const [none, capped, storm] = [await sends('none'), await sends('capped'), await sends('storm')];
  assert.deepEqual([none, capped, storm], [20, 60, 200]);
});

test('capped honours Retry-After, up to its cap', async () => {
  const s = await failFirst(1, { 'retry-after': '5' });
  const r = await runLoad({ ...base, rate: 5, url: s.url, retry: 'capped', retryCapMs: 300 });
  assert.deepEqual(r.totals.statuses, { '201': 5 });
  const byKey = new Map<string, typeof s.seen>();
  for (const x of s.seen) byKey.set(x.key!, [...(byKey.get(x.key!) ?? []), x]);
  assert.equal(byKey.size, 5);
  for (const [key, seen] of byKey) {
    const gap = seen[1]!.at - seen[0]!.at;
    assert.ok(gap >= 290 && gap < 2000, `${key}: waited ${gap} ms (Retry-After 5 s, cap 300 ms)`);
  }
});

test('goodput counts only final outcomes within the deadline; a client timeout is not a status', async () => {
  // By charge number: 0 → 201, 1 → 402, 2 → 500, 3 → 201 after the deadline, 4 → no answer at all.
  const s = await startServer((seen, _req, res) => {
    const n = Number(seen.key?.split('-').pop()) % 5;
    if (n === 0) send(res, 201, charged(seen.key));
    else if (n === 1) send(res, 402, { code: 'card_declined' });
    else if (n === 2) send(res, 500, { code: 'internal' });
    else if (n === 3) answerAfter(seen, 300, () => send(res, 201, charged(seen.key)));
    // n === 4: hang until the client gives up
  });
  servers.push(s);
  const r = await runLoad({
    url: s.url,
    rate: 50,
    durationSeconds: 1,
    deadlineMs: 200,
    graceMs: 400,
    seed: 5,
    runId: 'gp',
  });
  assert.equal(r.totals.offered, 50);
  assert.deepEqual(r.totals.statuses, { '201': 20, '402': 10, '500': 10, timeout: 10 });
  assert.equal(r.totals.goodput, 20, 'fast 201 and 402 only: not the 500, not the late 201, not the timeouts');
  assert.equal(r.totals.timeouts, 10);
  assert.equal(r.totals.connection_errors, 0);
  assert.equal(
    r.seconds.reduce((sum, x) => sum + x.goodput, 0),
    20,
    'per-second goodput adds up to the total',
  );
  assert.equal(r.slo.total, 50);
  assert.equal(r.slo.good, 20, 'non-5xx within 300 ms: the fast 201 and 402 (the late 201 took >= 300 ms)');
  // One outcome per key, in key order, with the client-visible status.
  assert.equal(r.outcomes.length, 50);
  assert.deepEqual(
    r.outcomes.map((o) => o.key),
    Array.from({ length: 50 }, (_, i) => `gp-${i + 1}`),
  );
  const of = (n: number) => r.outcomes.find((o) => o.key === `gp-${n}`)!;
  assert.equal(of(5).status, 201);
  assert.equal(of(5).charge_id, 'ch_gp-5');
  assert.equal(of(6).status, 402);
  assert.equal(of(9).status, 'timeout');
  // Node's timers may fire up to a millisecond before the clock the latency is read from says.
  assert.ok(of(9).latency_ms >= 599, `gave up at deadline + grace: ${of(9).latency_ms} ms`);
  assert.equal(of(8).status, 201);
  assert.ok(of(8).latency_ms > 200);
});

test('a refused connection is a connection error, not a status or a timeout', async () => {
  const s = await startServer(() => undefined);
  await s.close();
  const r = await runLoad({ url: s.url, rate: 20, durationSeconds: 0.5, seed: 6 });
  assert.equal(r.totals.connection_errors, 10);
  assert.deepEqual(r.totals.statuses, { error: 10 });
  assert.equal(r.outcomes[0]!.error, 'ECONNREFUSED');
  assert.equal(r.slo.good, 0);
});

test('what the client reads from an answer: Idempotent-Replayed, the charge ids, and a reset mid-answer as a socket error', async () => {
  // By charge number: 0 → a replayed 201, 1 → a first 201, 2 → headers and half a body, then a reset.
  const s = await startServer((seen, _req, res) => {
    const n = Number(seen.key?.split('-').pop()) % 3;
    if (n === 0) send(res, 201, charged(seen.key), { 'Idempotent-Replayed': 'true' });
    else if (n === 1) send(res, 201, charged(seen.key));
    else {
      res.writeHead(201, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"id":"ch_', () => res.socket?.resetAndDestroy());
    }
  });
  servers.push(s);
  const r = await runLoad({ url: s.url, rate: 30, durationSeconds: 0.2, seed: 8, runId: 'rd' });
  const of = (n: number) => r.outcomes.find((o) => o.key === `rd-${n}`)!;
  assert.equal(r.outcomes.length, 6);
  assert.equal(of(3).status, 201);
  assert.equal(of(3).replayed, true);
  assert.equal(of(1).status, 201);
  assert.equal(of(1).replayed, false);
  assert.equal(of(1).charge_id, 'ch_rd-1');
  assert.equal(of(1).provider_charge_id, 'pc_rd-1');
  // A 201 whose body never arrived whole is no 201: the client saw the connection fail.
  assert.equal(of(2).status, 'error');
  assert.equal(of(2).error, 'UND_ERR_SOCKET');
  assert.equal(of(2).charge_id, undefined);
  assert.equal(r.totals.connection_errors, 2);
});

test('the mix: reads ask for keys already created (404 before any), quotes cycle pairs', async () => {
  const created = new Set<string>();
  const s = await startServer((seen, _req, res) => {
    if (seen.method === 'POST') {
      created.add(seen.key!);
      send(res, 201, charged(seen.key));
    } else if (seen.path.startsWith('/charges/')) {
      const key = decodeURIComponent(seen.path.slice('/charges/'.length));
      if (created.has(key)) send(res, 200, charged(key));
      else send(res, 404, { code: 'not_found' });
    } else send(res, 200, { rate: 1 });
  });
  servers.push(s);
  const r = await runLoad({
    url: s.url,
    rate: 100,
    durationSeconds: 1,
    seed: 8,
    runId: 'mx',
    mixSpec: 'charge=60,read=20,quote=20',
  });
  const reads = s.seen.filter((x) => x.path.startsWith('/charges/'));
  const quotes = s.seen.filter((x) => x.path.startsWith('/quote'));
  assert.ok(reads.length > 5 && quotes.length > 5, `${reads.length} reads, ${quotes.length} quotes`);
  assert.ok(reads.every((x) => x.path === '/charges/mx-none' || created.has(decodeURIComponent(x.path.slice(9)))));
  assert.equal(
    r.classes.read!.statuses['404'] ?? 0,
    reads.filter((x) => x.path === '/charges/mx-none').length,
    'only a read before any charge 404s',
  );
  assert.ok(new Set(quotes.map((x) => x.path)).size > 3);
  assert.equal(r.classes.charge!.offered + r.classes.read!.offered + r.classes.quote!.offered, 100);
  assert.equal(r.outcomes.length, r.classes.charge!.offered, 'outcomes are for charges only');
  assert.ok(
    reads.every((x) => x.key === undefined),
    'reads carry no Idempotency-Key',
  );
});

test('the run bounds itself: max-requests stops the schedule, a signal stops it early, stragglers get one deadline', async () => {
  const ok = await startServer((seen, _req, res) => send(res, 201, charged(seen.key)));
  servers.push(ok);
  const capped = await runLoad({ url: ok.url, rate: 100, durationSeconds: 5, maxRequests: 15, seed: 12 });
  assert.equal(capped.stopped_by, 'max_requests');
  assert.equal(capped.totals.sent, 15);
  assert.ok(capped.elapsed_seconds < 1.5, `${capped.elapsed_seconds} s`);

  const stop = new AbortController();
  setTimeout(() => stop.abort(), 300);
  const stopped = await runLoad({ url: ok.url, rate: 100, durationSeconds: 30, seed: 13 }, { signal: stop.signal });
  assert.equal(stopped.stopped_by, 'signal');
  assert.ok(
    stopped.elapsed_seconds < 1.5 && stopped.totals.sent >= 20 && stopped.totals.sent <= 60,
    `${stopped.totals.sent} in ${stopped.elapsed_seconds} s`,
  );

  // Every answer asks for a 5 s pause: capped retries would outlive the run, so the end cuts them.
  const slow = await failFirst(1_000_000, { 'retry-after': '5' });
  const cut = await runLoad({
    url: slow.url,
    rate: 20,
    durationSeconds: 0.5,
    deadlineMs: 200,
    graceMs: 100,
    retry: 'capped',
    retryCapMs: 5000,
    seed: 14,
  });
  assert.ok(
    cut.elapsed_seconds < 0.5 + 0.3 + 0.5,
    `ended ${cut.elapsed_seconds} s after start: schedule + one deadline + grace, plus slack`,
  );
  assert.equal(cut.totals.abandoned, 10);
  assert.ok(cut.outcomes.every((o) => o.status === 503 && o.abandoned === true && o.attempts === 1));
});
