/**
 * What a server's probes and its shutdown read, the same for the gateway and
 * the baseline: the draining flag, the requests in flight and the work they
 * started that may outlive them (the gateway's worker tasks), with waiters
 * for "idle", and a cached database check. The routes only read it; the
 * entry point drives it (the ping timer, SIGTERM), so a server can be tested
 * with a state set by hand.
 *
 * readiness() is the one /ready body of both servers; `workers_up` asks the
 * server (the baseline has no worker threads: always true).
 */
import { DB_CHECK_FRESH_MS, readinessReply } from '../http/contract.js';
import type { Reply } from '../errors/catalogue.js';
import { systemClock, type Clock } from '../lib/clock.js';

export class ServiceState {
  draining = false;
  /** False from SIGTERM on: /ready fails while requests are still served (the pre-drain delay). */
  ready = true;
  /** Requests open: headers in, not yet answered or aborted. */
  inFlight = 0;
  /** Work started for a request that can outlive its exchange (the client hung up): the drain waits for it too. */
  tasks = 0;
  #idleWaiters: (() => void)[] = [];
  #dbOk = false;
  #dbCheckedAt = -Infinity;

  constructor(
    private readonly clock: Clock = systemClock,
    private readonly workersUp: () => boolean = () => true,
  ) {}

  /** A request started; call the returned function once when it ends (answered or aborted). */
  begin(): () => void {
    this.inFlight++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.inFlight--;
      this.#maybeIdle();
    };
  }

  /** Count `work` as in flight until it settles. */
  task<T>(work: Promise<T>): Promise<T> {
    this.tasks++;
    return work.finally(() => {
      this.tasks--;
      this.#maybeIdle();
    });
  }

  #maybeIdle(): void {
    if (this.inFlight === 0 && this.tasks === 0 && this.#idleWaiters.length > 0) {
      for (const w of this.#idleWaiters.splice(0)) w();
    }
  }

  /** Resolves when no request or task is in flight, or after timeoutMs; true if idle. */
  whenIdle(timeoutMs: number): Promise<boolean> {
    if (this.inFlight === 0 && this.tasks === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const cancel = this.clock.setTimeout(() => resolve(false), timeoutMs);
      this.#idleWaiters.push(() => {
        cancel();
        resolve(true);
      });
    });
  }

  /** Refresh the cached DB check; driven by a 1 s timer, never by /ready itself. */
  async refreshDbCheck(ping: () => Promise<unknown>): Promise<void> {
    try {
      this.#dbOk = (await ping()) === true;
    } catch {
      this.#dbOk = false;
    }
    this.#dbCheckedAt = this.clock.now();
  }

  readiness(): Reply {
    const dbFresh = this.clock.now() - this.#dbCheckedAt < DB_CHECK_FRESH_MS;
    return readinessReply({
      draining: this.draining || !this.ready,
      workers_up: this.workersUp(),
      db_reachable: this.#dbOk && dbFresh,
    });
  }
}
