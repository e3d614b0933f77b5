/**
 * The provider's book of record, and the lab's ground truth for the audit:
 * per provider key, how often it was tried and whether a charge exists; per
 * reference (the client's idempotency key), how many distinct charges exist.
 * A reference with two charges is the bug the gateway must never have: one
 * client key charged twice under two provider keys.
 */

export type ChargeStatus = 'succeeded' | 'declined';

export interface Charge {
  readonly id: string;
  readonly object: 'charge';
  readonly status: ChargeStatus;
  readonly decline_code?: 'card_declined';
  readonly amount: number;
  readonly currency: string;
  readonly reference: string | null;
  /** Epoch seconds. */
  readonly created: number;
}

export interface KeyEntry {
  readonly key: string;
  attempts: number;
  charge: Charge | null;
  /** The charge serialised once, so replays and reads send a stored string. */
  json: string | null;
  /** What the charge was created with: a later request must match it. */
  source: string | null;
  reference: string | null;
}

export interface Duplicate {
  readonly reference: string;
  readonly charges: number;
  readonly keys: readonly string[];
}

export interface LedgerSummary {
  readonly attempts: number;
  readonly created: number;
  readonly declined: number;
  /** Distinct provider keys seen. */
  readonly keys: number;
  readonly duplicates: readonly Duplicate[];
}

export class Ledger {
  #byKey = new Map<string, KeyEntry>();
  /** reference → provider keys that created a charge for it. */
  #byReference = new Map<string, string[]>();
  // Kept incrementally so GET /_ledger stays cheap after a million charges.
  #duplicated = new Set<string>();
  #attempts = 0;
  #created = 0;
  #declined = 0;

  /** Counts a request that reached the handler; creates the key's entry on first sight. */
  attempt(key: string, reference: string | null): KeyEntry {
    this.#attempts++;
    let entry = this.#byKey.get(key);
    if (entry === undefined) {
      entry = { key, attempts: 0, charge: null, json: null, source: null, reference };
      this.#byKey.set(key, entry);
    }
    entry.attempts++;
    return entry;
  }

  /** Records the key's one charge. The caller checked `entry.charge === null` synchronously. */
  record(entry: KeyEntry, charge: Charge, source: string): void {
    if (entry.charge !== null) throw new Error(`provider key ${entry.key} already has charge ${entry.charge.id}`);
    entry.charge = charge;
    entry.json = JSON.stringify(charge);
    entry.source = source;
    entry.reference = charge.reference;
    this.#created++;
    if (charge.status === 'declined') this.#declined++;
    if (charge.reference === null) return;
    const keys = this.#byReference.get(charge.reference);
    if (keys === undefined) {
      this.#byReference.set(charge.reference, [entry.key]);
    } else {
      keys.push(entry.key);
      this.#duplicated.add(charge.reference);
    }
  }

  get(key: string): KeyEntry | undefined {
    return this.#byKey.get(key);
  }

  chargesFor(reference: string): Charge[] {
    const keys = this.#byReference.get(reference) ?? [];
    return keys.map((k) => this.#byKey.get(k)!.charge!);
  }

  summary(): LedgerSummary {
    const duplicates: Duplicate[] = [];
    for (const reference of this.#duplicated) {
      const keys = this.#byReference.get(reference)!;
      duplicates.push({ reference, charges: keys.length, keys: [...keys] });
    }
    return {
      attempts: this.#attempts,
      created: this.#created,
      declined: this.#declined,
      keys: this.#byKey.size,
      duplicates,
    };
  }

  clear(): void {
    this.#byKey = new Map();
    this.#byReference = new Map();
    this.#duplicated = new Set();
    this.#attempts = 0;
    this.#created = 0;
    this.#declined = 0;
  }
}
