/**
 * crash: the failures a drain never sees. Under steady charge load Postgres
 * is stopped with an immediate stop (`pg_ctl stop -m immediate`: no
 * checkpoint, every backend killed, what an OOM kill or a node failure looks
 * like to the database) and started again a few seconds later; then the
 * service's process tree is SIGKILLed and restarted at once, as a
 * supervisor does. Right before the Postgres stop a burst of charges is
 * sent and every answer awaited (answers acknowledged an instant before the
 * database dies are the ones a non-durable commit loses). Clients retry with the capped policy, and once the load
 * has ended a client re-sends, byte for byte, every key it was told was
 * final just before each crash (it cannot tell whether that answer was
 * kept). The reconciler then finishes the rows the crashes left `started`,
 * and the audit compares Postgres, the provider's ledger and the client log.
 *
 * Asserted for the gateway (mechanisms on and off, one store and one
 * provider key scheme): nothing charged twice, nothing acknowledged lost,
 * nothing left pending (the runner's audit check), every re-sent key told
 * the same answer, and goodput back within seconds of each restart. The
 * baselines' audits are reported as measured.
 */
import type { Check, Phase } from '../../../report/types.js';
import { fmt, label, meanGoodput, phase } from '../checks.js';
import { crashes, resendAcknowledged } from '../../faults/crash-actions.js';
import type { Mode, ScenarioDefinition, VariantRun } from '../definition.js';
import { GATEWAY_VARIANTS } from '../../run/service.js';
import { slice } from '../../measure/timeline.js';
import { pick, variantsFor } from './common.js';

interface Timing {
  warm: number;
  pgPhase: number;
  killPhase: number;
  rec: number;
  /** Seconds into its phase at which each crash lands. */
  into: number;
  /** Seconds Postgres stays down. */
  downS: number;
  /** Seconds after a restart by which goodput must be back. */
  backWithinS: number;
  /** Charges sent at once (all awaited) right before the Postgres stop. */
  burst: number;
}

function timing(mode: Mode): Timing {
  return pick(
    mode,
    // The SIGKILL comes after the whole window in which goodput must be back
    // from the Postgres crash (Postgres is back some 3-4 s after its stop, then
    // backWithinS): a kill inside that window would cut the check short.
    { warm: 3, pgPhase: 10, killPhase: 7, rec: 5, into: 1, downS: 3, backWithinS: 5, burst: 100 },
    // 30 s of load: with the prewarm, the re-send and the settle about 50 s a variant, so the bench grows by minutes, not tens of them.
    { warm: 5, pgPhase: 13, killPhase: 8, rec: 7, into: 1, downS: 4, backWithinS: 5, burst: 200 },
  );
}

/** Goodput must come back to this share of the warm-up's. */
const BACK_FRACTION = 0.8;
/** Keys acknowledged this many seconds before a crash are re-sent after the load. */
const RESEND_BEFORE_S = 3;

/** The first second at or after `from` that starts two seconds in a row at `target` goodput or more; null when none before the run ends. */
function backAt(run: VariantRun, from: number, target: number): number | null {
  const pts = run.result.timeline.filter((p) => p.t >= Math.floor(from));
  for (let i = 0; i + 1 < pts.length; i++)
    if (pts[i]!.goodput >= target && pts[i + 1]!.goodput >= target) return pts[i]!.t;
  return null;
}

function warmGoodput(run: VariantRun, phases: readonly Phase[]): number {
  const warm = phase(phases, 'warm-up');
  return meanGoodput(slice(run.result.timeline, warm.start_s + 1, warm.end_s));
}

function resendSummary(run: VariantRun): string {
  const f = run.actions.resend?.facts;
  if (!f) return `${label(run)} no re-send`;
  const statuses = Object.entries(f)
    .filter(([k]) => k.startsWith('status_'))
    .map(([k, n]) => `${k.slice(7)}×${n}`)
    .join(' ');
  return `${label(run)} ${f.same}/${f.resent} same, ${f.changed} changed, ${f.unanswered} unanswered [${statuses}]`;
}

function auditSummary(run: VariantRun): string {
  const a = run.result.audit;
  return `${label(run)} duplicated ${a.duplicates}, lost ${a.lost}, pending ${a.pending}`;
}

