/**
 * Piscina worker: owns this thread's Postgres pool and downstream clients and
 * executes tasks. All DB and downstream I/O of the gateway happens here, never
 * on the front thread. Deadlines are enforced inside the task (aborting a
 * running piscina task would kill the thread). Breakers, bulkheads and the
 * retry budget are the process-wide ones, opened on shared memory.
 */
import { threadId, workerData } from 'node:worker_threads';
import { systemClock } from '../lib/clock.js';
import { createChargeService, type ChargeServiceSettings } from '../charge/service.js';
import { openProtection, type ProtectionSettings } from '../resilience/protection.js';
import type { SharedLayout } from '../shm/regions.js';
import { SHARED_SLOT } from '../resilience/thread-slots.js';
import { createLogger } from '../runtime/logger.js';
import type { Task } from './tasks.js';
import { Telemetry, type Stage } from '../metrics/telemetry.js';

export interface WorkerData {
  settings: ChargeServiceSettings;
  protection: { layout: SharedLayout; settings: ProtectionSettings } | null;
  telemetry: SharedLayout;
  logLevel: string;
}

const data = workerData as WorkerData;
const log = createLogger(data.logLevel, 'bulwark');
// threadId claims this thread's slot, so what it holds is given back if it dies.
const protection = data.protection
  ? openProtection(
      data.protection.layout,
      data.protection.settings,
      (name, t) =>
        log.warn(
          { breaker: name, from: t.from, to: t.to, failure_rate: t.failureRate, slow_call_rate: t.slowCallRate },
          'breaker transition',
        ),
      threadId,
    )
  : undefined;
if (protection && protection.threadSlot === SHARED_SLOT)
  log.warn(
    { thread_id: threadId },
    "no free thread slot: this worker's bulkhead slots would not be given back if it died",
  );
const telemetry = new Telemetry(data.telemetry);
const observe = (stage: Stage, ms: number) => telemetry.observe(stage, ms);
const service = createChargeService(data.settings, { ...(protection ? { protection } : {}), log, observe });

export default function handle(task: Task): Promise<unknown> {
  if ('sentAt' in task) {
    const now = systemClock.epochMs();
    protection?.queueWait.note(threadId, task.sentAt, now);
    telemetry.observe('queue_wait', now - task.sentAt);
  }
  switch (task.op) {
    case 'charge':
      return service.charge(task.key, task.input, task.deadline, task.fingerprint, task.requestId);
    case 'get':
      return service.getCharge(task.key, task.deadline);
    case 'rate':
      return service.rate(task.from, task.to, task.deadline);
    case 'ping':
      return service.ping();
    case 'loaded':
      return Promise.resolve(true);
    case 'reconcile':
      return service.reconcile();
    case 'reap':
      return service.reap();
    case 'backlog':
      return service.backlog();
    case 'health':
      return service.providerHealthCheck();
  }
}
