/**
 * `runLoad`: the open-loop run. The pacer dispatches each arrival at its
 * intended time and never waits for it; each dispatched request runs its own
 * attempt/retry loop; a ticker hands every finished second to onSecond. The
 * run is bounded twice: arrivals stop at the schedule's end (or at
 * maxRequests sends), then stragglers get at most one deadline (+ grace)
 * before every attempt still in flight is abandoned (counted as `timeout`)
 * and pending retries are cut (counted as `abandoned`).
 *
 * Latency is always `answer time - intended send time`: the generator's own
 * lag, undici's queue when all connections are busy, retries and backoff all
 * count, which is what a user of the service would have waited.
 */
import { systemClock } from '../../lib/clock.js';
import { seededRandom } from '../../lib/random.js';
import { LoadClient, type AttemptResult } from './client.js';
import { resolveLoadOptions, type LoadInput } from './options.js';
import { OutcomeLog, sloGood } from './outcomes.js';
import { isFinal, RequestPlanner, type PlannedRequest } from './requests.js';
import { retryPolicy, type AttemptOutcome } from './retry.js';
import { Arrivals, isBehind, pace, profile, realSleep } from './schedule.js';
import { LatencyRecorder, LoadStats, round, type OutcomeLabel } from './stats.js';
import type { LoadHooks, LoadOptions, LoadResult, SecondStats } from './types.js';

function labelOf(o: AttemptOutcome): OutcomeLabel {
  return o.kind === 'status' ? o.status : o.kind;
}

/** Sleep that ends early (resolving false) when `cut` fires. */
function interruptibleSleep(ms: number, cuts: Set<() => void>): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (completed: boolean) => {
      clearTimeout(timer);
      cuts.delete(cut);
      resolve(completed);
    };
    const cut = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    cuts.add(cut);
  });
}

/**
 * The run's request planner: the same run id, mix and seed plan the same
 * keys and byte-identical bodies, so a lab client can re-send a key exactly
 * as the load sent it (the `crash` scenario's re-send after an outage).
 */
export function plannerFor(o: Pick<LoadOptions, 'runId' | 'mix' | 'seed'>): RequestPlanner {
  return new RequestPlanner(o.runId, o.mix, seededRandom(o.seed ^ 0x5bd1e995), seededRandom(o.seed ^ 0x68e31da4));
}

