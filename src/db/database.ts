/**
 * Every statement of a charge service runs through `Database.run`, which
 * gives porsager/postgres what it lacks (no acquire or queue timeout, and
 * statement_timeout is enforced by a server that a partitioned network never
 * lets answer):
 *
 * - A slot of the global DB bound (the gateway's shared bulkhead, counted
 *   across worker threads), waited for at most the acquire timeout and never
 *   past the caller's deadline.
 * - A client-side bound: when the deadline passes, the caller gets
 *   DeadlineError at once, the slot is given back at once, and the phase's
 *   statements are cancelled (a queued one is dropped, a running one gets a
 *   CancelRequest). A statement may still commit after that: callers treat
 *   DeadlineError as "may have happened" (504), never as "did not happen".
 * - Recovery from a silent partition: a healthy server ends a cancelled
 *   statement within milliseconds. One that has not ended `cancelGraceMs`
 *   after its cancel is on a connection that stopped answering (packets
 *   dropped, no reset: TCP would take minutes to notice), so the whole pool is
 *   replaced: its sockets are destroyed and later statements get fresh
 *   connections, which work as soon as the network is back. The pool goes,
 *   not one connection, because postgres.js exposes no handle on the
 *   connection a query runs on, and a dead path usually kills them all.
 *   Statements still in flight on a replaced pool end with DeadlineError
 *   (they may have committed).
 */
import type { Sql } from 'postgres';
import type { Clock } from '../lib/clock.js';
import { DeadlineError } from '../lib/deadline.js';

/** No DB slot freed within the acquire timeout: nothing was sent. */
export class DbBusyError extends Error {
  override readonly name = 'DbBusyError';
}

/** A global bound on statements in flight (the Bulkhead class fits). */
export interface SlotGate {
  acquire(timeoutMs: number): Promise<{ ok: boolean; waitedMs: number }>;
  release(): void;
}

export interface DatabaseEvents {
  acquireWait?(ms: number): void;
  /** No slot within the acquire timeout. */
  busy?(): void;
  /** A phase outlived its deadline and was abandoned. */
  timeout?(): void;
  /** A pool was replaced after a cancelled statement never ended. */
  retired?(): void;
}

export interface DatabaseOptions {
  clock: Clock;
  /** Opens a pool; called again to replace one whose connection stopped answering. */
  open: () => Sql;
  /** The global DB bound; unset: the pool's own size is the only bound (the baseline). */
  slots?: SlotGate;
  /** Longest wait for a slot, in ms (the deadline caps it further). */
  acquireTimeoutMs: number;
  /** How long a cancelled statement may take to end before its pool is replaced, in ms. */
  cancelGraceMs: number;
  on?: DatabaseEvents;
}

export interface DatabaseStats {
  /** Phases abandoned at their deadline. */
  timeouts: number;
  /** Pools replaced because a cancelled statement never ended. */
  retired: number;
}

/** A postgres.js query, as far as cancelling goes. */
interface Cancellable {
  cancel(): unknown;
  canceller?: ((q: unknown) => Promise<unknown>) | null;
}

function isCancellable(q: unknown): q is Cancellable {
  return typeof q === 'object' && q !== null && typeof (q as Cancellable).cancel === 'function';
}

/**
 * Cancel without an unhandled rejection: postgres.js's `query.cancel()`
 * drops the promise of its canceller, which rejects when the CancelRequest
 * cannot be delivered (the server unreachable), and an unhandled rejection
 * ends the process. Calling the canceller ourselves keeps that promise.
 */
function cancelQuietly(q: Cancellable): void {
  const canceller = q.canceller;
  if (typeof canceller === 'function') {
    q.canceller = null;
    void Promise.resolve()
      .then(() => canceller(q))
      .catch(() => {});
    return;
  }
  try {
    void Promise.resolve(q.cancel()).catch(() => {});
  } catch {
    // a query that cannot be cancelled is bounded by the pool replacement
  }
}

function isDestroyed(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'CONNECTION_DESTROYED';
}

export class Database {
  #sql: Sql;
  readonly #replaced = new WeakSet<Sql>();
  #closed = false;
  #timeouts = 0;
  #retired = 0;
  #lastAnswer = -Infinity;

  constructor(private readonly options: DatabaseOptions) {
    this.#sql = options.open();
  }

