/**
 * The `crash` scenario's actions: Postgres stopped with an immediate stop
 * and started again a few seconds later; the service SIGKILLed (its whole
 * process tree) and restarted at once; and, once the load has ended, a
 * client re-sending the keys it had been told were final just before each
 * crash, byte for byte as first sent, as a client does when it cannot tell
 * whether the answer it got was kept. A store that lost an acknowledged row
 * then either charges the key again (the audit's duplicates), tells a
 * different story (the re-send's changed answers) or has nothing (lost).
 */
import { LoadClient } from '../load/client.js';
import { parseMix, type PlannedRequest } from '../load/requests.js';
import { plannerFor } from '../load/run.js';
import type { ChargeOutcome } from '../load/types.js';
import { round } from './timeline.js';
import type { ActionHandles, ActionReport, AfterLoadAction, PlanAction } from './definition.js';
import { ServiceUnderTest } from './service.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `pg_ctl stop -m immediate` at `at` s, start again `downS` s later (the start waits for crash recovery). */
export function postgresCrash(at: number, downS: number): PlanAction {
  return {
    name: 'postgres-crash',
    at,
    async run(h: ActionHandles): Promise<ActionReport> {
      const pg = h.env.postgres;
      if (!pg) throw new Error('the crash scenario needs the lab\'s embedded Postgres (no external DATABASE_URL)');
      const stoppedAt = h.since();
      await pg.crash();
      const downAt = h.since();
      h.log(`${h.variant}: postgres stopped (immediate) at ${round(downAt)} s`);
      await sleep(Math.max(0, downS * 1000 - (h.since() - stoppedAt) * 1000));
      await pg.restart();
      const upAt = h.since();
      h.log(`${h.variant}: postgres accepting again at ${round(upAt)} s`);
      return {
        events: [
          { t: round(stoppedAt), what: 'Postgres stopped (pg_ctl stop -m immediate)' },
          { t: round(upAt), what: 'Postgres restarted (crash recovery done, accepting)' },
        ],
        facts: { stopped_s: round(stoppedAt), up_s: round(upAt) },
      };
    },
  };
}

/** SIGKILL to the service's process tree at `at` s, a replacement started at once on the same port. */
export function serviceKill(at: number): PlanAction {
  return {
    name: 'service-kill',
    at,
    async run(h: ActionHandles): Promise<ActionReport> {
      if (!(h.service instanceof ServiceUnderTest)) throw new Error('service-kill needs the single-process topology');
      const t0 = h.since();
      const { killedAt, readyAt } = await h.service.kill();
      const t = (epoch: number) => round(t0 + (epoch - killedAt) / 1000);
      const ready = t(readyAt);
      h.log(`${h.variant}: SIGKILL at ${round(t0)} s, replacement listening at ${ready} s`);
      return {
        events: [
          { t: round(t0), what: 'SIGKILL (process tree), restarted at once' },
          { t: ready, what: 'restarted after SIGKILL (listening)' },
        ],
        facts: { killed_s: round(t0), ready_s: ready },
      };
    },
  };
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
 * `status_<code>` counts of the re-sends' final answers.
 */
export function resendAcknowledged(crashFacts: readonly { action: string; fact: string }[], beforeS: number): AfterLoadAction {
  return {
    name: 'resend',
    async run(h: ActionHandles, outcomes: readonly ChargeOutcome[], actions: Readonly<Record<string, ActionReport>>): Promise<ActionReport> {
      const times = crashFacts.map((c) => actions[c.action]?.facts[c.fact]).filter((x): x is number => typeof x === 'number');
      return resend(h, outcomes, times, beforeS);
    },
  };
}

/** `times`: the crashes, in run seconds. */
async function resend(h: ActionHandles, outcomes: readonly ChargeOutcome[], times: readonly number[], beforeS: number): Promise<ActionReport> {
  const ackS = (o: ChargeOutcome) => (o.intended_ms + o.latency_ms) / 1000;
  const picked = outcomes.filter((o) => FINAL.has(o.status) && times.some((t) => ackS(o) >= t - beforeS && ackS(o) <= t + 1));
  const wanted = new Map(picked.map((o) => [o.key, o]));
  // Re-plan the load's requests to get each key's exact body.
  const planner = plannerFor({ runId: h.runId, mix: parseMix('charge=1'), seed: h.seed });
  const maxN = Math.max(0, ...picked.map((o) => Number(o.key.slice(h.runId.length + 1))));
  const requests: PlannedRequest[] = [];
  for (let i = 0; i < maxN; i++) {
    const r = planner.next();
    if (r.key !== undefined && wanted.has(r.key)) requests.push(r);
  }
  const client = new LoadClient({ url: h.url, connections: 32, deadlineMs: 1000, graceMs: 200 });
  const facts: Record<string, number> = { resent: requests.length, same: 0, changed: 0, unanswered: 0 };
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
          if (FINAL.has(status) || (typeof status === 'number' && status >= 400 && status < 500 && status !== 409 && status !== 429)) break;
          await sleep(RESEND_BACKOFF_MS * (a + 1));
        }
        facts[`status_${status}`] = (facts[`status_${status}`] ?? 0) + 1;
        if (!FINAL.has(status)) facts.unanswered!++;
        else if (sameAnswer(before, status, providerChargeId)) facts.same!++;
        else {
          facts.changed!++;
          if (changedKeys.length < 3) changedKeys.push(`${req.key} ${before.status}${before.provider_charge_id ? ` ${before.provider_charge_id}` : ''} -> ${status}${providerChargeId ? ` ${providerChargeId}` : ''}`);
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
function sameAnswer(before: ChargeOutcome, status: number | 'timeout' | 'error', providerChargeId: string | undefined): boolean {
  const ok = (s: unknown) => s === 200 || s === 201;
  if (ok(before.status)) return ok(status) && (before.provider_charge_id === undefined || before.provider_charge_id === providerChargeId);
  return before.status === status;
}