/** Run a load against `input.url` and return the whole result. Options are validated (ConfigError) before anything is sent. */
export async function runLoad(input: LoadInput, hooks: LoadHooks = {}): Promise<LoadResult> {
  const o = resolveLoadOptions(input);
  const clock = systemClock;
  // Separate streams: the mix, the gaps and the jitter must not shift each other when one of them changes.
  const planner = plannerFor(o);
  const gaps = seededRandom(o.seed);
  const policy = retryPolicy(o.retry, {
    maxAttempts: o.maxAttempts,
    baseMs: o.retryBaseMs,
    capMs: o.retryCapMs,
    random: seededRandom(o.seed ^ 0x27d4eb2f),
  });
  const client = new LoadClient({
    url: o.url,
    connections: o.connections,
    deadlineMs: o.deadlineMs,
    graceMs: o.graceMs,
  });
  const stats = new LoadStats();
  const outcomes = new OutcomeLog();
  const lag = new LatencyRecorder();
  let lagMaxAt = 0;
  let lagMax = -1;
  // Per second (of intended time): the worst send lag; per second (of wall time): this process's CPU.
  const lagBy = new Map<number, number>();
  const cpuBy = new Map<number, number>();
  const cpu0 = process.cpuUsage();
  let cpuLast = cpu0;
  let cpuLastAt = 0;
  let sends = 0;
  let abandoned = 0;
  let closing = false;
  let sloTotal = 0;
  let sloGoodCount = 0;
  let failure: unknown;
  const requests: Promise<void>[] = [];
  const backoffs = new Set<() => void>();

  const startedAt = new Date().toISOString();
  const t0 = clock.now();
  const since = () => clock.now() - t0;

  const annotate = (s: SecondStats) => {
    const lagMs = lagBy.get(s.second);
    const cpuMs = cpuBy.get(s.second);
    if (lagMs !== undefined || cpuMs !== undefined)
      s.generator = { lag_max_ms: round(lagMs ?? 0), ...(cpuMs !== undefined ? { cpu_ms: round(cpuMs) } : {}) };
  };
  const emit = (seconds: SecondStats[]) => {
    for (const s of seconds) {
      annotate(s);
      try {
        hooks.onSecond?.(s);
      } catch (e) {
        failure ??= e;
      }
    }
  };
  let ticker: NodeJS.Timeout | undefined;
  const tick = () => {
    // The tick fires just past a boundary, so the CPU since the last one is the second that just ended
    // (a late tick spreads it: per wall second, so a saturated generator still reads about one core).
    const cpu = process.cpuUsage();
    const at = since();
    const usedMs = (cpu.user - cpuLast.user + cpu.system - cpuLast.system) / 1000;
    cpuBy.set(Math.floor(at / 1000) - 1, (usedMs * 1000) / Math.max(1, at - cpuLastAt));
    cpuLast = cpu;
    cpuLastAt = at;
    emit(stats.closeBefore(Math.floor(since() / 1000)));
    // Re-aim at the next boundary (+1 ms) so timer drift never closes a second early or skips one.
    ticker = setTimeout(tick, 1001 - (since() % 1000));
  };
  ticker = setTimeout(tick, 1001);

  async function execute(req: PlannedRequest, intendedMs: number): Promise<void> {
    let attempt = 0;
    let last: AttemptResult | undefined;
    let lastAt = 0;
    let cut = false;
    const history: OutcomeLabel[] = [];
    const codes: string[] = [];
    for (;;) {
      if (closing || sends >= o.maxRequests) {
        cut = true;
        break;
      }
      attempt++;
      sends++;
      stats.sent(req.cls, since(), attempt > 1);
      last = await client.attempt(req);
      lastAt = since();
      const label = labelOf(last.outcome);
      history.push(label);
      codes.push(last.problemCode ?? '');
      stats.attempt(req.cls, lastAt, label);
      const delay = policy.decide(attempt, last.outcome, lastAt - intendedMs);
      if (delay === undefined) break;
      if (closing || (delay > 0 && !(await interruptibleSleep(delay, backoffs)))) {
        cut = true;
        break;
      }
    }
    if (!last) return; // cut before the first attempt: cannot happen (dispatch checks the cap), kept for the type
    const label = labelOf(last.outcome);
    const latencyMs = lastAt - intendedMs;
    const status = last.outcome.kind === 'status' ? last.outcome.status : undefined;
    const final = status !== undefined && isFinal(req.cls, status);
    stats.completed(req.cls, lastAt, label, latencyMs, final && latencyMs <= o.deadlineMs);
    if (cut) abandoned++;
    if (req.cls !== 'charge' || req.key === undefined || req.n === undefined) return;
    sloTotal++;
    if (sloGood(status, latencyMs, o.sloLatencyMs)) sloGoodCount++;
    if (final) planner.noteCreated(req.key);
    outcomes.set(req.n, {
      key: req.key,
      status: label,
      attempts: attempt,
      history,
      ...(codes.some((c) => c !== '') ? { codes } : {}),
      latency_ms: round(latencyMs),
      intended_ms: round(intendedMs),
      replayed: last.replayed,
      ...(last.chargeId !== undefined ? { charge_id: last.chargeId } : {}),
      ...(last.providerChargeId !== undefined ? { provider_charge_id: last.providerChargeId } : {}),
      ...(last.outcome.kind === 'error' ? { error: last.outcome.code } : {}),
      ...(cut ? { abandoned: true } : {}),
    });
  }

  let stoppedBy: LoadResult['stopped_by'] = 'duration';
  const dispatch = (intendedMs: number, actualMs: number): boolean => {
    if (hooks.signal?.aborted) {
      stoppedBy = 'signal';
      return false;
    }
    if (sends >= o.maxRequests) {
      stoppedBy = 'max_requests';
      return false;
    }
    const req = planner.next();
    stats.offered(req.cls, intendedMs);
    const l = Math.max(0, actualMs - intendedMs);
    lag.record(l);
    const sec = Math.floor(intendedMs / 1000);
    if (l > (lagBy.get(sec) ?? -1)) lagBy.set(sec, l);
    if (l > lagMax) {
      lagMax = l;
      lagMaxAt = intendedMs;
    }
    requests.push(execute(req, intendedMs).catch((e: unknown) => void (failure ??= e)));
    return true;
  };

  const steps = profile(o.schedule, o.rate, o.steps, o.durationSeconds * 1000);
  const signalCuts = new Set<() => void>();
  const onAbort = () => signalCuts.forEach((c) => c());
  hooks.signal?.addEventListener('abort', onAbort, { once: true });
  // The pacer's sleeps end at once on the signal, so a long quiet step does not hold a stop.
  const sleep = async (ms: number) => {
    if (ms <= 0 || hooks.signal === undefined) return realSleep(ms);
    if (!hooks.signal.aborted) await interruptibleSleep(ms, signalCuts);
  };
  const ended = await pace(new Arrivals(steps, o.schedule === 'poisson', gaps), t0, { clock, sleep }, dispatch);
  if (ended === 'done' && hooks.signal?.aborted) stoppedBy = 'signal';
  const scheduleMs = ended === 'done' && stoppedBy === 'duration' ? o.durationSeconds * 1000 : since();
  hooks.signal?.removeEventListener('abort', onAbort);

  // Stragglers: at most one deadline (+ grace, so an attempt sent last can still time out on its own).
  let straggle: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(requests),
    new Promise<void>((resolve) => (straggle = setTimeout(resolve, o.deadlineMs + o.graceMs))),
  ]);
  clearTimeout(straggle);
  closing = true;
  client.abortAll();
  backoffs.forEach((cut) => cut());
  await Promise.all(requests);
  await client.close();
  clearTimeout(ticker);
  const elapsedMs = since();
  emit(stats.closeBefore(Math.max(Math.ceil(scheduleMs / 1000), stats.lastSecond + 1)));
  if (failure !== undefined) throw failure;

  const durationSeconds = round(scheduleMs / 1000);
  const cpuEnd = process.cpuUsage(cpu0);
  // Again for every second: a generator behind schedule sends (and lags) after its second was emitted.
  stats.seconds.forEach(annotate);
  const totals = stats.totals();
  const lagSummary = lag.summary();
  return {
    run_id: o.runId,
    seed: o.seed,
    url: o.url,
    started_at: startedAt,
    schedule: o.schedule,
    retry: o.retry,
    deadline_ms: o.deadlineMs,
    duration_seconds: durationSeconds,
    elapsed_seconds: round(elapsedMs / 1000),
    stopped_by: stoppedBy,
    behind_schedule: isBehind(lagSummary.p99, lagSummary.max, o.behindP99Ms, o.behindMaxMs),
    generator_cpu_s: round((cpuEnd.user + cpuEnd.system) / 1e6),
    schedule_lag: {
      p50_ms: lagSummary.p50,
      p99_ms: lagSummary.p99,
      max_ms: lagSummary.max,
      max_at_ms: round(lagMaxAt),
      threshold_p99_ms: o.behindP99Ms,
      threshold_max_ms: o.behindMaxMs,
    },
    totals: {
      ...totals,
      goodput_per_second: durationSeconds > 0 ? round(totals.goodput / durationSeconds) : 0,
      abandoned,
    },
    classes: stats.classes(),
    seconds: [...stats.seconds],
    slo: {
      route: '/charge',
      total: sloTotal,
      good: sloGoodCount,
      duration_seconds: durationSeconds,
      latency_threshold_ms: o.sloLatencyMs,
    },
    outcomes: outcomes.list(),
  };
}
