/**
 * What a client asks to charge, as the charge domain holds it once validated,
 * and the limits the input contract sets (the validator enforces them, the
 * OpenAPI document publishes them). Types and constants only, so what carries a
 * charge's input (store, lifecycle, worker tasks) need not import the validator.
 */
import type { ErrorCode } from '../errors/catalogue.js';

export interface ChargeInput {
  amount: number;
  /** Upper-case ISO-4217 code. */
  currency: string;
  source: string;
  description?: string;
  metadata?: Record<string, string>;
}

export type Invalid = { ok: false; code: ErrorCode; field?: string; detail: string };
export type Valid<T> = { ok: true; value: T };

export const LIMITS = Object.freeze({
  amountMin: 1,
  amountMax: 99_999_999,
  sourceMaxChars: 255,
  descriptionMaxChars: 1000,
  metadataMaxKeys: 20,
  metadataKeyMaxChars: 40,
  metadataValueMaxChars: 500,
  idempotencyKeyMaxChars: 255,
});
