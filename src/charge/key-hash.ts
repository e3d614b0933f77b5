/**
 * The name an idempotency key goes by in logs and in /admin/state: the first
 * 16 hex digits of its SHA-256. Keys are client data and may embed order or
 * customer ids, so the raw key never leaves the database; the hash is enough
 * to correlate log lines, and an operator finds the row with the same
 * function in SQL (docs/runbook.md):
 *   left(encode(sha256(convert_to(idempotency_key, 'UTF8')), 'hex'), 16)
 * Not keyed: it hides the key from casual reading, not from someone who can
 * guess it, and a keyed hash would need the secret to look a row up.
 */
import { createHash } from 'node:crypto';

export const KEY_HASH_SQL = "left(encode(sha256(convert_to(idempotency_key, 'UTF8')), 'hex'), 16)";

export function keyHash(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 16);
}
