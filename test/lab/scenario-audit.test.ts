/**
 * The audit's rules with hand-made records: a clean run is clean, and each
 * kind of wrong (a duplicate, a lost write, a pending row, a mismatch, a
 * charge for a key nobody sent) is detected and counted once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_FINDINGS,
  auditClean,
  auditRun,
  type AuditInput,
  type AuditRow,
  type ProviderCharge,
} from '../../src/lab/scenario/audit/audit.js';
import type { Sql } from 'postgres';
import type { ChargeOutcome } from '../../src/lab/load/types.js';
import { collectAudit, rowsNewerThanRead } from '../../src/lab/scenario/audit/audit-collect.js';

type Outcome = AuditInput['outcomes'][number];

/** A run where every kind of *right* outcome appears once. */
function cleanRun(): { outcomes: Outcome[]; rows: AuditRow[]; charges: Map<string, ProviderCharge[]> } {
  return {
    outcomes: [
      // Told 201: stored succeeded, charged once with the same id.
      { key: 'k-ok', status: 201, provider_charge_id: 'pch_1' },
      // Told 402: stored declined, declined at the provider.
      { key: 'k-declined', status: 402 },
      // Timed out before anything happened: no row, no charge.
      { key: 'k-timeout-nothing', status: 'timeout' },
      // Told 503 after the claim: the reconciler finished it later; row and provider agree.
      { key: 'k-503-reconciled', status: 503 },
      // Told 504 and the provider never got it: the row ended failed, no charge.
      { key: 'k-504-failed', status: 504 },
      // A replay told 200 of a stored success.
      { key: 'k-replay', status: 200 },
      // A connection error (a restart): nothing anywhere.
      { key: 'k-refused', status: 'error' },
    ],
    rows: [
      { key: 'k-ok', status: 'succeeded', provider_charge_id: 'pch_1' },
      { key: 'k-declined', status: 'declined', provider_charge_id: 'pch_2' },
      { key: 'k-503-reconciled', status: 'succeeded', provider_charge_id: 'pch_3' },
      { key: 'k-504-failed', status: 'failed', provider_charge_id: null },
      { key: 'k-replay', status: 'succeeded', provider_charge_id: 'pch_4' },
    ],
    charges: new Map<string, ProviderCharge[]>([
      ['k-ok', [{ id: 'pch_1', status: 'succeeded' }]],
      ['k-declined', [{ id: 'pch_2', status: 'declined' }]],
      ['k-503-reconciled', [{ id: 'pch_3', status: 'succeeded' }]],
      ['k-replay', [{ id: 'pch_4', status: 'succeeded' }]],
    ]),
  };
}

test('a clean run is clean: nothing lost, duplicated or pending, no finding', () => {
  const r = cleanRun();
  const a = auditRun({ ...r, ledger: { created: 4, duplicates: [] } });
  assert.deepEqual(a, { client_final: 3, duplicates: 0, lost: 0, pending: 0, findings: [] });
  assert.equal(auditClean(a), true);
});

test('a key charged twice by the provider is a duplicate', () => {
  const r = cleanRun();
  r.charges.set('k-ok', [
    { id: 'pch_1', status: 'succeeded' },
    { id: 'pch_9', status: 'succeeded' },
  ]);
  const a = auditRun({ ...r, ledger: { created: 5, duplicates: [{ reference: 'k-ok', charges: 2 }] } });
  assert.equal(a.duplicates, 1, "the ledger's own duplicate list does not count the same key again");
  assert.equal(a.lost, 0);
  assert.match(a.findings[0]!, /k-ok: charged 2 times by the provider \(pch_1, pch_9\)/);
  assert.equal(auditClean(a), false);
});

