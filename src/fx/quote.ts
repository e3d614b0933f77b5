/**
 * GET /quote: parse the query, keep a TTL cache of rates with the last known
 * rate kept past its TTL as the stale fallback, and shape the answer. Pure and
 * clock-driven; the caller does the fetching (a worker in the gateway, the
 * handler itself in the baseline) and uses `singleFlight` so a burst of misses
 * for one pair makes one downstream call.
 */
import { json, type Reply } from '../errors/catalogue.js';
import { LIMITS, type Invalid, type Valid } from '../charge/input.js';
import { isCurrency } from '../charge/validate.js';

export interface QuoteQuery {
  from: string;
  to: string;
  amount: number;
}

export function parseQuoteQuery(query: string): Valid<QuoteQuery> | Invalid {
  const params = new URLSearchParams(query);
  const values: Partial<Record<'from' | 'to', string>> = {};
  for (const field of ['from', 'to'] as const) {
    const raw = params.get(field);
    if (raw === null || !/^[A-Za-z]{3}$/.test(raw) || !isCurrency(raw.toUpperCase())) {
      return { ok: false, code: 'invalid_query', field, detail: `${field} must be a three-letter ISO-4217 code` };
    }
    values[field] = raw.toUpperCase();
  }
  const rawAmount = params.get('amount');
  const amount = rawAmount !== null && /^\d{1,9}$/.test(rawAmount) ? Number(rawAmount) : NaN;
  if (!(amount >= LIMITS.amountMin && amount <= LIMITS.amountMax)) {
    return {
      ok: false,
      code: 'invalid_query',
      field: 'amount',
      detail: `amount must be an integer from ${LIMITS.amountMin} to ${LIMITS.amountMax} minor units`,
    };
  }
  return { ok: true, value: { from: values.from!, to: values.to!, amount } };
}

const digitsCache = new Map<string, number>();
/** Minor-unit digits of a currency (2 for USD, 0 for JPY), from Intl. */
export function minorDigits(currency: string): number {
  let d = digitsCache.get(currency);
  if (d === undefined) {
    d = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
    digitsCache.set(currency, d);
  }
  return d;
}

export function convert(amount: number, from: string, to: string, rate: number): number {
  return Math.round(amount * rate * 10 ** (minorDigits(to) - minorDigits(from)));
}

export function quoteReply(q: QuoteQuery, rate: number, asOf: string, stale: boolean): Reply {
  return json(200, {
    from: q.from,
    to: q.to,
    amount: q.amount,
    rate,
    converted_amount: convert(q.amount, q.from, q.to, rate),
    as_of: asOf,
    stale,
  });
}

export interface CachedRate {
  rate: number;
  asOf: string;
  fetchedAtMs: number;
}

export class RateCache {
  readonly #entries = new Map<string, CachedRate>();
  readonly #inflight = new Map<string, Promise<unknown>>();
  constructor(private readonly ttlMs: number) {}

  /** A fresh rate, or undefined. */
  fresh(pair: string, nowMs: number): CachedRate | undefined {
    const e = this.#entries.get(pair);
    return e && nowMs - e.fetchedAtMs < this.ttlMs ? e : undefined;
  }

  /** The last known rate, however old: the fallback when fx fails. */
  last(pair: string): CachedRate | undefined {
    return this.#entries.get(pair);
  }

  put(pair: string, rate: number, asOf: string, nowMs: number): void {
    this.#entries.set(pair, { rate, asOf, fetchedAtMs: nowMs });
  }

  /** Share one in-flight fetch per pair among concurrent callers. */
  singleFlight<T>(pair: string, fetch: () => Promise<T>): Promise<T> {
    const running = this.#inflight.get(pair) as Promise<T> | undefined;
    if (running) return running;
    const p = fetch().finally(() => this.#inflight.delete(pair));
    this.#inflight.set(pair, p);
    return p;
  }
}
