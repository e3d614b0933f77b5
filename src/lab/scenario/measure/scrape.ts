/**
 * Scraping the gateway's /metrics once a second while a variant runs, so the
 * report shows the breaker trip, shedding, bulkhead rejections and DB acquire
 * timeouts in the second they happened rather than as end-of-run totals.
 *
 * Counters become per-second rates from consecutive samples. A counter that
 * went down means a new process (a deploy restarted the service): its value
 * then counts from zero, as Prometheus' rate() treats a reset. A scrape that
 * fails (the service is restarting) is skipped, not fatal.
 */
import { request } from 'undici';
import { SHED_REASONS } from '../../../resilience/shedder.js';

/** `name{labels} value` lines of the Prometheus text format; comments skipped. */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parsePrometheus(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    out.push({ name: m[1]!, labels, value });
  }
  return out;
}

/** The counters the lab turns into per-second rates (and sums over a run: not-good.ts). */
export const COUNTERS = [
  'shed',
  'shed_concurrency',
  'shed_event_loop',
  'shed_deadline',
  'shed_downstream',
  'bulkhead_rejections_provider',
  'bulkhead_rejections_fx',
  'db_acquire_timeouts',
  'breaker_rejections_provider',
  'breaker_rejections_fx',
  'retries_provider',
  'retries_suppressed',
  'timeouts',
] as const;
export type CounterName = (typeof COUNTERS)[number];

/** One scrape, reduced to what the timeline and the checks read. */
export interface MetricsSnapshot {
  breaker: { provider?: string; fx?: string };
  admissionLimit?: number;
  inFlight?: number;
  /** Process uptime: when it goes down, a new process (a deploy) answered. */
  uptimeS?: number;
  counters: Record<CounterName, number>;
  /**
   * The gateway's own POST /charge duration histogram, by status class:
   * cumulative bucket counts keyed by `le` (seconds). Server-side latency,
   * free of the load generator's own scheduling lag.
   */
  chargeBuckets: Record<string, Map<number, number>>;
}

export function snapshotOf(samples: readonly PromSample[]): MetricsSnapshot {
  const counters = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Record<CounterName, number>;
  const snap: MetricsSnapshot = { breaker: {}, counters, chargeBuckets: {} };
  for (const s of samples) {
    const d = s.labels.downstream;
    switch (s.name) {
      case 'bulwark_breaker_state':
        if (s.value === 1 && (d === 'provider' || d === 'fx')) snap.breaker[d] = s.labels.state;
        break;
      case 'bulwark_admission_limit':
        snap.admissionLimit = s.value;
        break;
      case 'bulwark_admission_in_flight':
        snap.inFlight = s.value;
        break;
      case 'process_start_time_seconds':
        snap.uptimeS = Math.max(0, Date.now() / 1000 - s.value);
        break;
      case 'bulwark_shed_total': {
        counters.shed += s.value;
        const reason = SHED_REASONS.find((r) => r === s.labels.reason);
        if (reason) counters[`shed_${reason}`] += s.value;
        break;
      }
      case 'bulwark_bulkhead_rejections_total':
        if (d === 'provider') counters.bulkhead_rejections_provider += s.value;
        else if (d === 'fx') counters.bulkhead_rejections_fx += s.value;
        break;
      case 'bulwark_db_pool_acquire_timeouts_total':
        counters.db_acquire_timeouts += s.value;
        break;
      case 'bulwark_breaker_rejections_total':
        if (d === 'provider') counters.breaker_rejections_provider += s.value;
        else if (d === 'fx') counters.breaker_rejections_fx += s.value;
        break;
      case 'bulwark_retries_total':
        counters.retries_provider += s.value;
        break;
      case 'bulwark_retries_suppressed_total':
        counters.retries_suppressed += s.value;
        break;
      case 'bulwark_timeouts_total':
        counters.timeouts += s.value;
        break;
      case 'bulwark_http_request_duration_seconds_bucket': {
        const cls = s.labels.status_class;
        if (s.labels.route !== '/charge' || cls === undefined) break;
        (snap.chargeBuckets[cls] ??= new Map()).set(s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), s.value);
        break;
      }
    }
  }
  return snap;
}

/** A scrape placed on the run's clock, with the counters' rates since the previous one. */
export interface ScrapePoint {
  /** Seconds since the load started. */
  t: number;
  snapshot: MetricsSnapshot;
  /** Per-second rates since the previous successful scrape (zero for the first). */
  rates: Record<CounterName, number>;
  /** Counter increases since the previous successful scrape. */
  deltas: Record<CounterName, number>;
}