test('a charge the provider made that Postgres does not hold as succeeded is lost', () => {
  const r = cleanRun();
  // The client timed out, the provider charged, and the row ended `failed`.
  r.charges.set('k-timeout-nothing', [{ id: 'pch_7', status: 'succeeded' }]);
  r.rows.push({ key: 'k-timeout-nothing', status: 'failed', provider_charge_id: null });
  const a = auditRun(r);
  assert.equal(a.lost, 1);
  assert.match(a.findings[0]!, /k-timeout-nothing: the provider charged it \(pch_7\) but Postgres holds failed/);
});

test('a charge the provider made with no row at all is lost', () => {
  const r = cleanRun();
  r.charges.set('k-refused', [{ id: 'pch_8', status: 'succeeded' }]);
  const a = auditRun(r);
  assert.equal(a.lost, 1);
  assert.match(a.findings[0]!, /k-refused: .*Postgres holds no row/);
});

test('a 201 the client saw that Postgres does not hold as succeeded is lost, even if the provider has nothing', () => {
  const r = cleanRun();
  r.outcomes.push({ key: 'k-ghost', status: 201 });
  const a = auditRun(r);
  assert.equal(a.lost, 1);
  assert.match(a.findings[0]!, /k-ghost: the client saw 201 but Postgres holds no row/);
});

test('a row still started after settling is pending', () => {
  const r = cleanRun();
  r.rows.push({ key: 'k-timeout-nothing', status: 'started', provider_charge_id: null });
  const a = auditRun(r);
  assert.equal(a.pending, 1);
  assert.equal(a.lost, 0, 'nothing was charged, so nothing is lost yet');
  assert.match(a.findings.join('\n'), /k-timeout-nothing: still started after the settle period/);
  assert.equal(auditClean(a), false);
});

test('a row the reconciler gave up on (needs_attention) is pending too: the audit is not clean', () => {
  const r = cleanRun();
  r.rows.push({ key: 'k-given-up', status: 'needs_attention', provider_charge_id: null });
  const a = auditRun(r);
  assert.equal(a.pending, 1);
  assert.match(a.findings.join('\n'), /k-given-up: still needing attention after the settle period/);
  assert.equal(auditClean(a), false);
});

test('a pending row whose charge the provider made is both pending and lost', () => {
  const r = cleanRun();
  r.rows.push({ key: 'k-timeout-nothing', status: 'started', provider_charge_id: null });
  r.charges.set('k-timeout-nothing', [{ id: 'pch_5', status: 'succeeded' }]);
  const a = auditRun(r);
  assert.equal(a.pending, 1);
  assert.equal(a.lost, 1);
});

test('Postgres and the provider disagreeing on a final outcome is a finding', () => {
  const cases: [string, (r: ReturnType<typeof cleanRun>) => void, RegExp][] = [
    [
      'succeeded row, no provider charge',
      (r) => r.charges.delete('k-503-reconciled'),
      /Postgres holds succeeded with pch_3 but the provider has no charge/,
    ],
    [
      'succeeded row, another charge id',
      (r) => r.charges.set('k-ok', [{ id: 'pch_other', status: 'succeeded' }]),
      /k-ok: the provider charged it \(pch_other\)|Postgres holds succeeded with pch_1/,
    ],
    [
      'declined row, nothing declined',
      (r) => r.charges.delete('k-declined'),
      /Postgres holds declined but the provider has no charge/,
    ],
    [
      'failed row, a declined charge',
      (r) => r.charges.set('k-504-failed', [{ id: 'pch_6', status: 'declined' }]),
      /Postgres holds failed but the provider has declined pch_6/,
    ],
    [
      'client told another charge id',
      (r) => (r.outcomes[0] = { key: 'k-ok', status: 201, provider_charge_id: 'pch_x' }),
      /told provider charge pch_x but Postgres holds pch_1/,
    ],
  ];
  for (const [name, mutate, pattern] of cases) {
    const r = cleanRun();
    mutate(r);
    const a = auditRun(r);
    assert.equal(auditClean(a), false, name);
    assert.match(a.findings.join('\n'), pattern, name);
  }
});

