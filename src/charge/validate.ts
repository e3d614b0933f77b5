/**
 * Validation of everything a client sends for a charge, before anything is
 * claimed: a rejected request stores nothing. Pure functions, shared by the
 * gateway's front thread and the Fastify baseline so both enforce one
 * contract. Unknown body fields are rejected: for money, a typo such as
 * `ammount` must not silently become a charge without the intended field.
 */
import { LIMITS, type ChargeInput, type Invalid, type Valid } from './input.js';

// Intl knows the ISO-4217 list; no table of our own to keep current.
const CURRENCIES: ReadonlySet<string> = new Set(Intl.supportedValuesOf('currency'));

export function isCurrency(code: string): boolean {
  return CURRENCIES.has(code);
}

// Visible ASCII only (0x21-0x7e): no space, control or non-ASCII byte, so the
// key a proxy logs, the key we store and the key the provider sees are the
// same bytes whatever their decoding of header bytes.
const VISIBLE_ASCII = /^[\x21-\x7e]+$/;

export function validateIdempotencyKey(raw: string | undefined): Valid<string> | Invalid {
  if (raw === undefined || raw === '') {
    return {
      ok: false,
      code: 'missing_idempotency_key',
      field: 'Idempotency-Key',
      detail: 'Send an Idempotency-Key header (1-255 visible ASCII characters)',
    };
  }
  if (raw.length > LIMITS.idempotencyKeyMaxChars || !VISIBLE_ASCII.test(raw)) {
    return {
      ok: false,
      code: 'invalid_idempotency_key',
      field: 'Idempotency-Key',
      detail: `Idempotency-Key must be 1-${LIMITS.idempotencyKeyMaxChars} visible ASCII characters (0x21-0x7e)`,
    };
  }
  return { ok: true, value: raw };
}

/** `application/json`, any case, optionally with parameters such as charset. */
export function isJsonContentType(raw: string | undefined): boolean {
  if (!raw) return false;
  const semi = raw.indexOf(';');
  const type = (semi === -1 ? raw : raw.slice(0, semi)).trim().toLowerCase();
  return type === 'application/json';
}

/**
 * X-Request-Timeout-Ms: absent means the default; otherwise an integer
 * 1..max, and at least minMs (a shorter deadline is refused as too short to
 * serve: deadline_too_short, before anything is claimed or sent).
 */
export function parseTimeoutHeader(
  raw: string | undefined,
  defaultMs: number,
  maxMs: number,
  minMs = 1,
): Valid<number> | Invalid {
  if (raw === undefined || raw === '') return { ok: true, value: defaultMs };
  if (!/^\d{1,9}$/.test(raw)) {
    return {
      ok: false,
      code: 'invalid_header',
      field: 'X-Request-Timeout-Ms',
      detail: `X-Request-Timeout-Ms must be an integer from 1 to ${maxMs}`,
    };
  }
  const ms = Number(raw);
  if (ms < 1 || ms > maxMs) {
    return {
      ok: false,
      code: 'invalid_header',
      field: 'X-Request-Timeout-Ms',
      detail: `X-Request-Timeout-Ms must be an integer from 1 to ${maxMs}`,
    };
  }
  if (ms < minMs) {
    return {
      ok: false,
      code: 'deadline_too_short',
      field: 'X-Request-Timeout-Ms',
      detail: `X-Request-Timeout-Ms must be at least ${minMs}: a shorter deadline cannot be served`,
    };
  }
  return { ok: true, value: ms };
}

const ALLOWED_FIELDS: ReadonlySet<string> = new Set(['amount', 'currency', 'source', 'description', 'metadata']);
/**
 * Keys that name an object's prototype machinery. JSON.parse makes them own
 * properties, but copying one into a plain object (`clean[k] = v`) sets the
 * prototype instead: the key vanishes from the stored charge and from its
 * fingerprint. Refused by name wherever they appear.
 */
const PROTOTYPE_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Text Postgres can store and every client can read back: no U+0000 (jsonb and
 * text refuse it) and no lone surrogate (`"\ud800"` is valid JSON and valid
 * UTF-8 on the wire, but not a character). Without this check such a charge
 * failed at the claim and was answered 503 db_unavailable, a 5xx that a
 * client would retry for ever.
 */
