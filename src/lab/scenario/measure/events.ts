/**
 * RunEvents from what the services logged: breaker transitions at the exact
 * moment they happened (the per-second scrape would round them to a second
 * and miss an open → half-open → open flap inside one). The gateway logs
 * `{ breaker, from, to }` from whichever thread made the transition; the
 * hardened baseline's opossum breaker logs `{ breaker, state }`.
 */
import type { RunEvent } from '../../report/types.js';
import { lineTime, type LogLine } from '../run/child.js';
import type { ScrapePoint } from './scrape.js';

const WORDS: Record<string, string> = {
  open: 'opened',
  half_open: 'half-open',
  closed: 'closed',
  forced_open: 'forced open',
};

/** Breaker transitions in `lines`, as events on the run clock (t = seconds since `loadStartEpochMs`). */
export function breakerEvents(lines: readonly LogLine[], loadStartEpochMs: number): RunEvent[] {
  const out: { t: number; what: string; ms: number }[] = [];
  for (const l of lines) {
    if (l.rec.msg !== 'breaker transition') continue;
    const name = typeof l.rec.breaker === 'string' ? l.rec.breaker : 'provider';
    const to = typeof l.rec.to === 'string' ? l.rec.to : typeof l.rec.state === 'string' ? l.rec.state : undefined;
    if (to === undefined) continue;
    const ms = lineTime(l);
    const what = `${name} breaker ${WORDS[to] ?? to}`;
    // Two threads may log one transition; a repeat within 50 ms is the same event.
    if (out.some((e) => e.what === what && Math.abs(e.ms - ms) < 50)) continue;
    out.push({ t: round((ms - loadStartEpochMs) / 1000), what, ms });
  }
  return out.sort((a, b) => a.t - b.t).map(({ t, what }) => ({ t, what }));
}

/**
 * Breaker state changes seen between consecutive scrapes that no logged
 * transition explains (within 1.5 s): a backstop, so a service whose log
 * lines change shape still shows its trips, marked "(scraped)".
 */
export function scrapedBreakerEvents(points: readonly ScrapePoint[], logged: readonly RunEvent[]): RunEvent[] {
  const out: RunEvent[] = [];
  for (const name of ['provider', 'fx'] as const) {
    let prev: string | undefined;
    let uptime = -1;
    for (const p of points) {
      const state = p.snapshot.breaker[name];
      // A restarted process starts closed: that is not a transition.
      const up = p.snapshot.uptimeS ?? Infinity;
      if (up < uptime) prev = undefined;
      uptime = up;
      if (state !== undefined && prev !== undefined && state !== prev) {
        const what = `${name} breaker ${WORDS[state] ?? state}`;
        if (!logged.some((e) => e.what === what && Math.abs(e.t - p.t) <= 1.5))
          out.push({ t: round(p.t), what: `${what} (scraped)` });
      }
      if (state !== undefined) prev = state;
    }
  }
  return out;
}

/** First time (run seconds) at or after `from` that the events say `what`; undefined when never. */
export function firstEvent(events: readonly RunEvent[], what: string, from = -Infinity): number | undefined {
  return events.find((e) => e.what === what && e.t >= from)?.t;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
