/**
 * The `crash` scenario's actions: a burst of charges, then at once Postgres
 * stopped with an immediate stop and started again a few seconds later; the service SIGKILLed (its whole
 * process tree) and restarted at once; and, once the load has ended, a
 * client re-sending the keys it had been told were final just before each
 * crash, byte for byte as first sent, as a client does when it cannot tell
 * whether the answer it got was kept. A store that lost an acknowledged row
 * then either charges the key again (the audit's duplicates), tells a
 * different story (the re-send's changed answers) or has nothing (lost).
 */
import { LoadClient } from '../../load/client.js';
import { parseMix, type PlannedRequest } from '../../load/requests.js';
import { chargeBody } from './abusers.js';
import { plannerFor } from '../../load/run.js';
import type { ChargeOutcome } from '../../load/types.js';
import { round } from '../measure/timeline.js';
import type { ActionHandles, ActionReport, AfterLoadAction, PlanAction } from '../plan/definition.js';
import { ServiceUnderTest } from '../run/service.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface CrashTiming {
  /** Run seconds at which the burst is sent and Postgres stopped right after it. */
  pgAt: number;
  /** Seconds Postgres stays down (its restart then waits for crash recovery). */
  downS: number;
  /** Run seconds at which the service is SIGKILLed, and at least this long after Postgres is back. */
  killAt: number;
  killAfterUpS: number;
  /** Charges sent at once just before the stop, all awaited: answers acknowledged an instant before the crash. */
  burst: number;
}

/** Keys of the burst before the Postgres stop: `<runId>-burst-<i>`. */
export const BURST_MARK = 'burst';

/** The burst's i-th request, rebuilt identically for the re-send. */
function burstRequest(runId: string, i: number): PlannedRequest {
  const key = `${runId}-${BURST_MARK}-${i}`;
  return {
    cls: 'charge',
    method: 'POST',
    path: '/charge',
    key,
    n: i,
    body: chargeBody(i, `bulwark crash burst ${runId}`),
  };
}

/**
 * The crashes, one after the other so they never overlap on a slow machine:
 * a burst of charges, all answered, then at once `pg_ctl stop -m immediate`
 * (the issue's reproduction: acknowledged answers an instant before the
 * database dies); Postgres started again `downS` later; then SIGKILL to the
 * service's process tree and a replacement started at once.
 */
export function crashes(t: CrashTiming): PlanAction {
  return {
    name: 'crashes',
    at: t.pgAt,
    async run(h: ActionHandles): Promise<ActionReport> {
      const pg = h.env.postgres;
      if (!pg) throw new Error("the crash scenario needs the lab's embedded Postgres (no external DATABASE_URL)");
      if (!(h.service instanceof ServiceUnderTest))
        throw new Error('the crash scenario needs the single-process topology');
      const burstAt = h.since();
      const burst = await sendBurst(h, t.burst);
      const stoppedAt = h.since();
      await pg.crash();
      h.log(
        `${h.variant}: burst of ${t.burst} (${burst.acked} acknowledged: ${burst.statuses}), then postgres stopped (immediate) at ${round(h.since())} s`,
      );
      await sleep(Math.max(0, t.downS * 1000 - (h.since() - stoppedAt) * 1000));
      const { recovered } = await pg.restart();
      const upAt = h.since();
      h.log(
        `${h.variant}: postgres accepting again at ${round(upAt)} s${recovered ? ' after crash recovery' : ' (its log shows no crash recovery)'}`,
      );
      await sleep(Math.max(0, Math.max(t.killAt, upAt + t.killAfterUpS) - h.since()) * 1000);
      const killS = h.since();
      const { killedAt, readyAt } = await h.service.kill();
      const ready = round(killS + (readyAt - killedAt) / 1000);
      h.log(`${h.variant}: SIGKILL at ${round(killS)} s, replacement listening at ${ready} s`);
      return {
        events: [
          { t: round(burstAt), what: `burst of ${t.burst} charges (${burst.acked} acknowledged: ${burst.statuses})` },
          { t: round(stoppedAt), what: 'Postgres stopped (pg_ctl stop -m immediate)' },
          {
            t: round(upAt),
            what: `Postgres restarted (${recovered ? 'crash recovery done' : 'no crash recovery in its log'}, accepting)`,
          },
          { t: round(killS), what: 'SIGKILL (process tree), restarted at once' },
          { t: ready, what: 'restarted after SIGKILL (listening)' },
        ],
        outcomes: burst.outcomes,
        facts: {
          stopped_s: round(stoppedAt),
          up_s: round(upAt),
          crash_recovery: recovered ? 1 : 0,
          killed_s: round(killS),
          ready_s: ready,
          burst_acked: burst.acked,
        },
      };
    },
  };
}

