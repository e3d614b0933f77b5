/**
 * An attack on exactly-once, kept as a test: a provider that charges and then
 * loses the answer (a 500 or a reset), answers past the attempt timeout,
 * resets, hangs, fails or declines, while every key is retried at once and
 * again by concurrent clients, some with a 1-5 ms deadline and some with a
 * different body, and the reconciler runs every 50 ms. Then the provider
 * heals and each key is retried until it has a final answer.
 *
 * What a client relies on, per key: at most one charge at the provider;
 * every final answer (201 or 402) the same, byte for byte; the stored row
 * equal to that answer and naming the provider's charge; nothing left
 * `started`. The gateway with its mechanisms on and off, and the baseline
 * (one charge code, two servers), 2 rounds each, every random choice
 * seeded. An independent attack of this shape (3 rounds of 120 keys) found
 * no violation; the same attack with a provider that then refused retries
 * as invalid found one, fixed (test/charge/provider-ambiguous.test.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSimulator, type Simulator } from '../../src/simulator/index.js';
import { seededRandom } from '../../src/lib/random.js';
import { startTestDb, type TestDb } from '../support/postgres.js';
import { startTarget, type Target, type TargetKind } from '../support/target.js';
import { call } from '../support/http.js';
import { clearFaults, ledgerForReference, setFaults } from '../support/simulator.js';

const KEYS = 60;
const ROUNDS = 2;
const SETTLE_MS = 40_000;

interface Answer {
  status: number;
  text: string;
}

const isFinal = (a: Answer) => a.status === 201 || a.status === 402;
const codeOf = (a: Answer) => /"code":"(\w+)"/.exec(a.text)?.[1] ?? '';

async function post(url: string, key: string, body: object, timeoutMs: number): Promise<Answer> {
  try {
    const r = await call(url, 'POST', '/charge', {
      headers: { 'idempotency-key': key, 'x-request-timeout-ms': String(timeoutMs) },
      body,
      timeoutMs: timeoutMs + 5000,
    });
    return { status: r.status, text: r.text };
  } catch (e) {
    return { status: 0, text: String((e as Error).name) };
  }
}

// The gateway with its mechanisms off too: on, its breaker opens within the
// first round and most of the storm never reaches the provider.
const VARIANTS: { name: string; kind: TargetKind; env: Record<string, string> }[] = [
  { name: 'gateway', kind: 'gateway', env: {} },
  { name: 'gateway, mechanisms off', kind: 'gateway', env: { MECHANISMS: 'false' } },
  { name: 'baseline', kind: 'baseline', env: {} },
];

for (const [v, { name, kind, env }] of VARIANTS.entries()) {
  describe(`${name}: a provider that charges and loses answers, under a storm of retries, tiny deadlines and other bodies`, () => {
    let db: TestDb;
    let sim: Simulator;
    let svc: Target;

    before(async () => {
      db = await startTestDb();
      sim = await startSimulator({ providerPort: 0, fxPort: 0, seed: 7 });
      svc = await startTarget(kind, {
        databaseUrl: db.url,
        providerUrl: sim.providerUrl,
        fxUrl: sim.fxUrl,
        env: {
          MIN_REQUEST_TIMEOUT_MS: '1',
          REQUEST_TIMEOUT_MS: '1000',
          MAX_REQUEST_TIMEOUT_MS: '1000',
          LEASE_MS: '1500',
          RECONCILE_INTERVAL_MS: '50',
          RECONCILE_BACKOFF_BASE_MS: '50',
          RECONCILE_BACKOFF_MAX_MS: '400',
          PROVIDER_TIMEOUT_MS: '300',
          BREAKER_MIN_CALLS: '10',
          BREAKER_OPEN_MS: '300',
          // Every unknown row is asked again until the provider heals, never handed to an operator here.
          RECONCILE_MAX_ATTEMPTS: '1000',
          ...env,
        },
      });
    });
    after(async () => {
      await svc?.stop('SIGTERM', 10_000).catch(() => {});
      await sim?.close();
      await db?.close();
    });

    test(`${ROUNDS} rounds of ${KEYS} keys: one charge per key, one final answer, the row agrees, nothing left started`, async (t) => {
      const seenAll: Answer[] = [];
      for (let round = 1; round <= ROUNDS; round++) {
        const random = seededRandom(1000 * round + v);
        const pick = (n: number) => Math.floor(random() * n);
        await setFaults(sim.providerUrl, {
          // Many answers arrive after the 300 ms attempt timeout: charged, the answer late.
          latencyMs: { dist: 'exponential', meanMs: 150 },
          ambiguousRate: 0.35,
          ambiguousMode: round % 2 ? '500' : 'reset',
          resetRate: 0.05,
          hangRate: 0.03,
          errorRate: 0.05,
          declineRate: 0.1,
        });
        const keys = Array.from({ length: KEYS }, (_, i) => `storm-${v}-${round}-${i}-${Date.now()}`);
        const body = (i: number, other: boolean) => ({
          amount: 100 + i + (other ? 1 : 0),
          currency: 'USD',
          source: i % 10 === 0 ? 'tok_chargeDeclined' : 'tok_visa',
        });
        const answers = new Map<string, Answer[]>(keys.map((k) => [k, []]));
        await Promise.all(
          keys.map(async (k, i) => {
            await sleep(i * 8);
            for (let wave = 0; wave < 6; wave++) {
              const n = wave === 0 ? 1 : 1 + pick(4);
              await Promise.all(
                Array.from({ length: n }, async () => {
                  // 60 %: same body, a normal deadline; 25 %: same body, 1-5 ms; 15 %: another body.
                  const r = random();
                  const other = wave > 0 && r >= 0.85;
                  const deadline = wave === 0 ? 1000 : r < 0.6 ? 50 + pick(950) : r < 0.93 ? 1 + pick(5) : 600;
                  answers.get(k)!.push(await post(svc.url, k, body(i, other), deadline));
                }),
              );
              await sleep(random() < 0.5 ? 0 : pick(400));
            }
          }),
        );
        const storm = [...answers.values()].flat();
        seenAll.push(...storm);

        // The provider heals; each key is retried with its body (the other one after a 422) until final.
        await clearFaults(sim.providerUrl);
        const until = Date.now() + SETTLE_MS;
        await Promise.all(
          keys.map(async (k, i) => {
            let other = false;
            while (Date.now() < until) {
              const a = await post(svc.url, k, body(i, other), 1000);
              answers.get(k)!.push(a);
              if (isFinal(a) || codeOf(a) === 'charge_needs_attention') return;
              if (a.status === 422) other = !other;
              else await sleep(a.status === 409 ? 200 : 100);
            }
          }),
        );

        const rows = new Map(
          (
            await db.sql<
              {
                idempotency_key: string;
                status: string;
                provider_charge_id: string | null;
                response_status: number | null;
                response_body: string | null;
              }[]
            >`SELECT idempotency_key, status, provider_charge_id, response_status, response_body FROM charges WHERE idempotency_key = ANY(${keys}::text[])`
          ).map((r) => [r.idempotency_key, r]),
        );
        let finalCount = 0;
        for (const k of keys) {
          const charges = await ledgerForReference(sim.providerUrl, k);
          const finals = answers.get(k)!.filter(isFinal);
          const row = rows.get(k);
          assert.ok(charges.length <= 1, `${k}: charged ${charges.length} times`);
          assert.equal(
            new Set(finals.map((a) => `${a.status} ${a.text}`)).size <= 1,
            true,
            `${k}: different final answers`,
          );
          assert.ok(finals.length > 0, `${k}: no final answer within ${SETTLE_MS} ms (row ${row?.status})`);
          finalCount++;
          assert.ok(row, `${k}: acknowledged, and no row`);
          assert.equal(row.response_status, finals[0]!.status, `${k}: the row says ${row?.status}`);
          assert.equal(row.response_body, finals[0]!.text, `${k}: the row's answer is the one sent`);
          if (row.status === 'succeeded' || row.status === 'declined') {
            assert.equal(charges.length, 1, `${k}: ${row.status} with ${charges.length} provider charges`);
            assert.equal(row.provider_charge_id, charges[0]!.id, `${k}: the row names the provider's charge`);
          }
        }
        assert.equal(finalCount, KEYS);
        assert.ok(![...rows.values()].some((r) => r.status === 'started'), 'nothing left started');
        const seen: Record<string, number> = {};
        for (const a of storm) {
          const label = `${a.status}${codeOf(a) ? ` ${codeOf(a)}` : ''}`;
          seen[label] = (seen[label] ?? 0) + 1;
        }
        t.diagnostic(`round ${round}: ${storm.length} requests in the storm: ${JSON.stringify(seen)}`);
        // The storm really was adverse: ambiguous outcomes, tiny-deadline refusals and reused keys all happened.
        assert.ok(
          storm.some((a) => a.status === 504 || a.status === 503),
          'some answers were not final',
        );
      }
      // Over the rounds, reused keys with another body reached the idempotency check (422). With the
      // mechanisms on, the breaker may refuse nearly the whole storm at the front door, and with it
      // every reused body of a round (seen in CI: round 1 answered 499 breaker_open, 270 overloaded,
      // no 422): then the front door refusing them is what the storm exercised.
      assert.ok(
        seenAll.some((a) => a.status === 422) ||
          (name === 'gateway' && seenAll.some((a) => a.status === 503 && codeOf(a) === 'breaker_open')),
        'some requests reused a key with another body',
      );
    });
  });
}
