/**
 * Health checks of an open breaker's downstream, scheduled from the front
 * thread and run by a worker (the front thread does no downstream I/O).
 *
 * A check is started every `intervalMs` while the breaker has been open for
 * at least its minimum open period, without waiting for the previous one:
 * during the outage each check runs until its timeout (the slow-call
 * threshold), and a check that must end before the next may start would
 * find the heal up to a timeout late. At most `maxInFlight` run at once,
 * so a hung downstream sees a bounded trickle of lookups. Nothing runs
 * while the breaker is closed, half-open or forced open, nor once its open
 * period is over (it half-opens at the next request; a check could not
 * change anything and would run for as long as no request came).
 */
import type { Breaker } from '../resilience/breaker.js';
import type { Clock } from '../lib/clock.js';

/** However short the interval, no more checks than this at once. */
export const MAX_HEALTH_CHECKS_IN_FLIGHT = 8;

export interface BreakerHealthSettings {
  intervalMs: number;
  /** Checks start once the breaker has been open this long (a passed check cannot end it sooner). */
  minOpenMs: number;
  /** The breaker's open period: past it, no check. */
  openMs: number;
  maxInFlight: number;
}

export class BreakerHealthChecks {
  #cancel: () => void;
  #stopped = false;
  readonly #running = new Set<Promise<void>>();

  constructor(
    private readonly breaker: Pick<Breaker, 'openForMs'>,
    private readonly settings: BreakerHealthSettings,
    /** One health check (a worker task); resolves when it is over. */
    private readonly check: () => Promise<unknown>,
    private readonly clock: Clock,
    private readonly onError: (e: unknown) => void,
  ) {
    this.#cancel = this.#schedule();
  }

  #schedule(): () => void {
    return this.clock.setTimeout(() => {
      if (this.#stopped) return;
      try {
        this.tick();
      } catch (e) {
        this.onError(e); // a check that could not start must not stop the ones after it
      }
      this.#cancel = this.#schedule();
    }, this.settings.intervalMs);
  }

  /** One turn of the timer (public for tests): start a check when one is due. */
  tick(): void {
    if (this.#running.size >= this.settings.maxInFlight) return;
    const openFor = this.breaker.openForMs(this.clock.epochMs());
    if (openFor === null || openFor < this.settings.minOpenMs || openFor >= this.settings.openMs) return;
    const tracked: Promise<void> = this.check()
      .then(
        () => undefined,
        (e: unknown) => this.onError(e),
      )
      .finally(() => this.#running.delete(tracked));
    this.#running.add(tracked);
  }

  get inFlight(): number {
    return this.#running.size;
  }

  /** No new checks; resolves when the running ones are over. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#cancel();
    await Promise.all(this.#running);
  }
}
