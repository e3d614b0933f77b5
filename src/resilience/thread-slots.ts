/**
 * Which thread owns which slot of the shared holdings tables. A worker thread
 * claims a slot when it opens the shared protection state; every bulkhead
 * then keeps, beside its global counts, what each slot holds and how many of
 * its callers wait. When a worker thread dies (terminated, out of memory, an
 * uncaught error) the front thread gives back exactly what that slot held:
 * a dead thread can never release anything itself.
 *
 * Slot 0 is never claimed and never swept: the front thread, tests and any
 * thread that found the table full use it.
 */
import type { Region, RegionSpec } from '../shm/regions.js';

/**
 * Slot 0, plus two per worker at the largest WORKERS (256): a replacement
 * worker may claim a slot before the exit of the one it replaces is handled
 * and that slot freed.
 */
export const THREAD_SLOTS = 513;

export const THREAD_SLOTS_REGION: RegionSpec = { ints: THREAD_SLOTS, floats: 0 };

/** The untracked slot. */
export const SHARED_SLOT = 0;

/**
 * Claim a free slot for `threadId` (a worker's threadId, never 0). Returns
 * SHARED_SLOT when the table is full: that thread's holdings are then not
 * tracked, and the caller should say so.
 */
export function claimThreadSlot(r: Region, threadId: number): number {
  if (threadId <= 0) return SHARED_SLOT;
  for (let i = 1; i < r.i32.length; i++) {
    if (Atomics.compareExchange(r.i32, i, 0, threadId) === 0) return i;
  }
  return SHARED_SLOT;
}

/** The slot `threadId` claimed, or SHARED_SLOT. */
export function slotOf(r: Region, threadId: number): number {
  if (threadId <= 0) return SHARED_SLOT;
  for (let i = 1; i < r.i32.length; i++) if (Atomics.load(r.i32, i) === threadId) return i;
  return SHARED_SLOT;
}

/** Give a dead thread's slot back for a new thread; only after its holdings were released. */
export function freeThreadSlot(r: Region, slot: number, threadId: number): void {
  if (slot !== SHARED_SLOT) Atomics.compareExchange(r.i32, slot, threadId, 0);
}
