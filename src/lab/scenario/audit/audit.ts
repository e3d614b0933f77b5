/**
 * The audit: three independent records of one run compared key by key.
 *
 * - the client's log: what each Idempotency-Key was finally told (the load
 *   generator's per-key outcomes);
 * - Postgres: the `charges` row of each key, after the settle period;
 * - the provider's ledger: every charge created per reference (the client's
 *   Idempotency-Key, which the services pass through as `reference`).
 *
 * What counts as wrong, per key:
 * - duplicate: the provider holds more than one charge for the key;
 * - lost: the provider charged the key (or the client saw 201) but Postgres
 *   does not hold it as `succeeded`, or the client saw 402 and Postgres holds
 *   no final row for it;
 * - pending: a row still `started` after settling;
 * - mismatch (a finding, not a count of its own): Postgres holds a final
 *   outcome the provider does not (a `succeeded` row whose charge id the
 *   provider never issued, a `declined` row without a declined charge, the
 *   client told 402 while Postgres says otherwise).
 * A key the client never saw final (timeout, 503, connection error) is fine
 * either way, as long as Postgres and the provider agree on it.
 *
 * Pure: plain records in, an Audit out, so each rule is tested with
 * hand-made inputs (test/lab/scenario-audit.test.ts).
 */
import type { ChargeOutcome } from '../../load/types.js';
import type { Audit } from '../../report/types.js';

export type RowStatus = 'started' | 'succeeded' | 'declined' | 'failed' | 'needs_attention';

export interface AuditRow {
  key: string;
  status: RowStatus;
  provider_charge_id: string | null;
}

export interface ProviderCharge {
  id: string;
  status: 'succeeded' | 'declined';
}

export interface AuditInput {
  outcomes: readonly Pick<ChargeOutcome, 'key' | 'status' | 'provider_charge_id'>[];
  rows: readonly AuditRow[];
  /** Provider charges per client reference; a key missing here has none. */
  charges: ReadonlyMap<string, readonly ProviderCharge[]>;
  /** The ledger's own totals, to catch charges for references the client never sent. */
  ledger?: { created: number; duplicates: readonly { reference: string; charges: number; keys?: readonly string[] }[] };
}

/** Detailed findings kept per audit; the rest are counted in one line. */
export const MAX_FINDINGS = 25;

const FINAL_CLIENT = new Set<ChargeOutcome['status']>([200, 201, 402]);

