/**
 * The fault stages every simulated (non-control) request passes, in one
 * visible order:
 *
 *   1. wait for a concurrency slot (FIFO; held through the latency phase)
 *   2. dice: reset, then hang, then error — clean failures, no work done
 *   3. the work (`decide`): create-or-replay a charge, read a rate
 *   4. latency
 *   5. dice: ambiguous — the work is done, the answer is lost (500, reset, or
 *      the error answer)
 *   6. answer
 *
 * The work happens at step 3, before the delay, because a real provider
 * commits a charge on arrival and only then is slow or loses the response;
 * that is the window a gateway's reconciler must cover. Every die and delay
 * draws from one seeded Random per service, so a seed and a request order
 * replay exactly.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Random } from '../lib/random.js';
import { DEFAULT_ERROR_STATUS, NO_FAULTS, roll, type Faults } from './faults.js';
import { Gate } from './gate.js';
import { errorJson, resetConnection, send, sendJson, type Reply } from './http.js';
import { sampleLatencyMs } from './latency.js';

const AMBIGUOUS_BODY = errorJson(
  'api_error',
  'injected ambiguous failure: the request was processed but the answer was lost',
);

export interface PipelineStats {
  /** Requests holding a concurrency slot. */
  readonly active: number;
  /** Requests waiting for a slot. */
  readonly queued: number;
  /** Requests deliberately never answered whose connection is still open. */
  readonly hung: number;
}

export class FaultPipeline {
  readonly #random: Random;
  readonly #gate = new Gate();
  readonly #hung = new Set<ServerResponse>();
  readonly #errorBodies = new Map<number, string>();
  #faults: Faults = NO_FAULTS;
  #closing = false;

  constructor(random: Random) {
    this.#random = random;
  }

  get faults(): Faults {
    return this.#faults;
  }

  /** Replaces the whole set; a changed concurrency cap applies to queued requests at once. */
  setFaults(faults: Faults): void {
    this.#faults = faults;
    this.#gate.setLimit(faults.concurrency ?? Infinity);
  }

  async run(req: IncomingMessage, res: ServerResponse, decide: (faults: Faults) => Reply): Promise<void> {
    const wait = this.#gate.acquire();
    if (wait !== undefined) await wait;
    try {
      if (this.#closing) return;
      // One snapshot per request: a PUT /_faults mid-delay does not mix two sets.
      const f = this.#faults;
      const random = this.#random;
      if (roll(random, f.resetRate)) return resetConnection(req);
      // A hung request gives its slot back: "hang" models a lost request, not
      // a stuck worker, and holding the slot forever would wedge the cap.
      if (f.hang === true || roll(random, f.hangRate)) return this.#hold(res);
      const clean = roll(random, f.errorRate);
      const reply = clean ? this.#errorReply(f) : decide(f);
      if (f.latencyMs !== undefined) {
        const ms = sampleLatencyMs(f.latencyMs, random);
        if (ms > 0) await sleep(ms);
        if (this.#closing) return;
      }
      if (!clean && roll(random, f.ambiguousRate)) {
        if (f.ambiguousMode === 'reset') resetConnection(req);
        else if (f.ambiguousMode === 'error') send(res, this.#errorReply(f));
        else sendJson(res, 500, AMBIGUOUS_BODY);
        return;
      }
      send(res, reply);
    } finally {
      this.#gate.release();
    }
  }

  stats(): PipelineStats {
    return { active: this.#gate.active, queued: this.#gate.queued, hung: this.#hung.size };
  }

  /** Stops all work; the server's own close destroys the sockets (hung ones included). */
  close(): void {
    this.#closing = true;
    this.#gate.drain();
    this.#hung.clear();
  }

  #hold(res: ServerResponse): void {
    if (this.#closing) return;
    this.#hung.add(res);
    res.once('close', () => this.#hung.delete(res));
  }

  #errorReply(f: Faults): Reply {
    const status = f.errorStatus ?? DEFAULT_ERROR_STATUS;
    if (f.errorBody !== undefined || f.errorContentType !== undefined) {
      return {
        status,
        body: f.errorBody ?? errorJson('simulated_fault', `injected ${status}`),
        ...(f.errorContentType !== undefined ? { contentType: f.errorContentType } : {}),
      };
    }
    let body = this.#errorBodies.get(status);
    if (body === undefined) {
      body = errorJson('simulated_fault', `injected ${status}: the request was not processed`);
      this.#errorBodies.set(status, body);
    }
    return { status, body };
  }
}

/** Unref'd so a pending delay never keeps a closing process alive. */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => {
    setTimeout(resolve, ms).unref();
  });
}
