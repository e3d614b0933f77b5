/**
 * Piscina worker: owns this thread's Postgres pool and downstream clients and
 * executes tasks. All DB and downstream I/O of the gateway happens here, never
 * on the front thread. Deadlines are enforced inside the task (aborting a
 * running piscina task would kill the thread).
 */
import { workerData } from 'node:worker_threads';
import { createChargeService, type ChargeServiceSettings } from '../charge/service.js';
import type { Task } from './tasks.js';

const service = createChargeService((workerData as { settings: ChargeServiceSettings }).settings);

export default function handle(task: Task): Promise<unknown> {
  switch (task.op) {
    case 'charge':
      return service.charge(task.key, task.input, task.deadline);
    case 'get':
      return service.getCharge(task.key);
    case 'rate':
      return service.rate(task.from, task.to, task.deadline);
    case 'ping':
      return service.ping();
    case 'reconcile':
      return service.reconcile();
    case 'reap':
      return service.reap();
  }
}
