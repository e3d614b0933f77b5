/**
 * Open requests per client address, against a cap (MAX_REQUESTS_PER_ADDRESS;
 * 0 = off): one address cannot take every request MAX_CONNECTIONS allows and
 * starve the others. Off by default because behind a load balancer or a NAT
 * every client has the same remote address, and the cap would then be a
 * second, smaller MAX_CONNECTIONS for everyone.
 *
 * Count first, decide after: every request is counted when it arrives and
 * released exactly once when it ends (answered, refused, aborted or timed
 * out), so refusals need no bookkeeping of their own and an address leaves
 * the table when its last request ends. Shared by the gateway and the
 * baseline; transport-neutral (an address is whatever text the server reads).
 */
export class AddressCap {
  readonly #open = new Map<string, number>();
  /** Requests refused because their address had `limit` requests open (counted by the server that sent the refusal). */
  refusals = 0;

  /** @param limit open requests allowed per address; 0 = no cap (take() always admits and counts nothing). */
  constructor(readonly limit: number) {}

  get enabled(): boolean {
    return this.limit > 0;
  }

  /**
   * Count a request from `address` as open. False when that makes the
   * address exceed the limit (the caller refuses it); either way the caller
   * must release() it when the request ends.
   */
  take(address: string): boolean {
    const n = (this.#open.get(address) ?? 0) + 1;
    this.#open.set(address, n);
    return n <= this.limit;
  }

  /** The request counted by take() ended. */
  release(address: string): void {
    const n = this.#open.get(address);
    if (n === undefined) return;
    if (n <= 1) this.#open.delete(address);
    else this.#open.set(address, n - 1);
  }

  /** Requests open from one address. */
  openFrom(address: string): number {
    return this.#open.get(address) ?? 0;
  }

  /** Addresses with at least one open request (0 once every request has ended: nothing leaks). */
  get addresses(): number {
    return this.#open.size;
  }
}
