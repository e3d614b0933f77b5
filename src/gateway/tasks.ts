/**
 * The messages between the front thread and the worker pool: plain,
 * structured-cloneable values only (Error instances and classes do not
 * survive postMessage).
 */
import type { ChargeInput } from '../charge/validate.js';

export type Task =
  | { op: 'charge'; key: string; input: ChargeInput; deadline: number }
  | { op: 'get'; key: string }
  | { op: 'rate'; from: string; to: string; deadline: number }
  | { op: 'ping' }
  | { op: 'reconcile' }
  | { op: 'reap' };
