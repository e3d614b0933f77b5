/**
 * Aggregation: per-second, per-class and total counters and latency
 * percentiles. Each event is counted in the second it happens: an arrival in
 * the second it was *intended* for, a send when it left, an answer (status,
 * goodput, latency) when it came back. Answers arrive "now", so a second is
 * complete for answers once the clock has passed it, and `closeBefore` can
 * hand it to onSecond; only a late arrival (a generator behind schedule) can
 * still add `offered` to a closed second, and it is added to the same object,
 * so the final result is exact even if a live callback saw less.
 *
 * Latencies go into the gateway's own histogram layout (src/metrics) and are
 * summarised through hdr-histogram-js, so the lab and /metrics read
 * percentiles the same way (1 % relative precision).
 */
import { HISTOGRAM_BUCKETS, bucketIndex, summarize } from '../../metrics/histogram.js';
import type { ClassStats, Counts, LatencySummary, RequestClass, SecondStats } from './types.js';

/** One latency distribution in ms, plus the exact max the histogram rounds. */
export class LatencyRecorder {
  readonly #counts = new Int32Array(HISTOGRAM_BUCKETS);
  #max = 0;
  #n = 0;

  record(ms: number): void {
    this.#counts[bucketIndex(ms * 1000)]!++;
    this.#n++;
    if (ms > this.#max) this.#max = ms;
  }

  summary(): LatencySummary {
    if (this.#n === 0) return { count: 0, p50: 0, p99: 0, p999: 0, max: 0 };
    const s = summarize(this.#counts);
    const ms = (q: string) => round((s.quantiles[q] ?? 0) * 1000);
    return { count: s.count, p50: ms('0.5'), p99: ms('0.99'), p999: ms('0.999'), max: round(this.#max) };
  }
}

export function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

export function emptyCounts(): Counts {
  return {
    offered: 0,
    sent: 0,
    retries: 0,
    completed: 0,
    goodput: 0,
    statuses: {},
    attempt_statuses: {},
    timeouts: 0,
    connection_errors: 0,
  };
}

function bump(map: Record<string, number>, label: string): void {
  map[label] = (map[label] ?? 0) + 1;
}

/** A final or attempt outcome as a table label: "201", "timeout", "error". */
export type OutcomeLabel = number | 'timeout' | 'error';

interface OpenSecond {
  stats: SecondStats;
  latency: Partial<Record<RequestClass, LatencyRecorder>>;
}

export class LoadStats {
  readonly #totals = emptyCounts();
  readonly #classes = new Map<RequestClass, { counts: Counts; latency: LatencyRecorder }>();
  readonly #open = new Map<number, OpenSecond>();
  readonly #closed: SecondStats[] = [];
  /** Seconds below this are closed. */
  #closedBefore = 0;
  /** Never read: absorbs events for a second before 0, which cannot happen; keeps #each total. */
  readonly #totalsSink = emptyCounts();

  /** A scheduled arrival, at its intended offset (ms from start). */
  offered(cls: RequestClass, intendedMs: number): void {
    this.#each(cls, intendedMs, (c) => c.offered++);
  }

  /** An attempt left at `atMs`; `retry` for every attempt after the first. */
  sent(cls: RequestClass, atMs: number, retry: boolean): void {
    this.#each(cls, atMs, (c) => (retry ? c.retries++ : c.sent++));
  }

  /** An attempt ended with `label` at `atMs`. */
  attempt(cls: RequestClass, atMs: number, label: OutcomeLabel): void {
    this.#each(cls, atMs, (c) => bump(c.attempt_statuses, String(label)));
  }

  /** A request ended: its final label, latency from the intended send, and whether it counts as goodput. */
  completed(cls: RequestClass, atMs: number, label: OutcomeLabel, latencyMs: number, good: boolean): void {
    this.#each(cls, atMs, (c) => {
      c.completed++;
      bump(c.statuses, String(label));
      if (good) c.goodput++;
      if (label === 'timeout') c.timeouts++;
      else if (label === 'error') c.connection_errors++;
    });
    this.#class(cls).latency.record(latencyMs);
    const sec = this.#second(Math.floor(atMs / 1000));
    if (sec) (sec.latency[cls] ??= new LatencyRecorder()).record(latencyMs);
  }

  /** Close every second before `second` (contiguous from 0), returning the newly closed ones. */
  closeBefore(second: number): SecondStats[] {
    const out: SecondStats[] = [];
    for (; this.#closedBefore < second; this.#closedBefore++) {
      const s = this.#open.get(this.#closedBefore) ?? this.#newSecond(this.#closedBefore);
      this.#open.delete(this.#closedBefore);
      for (const [cls, rec] of Object.entries(s.latency)) s.stats.latency_ms[cls as RequestClass] = rec.summary();
      this.#closed.push(s.stats);
      out.push(s.stats);
    }
    return out;
  }

  /** Seconds closed so far, in order. */
  get seconds(): readonly SecondStats[] {
    return this.#closed;
  }

  /** The last second with any event, or -1. */
  get lastSecond(): number {
    return Math.max(this.#closedBefore - 1, ...this.#open.keys());
  }

  totals(): Counts {
    return structuredClone(this.#totals);
  }

  classes(): Partial<Record<RequestClass, ClassStats>> {
    const out: Partial<Record<RequestClass, ClassStats>> = {};
    for (const [cls, c] of this.#classes) out[cls] = { ...structuredClone(c.counts), latency_ms: c.latency.summary() };
    return out;
  }

  #each(cls: RequestClass, atMs: number, f: (c: Counts) => void): void {
    f(this.#totals);
    f(this.#class(cls).counts);
    const sec = Math.floor(atMs / 1000);
    const open = this.#second(sec);
    if (open) f(open.stats);
    // A late event for a closed second: count it where the result will read it.
    else f(this.#closed[sec] ?? this.#totalsSink);
  }

  #class(cls: RequestClass): { counts: Counts; latency: LatencyRecorder } {
    let c = this.#classes.get(cls);
    if (!c) {
      c = { counts: emptyCounts(), latency: new LatencyRecorder() };
      this.#classes.set(cls, c);
    }
    return c;
  }

  #second(sec: number): OpenSecond | undefined {
    if (sec < this.#closedBefore) return undefined;
    let s = this.#open.get(sec);
    if (!s) {
      s = this.#newSecond(sec);
      this.#open.set(sec, s);
    }
    return s;
  }

  #newSecond(second: number): OpenSecond {
    return { stats: { second, ...emptyCounts(), latency_ms: {} }, latency: {} };
  }
}