export const crash: ScenarioDefinition = {
  name: 'crash',
  title: 'Postgres immediate stop and a SIGKILL of the service, under load',
  claim:
    'When Postgres is stopped without a checkpoint and the service is killed with SIGKILL mid-load, no charge is made twice and no acknowledged charge is lost, even when clients re-send what they were told, and service returns within seconds of each restart.',
  auditReportedOnly: ['baseline', 'baseline-hardened', 'baseline-cluster', 'baseline-haproxy'],
  plan(mode) {
    const t = timing(mode);
    const pgAt = t.warm + t.into;
    const killAt = t.warm + t.pgPhase + t.into;
    return {
      phases: [
        { name: 'warm-up', seconds: t.warm },
        {
          name: 'postgres-crash',
          seconds: t.pgPhase,
          fault: {
            text: `a burst of ${t.burst} charges, then pg_ctl stop -m immediate at ${pgAt} s, started again ${t.downS} s later (provider 50-150 ms throughout)`,
          },
        },
        {
          name: 'service-kill',
          seconds: t.killPhase,
          fault: {
            text: `SIGKILL of the service's process tree at ${killAt} s (at least 2 s after Postgres is back), restarted at once`,
          },
        },
        { name: 'recovery', seconds: t.rec },
      ],
      load: { rate: pick(mode, 150, 200), retry: 'capped', deadlineMs: 1000 },
      steady: { provider: { latencyMs: { dist: 'uniform', minMs: 50, maxMs: 150 } } },
      actions: [crashes({ pgAt, downS: t.downS, killAt, killAfterUpS: 2, burst: t.burst })],
      afterLoad: resendAcknowledged(
        [
          { action: 'crashes', fact: 'stopped_s' },
          { action: 'crashes', fact: 'killed_s' },
        ],
        RESEND_BEFORE_S,
      ),
      // Rows a crash left `started` are finished by the reconciler once their
      // lease expires: a lease just above the longest deadline (the burst's
      // 2 s) and a quicker pass than the lab's default let the settle period
      // see them through.
      serviceEnv: { MAX_REQUEST_TIMEOUT_MS: '2000', LEASE_MS: '2500', RECONCILE_INTERVAL_MS: '200' },
      variants: variantsFor(mode),
    };
  },
  checks({ mode, phases, runs }): Check[] {
    const t = timing(mode);
    const checks: Check[] = [];
    const elsewhere = runs.filter((r) => !GATEWAY_VARIANTS.has(r.result.variant));
    const measured =
      elsewhere.length > 0
        ? `; measured elsewhere: ${elsewhere.map(resendSummary).join('; ')}; ${elsewhere.map(auditSummary).join('; ')}`
        : '';
    for (const run of runs.filter((r) => GATEWAY_VARIANTS.has(r.result.variant))) {
      // One action runs both crashes in turn; its facts carry both timings.
      const pg = run.actions.crashes?.facts;
      const f = run.actions.resend?.facts;
      checks.push({
        name: `${label(run)}: every key re-sent after the crashes is told the same answer (same status, same provider charge)`,
        passed: f !== undefined && f.resent! > 0 && f.changed === 0 && f.unanswered === 0,
        detail: `${resendSummary(run)}; ${auditSummary(run)}${measured}`,
      });
      const warm = warmGoodput(run, phases);
      // The fault must bite, or the audit proves nothing: the store is really gone for a while.
      if (pg) {
        const down = slice(run.result.timeline, Math.floor(pg.stopped_s!) + 1, Math.floor(pg.up_s!));
        const low = Math.min(...down.map((p) => p.goodput));
        const ackedBefore = run.actions.resend?.facts.acked_last_s;
        checks.push({
          name: `${label(run)}: the Postgres crash bit (Postgres ran crash recovery; some second while it was down under 50 % of the warm-up goodput)`,
          passed: pg.crash_recovery === 1 && down.length > 0 && warm > 0 && low < 0.5 * warm,
          detail:
            `down ${fmt(pg.stopped_s, 2)}-${fmt(pg.up_s, 2)} s, crash recovery ${pg.crash_recovery === 1 ? 'in its log' : 'NOT in its log'}; lowest second ${fmt(low, 0)}/s vs warm-up ${fmt(warm)}/s; ` +
            `${pg.burst_acked} of the burst and ${ackedBefore ?? 'n/a'} keys in all acknowledged in the last second before the stop`,
        });
      }
      for (const [what, from] of [
        ['Postgres came back', pg?.up_s],
        ['the replacement after SIGKILL listened', pg?.ready_s],
      ] as const) {
        const at = from === undefined ? null : backAt(run, from, BACK_FRACTION * warm);
        checks.push({
          name: `${label(run)}: goodput is back to >= ${BACK_FRACTION * 100} % of the warm-up within ${t.backWithinS} s after ${what}`,
          passed: from !== undefined && warm > 0 && at !== null && at <= from + t.backWithinS,
          detail:
            from === undefined
              ? 'the action did not report its time'
              : `${what} at ${fmt(from, 2)} s; back from t = ${at ?? 'never'} s (warm-up ${fmt(warm)}/s); ${run.connectionErrors} connection errors seen by the load generator`,
        });
      }
    }
    return checks;
  },
};
