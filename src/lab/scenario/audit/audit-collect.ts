/**
 * Gathering the audit's inputs once a variant's load has ended: first let
 * the service settle (the reconciler finishes every `started` row whose
 * lease expired: abandoned drains, timed-out requests, unknown provider
 * outcomes), then read Postgres and ask the provider's ledger about every key
 * the client sent.
 *
 * "Settled" means no row is `started` and the table has stopped changing
 * for a moment: a request the client gave up on may still sit in the
 * service's queue and claim its row after the client left.
 */
import type { Sql } from 'postgres';
import type { ChargeOutcome } from '../../load/types.js';
import type { Audit } from '../../report/types.js';
import { auditRun, type AuditRow, type ProviderCharge } from './audit.js';
import type { SimulatorControl } from '../faults/sim-control.js';

export interface SettleResult {
  /** Rows still started when settling ended. */
  pending: number;
  waitedMs: number;
  /** False when the timeout ended the wait. */
  settled: boolean;
}

/**
 * `sim`, when given, adds the provider's count of created charges to what
 * must stop changing: a service still working through a backlog its clients
 * gave up on (a stalled event loop catching up) keeps claiming and charging
 * after the table looked quiet for a moment.
 */
export async function settle(
  sql: Sql,
  timeoutMs: number,
  quietMs = 500,
  pollMs = 100,
  sim?: SimulatorControl,
): Promise<SettleResult> {
  const start = Date.now();
  let last = '';
  let quietSince = Date.now();
  let pending = 0;
  for (;;) {
    const [[r], ledger] = await Promise.all([
      sql<{ started: number; total: number; updated: Date | null }[]>`
        SELECT count(*) FILTER (WHERE status = 'started')::int AS started, count(*)::int AS total, max(updated_at) AS updated
        FROM charges`,
      sim?.ledger(),
    ]);
    pending = r?.started ?? 0;
    const signature = `${pending}/${r?.total ?? 0}/${r?.updated?.toISOString() ?? ''}/${ledger?.created ?? ''}`;
    if (signature !== last) {
      last = signature;
      quietSince = Date.now();
    }
    if (pending === 0 && Date.now() - quietSince >= quietMs)
      return { pending, waitedMs: Date.now() - start, settled: true };
    if (Date.now() - start >= timeoutMs) return { pending, waitedMs: Date.now() - start, settled: false };
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

export async function readRows(sql: Sql): Promise<AuditRow[]> {
  const rows = await sql<{ idempotency_key: string; status: AuditRow['status']; provider_charge_id: string | null }[]>`
    SELECT idempotency_key, status, provider_charge_id FROM charges`;
  return rows.map((r) => ({ key: r.idempotency_key, status: r.status, provider_charge_id: r.provider_charge_id }));
}

/**
 * Final rows naming a provider charge the provider's first read did not hold:
 * a straggler the client gave up on can claim, charge and record its row
 * while that read is still going (it takes seconds over tens of thousands of
 * keys), so its charge is newer than the read. The provider is asked about
 * these keys again; a row it still contradicts is a finding. Only keys of
 * this run (those in `charges`) are considered.
 */
export function rowsNewerThanRead(
  rows: readonly AuditRow[],
  charges: ReadonlyMap<string, readonly { id: string }[]>,
): string[] {
  return rows
    .filter(
      (r) =>
        r.provider_charge_id !== null &&
        charges.has(r.key) &&
        !charges.get(r.key)!.some((c) => c.id === r.provider_charge_id),
    )
    .map((r) => r.key);
}

/**
 * Postgres and the provider read once the run has settled, judged by
 * auditRun. `settleAgain`, when given, is called if the read finds rows
 * `started`: a collapsed server can still be working through a backlog its
 * clients gave up on, and claim a row after the settle period's quiet
 * window (the committed bench at b2c4ab4 saw four rows claimed that way by
 * one Fastify in `capacity`, against no row from 265 817 keys the settle
 * period saw). It settles again and the rows are read again, so a row is
 * pending only if it is still started after that second wait.
 */
export async function collectAudit(
  sql: Sql,
  sim: Pick<SimulatorControl, 'ledger' | 'chargesForAll'>,
  outcomes: readonly ChargeOutcome[],
  log?: (line: string) => void,
  settleAgain?: () => Promise<SettleResult>,
): Promise<Audit> {
  // The provider first, Postgres after: a charge is made only after its row
  // is claimed, so every charge read here has its row in the read below,
  // even if a straggler is still at work (it then shows as pending, not lost).
  const [ledger, charges] = await Promise.all([
    sim.ledger(),
    sim.chargesForAll(
      outcomes.map((o) => o.key),
      32,
    ),
  ]);
  let rows = await readRows(sql);
  const started = rows.filter((r) => r.status === 'started').length;
  if (started > 0 && settleAgain) {
    const again = await settleAgain();
    rows = await readRows(sql);
    log?.(
      `audit: ${started} row(s) started after the settle period; settled again in ${again.waitedMs} ms, ${rows.filter((r) => r.status === 'started').length} still started`,
    );
  }
  const newer = rowsNewerThanRead(rows, charges);
  if (newer.length > 0) {
    for (const [ref, list] of await sim.chargesForAll(newer, 32)) charges.set(ref, list);
    const still = rowsNewerThanRead(rows, charges).length;
    log?.(
      `audit: ${newer.length} row(s) named a charge newer than the provider's first read; asked again, ${still} still contradicted`,
    );
  }
  const byRef = new Map<string, ProviderCharge[]>();
  for (const [ref, list] of charges)
    if (list.length > 0)
      byRef.set(
        ref,
        list.map((c) => ({ id: c.id, status: c.status })),
      );
  return auditRun({
    outcomes,
    rows,
    charges: byRef,
    ledger: { created: ledger.created, duplicates: ledger.duplicates },
  });
}
