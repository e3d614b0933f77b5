/**
 * The `abuse` scenario's misbehaving clients as plan actions, each running
 * for exactly its phase next to the ordinary charge load: a client with
 * deadlines shorter than the provider's latency (the load generator with a
 * tiny X-Request-Timeout-Ms), trickling bodies and hostile headers (raw
 * sockets, abusers.ts). Every charge key an abuser sent goes to the audit,
 * as not final at the client unless it was plainly told 201/402: whatever
 * the service did with it, Postgres and the provider must agree.
 */
import { runLoad } from '../../load/index.js';
import type { ChargeOutcome } from '../../load/types.js';
import { hostileRequests, trickleBodies, type AbuseResult } from './abusers.js';
import type { ActionHandles, ActionReport, AfterLoadAction, PlanAction } from '../plan/definition.js';
import { round } from '../measure/timeline.js';

/** Facts of status counts are `s:<status>` (`s:504`, `s:huge-header 431`). */
export const STATUS_FACT = 's:';

/** The abusers' keys start with this after the run id, so their rows can be found for the audit. */
export const ABUSE_KEY_MARK = 'abuse';

function statusFacts(statuses: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(statuses).map(([k, n]) => [`${STATUS_FACT}${k}`, n]));
}

/** "504×120 503×30" from a report's status facts. */
export function statusLine(r: ActionReport | undefined): string {
  if (!r) return 'did not run';
  const parts = Object.entries(r.facts)
    .filter(([k]) => k.startsWith(STATUS_FACT))
    .map(([k, n]) => `${k.slice(STATUS_FACT.length)}×${n}`);
  return parts.join(', ') || 'nothing';
}

/** A key an abuser sent, for the audit: not final at the client (the abuser does not rely on an answer). */
function sentKey(key: string): ChargeOutcome {
  return { key, status: 'error', attempts: 1, history: ['error'], latency_ms: 0, intended_ms: 0, replayed: false };
}

function report(
  h: ActionHandles,
  name: string,
  startedAt: number,
  r: AbuseResult,
  extra: Record<string, number>,
): ActionReport {
  const what = `${name} ended: ${Object.entries(r.statuses)
    .map(([k, n]) => `${k}×${n}`)
    .join(', ')}`;
  h.log(`${h.variant}: ${what}`);
  return {
    events: [
      { t: round(startedAt), what: `${name} started` },
      { t: round(h.since()), what },
    ],
    outcomes: r.keys.map(sentKey),
    facts: { ...statusFacts(r.statuses), ...extra },
  };
}

/**
 * Seconds left until `until` on the run clock: an action that starts late
 * (a busy lab process) still ends with its phase rather than spill into the
 * next one.
 */
function secondsUntil(h: ActionHandles, until: number): number {
  return Math.max(0.5, until - h.since());
}

/** Charges at `rate`/s whose X-Request-Timeout-Ms is `deadlineMs`, below the provider's latency; no retries. From `at` to `until` (run seconds). */
export function tinyDeadlines(at: number, until: number, rate: number, deadlineMs: number): PlanAction {
  return {
    name: 'tiny-deadlines',
    at,
    async run(h) {
      const startedAt = h.since();
      const r = await runLoad({
        url: h.url,
        schedule: 'constant',
        rate,
        durationSeconds: secondsUntil(h, until),
        mixSpec: 'charge=1',
        deadlineMs,
        retry: 'none',
        connections: 64,
        seed: h.seed + 101,
        runId: `${h.runId}-${ABUSE_KEY_MARK}-deadline`,
      });
      const statuses = r.totals.statuses;
      const what = `tiny-deadline client (${deadlineMs} ms, ${rate}/s) ended: ${Object.entries(statuses)
        .map(([k, n]) => `${k}×${n}`)
        .join(', ')}`;
      h.log(`${h.variant}: ${what}`);
      return {
        events: [
          { t: round(startedAt), what: `tiny-deadline client started (${deadlineMs} ms deadlines, ${rate}/s)` },
          { t: round(h.since()), what },
        ],
        // Its own answers are audited like the ordinary client's: a 201 it saw must be stored.
        outcomes: r.outcomes,
        facts: { ...statusFacts(statuses), sent: r.totals.sent },
      };
    },
  };
}

/** From `at` to `until` (run seconds), `connections` sockets holding charges with incomplete bodies, a byte every `byteEveryMs`. */
export function trickle(at: number, until: number, connections: number, byteEveryMs: number): PlanAction {
  return {
    name: 'trickle',
    at,
    async run(h) {
      const startedAt = h.since();
      const r = await trickleBodies({
        url: h.url,
        connections,
        seconds: secondsUntil(h, until),
        byteEveryMs,
        keyPrefix: `${h.runId}-${ABUSE_KEY_MARK}-trickle`,
        deadlineMs: 1000,
      });
      return report(h, `${connections} trickling bodies`, startedAt, r, { sent: connections });
    },
  };
}

/** Hostile headers and bodies at `rate`/s, one connection each, from `at` to `until` (run seconds). */
export function hostile(at: number, until: number, rate: number): PlanAction {
  return {
    name: 'hostile',
    at,
    async run(h) {
      const startedAt = h.since();
      const seconds = secondsUntil(h, until);
      const r = await hostileRequests({
        url: h.url,
        rate,
        seconds,
        keyPrefix: `${h.runId}-${ABUSE_KEY_MARK}-hostile`,
        deadlineMs: 1000,
      });
      return report(h, `hostile headers (${rate}/s)`, startedAt, r, { sent: Math.round(rate * seconds) });
    },
  };
}

/**
 * Rows stored under an abuser's key the actions could not name (a non-ASCII
 * key, stored however the server decoded it; the other of two repeated
 * keys): handed to the audit as sent and not final, so they are checked
 * against the provider rather than reported as keys nobody sent.
 */
export const abuserRows: AfterLoadAction = {
  name: 'abuser-rows',
  async run(h, _outcomes, actions) {
    const known = new Set(Object.values(actions).flatMap((a) => (a.outcomes ?? []).map((o) => o.key)));
    const prefix = `${h.runId}-${ABUSE_KEY_MARK}-`;
    const rows = await h.env.sql<{ idempotency_key: string }[]>`
      SELECT idempotency_key FROM charges WHERE starts_with(idempotency_key, ${prefix})`;
    const extra = rows.map((r) => r.idempotency_key).filter((k) => !known.has(k));
    return { events: [], outcomes: extra.map(sentKey), facts: { unnamed_rows: extra.length } };
  },
};
