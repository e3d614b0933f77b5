/**
 * How long tasks wait between dispatch on the front thread and their start
 * in a worker (piscina queue plus the worker's own event-loop backlog): the
 * "expected queue wait" that admission compares with a request's remaining
 * deadline. Each worker keeps an EWMA in its own slot of shared memory (one
 * writer per slot, no lock, no message); the front thread reads the worst
 * fresh slot. A slot not written for `staleMs` is ignored, so an estimate can
 * never keep shedding traffic after the queue it measured has gone.
 */
import type { Region, RegionSpec } from '../shm/regions.js';

const QUEUE_SLOTS = 64;
export const QUEUE_WAIT_REGION: RegionSpec = { ints: 0, floats: 2 * QUEUE_SLOTS };
const WEIGHT = 0.2;

export class QueueWait {
  constructor(
    private readonly region: Region,
    private readonly staleMs = 1000,
  ) {}

  /** Worker side: a task sent at sentAtMs started at nowMs (epoch ms). */
  note(slot: number, sentAtMs: number, nowMs: number): void {
    const f = this.region.f64;
    const i = 2 * (slot % QUEUE_SLOTS);
    const waited = Math.max(0, nowMs - sentAtMs);
    const fresh = nowMs - f[i + 1]! < this.staleMs;
    f[i] = fresh ? f[i]! + (waited - f[i]!) * WEIGHT : waited;
    f[i + 1] = nowMs;
  }

  /** Front side: the expected wait for a task dispatched now. */
  expectedMs(nowMs: number): number {
    const f = this.region.f64;
    let worst = 0;
    for (let i = 0; i < 2 * QUEUE_SLOTS; i += 2) {
      if (nowMs - f[i + 1]! < this.staleMs && f[i]! > worst) worst = f[i]!;
    }
    return worst;
  }
}
