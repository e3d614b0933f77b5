/**
 * What the front thread does when a worker thread dies (terminated, out of
 * memory, an uncaught error): give back every bulkhead slot it held and drop
 * its waiters (shared memory it can no longer release itself), and say so
 * once in the log. Piscina itself rejects the dead worker's tasks (the
 * gateway answers them 504) and starts a replacement, as long as the worker
 * had finished starting.
 *
 * The sweep runs on the thread's own 'exit' event, the only moment it is
 * certain the thread will never touch the counts again; its threadId is read
 * while it is alive (it reads -1 once the thread has stopped).
 */
import type { Worker } from 'node:worker_threads';
import type { Logger } from '../runtime/logger.js';
import { reclaimThread, type Protection, type ThreadHoldings } from '../resilience/protection.js';

/** The part of a piscina pool this needs. */
export interface WorkerPool {
  readonly threads: Worker[];
  on(event: 'workerCreate' | 'error', listener: (arg: unknown) => void): unknown;
}

export interface WorkerExitOptions {
  /** True once the pool is shutting down: exits are expected then, logged at info. */
  closing?: () => boolean;
  /** Called after each sweep (tests, metrics). */
  onReclaimed?: (threadId: number, exitCode: number, held: ThreadHoldings | null) => void;
}

export function reclaimOnWorkerExit(
  pool: WorkerPool,
  protection: Protection,
  log: Logger,
  o: WorkerExitOptions = {},
): void {
  const watched = new WeakSet<Worker>();
  const watchAll = (): void => {
    for (const w of pool.threads) {
      if (watched.has(w) || w.threadId < 0) continue;
      watched.add(w);
      const threadId = w.threadId;
      w.once('exit', (code: number) => {
        const held = reclaimThread(protection, threadId);
        const fields = { thread_id: threadId, exit_code: code, released: held };
        if (o.closing?.()) log.info(fields, 'worker thread stopped');
        else log.error(fields, 'worker thread died; its bulkhead slots and waiters were released, piscina replaces it');
        o.onReclaimed?.(threadId, code, held);
        // Piscina starts the replacement in its own exit handler, which ran first.
        watchAll();
      });
    }
  };
  // The first workers exist once the pool is constructed; later ones are
  // picked up when they report ready, or at the exit that replaced them.
  watchAll();
  pool.on('workerCreate', watchAll);
  // A worker that fails while idle makes the pool emit 'error': unhandled,
  // that would take the whole process down with it.
  pool.on('error', (err) => log.error({ err }, 'worker pool error'));
}
