/**
 * The messages between the front thread and the worker pool: plain,
 * structured-cloneable values only (Error instances and classes do not
 * survive postMessage).
 */
import type { ChargeInput } from '../charge/input.js';

/** sentAt: epoch ms of dispatch, so the worker can measure the queue wait. */
export type Task =
  | {
      op: 'charge';
      key: string;
      fingerprint: string;
      input: ChargeInput;
      deadline: number;
      sentAt: number;
      requestId: string;
    }
  | { op: 'get'; key: string; deadline: number; sentAt: number }
  | { op: 'rate'; from: string; to: string; deadline: number; sentAt: number }
  | { op: 'ping' }
  /** Answered by a worker that has loaded its modules; nothing else (start-up waits for one). */
  | { op: 'loaded' }
  | { op: 'reconcile' }
  | { op: 'reap' }
  | { op: 'backlog' }
  | { op: 'health' };