export function auditRun(input: AuditInput): Audit {
  const rows = new Map(input.rows.map((r) => [r.key, r]));
  // The provider keys behind a duplicate say how it happened (two keys: the
  // service derived a second one; one key: the provider failed to dedupe).
  const providerKeys = new Map((input.ledger?.duplicates ?? []).map((d) => [d.reference, d.keys ?? []]));
  const keysOf = (reference: string) => {
    const keys = providerKeys.get(reference);
    return keys && keys.length > 0 ? ` under provider keys ${keys.join(', ')}` : '';
  };
  // Duplicates and lost charges first: a run read while the service is still
  // at work can have thousands of transient mismatches, and the finding that
  // matters must not be the one cut off.
  const serious: string[] = [];
  const other: string[] = [];
  const note = (f: string) => other.push(f);
  const noteSerious = (f: string) => serious.push(f);
  const duplicated = new Set<string>();
  const lost = new Set<string>();
  let clientFinal = 0;
  let sentToProvider = 0;
  const clientKeys = new Set<string>();

  for (const o of input.outcomes) {
    clientKeys.add(o.key);
    const charges = input.charges.get(o.key) ?? [];
    sentToProvider += charges.length;
    const row = rows.get(o.key);
    const held = row ? row.status : 'no row';
    if (FINAL_CLIENT.has(o.status)) clientFinal++;
    if (charges.length > 1) {
      duplicated.add(o.key);
      noteSerious(
        `${o.key}: charged ${charges.length} times by the provider (${charges.map((c) => c.id).join(', ')})${keysOf(o.key)}`,
      );
    }
    const succeeded = charges.filter((c) => c.status === 'succeeded');
    const clientSawSuccess = o.status === 201 || o.status === 200;
    if (succeeded.length > 0 && row?.status !== 'succeeded') {
      lost.add(o.key);
      noteSerious(
        `${o.key}: the provider charged it (${succeeded[0]!.id}) but Postgres holds ${held} (client saw ${o.status})`,
      );
      continue;
    }
    if (clientSawSuccess && row?.status !== 'succeeded') {
      lost.add(o.key);
      noteSerious(`${o.key}: the client saw ${o.status} but Postgres holds ${held}`);
      continue;
    }
    // A decline the client was told about must be kept too: without its row a
    // retry would try the charge again, and may well be told something else.
    if (o.status === 402 && (!row || row.status === 'started' || row.status === 'needs_attention')) {
      lost.add(o.key);
      noteSerious(`${o.key}: the client saw 402 but Postgres holds ${held}`);
      continue;
    }
    if (!row || row.status === 'started' || row.status === 'needs_attention') continue; // pending rows are counted below, missing ones are fine when nothing was charged
    const mismatch = mismatchOf(row, charges, o);
    if (mismatch) note(`${o.key}: ${mismatch}`);
  }

  for (const r of input.rows) {
    if (!clientKeys.has(r.key)) note(`${r.key}: Postgres holds a ${r.status} row for a key the client never sent`);
  }
  // A row the reconciler gave up on is as unfinished as a started one: it must not pass the audit.
  const pendingRows = input.rows.filter((r) => r.status === 'started' || r.status === 'needs_attention');
  for (const r of pendingRows.slice(0, 5))
    note(`${r.key}: still ${r.status === 'started' ? 'started' : 'needing attention'} after the settle period`);

  if (input.ledger) {
    const foreignDuplicates = input.ledger.duplicates.filter((d) => !clientKeys.has(d.reference));
    for (const d of foreignDuplicates) {
      duplicated.add(d.reference);
      noteSerious(
        `${d.reference}: charged ${d.charges} times by the provider, for a reference the client never sent${keysOf(d.reference)}`,
      );
    }
    if (input.ledger.created > sentToProvider) {
      note(
        `the provider created ${input.ledger.created - sentToProvider} charge(s) for references the client never sent`,
      );
    }
  }
  const all = [...serious, ...other];
  const findings = all.slice(0, MAX_FINDINGS);
  if (all.length > MAX_FINDINGS) findings.push(`... and ${all.length - MAX_FINDINGS} more finding(s)`);
  return {
    client_final: clientFinal,
    duplicates: duplicated.size,
    lost: lost.size,
    pending: pendingRows.length,
    findings,
  };
}

/** A final row whose outcome the provider's record contradicts; undefined when they agree. */
function mismatchOf(
  row: AuditRow,
  charges: readonly ProviderCharge[],
  o: Pick<ChargeOutcome, 'status' | 'provider_charge_id'>,
): string | undefined {
  switch (row.status) {
    case 'succeeded':
      if (!charges.some((c) => c.status === 'succeeded' && c.id === row.provider_charge_id)) {
        return `Postgres holds succeeded with ${row.provider_charge_id ?? 'no provider charge id'} but the provider has ${describe(charges)}`;
      }
      if (o.status === 402) return 'the client saw 402 but Postgres holds succeeded';
      if (o.provider_charge_id !== undefined && o.provider_charge_id !== row.provider_charge_id) {
        return `the client was told provider charge ${o.provider_charge_id} but Postgres holds ${row.provider_charge_id ?? 'none'}`;
      }
      return undefined;
    case 'declined':
      if (!charges.some((c) => c.status === 'declined'))
        return `Postgres holds declined but the provider has ${describe(charges)}`;
      return undefined;
    case 'failed':
      if (charges.length > 0) return `Postgres holds failed but the provider has ${describe(charges)}`;
      if (o.status === 402) return 'the client saw 402 but Postgres holds failed';
      return undefined;
    case 'started':
    case 'needs_attention':
      return undefined;
  }
}

function describe(charges: readonly ProviderCharge[]): string {
  return charges.length === 0 ? 'no charge' : charges.map((c) => `${c.status} ${c.id}`).join(', ');
}

/** True when nothing at all is wrong: the checks' "audit clean". */
export function auditClean(a: Audit): boolean {
  return a.duplicates === 0 && a.lost === 0 && a.pending === 0 && a.findings.length === 0;
}