/**
 * Consecutive snapshots → rates. A new process (its uptime went down: a
 * deploy or a crash between the scrapes) counts from zero, so its counts
 * are the increase; so does a counter that went down. What the old process
 * counted after its last scrape is not seen.
 */
export function ratesBetween(
  prev: { t: number; snapshot: MetricsSnapshot } | undefined,
  t: number,
  cur: MetricsSnapshot,
): Pick<ScrapePoint, 'rates' | 'deltas'> {
  const rates = {} as Record<CounterName, number>;
  const deltas = {} as Record<CounterName, number>;
  const up = cur.uptimeS;
  const upBefore = prev?.snapshot.uptimeS;
  const restarted = up !== undefined && upBefore !== undefined && up < upBefore;
  for (const c of COUNTERS) {
    const now = cur.counters[c];
    const before = prev?.snapshot.counters[c];
    const delta = before === undefined ? 0 : restarted || now < before ? now : now - before;
    const dt = prev === undefined ? 1 : Math.max(0.001, t - prev.t);
    deltas[c] = delta;
    rates[c] = Math.round((delta / dt) * 10) / 10;
  }
  return { rates, deltas };
}

/**
 * Polls `url()` every `intervalMs` (default one second), aimed 100 ms before
 * the end of an interval so a point describes the second it falls in.
 *
 * Scraping is not free: the gateway renders /metrics on its front thread, so
 * each scrape is a stall of its own there (tens of ms on a busy two-core
 * machine) that the baselines, which have no /metrics, never pay. A longer
 * interval shows how much of the gateway's p99 is the observer's.
 */
export class Scraper {
  readonly points: ScrapePoint[] = [];
  readonly #url: () => string;
  readonly #since: () => number;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #inFlight: Promise<void> | undefined;
  failures = 0;

  readonly #intervalMs: number;

  /** `since()` is seconds since the load started. */
  constructor(url: () => string, since: () => number, intervalMs = 1000) {
    this.#url = url;
    this.#since = since;
    this.#intervalMs = Math.max(200, intervalMs);
  }

  start(): void {
    const untilNext = () => {
      const ms = this.#since() * 1000;
      const due = Math.floor(ms / this.#intervalMs) * this.#intervalMs + this.#intervalMs - 100;
      return due - ms > 50 ? due - ms : due - ms + this.#intervalMs;
    };
    const tick = () => {
      if (this.#stopped) return;
      this.#inFlight = this.#scrape();
      this.#timer = setTimeout(tick, untilNext());
    };
    this.#timer = setTimeout(tick, untilNext());
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#inFlight;
  }

  async #scrape(): Promise<void> {
    try {
      const res = await request(this.#url(), { method: 'GET', headersTimeout: 800, bodyTimeout: 800 });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
      const t = Math.round(this.#since() * 1000) / 1000;
      const snapshot = snapshotOf(parsePrometheus(text));
      this.points.push({ t, snapshot, ...ratesBetween(this.points.at(-1), t, snapshot) });
    } catch {
      this.failures++;
    }
  }
}

/**
 * Quantile `q` of the requests a cumulative histogram gained between two
 * scrapes, interpolated inside the bucket as Prometheus' histogram_quantile
 * does; null when nothing was recorded (or a restart reset the counts).
 */
export function quantileBetween(
  before: Map<number, number> | undefined,
  after: Map<number, number> | undefined,
  q: number,
): { value: number | null; count: number } {
  if (!after) return { value: null, count: 0 };
  const les = [...after.keys()].sort((a, b) => a - b);
  const deltas = les.map((le) => (after.get(le) ?? 0) - (before?.get(le) ?? 0));
  const total = deltas.at(-1) ?? 0;
  if (total <= 0 || deltas.some((d) => d < 0)) return { value: null, count: Math.max(0, total) };
  const rank = q * total;
  for (let i = 0; i < les.length; i++) {
    if (deltas[i]! >= rank) {
      const lower = i === 0 ? 0 : les[i - 1]!;
      const upper = les[i]!;
      // Past the last finite bucket Prometheus answers the highest finite bound.
      if (!Number.isFinite(upper)) return { value: lower, count: total };
      const below = i === 0 ? 0 : deltas[i - 1]!;
      const inBucket = deltas[i]! - below;
      return { value: lower + (upper - lower) * (inBucket === 0 ? 1 : (rank - below) / inBucket), count: total };
    }
  }
  return { value: les.filter(Number.isFinite).at(-1) ?? null, count: total };
}
