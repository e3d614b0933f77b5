/**
 * GET /quote for both servers, transport-neutral: the query string in, a
 * Reply out. A fresh cached rate answers at once, synchronously (the gateway
 * writes it inside its handler, without a thread hop); otherwise one fetch
 * per pair at a time (single-flight) bounded by the request's deadline. When
 * fx fails or its breaker is open, the last known rate answers, marked
 * stale; with none, 503 fx_unavailable. An unknown pair is the client's
 * mistake: 400 invalid_query.
 *
 * What differs between the servers is injected: where the fetch runs (a
 * worker task in the gateway, an in-process call in the baseline) and the
 * gateway's guards (the fx breaker and admission), which the baseline does
 * not have.
 */
import { problem, type Reply } from '../errors/catalogue.js';
import { problemFrom } from '../charge/request.js';
import type { RateOutcome } from '../downstream/fx-client.js';
import type { Clock } from '../lib/clock.js';
import { parseQuoteQuery, quoteReply, RateCache, type QuoteQuery } from './quote.js';

export interface QuoteGuards {
  /** False while the fx breaker refuses calls: answer from the last known rate without fetching. */
  fxAdmits(): boolean;
  /** Admission of one fetch: null to go ahead (then `done` once it settles), else the refusal to answer. */
  admit(deadlineEpochMs: number): Reply | null;
  /** An admitted fetch settled; `startedMs` is the clock's `now()` when it was admitted. */
  done(startedMs: number): void;
}

export interface QuoteServiceOptions {
  clock: Clock;
  /** How long a fetched rate answers without a new fetch (FX_CACHE_TTL_MS). */
  cacheTtlMs: number;
  /** A quote's deadline after its arrival (REQUEST_TIMEOUT_MS). */
  requestTimeoutMs: number;
  /** Fetch one rate; the outcome is classified, a rejection counts as a failed fetch. */
  fetchRate(from: string, to: string, deadlineEpochMs: number): Promise<RateOutcome>;
  guards?: QuoteGuards;
}

export class QuoteService {
  readonly #rates: RateCache;

  constructor(private readonly o: QuoteServiceOptions) {
    this.#rates = new RateCache(o.cacheTtlMs);
  }

  /** The answer to GET /quote?`query` (the raw query string, without `?`). */
  quote(query: string): Reply | Promise<Reply> {
    const parsed = parseQuoteQuery(query);
    if (!parsed.ok) return problemFrom(parsed);
    const q = parsed.value;
    const { clock, guards } = this.o;
    const pair = `${q.from}-${q.to}`;
    const hit = this.#rates.fresh(pair, clock.now());
    if (hit) return quoteReply(q, hit.rate, hit.asOf, false);
    if (guards && !guards.fxAdmits()) return this.#staleOrUnavailable(q, pair);
    const deadline = clock.epochMs() + this.o.requestTimeoutMs;
    const refused = guards?.admit(deadline);
    if (refused) return refused;
    const started = clock.now();
    return this.#rates
      .singleFlight(pair, () => this.o.fetchRate(q.from, q.to, deadline))
      .finally(() => guards?.done(started))
      .then(
        (r) => {
          if (r.ok) {
            this.#rates.put(pair, r.rate, r.asOf, clock.now());
            return quoteReply(q, r.rate, r.asOf, false);
          }
          if (r.reason === 'not_found') return problem('invalid_query', { field: 'to', detail: `No rate for ${pair}` });
          return this.#staleOrUnavailable(q, pair);
        },
        () => this.#staleOrUnavailable(q, pair),
      );
  }

  #staleOrUnavailable(q: QuoteQuery, pair: string): Reply {
    const last = this.#rates.last(pair);
    return last ? quoteReply(q, last.rate, last.asOf, true) : problem('fx_unavailable');
  }
}
