/**
 * The provider idempotency key of a charge, reproducible from the request
 * itself: HMAC-SHA256 over the client's Idempotency-Key and the request
 * fingerprint. Should our row be lost (a restore, an operator's DELETE, a
 * database that acknowledged a commit it did not keep), the client's retry
 * claims a fresh row yet reaches the provider with the same key, and the
 * provider's own idempotency returns the first charge: the database is the
 * first line against a double charge, the provider the second.
 *
 * Keyed, so the key reveals nothing about the client's key or body to the
 * provider, and a third party cannot precompute ours. Every replica must use
 * the same secret; a new secret changes the keys of new claims only (rows
 * keep the key they stored, which takeovers and the reconciler reuse).
 */
import { createHmac } from 'node:crypto';

/** The fixed key used outside production when PROVIDER_KEY_SECRET is unset. Public: never for real money. */
export const DEV_PROVIDER_KEY_SECRET = 'bulwark-development-provider-key-secret';

export type ProviderKeyFn = (idempotencyKey: string, fingerprint: string) => string;

export function providerKeys(secret: string): ProviderKeyFn {
  if (secret.length === 0) throw new Error('providerKeys: the secret must not be empty');
  return (idempotencyKey, fingerprint) =>
    // Length-prefixed, so no (key, fingerprint) pair can be shifted into another.
    `bw_${createHmac('sha256', secret).update(`${idempotencyKey.length}:${idempotencyKey}:${fingerprint}`).digest('hex')}`;
}
