/**
 * POST /charge as a transport-neutral request: headers as (name, value)
 * pairs in arrival order, the body as bytes. Both servers (the uWS gateway and
 * the Fastify baseline) hand their request to these functions and turn an
 * Invalid into a reply with problemFrom, so the input contract is written once.
 *
 * Two phases, because a transport must decide some things before it reads a
 * body: chargeHead() checks the framing (a repeated contract header, a
 * Content-Length that is not a plain number or is over the limit) and may be
 * answered at once, connection closed; completeCharge() checks the rest, in
 * the order the contract fixes: Content-Type (415), Idempotency-Key,
 * X-Request-Timeout-Ms, the body's encoding, JSON, fields.
 *
 * Repeats are refused rather than resolved: two Idempotency-Keys (or two
 * Content-Lengths) mean a proxy in front may have acted on the other one.
 */
import { problem, type Reply } from '../errors/catalogue.js';
import type { Clock } from '../lib/clock.js';
import { fingerprint } from './fingerprint.js';
import {
  isJsonContentType,
  parseJsonBody,
  parseTimeoutHeader,
  validateChargeBody,
  validateIdempotencyKey,
} from './validate.js';
import type { ChargeInput, Invalid, Valid } from './input.js';

/** Header (name, value) pairs in arrival order, repeats kept. Names in any case. */
export type HeaderPairs = readonly (readonly [name: string, value: string])[];

/** The largest header section accepted (request line, headers, CRLFs): Node's default maxHeaderSize. */
export const MAX_HEADER_SECTION_BYTES = 16 * 1024;

export interface ChargeRequestSettings {
  maxBodyBytes: number;
  /** Deadline when X-Request-Timeout-Ms is absent. */
  requestTimeoutMs: number;
  minRequestTimeoutMs: number;
  maxRequestTimeoutMs: number;
}

/** The contract's headers, each present at most once. */
export interface ChargeHead {
  contentType: string | undefined;
  key: string | undefined;
  timeout: string | undefined;
  /** undefined without a Content-Length (e.g. chunked). */
  contentLength: number | undefined;
}

export interface ChargeRequest {
  key: string;
  /** Epoch ms: arrival + the request's timeout. */
  deadline: number;
  input: ChargeInput;
  fingerprint: string;
}

/** Header names as the contract spells them (for `field`), by lower-case name. */
const SINGLE_HEADERS: Readonly<Record<string, string>> = {
  'idempotency-key': 'Idempotency-Key',
  'content-length': 'Content-Length',
  'content-type': 'Content-Type',
  'x-request-timeout-ms': 'X-Request-Timeout-Ms',
};

const DIGITS = /^\d+$/;

/** Framing checks, before any body byte is read. An Invalid here is answered with the connection closed. */
export function chargeHead(
  headers: HeaderPairs,
  s: Pick<ChargeRequestSettings, 'maxBodyBytes'>,
): Valid<ChargeHead> | Invalid {
  let contentType: string | undefined;
  let key: string | undefined;
  let timeout: string | undefined;
  let length: string | undefined;
  for (const [rawName, value] of headers) {
    const name = rawName.toLowerCase();
    const canonical = SINGLE_HEADERS[name];
    if (canonical === undefined) continue;
    const seen =
      name === 'content-type'
        ? contentType
        : name === 'idempotency-key'
          ? key
          : name === 'content-length'
            ? length
            : timeout;
    if (seen !== undefined)
      return { ok: false, code: 'invalid_header', field: canonical, detail: `${canonical} must be sent once` };
    if (name === 'content-type') contentType = value;
    else if (name === 'idempotency-key') key = value;
    else if (name === 'content-length') length = value;
    else timeout = value;
  }
  let contentLength: number | undefined;
  if (length !== undefined) {
    if (!DIGITS.test(length))
      return {
        ok: false,
        code: 'invalid_header',
        field: 'Content-Length',
        detail: 'Content-Length must be a non-negative integer',
      };
    contentLength = Number(length);
    if (contentLength > s.maxBodyBytes)
      return { ok: false, code: 'payload_too_large', detail: `The body may be at most ${s.maxBodyBytes} bytes` };
  }
  return { ok: true, value: { contentType, key, timeout, contentLength } };
}

