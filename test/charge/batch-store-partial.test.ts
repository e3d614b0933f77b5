/**
 * A batched claim whose later statement fails after its first one committed
 * (Postgres stopped between them): the keys the first statement claimed keep
 * their claim, only the others fail. Before, every request of the batch got
 * 503 db_unavailable, and the reconciler later charged the rows it had
 * committed for them. A fake `sql` stands in for Postgres: which statement
 * fails is what matters, and a real server cannot be stopped between two
 * statements of one batch on cue.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchStore } from '../../src/charge/batch-store.js';
import type { Sql } from 'postgres';

const input = { amount: 100, currency: 'USD', source: 'tok_visa' };
const req = (key: string) => ({ key, fp: `fp-${key}`, input, leaseMs: 60_000 });

const stopped = () =>
  Promise.reject(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }));

/** A Postgres whose INSERT claims `fresh` (the others conflict) and whose next statement fails. */
function stoppingAfterInsert(fresh: string[]): { sql: Sql; statements: string[] } {
  const statements: string[] = [];
  const sql = ((strings: TemplateStringsArray) => {
    const text = strings.join('?');
    statements.push(text.trim().split(/\s+/)[0]!);
    if (text.includes('INSERT INTO charges'))
      return Promise.resolve(
        fresh.map((k) => ({
          idempotency_key: k,
          charge_id: `ch_${k}`,
          provider_key: `pk_${k}`,
          lease_token: `tok_${k}`,
          inserted: true,
          created_at: new Date(),
        })),
      );
    return stopped();
  }) as unknown as Sql;
  // The reads by key are sent unnamed, through sql.unsafe.
  (sql as unknown as { unsafe: (text: string) => Promise<never> }).unsafe = (text: string) => {
    statements.push(text.trim().split(/\s+/)[0]!);
    return stopped();
  };
  return { sql, statements };
}

test('a later statement fails: the keys the insert claimed keep their claim, only the unsettled ones fail', async () => {
  const { sql, statements } = stoppingAfterInsert(['k1', 'k3']);
  const results = await new BatchStore(sql, (k) => `pk_${k}`).claimMany([req('k1'), req('k2'), req('k3')]);
  assert.deepEqual(statements, ['INSERT', 'SELECT']);
  assert.equal(results.length, 3);
  const [r1, r2, r3] = results;
  assert.ok(!(r1 instanceof Error) && r1!.kind === 'claimed', JSON.stringify(r1));
  assert.ok(!(r3 instanceof Error) && r3!.kind === 'claimed', JSON.stringify(r3));
  assert.ok(r2 instanceof Error && /terminating connection/.test(r2.message), String(r2));
});

test('the first statement fails: nothing was claimed, and the batch fails as one', async () => {
  const { sql } = stoppingAfterInsert([]);
  (sql as unknown as { calls: number }).calls = 0;
  const failing = ((strings: TemplateStringsArray) =>
    strings.join('').includes('INSERT')
      ? Promise.reject(new Error('connection refused'))
      : (sql as unknown as (s: TemplateStringsArray) => Promise<unknown>)(strings)) as unknown as Sql;
  await assert.rejects(new BatchStore(failing, (k) => `pk_${k}`).claimMany([req('a'), req('b')]), /connection refused/);
});