test('charges for references the client never sent are findings, and their duplicates count', () => {
  const r = cleanRun();
  const a = auditRun({ ...r, ledger: { created: 7, duplicates: [{ reference: 'someone-else', charges: 2 }] } });
  assert.equal(a.duplicates, 1);
  assert.match(a.findings.join('\n'), /someone-else: charged 2 times/);
  assert.match(a.findings.join('\n'), /created 3 charge\(s\) for references the client never sent/);
});

test('a row for a key the client never sent is a finding', () => {
  const r = cleanRun();
  r.rows.push({ key: 'stray', status: 'succeeded', provider_charge_id: 'pch_s' });
  const a = auditRun(r);
  assert.match(a.findings.join('\n'), /stray: Postgres holds a succeeded row for a key the client never sent/);
});

test('findings are capped, with one line counting the rest; the counts stay exact', () => {
  const outcomes: Outcome[] = [];
  const charges = new Map<string, ProviderCharge[]>();
  for (let i = 0; i < MAX_FINDINGS + 10; i++) {
    outcomes.push({ key: `k${i}`, status: 'timeout' });
    charges.set(`k${i}`, [{ id: `p${i}`, status: 'succeeded' }]);
  }
  const a = auditRun({ outcomes, rows: [], charges });
  assert.equal(a.lost, MAX_FINDINGS + 10);
  assert.equal(a.findings.length, MAX_FINDINGS + 1);
  assert.equal(a.findings.at(-1), '... and 10 more finding(s)');
});

test('a 402 the client saw whose row is gone (or still started) is lost: a retry would charge again', () => {
  for (const rows of [
    (r: AuditRow[]) => r.filter((x) => x.key !== 'k-declined'),
    (r: AuditRow[]) => r.map((x) => (x.key === 'k-declined' ? { ...x, status: 'started' as const } : x)),
  ]) {
    const r = cleanRun();
    const a = auditRun({ ...r, rows: rows(r.rows), ledger: { created: 4, duplicates: [] } });
    assert.equal(a.lost, 1);
    assert.match(a.findings[0]!, /^k-declined: the client saw 402 but Postgres holds (no row|started)/);
  }
});

test('a duplicate or a lost charge is never the finding cut off: it leads, with the provider keys behind it', () => {
  const r = cleanRun();
  // A run read while the service was still at work: thousands of rows the
  // provider has not confirmed yet, listed before the one duplicate.
  for (let i = 0; i < 3 * MAX_FINDINGS; i++) {
    r.outcomes.unshift({ key: `k-busy-${i}`, status: 'timeout' });
    r.rows.push({ key: `k-busy-${i}`, status: 'succeeded', provider_charge_id: `pch_b${i}` });
  }
  r.outcomes.push({ key: 'k-late-dup', status: 'timeout' });
  r.rows.push({ key: 'k-late-dup', status: 'succeeded', provider_charge_id: 'pch_d1' });
  r.charges.set('k-late-dup', [
    { id: 'pch_d1', status: 'succeeded' },
    { id: 'pch_d2', status: 'succeeded' },
  ]);
  r.outcomes.push({ key: 'k-late-lost', status: 201, provider_charge_id: 'pch_l' });
  const a = auditRun({
    ...r,
    ledger: { created: 6, duplicates: [{ reference: 'k-late-dup', charges: 2, keys: ['pk_a', 'pk_b'] }] },
  });
  assert.equal(a.duplicates, 1);
  assert.equal(a.lost, 1);
  assert.match(
    a.findings[0]!,
    /^k-late-dup: charged 2 times by the provider \(pch_d1, pch_d2\) under provider keys pk_a, pk_b$/,
  );
  assert.match(a.findings[1]!, /^k-late-lost: the client saw 201 but Postgres holds no row/);
  assert.equal(a.findings.length, MAX_FINDINGS + 1);
  assert.match(a.findings.at(-1)!, new RegExp(`^\\.\\.\\. and ${3 * MAX_FINDINGS + 2 - MAX_FINDINGS} more finding`));
});