// eslint-disable-next-line no-control-regex -- the control character is what this matches
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function bad(field: string, detail: string): Invalid {
  return { ok: false, code: 'validation_failed', field, detail };
}

/** Parse and validate a charge body given as text. */
export function parseChargeBody(text: string): Valid<ChargeInput> | Invalid {
  const parsed = parseJsonBody(text);
  return parsed.ok ? validateChargeBody(parsed.value, parsed.amountText) : parsed;
}

/**
 * JSON.parse, refusing a member name twice in one object. JSON.parse keeps
 * the last copy, while a firewall or a log that reads the first sees
 * another charge (`{"amount":100,…,"amount":99999999}` was charged
 * 99 999 999): the same ambiguity as a header sent twice, refused the same way.
 */
export function parseJsonBody(text: string): (Valid<unknown> & { amountText?: string }) | Invalid {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, code: 'invalid_json', detail: 'The request body is not valid JSON' };
  }
  const scan = scanMembers(text);
  if (scan.duplicate !== undefined)
    return bad(scan.duplicate, `"${scan.duplicate}" appears more than once in one object`);
  return scan.amountText === undefined
    ? { ok: true, value: parsed }
    : { ok: true, value: parsed, amountText: scan.amountText };
}

/**
 * The first member name that appears twice in one object of `text`, which
 * must be valid JSON (JSON.parse has accepted it), or undefined. Names are
 * compared decoded, so `"a"` and `"\u0061"` are one name.
 */
export function duplicateMember(text: string): string | undefined {
  return scanMembers(text).duplicate;
}

/**
 * Whether a JSON number, as written, is an integer. JSON.parse rounds to the
 * nearest double, so `0.99999999999999999` arrives as 1 and
 * `4.9999999999999999` as 5: a client's fractional amount charged as a
 * whole one. The text decides: `1000`, `1000.0` and `1e3` are integers,
 * `0.99999999999999999` is not.
 */
export function isIntegerLiteral(literal: string): boolean {
  const m = /^-?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(literal);
  if (!m) return false;
  const fraction = m[2] ?? '';
  // The value is digits × 10^(exponent − fraction digits); those digits need that many trailing zeros.
  const short = fraction.length - Number(m[3] ?? 0);
  if (short <= 0) return true;
  const digits = m[1]! + fraction;
  const significant = digits.replace(/0+$/, '');
  return significant === '' || digits.length - significant.length >= short;
}

/** A character a JSON number's text may hold after its first: digits, `.`, `e`, `E`, `+`, `-`. */
function inNumber(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === 0x2d;
}

/**
 * One pass over valid JSON (JSON.parse has accepted it): the first member name
 * that appears twice in one object, and the text of the top-level `amount`
 * member when it is a number (the last one's, as JSON.parse keeps it).
 */
function scanMembers(text: string): { duplicate?: string; amountText?: string } {
  // One entry per open container: the names seen so far for an object, null for an array.
  const open: (Set<string> | null)[] = [];
  let atName = false;
  let amountNext = false;
  let amountText: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (amountNext && c !== 0x3a && c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) {
      amountNext = false;
      if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
        let j = i + 1;
        while (j < text.length && inNumber(text.charCodeAt(j))) j++;
        amountText = text.slice(i, j);
        i = j - 1;
        continue;
      }
    }
    if (c === 0x22) {
      // A string: find its closing quote, skipping escapes.
      let j = i + 1;
      let escaped = false;
      for (; j < text.length; j++) {
        const d = text.charCodeAt(j);
        if (d === 0x5c) {
          escaped = true;
          j++;
        } else if (d === 0x22) break;
      }
      if (atName) {
        const name = escaped ? (JSON.parse(text.slice(i, j + 1)) as string) : text.slice(i + 1, j);
        const names = open[open.length - 1]!;
        if (names.has(name)) return { duplicate: name };
        names.add(name);
        atName = false;
        amountNext = open.length === 1 && name === 'amount';
      }
      i = j;
    } else if (c === 0x7b) {
      open.push(new Set());
      atName = true;
    } else if (c === 0x5b) {
      open.push(null);
      atName = false;
    } else if (c === 0x7d || c === 0x5d) {
      open.pop();
      atName = false;
    } else if (c === 0x2c) atName = open[open.length - 1] instanceof Set;
  }
  return amountText === undefined ? NOTHING : { amountText };
}