  /** The current pool (migrations, tests). Statements of the services go through run(). */
  get sql(): Sql {
    return this.#sql;
  }

  stats(): DatabaseStats {
    return { timeouts: this.#timeouts, retired: this.#retired };
  }

  /** True when some phase succeeded within the last `ms` (the server answers, even if no slot is free now). */
  answeredWithin(ms: number): boolean {
    return this.options.clock.now() - this.#lastAnswer <= ms;
  }

  /**
   * Run `phase` within a DB slot and the deadline. `phase` must issue its
   * statements through the `sql` it is given (a view of the pool that
   * tracks them for cancelling, and refuses new ones once the phase expired).
   * Rejects with DbBusyError (no slot, nothing sent), DeadlineError (the
   * deadline passed: the phase may have taken effect), or the phase's error.
   */
  async run<T>(deadlineEpochMs: number, phase: (sql: Sql) => Promise<T>): Promise<T> {
    const { clock, slots } = this.options;
    let left = deadlineEpochMs - clock.epochMs();
    if (left <= 0) throw new DeadlineError();
    if (slots) {
      const slot = await slots.acquire(Math.min(this.options.acquireTimeoutMs, left));
      this.options.on?.acquireWait?.(slot.waitedMs);
      if (!slot.ok) {
        this.options.on?.busy?.();
        throw new DbBusyError();
      }
      left = deadlineEpochMs - clock.epochMs();
      if (left <= 0) {
        slots.release();
        throw new DeadlineError();
      }
    }
    return this.#bounded(left, phase);
  }

  #bounded<T>(leftMs: number, phase: (sql: Sql) => Promise<T>): Promise<T> {
    const { clock, slots } = this.options;
    const pool = this.#sql;
    const queries: Cancellable[] = [];
    let expired = false;
    const scoped = new Proxy(pool, {
      apply: (target, self, args: unknown[]) => {
        if (expired) throw new DeadlineError('statement refused: its phase ran out of time');
        const q: unknown = Reflect.apply(target, self, args);
        if (isCancellable(q)) queries.push(q);
        return q;
      },
      get: (target, prop) => {
        if (prop !== 'unsafe') return Reflect.get(target, prop, target);
        return (...args: Parameters<Sql['unsafe']>) => {
          if (expired) throw new DeadlineError('statement refused: its phase ran out of time');
          const q = target.unsafe(...args);
          queries.push(q as unknown as Cancellable);
          return q;
        };
      },
    });
    let work: Promise<T>;
    try {
      work = phase(scoped);
    } catch (e) {
      work = Promise.reject(e);
    }
    let workEnded = false;
    return new Promise<T>((resolve, reject) => {
      let answered = false;
      let disarm = () => {};
      // Exactly once: the slot goes back when the caller gets its answer.
      const answer = (): boolean => {
        if (answered) return false;
        answered = true;
        disarm();
        slots?.release();
        return true;
      };
      if (Number.isFinite(leftMs)) {
        disarm = clock.setTimeout(() => {
          if (!answer()) return;
          expired = true;
          this.#timeouts++;
          this.options.on?.timeout?.();
          for (const q of queries) cancelQuietly(q);
          reject(new DeadlineError());
          clock.setTimeout(() => {
            if (!workEnded) this.#retire(pool);
          }, this.options.cancelGraceMs);
        }, leftMs);
      }
      work.then(
        (v) => {
          workEnded = true;
          this.#lastAnswer = clock.now();
          if (answer()) resolve(v);
        },
        (e: unknown) => {
          workEnded = true;
          if (!answer()) return;
          // Destroyed by our own replacement of the pool: it may have committed.
          reject(
            isDestroyed(e) && this.#replaced.has(pool)
              ? new DeadlineError('the connection was replaced; the statement may have run')
              : e,
          );
        },
      );
    });
  }

  /** Replace `pool` (once) with a fresh one; destroy its sockets without waiting for a network that does not answer. */
  #retire(pool: Sql): void {
    if (this.#closed || pool !== this.#sql) return;
    this.#replaced.add(pool);
    this.#sql = this.options.open();
    this.#retired++;
    this.options.on?.retired?.();
    pool.end({ timeout: 0 }).catch(() => {});
  }

  /** Close the pool: in-flight statements get `timeoutS` to finish. */
  async close(timeoutS = 2): Promise<void> {
    this.#closed = true;
    await this.#sql.end({ timeout: timeoutS });
  }
}