test("rows naming a charge the provider's first read lacked are asked about again: this run's keys only", () => {
  const first = new Map<string, { id: string }[]>([
    ['k-ok', [{ id: 'pch_1' }]],
    ['k-straggler', []],
    ['k-other-id', [{ id: 'pch_2' }]],
    ['k-failed', []],
  ]);
  const rows: AuditRow[] = [
    { key: 'k-ok', status: 'succeeded', provider_charge_id: 'pch_1' },
    // Claimed, charged and recorded while the provider was being read.
    { key: 'k-straggler', status: 'succeeded', provider_charge_id: 'pch_9' },
    { key: 'k-other-id', status: 'declined', provider_charge_id: 'pch_3' },
    // No charge named: nothing to ask again (the audit's rules judge it).
    { key: 'k-failed', status: 'failed', provider_charge_id: null },
    // Another run's row in the same table.
    { key: 'other-run-1', status: 'succeeded', provider_charge_id: 'pch_7' },
  ];
  assert.deepEqual(rowsNewerThanRead(rows, first), ['k-straggler', 'k-other-id']);
  first.set('k-straggler', [{ id: 'pch_9' }]);
  assert.deepEqual(rowsNewerThanRead(rows, first), ['k-other-id']);
});

/**
 * Postgres answering readRows from a list of tables, one per read (the last
 * repeated), and a provider holding `charges`: what collectAudit reads.
 */
function fakeStores(tables: AuditRow[][], charges: Map<string, { id: string; status: string }[]>) {
  let reads = 0;
  const sql = (() => {
    const t = tables[Math.min(reads, tables.length - 1)]!;
    reads++;
    return Promise.resolve(
      t.map((r) => ({ idempotency_key: r.key, status: r.status, provider_charge_id: r.provider_charge_id })),
    );
  }) as unknown as Sql;
  const sim = {
    ledger: () => Promise.resolve({ created: [...charges.values()].flat().length, duplicates: [] }),
    chargesForAll: (refs: readonly string[]) => Promise.resolve(new Map(refs.map((k) => [k, charges.get(k) ?? []]))),
  } as unknown as Parameters<typeof collectAudit>[1];
  return { sql, sim, reads: () => reads };
}

test('a row claimed after the settle period by a straggler is read again after a second settle, not called pending', async () => {
  const outcomes: ChargeOutcome[] = [
    {
      key: 'k-late',
      status: 'timeout',
      attempts: 1,
      history: ['timeout'],
      latency_ms: 1000,
      intended_ms: 0,
      replayed: false,
    },
  ];
  const charges = new Map([['k-late', [{ id: 'pch_1', status: 'succeeded' }]]]);
  const claimed: AuditRow = { key: 'k-late', status: 'started', provider_charge_id: null };
  const recorded: AuditRow = { key: 'k-late', status: 'succeeded', provider_charge_id: 'pch_1' };
  let settles = 0;
  const settleAgain = () => (settles++, Promise.resolve({ pending: 0, waitedMs: 5, settled: true }));

  const late = fakeStores([[claimed], [recorded]], charges);
  const a = await collectAudit(late.sql, late.sim, outcomes, undefined, settleAgain);
  assert.equal(settles, 1, 'settled again once');
  assert.equal(late.reads(), 2, 'Postgres read again');
  assert.equal(a.pending, 0);
  assert.equal(a.lost, 0);
  assert.deepEqual(a.findings, []);

  // Still started after the second wait: pending, and a finding.
  const stuck = fakeStores([[claimed]], charges);
  const b = await collectAudit(stuck.sql, stuck.sim, outcomes, undefined, settleAgain);
  assert.equal(b.pending, 1);
  assert.match(b.findings.join('\n'), /k-late: still started after the settle period/);

  // Nothing started: no second wait.
  settles = 0;
  const clean = fakeStores([[recorded]], charges);
  await collectAudit(clean.sql, clean.sim, outcomes, undefined, settleAgain);
  assert.equal(settles, 0);
  assert.equal(clean.reads(), 1);
});