async function sendBurst(
  h: ActionHandles,
  n: number,
): Promise<{ outcomes: ChargeOutcome[]; acked: number; statuses: string }> {
  const client = new LoadClient({ url: h.url, connections: Math.min(n, 128), deadlineMs: 2000, graceMs: 200 });
  const t0 = h.since();
  try {
    const outcomes = await Promise.all(
      Array.from({ length: n }, async (_, i): Promise<ChargeOutcome> => {
        const req = burstRequest(h.runId, i);
        const res = await client.attempt(req);
        const status = res.outcome.kind === 'status' ? res.outcome.status : res.outcome.kind;
        return {
          key: req.key!,
          status,
          attempts: 1,
          history: [status],
          latency_ms: (h.since() - t0) * 1000,
          intended_ms: t0 * 1000,
          replayed: res.replayed,
          ...(res.chargeId ? { charge_id: res.chargeId } : {}),
          ...(res.providerChargeId ? { provider_charge_id: res.providerChargeId } : {}),
        };
      }),
    );
    const statuses: Record<string, number> = {};
    for (const o of outcomes) statuses[o.status] = (statuses[o.status] ?? 0) + 1;
    return {
      outcomes,
      acked: outcomes.filter((o) => FINAL.has(o.status)).length,
      statuses: Object.entries(statuses)
        .map(([k, v]) => `${k}×${v}`)
        .join(' '),
    };
  } finally {
    await client.close();
  }
}

const FINAL = new Set<ChargeOutcome['status']>([200, 201, 402]);
/** Final answers a re-send may get; anything else is retried (in progress, unavailable, timeout). */
const RESEND_ATTEMPTS = 4;
const RESEND_BACKOFF_MS = 300;

/**
 * After the load: every key acknowledged (201/402) within `beforeS` seconds
 * before a crash (or up to 1 s after it: answers in flight) is sent again,
 * same key, same body. Facts: `resent`, `same` (the same status and, for a
 * success, the same provider charge id), `changed`, `unanswered`, and
 * `status_<code>` counts of the re-sends' final answers, and `acked_last_s`
 * (keys acknowledged in the last second before the first crash).
 */
export function resendAcknowledged(
  crashFacts: readonly { action: string; fact: string }[],
  beforeS: number,
): AfterLoadAction {
  return {
    name: 'resend',
    async run(
      h: ActionHandles,
      outcomes: readonly ChargeOutcome[],
      actions: Readonly<Record<string, ActionReport>>,
    ): Promise<ActionReport> {
      const times = crashFacts
        .map((c) => actions[c.action]?.facts[c.fact])
        .filter((x): x is number => typeof x === 'number');
      // The burst's keys are acknowledged just before the stop by construction: all of them are re-sent.
      const burst = Object.values(actions).flatMap((a) => a.outcomes ?? []);
      return resend(h, [...outcomes, ...burst], times, beforeS);
    },
  };
}

