/**
 * The simulated fx-rates service: a small fixed table of USD-based rates,
 * crossed via USD, with a slow seeded drift so a cache that serves a stale
 * rate can be told apart from a fresh one. Drift is a function of the clock,
 * not of the fault dice, so reading rates never shifts the fault sequence.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../lib/clock.js';
import { seededRandom, type Random } from '../lib/random.js';
import { handleControl, type ControlTarget } from './control.js';
import type { Faults } from './faults.js';
import { errorJson, methodNotAllowed, sendJson, splitUrl, type Reply } from './http.js';
import { FaultPipeline, type PipelineStats } from './pipeline.js';

/** Units of each currency per US dollar: round figures, close enough to real ones. */
export const USD_RATES: Readonly<Record<string, number>> = Object.freeze({
  USD: 1,
  EUR: 0.92,
  GBP: 0.79,
  JPY: 151.5,
  CHF: 0.88,
  CAD: 1.36,
  AUD: 1.52,
  SEK: 10.6,
  NOK: 10.8,
  DKK: 6.87,
});

const RATES_PREFIX = '/v1/rates/';
const NOT_FOUND: Reply = {
  status: 404,
  body: errorJson('not_found', 'unknown currency pair; use FROM-TO with ISO 4217 codes, e.g. USD-EUR'),
};
const INTERNAL = errorJson('api_error', 'simulator internal error');

export interface FxSimOptions {
  /** Fault dice and latency. */
  readonly random: Random;
  readonly clock: Clock;
  /** Seeds the drift phases. */
  readonly seed: number;
  /** Peak relative drift of each currency against USD (0 = fixed rates). Default 0.002. */
  readonly driftFraction?: number;
  /** Period of the drift cycle in ms. Default 600000 (10 min). */
  readonly driftPeriodMs?: number;
}

export class FxSim implements ControlTarget {
  readonly service = 'fx' as const;
  readonly #pipeline: FaultPipeline;
  readonly #clock: Clock;
  readonly #drift: number;
  readonly #omega: number;
  readonly #phases = new Map<string, number>();
  #requests = 0;

  constructor(opts: FxSimOptions) {
    this.#clock = opts.clock;
    this.#pipeline = new FaultPipeline(opts.random);
    this.#drift = opts.driftFraction ?? 0.002;
    this.#omega = (2 * Math.PI) / (opts.driftPeriodMs ?? 600_000);
    // Its own generator: phases are fixed at start and independent of fault dice.
    const phaseRandom = seededRandom(opts.seed ^ 0x5f3759df);
    for (const code of Object.keys(USD_RATES)) this.#phases.set(code, code === 'USD' ? 0 : 2 * Math.PI * phaseRandom());
  }

  get faults(): Faults {
    return this.#pipeline.faults;
  }

  setFaults(faults: Faults): void {
    this.#pipeline.setFaults(faults);
  }

  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    this.#route(req, res).catch(() => {
      if (res.headersSent) res.destroy();
      else sendJson(res, 500, INTERNAL);
    });
  };

  /** Units of `to` per unit of `from` at the clock's current time; undefined for an unknown code. */
  rate(from: string, to: string): number | undefined {
    const f = USD_RATES[from];
    const t = USD_RATES[to];
    if (f === undefined || t === undefined) return undefined;
    if (from === to) return 1;
    const now = this.#clock.epochMs();
    const rate = (t * this.#factor(to, now)) / (f * this.#factor(from, now));
    return Number(rate.toPrecision(6));
  }

  stats(): PipelineStats {
    return this.#pipeline.stats();
  }

  close(): void {
    this.#pipeline.close();
  }

  ledgerSummary(): { requests: number } {
    return { requests: this.#requests };
  }

  clearLedger(): void {
    this.#requests = 0;
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { path, query } = splitUrl(req);
    if (path.startsWith('/_')) return handleControl(req, res, path, query, this);
    if (!path.startsWith(RATES_PREFIX)) return sendJson(res, 404, errorJson('not_found', `no route ${path}`));
    if (req.method !== 'GET') return methodNotAllowed(res, 'GET');
    this.#requests++;
    const pair = path.slice(RATES_PREFIX.length).toUpperCase();
    return this.#pipeline.run(req, res, () => this.#quote(pair));
  }

  #quote(pair: string): Reply {
    if (pair.length !== 7 || pair.charCodeAt(3) !== 45 /* '-' */) return NOT_FOUND;
    const rate = this.rate(pair.slice(0, 3), pair.slice(4));
    if (rate === undefined) return NOT_FOUND;
    return { status: 200, body: JSON.stringify({ pair, rate, as_of: new Date(this.#clock.epochMs()).toISOString() }) };
  }

  #factor(code: string, nowMs: number): number {
    if (this.#drift === 0) return 1;
    return 1 + this.#drift * Math.sin(this.#omega * nowMs + this.#phases.get(code)!);
  }
}
