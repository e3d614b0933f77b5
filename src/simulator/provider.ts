/**
 * The simulated payment provider: idempotent by `Idempotency-Key` the way
 * Stripe is. The first request past the fault dice commits the key's outcome
 * (a charge or a decline) synchronously, in one turn of the event loop, so
 * concurrent requests with one key can never create two charges; every later
 * request with that key replays the stored outcome.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../lib/clock.js';
import type { Random } from '../lib/random.js';
import { idempotencyKey, parseChargeRequest, type ChargeRequest } from './charge-request.js';
import { handleControl, type ControlTarget } from './control.js';
import { roll, type Faults } from './faults.js';
import { decodeSegment, errorJson, methodNotAllowed, readBody, sendJson, splitUrl, type Reply } from './http.js';
import { Ledger, type Charge, type KeyEntry } from './ledger.js';
import { FaultPipeline, type PipelineStats } from './pipeline.js';

/** The test token that is always declined, as on Stripe. */
export const DECLINING_SOURCE = 'tok_chargeDeclined';

const MAX_BODY_BYTES = 64 * 1024;
const CHARGE_PREFIX = '/v1/charges/';

const MISSING_KEY = errorJson('invalid_request', 'the Idempotency-Key header is required (1-255 characters)', {
  param: 'Idempotency-Key',
});
const TOO_LARGE = errorJson('invalid_request', `the body is larger than ${MAX_BODY_BYTES} bytes`);
const MISMATCH: Reply = {
  status: 409,
  body: errorJson('idempotency_mismatch', 'this Idempotency-Key was used with a different amount, currency or source'),
};
const NOT_FOUND: Reply = { status: 404, body: errorJson('not_found', 'no charge for this Idempotency-Key') };
const INTERNAL = errorJson('api_error', 'simulator internal error');

export interface ProviderSimOptions {
  readonly random: Random;
  readonly clock: Clock;
}

export interface LedgerEntryView {
  readonly key: string;
  readonly attempts: number;
  readonly created: 0 | 1;
  readonly charge: Charge | null;
  readonly reference: string | null;
}

export class ProviderSim implements ControlTarget {
  readonly service = 'provider' as const;
  readonly ledger = new Ledger();
  readonly #pipeline: FaultPipeline;
  readonly #random: Random;
  readonly #clock: Clock;
  // Random per process so charge ids never collide with a previous run's
  // rows in a persistent gateway database; a counter after it keeps ids cheap.
  readonly #idPrefix = randomBytes(4).toString('hex');
  #idSeq = 0;

  constructor(opts: ProviderSimOptions) {
    this.#random = opts.random;
    this.#clock = opts.clock;
    this.#pipeline = new FaultPipeline(opts.random);
  }

  get faults(): Faults {
    return this.#pipeline.faults;
  }

  setFaults(faults: Faults): void {
    this.#pipeline.setFaults(faults);
  }

  /** The `node:http` request listener. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    this.#route(req, res).catch(() => {
      if (res.headersSent) res.destroy();
      else sendJson(res, 500, INTERNAL);
    });
  };

  stats(): PipelineStats {
    return this.#pipeline.stats();
  }

  close(): void {
    this.#pipeline.close();
  }

  ledgerSummary(): unknown {
    return this.ledger.summary();
  }

  clearLedger(): void {
    this.ledger.clear();
  }

  ledgerEntry(key: string): LedgerEntryView | undefined {
    const e = this.ledger.get(key);
    if (e === undefined) return undefined;
    return {
      key: e.key,
      attempts: e.attempts,
      created: e.charge === null ? 0 : 1,
      charge: e.charge,
      reference: e.reference,
    };
  }

  ledgerByReference(reference: string): { reference: string; charges: Charge[] } {
    return { reference, charges: this.ledger.chargesFor(reference) };
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { path, query } = splitUrl(req);
    if (path.startsWith('/_')) return handleControl(req, res, path, query, this);
    if (path === '/v1/charges') {
      return req.method === 'POST' ? this.#create(req, res) : methodNotAllowed(res, 'POST');
    }
    if (path.startsWith(CHARGE_PREFIX)) {
      return req.method === 'GET' ? this.#retrieve(req, res, path) : methodNotAllowed(res, 'GET');
    }
    sendJson(res, 404, errorJson('not_found', `no route ${path}`));
  }

  async #create(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const key = idempotencyKey(req.headers['idempotency-key']);
    if (key === undefined) return sendJson(res, 400, MISSING_KEY);
    const text = await readBody(req, MAX_BODY_BYTES);
    if (text === undefined) return sendJson(res, 413, TOO_LARGE);
    const parsed = parseChargeRequest(text);
    if (!parsed.ok) return sendJson(res, 400, errorJson('invalid_request', parsed.message, { param: parsed.param }));
    const entry = this.ledger.attempt(key, parsed.request.reference);
    return this.#pipeline.run(req, res, (faults) => this.#createOrReplay(entry, parsed.request, faults));
  }

  /** Synchronous on purpose: the check and the record must share one event-loop turn. */
  #createOrReplay(entry: KeyEntry, r: ChargeRequest, faults: Faults): Reply {
    const stored = entry.charge;
    if (stored !== null) {
      if (stored.amount !== r.amount || stored.currency !== r.currency || entry.source !== r.source) return MISMATCH;
      return { status: stored.status === 'succeeded' ? 201 : 402, body: entry.json!, replayed: true };
    }
    const declined = r.source === DECLINING_SOURCE || roll(this.#random, faults.declineRate);
    const id = `pch_${this.#idPrefix}${(++this.#idSeq).toString(16).padStart(16, '0')}`;
    const created = Math.floor(this.#clock.epochMs() / 1000);
    const charge: Charge = declined
      ? {
          id,
          object: 'charge',
          status: 'declined',
          decline_code: 'card_declined',
          amount: r.amount,
          currency: r.currency,
          reference: r.reference,
          created,
        }
      : {
          id,
          object: 'charge',
          status: 'succeeded',
          amount: r.amount,
          currency: r.currency,
          reference: r.reference,
          created,
        };
    this.ledger.record(entry, charge, r.source);
    return { status: declined ? 402 : 201, body: entry.json! };
  }

  #retrieve(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const key = decodeSegment(path.slice(CHARGE_PREFIX.length));
    return this.#pipeline.run(req, res, () => {
      const json = key === undefined ? null : (this.ledger.get(key)?.json ?? null);
      return json === null ? NOT_FOUND : { status: 200, body: json };
    });
  }
}