/** `times`: the crashes, in run seconds. */
async function resend(
  h: ActionHandles,
  outcomes: readonly ChargeOutcome[],
  times: readonly number[],
  beforeS: number,
): Promise<ActionReport> {
  const ackS = (o: ChargeOutcome) => (o.intended_ms + o.latency_ms) / 1000;
  const picked = outcomes.filter(
    (o) => FINAL.has(o.status) && times.some((t) => ackS(o) >= t - beforeS && ackS(o) <= t + 1),
  );
  const wanted = new Map(picked.map((o) => [o.key, o]));
  // Re-plan the load's requests to get each key's exact body.
  const planner = plannerFor({ runId: h.runId, mix: parseMix('charge=1'), seed: h.seed });
  const burstPrefix = `${h.runId}-${BURST_MARK}-`;
  const requests: PlannedRequest[] = [];
  for (const o of picked)
    if (o.key.startsWith(burstPrefix)) requests.push(burstRequest(h.runId, Number(o.key.slice(burstPrefix.length))));
  const loadKeys = picked.filter((o) => !o.key.startsWith(burstPrefix));
  const maxN = Math.max(0, ...loadKeys.map((o) => Number(o.key.slice(h.runId.length + 1))));
  for (let i = 0; i < maxN; i++) {
    const r = planner.next();
    if (r.key !== undefined && wanted.has(r.key)) requests.push(r);
  }
  const client = new LoadClient({ url: h.url, connections: 32, deadlineMs: 1000, graceMs: 200 });
  // How many answers were at risk at the first crash: acknowledged in the last second before it.
  const first = times[0];
  const ackedLast =
    first === undefined
      ? 0
      : outcomes.filter((o) => FINAL.has(o.status) && ackS(o) >= first - 1 && ackS(o) <= first).length;
  const facts: Record<string, number> = {
    resent: requests.length,
    same: 0,
    changed: 0,
    unanswered: 0,
    acked_last_s: ackedLast,
  };
  const changedKeys: string[] = [];
  const started = h.since();
  try {
    let next = 0;
    const worker = async () => {
      while (next < requests.length) {
        const req = requests[next++]!;
        const before = wanted.get(req.key!)!;
        let status: number | 'timeout' | 'error' = 'error';
        let providerChargeId: string | undefined;
        for (let a = 0; a < RESEND_ATTEMPTS; a++) {
          const res = await client.attempt(req);
          status = res.outcome.kind === 'status' ? res.outcome.status : res.outcome.kind;
          providerChargeId = res.providerChargeId;
          if (
            FINAL.has(status) ||
            (typeof status === 'number' && status >= 400 && status < 500 && status !== 409 && status !== 429)
          )
            break;
          await sleep(RESEND_BACKOFF_MS * (a + 1));
        }
        facts[`status_${status}`] = (facts[`status_${status}`] ?? 0) + 1;
        if (!FINAL.has(status)) facts.unanswered!++;
        else if (sameAnswer(before, status, providerChargeId)) facts.same!++;
        else {
          facts.changed!++;
          if (changedKeys.length < 3)
            changedKeys.push(
              `${req.key} ${before.status}${before.provider_charge_id ? ` ${before.provider_charge_id}` : ''} -> ${status}${providerChargeId ? ` ${providerChargeId}` : ''}`,
            );
        }
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
  } finally {
    await client.close();
  }
  const what =
    `re-sent ${facts.resent} keys acknowledged just before the crashes: ${facts.same} same answer, ${facts.changed} changed, ${facts.unanswered} without a final answer` +
    (changedKeys.length > 0 ? ` (e.g. ${changedKeys.join('; ')})` : '');
  h.log(`${h.variant}: ${what}`);
  return { events: [{ t: round(started), what }], facts };
}

/** The same final status, and for a success the same provider charge (a replay, not a new charge). */
function sameAnswer(
  before: ChargeOutcome,
  status: number | 'timeout' | 'error',
  providerChargeId: string | undefined,
): boolean {
  const ok = (s: unknown) => s === 200 || s === 201;
  if (ok(before.status))
    return ok(status) && (before.provider_charge_id === undefined || before.provider_charge_id === providerChargeId);
  return before.status === status;
}
