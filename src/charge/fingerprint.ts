/**
 * The fingerprint of a charge request: a digest of its canonical form, so a
 * reused Idempotency-Key with a different payload is told apart (422) from a
 * retry of the same payload (replay). Canonical = validated and normalized
 * fields in a fixed order, metadata keys sorted: key order and currency case
 * in the client's JSON do not change it.
 */
import { createHash } from 'node:crypto';
import type { ChargeInput } from './input.js';

function canonicalCharge(input: ChargeInput): string {
  const metadata = input.metadata
    ? Object.fromEntries(
        Object.keys(input.metadata)
          .sort()
          .map((k) => [k, input.metadata![k]]),
      )
    : null;
  return JSON.stringify([input.amount, input.currency, input.source, input.description ?? null, metadata]);
}

export function fingerprint(input: ChargeInput): string {
  return createHash('sha256').update(canonicalCharge(input)).digest('base64url');
}
