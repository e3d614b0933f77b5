/**
 * What each arrival asks for. The class of an arrival and every charge's key
 * and body come from a seeded random in arrival order, so a seed replays the
 * same keys and payloads (and an audit can name them); which key a read asks
 * for depends on which charges have been answered by then, so reads are the
 * one timing-dependent part.
 *
 * Charge keys are `<runId>-<n>` (n from 1, charges only). A retry resends the
 * same planned request: same key, byte-identical body, so the gateway sees a
 * retry, never a key reused with a different payload (422).
 */
import type { Random } from '../../lib/random.js';
import { REQUEST_CLASSES, type RequestClass } from './types.js';

export interface PlannedRequest {
  readonly cls: RequestClass;
  readonly method: 'GET' | 'POST';
  readonly path: string;
  /** Charges only. */
  readonly key?: string;
  /** Charges only: 1-based charge number. */
  readonly n?: number;
  readonly body?: string;
}

/** `charge=90,read=5,quote=5` → weights. Throws with the offending part. */
export function parseMix(spec: string): Record<RequestClass, number> {
  const mix: Record<RequestClass, number> = { charge: 0, read: 0, quote: 0 };
  for (const part of spec.split(',')) {
    const m = /^\s*([a-z]+)\s*=\s*(\d+(?:\.\d+)?)\s*$/.exec(part);
    if (!m || !(REQUEST_CLASSES as readonly string[]).includes(m[1]!)) {
      throw new RangeError(
        `mix part ${JSON.stringify(part)} is not CLASS=WEIGHT with CLASS one of ${REQUEST_CLASSES.join(', ')}`,
      );
    }
    mix[m[1] as RequestClass] = Number(m[2]);
  }
  if (REQUEST_CLASSES.every((c) => mix[c] === 0)) throw new RangeError('mix needs at least one weight > 0');
  return mix;
}

/**
 * The outcomes a class counts as final (goodput): a charge's 201/402 (a
 * replay is one of them, or 200 from a gateway that replays that way); a
 * read's 200, or 404 when it asked for a key no charge has created yet; a
 * quote's 200 (a stale quote is still an answer).
 */
export function isFinal(cls: RequestClass, status: number): boolean {
  switch (cls) {
    case 'charge':
      return status === 201 || status === 402 || status === 200;
    case 'read':
      return status === 200 || status === 404;
    case 'quote':
      return status === 200;
  }
}

const CURRENCIES = ['USD', 'EUR', 'GBP'] as const;
/** Pairs the simulator's fx table knows; cycled so the TTL cache sees several keys. */
export const QUOTE_PAIRS: readonly (readonly [string, string])[] = [
  ['USD', 'EUR'],
  ['EUR', 'GBP'],
  ['GBP', 'JPY'],
  ['USD', 'CHF'],
  ['EUR', 'SEK'],
  ['USD', 'CAD'],
];

export class RequestPlanner {
  readonly #runId: string;
  readonly #random: Random;
  readonly #readRandom: Random;
  readonly #classes: RequestClass[] = [];
  readonly #cumulative: number[] = [];
  readonly #created: string[] = [];
  #charges = 0;
  #quotes = 0;

  /** `readRandom` is its own stream: reads draw only once keys exist, which is timing-dependent, and must not shift the amounts of later charges. */
  constructor(runId: string, mix: Readonly<Record<RequestClass, number>>, random: Random, readRandom: Random) {
    this.#runId = runId;
    this.#random = random;
    this.#readRandom = readRandom;
    let acc = 0;
    for (const c of REQUEST_CLASSES) {
      if (mix[c] <= 0) continue;
      acc += mix[c];
      this.#classes.push(c);
      this.#cumulative.push(acc);
    }
  }

  /** Charges planned so far. */
  get charges(): number {
    return this.#charges;
  }

  next(): PlannedRequest {
    // One draw per arrival even for a single-class mix keeps the stream aligned across mixes.
    const total = this.#cumulative[this.#cumulative.length - 1]!;
    const x = this.#random() * total;
    let i = 0;
    while (i < this.#cumulative.length - 1 && x >= this.#cumulative[i]!) i++;
    switch (this.#classes[i]!) {
      case 'charge':
        return this.#charge();
      case 'read':
        return this.#read();
      case 'quote':
        return this.#quote();
    }
  }

  /** A charge key got a final answer: reads may ask for it from now on. */
  noteCreated(key: string): void {
    this.#created.push(key);
  }

  #charge(): PlannedRequest {
    const n = ++this.#charges;
    const key = `${this.#runId}-${n}`;
    const amount = 100 + Math.floor(this.#random() * 99_900);
    const currency = CURRENCIES[n % CURRENCIES.length]!;
    const body = JSON.stringify({
      amount,
      currency,
      source: 'tok_visa',
      description: `bulwark load ${this.#runId}`,
      metadata: { run: this.#runId, n: String(n) },
    });
    return { cls: 'charge', method: 'POST', path: '/charge', key, n, body };
  }

  #read(): PlannedRequest {
    const key =
      this.#created.length === 0
        ? `${this.#runId}-none`
        : this.#created[Math.floor(this.#readRandom() * this.#created.length)]!;
    return { cls: 'read', method: 'GET', path: `/charges/${encodeURIComponent(key)}` };
  }

  #quote(): PlannedRequest {
    const [from, to] = QUOTE_PAIRS[this.#quotes++ % QUOTE_PAIRS.length]!;
    return { cls: 'quote', method: 'GET', path: `/quote?from=${from}&to=${to}&amount=1000` };
  }
}
