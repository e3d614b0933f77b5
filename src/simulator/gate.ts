/**
 * The concurrency cap of a saturating downstream: at most `limit` requests
 * are processed at once and the rest wait in an unbounded FIFO queue, so
 * latency grows with load the way a thread-pool-backed provider's does.
 * Requests whose client already gave up still take their turn: a real server
 * rarely notices, and that wasted work is what makes retry storms hurt.
 */
export class Gate {
  #limit = Infinity;
  #active = 0;
  // Array plus head index: O(1) dequeue without shift() copying the backlog.
  #queue: Array<() => void> = [];
  #head = 0;

  /** Resolves undefined when a slot was free (no promise on the fast path). */
  acquire(): Promise<void> | undefined {
    if (this.#active < this.#limit && this.queued === 0) {
      this.#active++;
      return undefined;
    }
    return new Promise<void>((resolve) => {
      this.#queue.push(resolve);
    });
  }

  release(): void {
    this.#active--;
    this.#wake();
  }

  /** Raising or removing the cap (Infinity) lets queued requests in at once. */
  setLimit(limit: number): void {
    this.#limit = limit;
    this.#wake();
  }

  /** Shutdown: lets every waiter in now; each sees the closing flag and releases. */
  drain(): void {
    const waiters = this.#queue.slice(this.#head);
    this.#queue = [];
    this.#head = 0;
    for (const w of waiters) {
      this.#active++;
      w();
    }
  }

  get active(): number {
    return this.#active;
  }

  get queued(): number {
    return this.#queue.length - this.#head;
  }

  get limit(): number {
    return this.#limit;
  }

  #wake(): void {
    while (this.#active < this.#limit && this.#head < this.#queue.length) {
      const next = this.#queue[this.#head]!;
      this.#head++;
      this.#active++;
      next();
    }
    if (this.#head === this.#queue.length) {
      this.#queue.length = 0;
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }
}