const NOTHING: { duplicate?: string; amountText?: string } = Object.freeze({});

/** `amountText`: the amount as written (parseJsonBody's scan); without it, the parsed number is all there is to judge. */
export function validateChargeBody(parsed: unknown, amountText?: string): Valid<ChargeInput> | Invalid {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return bad('body', 'The request body must be a JSON object');
  }
  const body = parsed as Record<string, unknown>;
  for (const field of Object.keys(body)) {
    if (PROTOTYPE_KEYS.has(field)) return bad(field, `"${field}" is not allowed as a key`);
    if (!ALLOWED_FIELDS.has(field))
      return bad(field, `Unknown field "${field}"; allowed: amount, currency, source, description, metadata`);
  }
  const { amount, currency, source, description, metadata } = body;
  if (amount === undefined) return bad('amount', 'amount is required');
  if (
    typeof amount !== 'number' ||
    !Number.isInteger(amount) ||
    (amountText !== undefined && !isIntegerLiteral(amountText))
  )
    return bad('amount', 'amount must be an integer number of minor units');
  if (amount < LIMITS.amountMin || amount > LIMITS.amountMax) {
    return bad('amount', `amount must be from ${LIMITS.amountMin} to ${LIMITS.amountMax}`);
  }
  if (currency === undefined) return bad('currency', 'currency is required');
  if (typeof currency !== 'string' || !/^[A-Za-z]{3}$/.test(currency) || !isCurrency(currency.toUpperCase())) {
    return bad('currency', 'currency must be a three-letter ISO-4217 code');
  }
  if (source === undefined) return bad('source', 'source is required');
  if (typeof source !== 'string' || source.length === 0 || source.length > LIMITS.sourceMaxChars) {
    return bad('source', `source must be a string of 1-${LIMITS.sourceMaxChars} characters`);
  }
  if (UNSTORABLE.test(source)) return bad('source', 'source must not contain U+0000 or a lone surrogate');
  const out: ChargeInput = { amount, currency: currency.toUpperCase(), source };
  if (description !== undefined) {
    if (typeof description !== 'string' || description.length > LIMITS.descriptionMaxChars) {
      return bad('description', `description must be a string of at most ${LIMITS.descriptionMaxChars} characters`);
    }
    if (UNSTORABLE.test(description))
      return bad('description', 'description must not contain U+0000 or a lone surrogate');
    out.description = description;
  }
  if (metadata !== undefined) {
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
      return bad('metadata', 'metadata must be a flat object of string values');
    }
    const entries = Object.entries(metadata as Record<string, unknown>);
    if (entries.length > LIMITS.metadataMaxKeys)
      return bad('metadata', `metadata may have at most ${LIMITS.metadataMaxKeys} keys`);
    const clean: Record<string, string> = {};
    for (const [k, v] of entries) {
      if (PROTOTYPE_KEYS.has(k)) return bad(`metadata.${k}`, `"${k}" is not allowed as a metadata key`);
      if (k.length === 0 || k.length > LIMITS.metadataKeyMaxChars) {
        return bad(`metadata.${k}`, `metadata keys must be 1-${LIMITS.metadataKeyMaxChars} characters`);
      }
      if (typeof v !== 'string' || v.length > LIMITS.metadataValueMaxChars) {
        return bad(
          `metadata.${k}`,
          `metadata values must be strings of at most ${LIMITS.metadataValueMaxChars} characters`,
        );
      }
      if (UNSTORABLE.test(k) || UNSTORABLE.test(v))
        return bad(`metadata.${k}`, 'metadata keys and values must not contain U+0000 or a lone surrogate');
      clean[k] = v;
    }
    out.metadata = clean;
  }
  return { ok: true, value: out };
}
