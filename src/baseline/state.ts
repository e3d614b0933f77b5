/**
 * What the baseline's probes and its shutdown read: the draining flag, the
 * requests in flight (with waiters for "idle") and a cached database check.
 * The routes only read it; the command drives it (the ping timer, SIGTERM),
 * so the app can be tested with a state set by hand.
 *
 * readiness() answers the same body as the gateway's `Gateway.readiness()`;
 * `workers_up` is always true because the baseline has no worker threads.
 */
import { DB_CHECK_FRESH_MS, readinessReply } from '../runtime/contract.js';
import type { Reply } from '../errors/catalogue.js';
import { systemClock, type Clock } from '../lib/clock.js';

export class ServiceState {
  draining = false;
  inFlight = 0;
  #idleWaiters: (() => void)[] = [];
  #dbOk = false;
  #dbCheckedAt = -Infinity;

  constructor(private readonly clock: Clock = systemClock) {}

  /** A request started; call the returned function once when it ends (answered or aborted). */
  begin(): () => void {
    this.inFlight++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.inFlight--;
      if (this.inFlight === 0 && this.#idleWaiters.length > 0) {
        for (const w of this.#idleWaiters.splice(0)) w();
      }
    };
  }

  /** Resolves when nothing is in flight, or after timeoutMs; true if idle. */
  whenIdle(timeoutMs: number): Promise<boolean> {
    if (this.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.#idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Refresh the cached DB check; driven by a 1 s timer, never by /ready itself. */
  async refreshDbCheck(ping: () => Promise<boolean>): Promise<void> {
    try {
      this.#dbOk = (await ping()) === true;
    } catch {
      this.#dbOk = false;
    }
    this.#dbCheckedAt = this.clock.now();
  }

  readiness(): Reply {
    const dbFresh = this.clock.now() - this.#dbCheckedAt < DB_CHECK_FRESH_MS;
    return readinessReply({ draining: this.draining, workers_up: true, db_reachable: this.#dbOk && dbFresh });
  }
}
