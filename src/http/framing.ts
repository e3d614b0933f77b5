/**
 * Request framing a proxy in front could read otherwise than uWS does.
 *
 * uWS v20.30 frames a body by the first Content-Length when several differ,
 * and decodes any Transfer-Encoding value as chunked (`gzip`, `identity`,
 * `xchunked` alike). A proxy that frames by the last length, or does not
 * take such a value for chunked, sees one request where uWS sees two: the
 * bytes it counts as a body, uWS parses as the next request on the
 * connection (request smuggling). Answering 400 with `Connection: close`
 * does not stop that: uWS parses the rest of what it has already received
 * before it closes, and runs the next request's handler. So a request in
 * doubt is not answered; its connection is closed at once (`res.close()`),
 * which drops the rest unparsed (tested against the uWS build we ship).
 *
 * A length and a coding together are in doubt too: RFC 9112 §6.1 says such
 * a message ought to be handled as an error, since it is how a request is
 * smuggled past a proxy that frames by the other. uWS v20.30 closes it
 * itself before any handler runs (measured, test/contract); the check does
 * not rely on that.
 *
 * A Content-Length that is not plain digits (`-1`, `1e3`, ` 5x`) is in doubt
 * too. uWS runs the handler before it parses the length and then closes the
 * connection itself, dropping whatever the handler wrote (docs/mechanisms.md,
 * "Why JavaScript cannot mitigate"); this check closes it first, so the
 * handler does no work for it.
 */
const DIGITS = /^\d+$/;

export class FramingCheck {
  #length: number | undefined;
  #encodings = 0;
  /** True once a header makes the framing ambiguous. */
  inDoubt = false;

  /** Start over for the next request: the front thread reads one header section at a time, so one check serves them all. */
  reset(): this {
    this.#length = undefined;
    this.#encodings = 0;
    this.inDoubt = false;
    return this;
  }

  /** Feed each header (lower-case name, as uWS gives it). */
  see(name: string, value: string): void {
    if (name === 'content-length') {
      const n = DIGITS.test(value) ? Number(value) : NaN;
      if (Number.isNaN(n) || (this.#length !== undefined && this.#length !== n) || this.#encodings > 0)
        this.inDoubt = true;
      this.#length = n;
    } else if (name === 'transfer-encoding') {
      // Exactly one, exactly `chunked`: the only coding uWS decodes as what it says.
      if (++this.#encodings > 1 || value.trim().toLowerCase() !== 'chunked' || this.#length !== undefined)
        this.inDoubt = true;
    }
  }
}