/** The deadline admission should assume before the body is read: the header's if valid, else the default. */
export function admissionTimeoutMs(head: ChargeHead, s: ChargeRequestSettings): number {
  const t = parseTimeoutHeader(head.timeout, s.requestTimeoutMs, s.maxRequestTimeoutMs, s.minRequestTimeoutMs);
  return t.ok ? t.value : s.requestTimeoutMs;
}

// fatal: a byte sequence that is not UTF-8 is refused, never stored with U+FFFD in its place.
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Everything after the body arrived; arrivalEpochMs starts the deadline. */
export function completeCharge(
  head: ChargeHead,
  body: Uint8Array,
  s: ChargeRequestSettings,
  arrivalEpochMs: number,
): Valid<ChargeRequest> | Invalid {
  if (!isJsonContentType(head.contentType))
    return {
      ok: false,
      code: 'unsupported_media_type',
      field: 'Content-Type',
      detail: 'Content-Type must be application/json',
    };
  const key = validateIdempotencyKey(head.key);
  if (!key.ok) return key;
  const timeout = parseTimeoutHeader(head.timeout, s.requestTimeoutMs, s.maxRequestTimeoutMs, s.minRequestTimeoutMs);
  if (!timeout.ok) return timeout;
  let text: string;
  try {
    text = UTF8.decode(body);
  } catch {
    return { ok: false, code: 'invalid_encoding', field: 'body', detail: 'The request body must be valid UTF-8' };
  }
  const parsed = parseJsonBody(text);
  if (!parsed.ok) return parsed;
  const input = validateChargeBody(parsed.value, parsed.amountText);
  if (!input.ok) return input;
  return {
    ok: true,
    value: {
      key: key.value,
      deadline: arrivalEpochMs + timeout.value,
      input: input.value,
      fingerprint: fingerprint(input.value),
    },
  };
}

/** Both phases at once, for a transport that has the whole request in hand. */
export function parseChargeRequest(
  headers: HeaderPairs,
  body: Uint8Array,
  s: ChargeRequestSettings,
  arrivalEpochMs: number,
): Valid<ChargeRequest> | Invalid {
  const head = chargeHead(headers, s);
  return head.ok ? completeCharge(head.value, body, s, arrivalEpochMs) : head;
}

/** GET /charges/:key: the key from its raw (still %-encoded) path segment, as both servers receive it. */
export function parseChargeKey(rawSegment: string): Valid<string> | Invalid {
  let key: string;
  try {
    key = decodeURIComponent(rawSegment);
  } catch {
    key = ''; // bad %-encoding: refused below like any other invalid key
  }
  const valid = validateIdempotencyKey(key);
  if (!valid.ok) return { ok: false, code: 'invalid_idempotency_key', field: 'idempotencyKey', detail: valid.detail };
  return { ok: true, value: key };
}

/**
 * How long after a request's deadline a server waits for the service's own
 * answer before answering 504 itself: the service's answer is the better one
 * (it knows whether a charge was claimed or finished), the server's timer is
 * only the guarantee that the client hears something.
 */
export const DEADLINE_ANSWER_GRACE_MS = 50;

/**
 * The reply `work` settles with (a rejection turned into a reply by
 * `failed`), or 504 deadline_exceeded at the deadline plus the grace,
 * whichever comes first; a reply that comes later is dropped.
 */
export function replyByDeadline(
  clock: Clock,
  deadlineEpochMs: number,
  work: Promise<Reply>,
  failed: (e: unknown) => Reply,
): Promise<Reply> {
  return new Promise((resolve) => {
    const cancel = clock.setTimeout(
      () => resolve(problem('deadline_exceeded')),
      Math.max(0, deadlineEpochMs - clock.epochMs()) + DEADLINE_ANSWER_GRACE_MS,
    );
    work.then(
      (reply) => {
        cancel();
        resolve(reply);
      },
      (e: unknown) => {
        cancel();
        resolve(failed(e));
      },
    );
  });
}

/** The problem reply for a refused request (the field named when there is one). */
export function problemFrom(invalid: Invalid): Reply {
  return problem(invalid.code, {
    detail: invalid.detail,
    ...(invalid.field !== undefined ? { field: invalid.field } : {}),
  });
}

/** Node's rawHeaders ([name, value, name, value, ...]) as pairs. */
export function pairsFromRaw(raw: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}
