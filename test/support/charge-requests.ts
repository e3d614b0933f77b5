/**
 * fast-check arbitraries for POST /charge requests that try to break the
 * input contract: the contract headers repeated, in odd case, with odd bytes
 * and lengths; deadlines around the floor and the ceiling; bodies that are
 * valid charges, near misses, other JSON, prototype keys, not UTF-8, and
 * sizes around the limit. Shared by the parser's unit property and the live
 * property against a running server, so both see the same population.
 *
 * Header values never contain CR or LF (they would end the header line, a
 * different request altogether) and never start or end with blanks (a
 * server trims them, so the parser would see another value than was sent).
 */
import fc from 'fast-check';

export interface GeneratedRequest {
  /** (name, value) in order; values are latin1 strings (one char per byte on the wire). */
  headers: [string, string][];
  body: Buffer;
  /** Whether a correct Content-Length should be added by the sender (the live test needs framing it can predict). */
  addContentLength: boolean;
}

const VALID = { amount: 1000, currency: 'usd', source: 'tok_visa' };

/** A header value of visible ASCII, or with a byte from the edges (space, tab, DEL, controls, non-ASCII). */
const oddByte = fc.constantFrom(0x20, 0x09, 0x7f, 0x01, 0x80, 0xe9, 0xff, 0x22, 0x21, 0x7e);
const visible = fc.string({
  unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
  minLength: 1,
  maxLength: 40,
});
const withOddByte = fc.tuple(visible, oddByte, visible).map(([a, b, c]) => `${a}${String.fromCharCode(b)}${c}`);
const headerText = fc.oneof(
  { weight: 4, arbitrary: visible },
  { weight: 2, arbitrary: withOddByte },
  { weight: 1, arbitrary: fc.constant('') },
);

/** Keys: mostly good, sometimes empty, 255/256 long, with odd bytes. */
const keyValue = (tag: string) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.uuid().map((u) => `${tag}-${u}`) },
    { weight: 1, arbitrary: fc.integer({ min: 250, max: 260 }).map((n) => `${tag}-`.padEnd(n, 'k')) },
    { weight: 2, arbitrary: withOddByte.map((v) => `${tag}-${v}`) },
    { weight: 1, arbitrary: fc.constant('') },
  );

const timeoutValue = fc.oneof(
  fc.integer({ min: 0, max: 120 }).map(String),
  fc.integer({ min: 1000, max: 6000 }).map(String),
  fc.constantFrom('', '-5', '1.5', 'abc', ' 100', '0100', '999999999999', '1e3'),
  headerText,
);

const contentTypeValue = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      'application/json',
      'Application/JSON; charset=utf-8',
      'application/json;charset=latin1',
    ),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom('text/plain', 'application/jsonx', 'application/x-www-form-urlencoded', 'json'),
  },
  { weight: 1, arbitrary: headerText },
);

/** Names in random case: a server must treat `IDEMPOTENCY-KEY` and `idempotency-key` as one header. */
const caseOf = (name: string) =>
  fc
    .array(fc.boolean(), { minLength: name.length, maxLength: name.length })
    .map((up) => [...name].map((c, i) => (up[i] ? c.toUpperCase() : c)).join(''));

const other = fc
  .tuple(fc.constantFrom('X-Trace', 'Accept', 'User-Agent', 'X-Forwarded-For'), visible)
  .map(([n, v]) => [n, v] as [string, string]);

/** 0, 1 or 2 copies of each contract header, others in between, shuffled. */
function headersArb(tag: string): fc.Arbitrary<[string, string][]> {
  const copies = <T>(arb: fc.Arbitrary<T>, weights: [number, number, number]) =>
    fc.oneof(
      { weight: weights[0], arbitrary: fc.constant([] as T[]) },
      { weight: weights[1], arbitrary: fc.tuple(arb).map((a) => [...a]) },
      { weight: weights[2], arbitrary: fc.tuple(arb, arb).map((a) => [...a]) },
    );
  return fc
    .tuple(
      copies(fc.tuple(caseOf('idempotency-key'), keyValue(tag)), [1, 12, 2]),
      copies(fc.tuple(caseOf('content-type'), contentTypeValue), [1, 12, 2]),
      copies(fc.tuple(caseOf('x-request-timeout-ms'), timeoutValue), [6, 6, 2]),
      fc.array(other, { maxLength: 3 }),
    )
    .chain(([k, t, d, o]) =>
      fc.shuffledSubarray([...k, ...t, ...d, ...o] as [string, string][], {
        minLength: k.length + t.length + d.length + o.length,
      }),
    );
}

const validCharge = fc.record(
  {
    amount: fc.integer({ min: 1, max: 99_999_999 }),
    currency: fc.constantFrom('usd', 'EUR', 'gbp', 'JPY'),
    source: fc.constant('tok_visa'),
    description: fc.string({ maxLength: 60 }),
    metadata: fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }), fc.string({ maxLength: 20 }), { maxKeys: 5 }),
  },
  { requiredKeys: ['amount', 'currency', 'source'] },
);

const PROTO = ['__proto__', 'constructor', 'prototype'] as const;

const bodyArb: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 8, arbitrary: validCharge.map((c) => Buffer.from(JSON.stringify(c))) },
  // Prototype keys, written as JSON text (an object literal with __proto__ would set the prototype instead).
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.constantFrom(...PROTO), fc.boolean(), fc.constantFrom('"x"', '{}', '1', 'null'))
      .map(([k, inMeta, v]) => {
        const base = JSON.stringify(VALID).slice(0, -1);
        return Buffer.from(
          inMeta ? `${base},"metadata":{"a":"b","${k}":${v === '"x"' ? v : '"y"'}}}` : `${base},"${k}":${v}}`,
        );
      }),
  },
  // Near misses and other JSON.
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 2 }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')) },
  { weight: 2, arbitrary: validCharge.map((c) => Buffer.from(JSON.stringify(c).slice(0, -1))) },
  // Not UTF-8: a lone continuation byte, an overlong form, a surrogate, a truncated sequence, in an otherwise valid charge.
  {
    weight: 3,
    arbitrary: fc
      .constantFrom([0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xff])
      .map((bad) =>
        Buffer.concat([
          Buffer.from('{"amount":1000,"currency":"usd","source":"tok_'),
          Buffer.from(bad),
          Buffer.from('"}'),
        ]),
      ),
  },
  // Valid UTF-8 beyond ASCII, and text that is valid JSON and UTF-8 but not storable (U+0000, lone surrogates).
  {
    weight: 2,
    arbitrary: fc
      .constantFrom('é', '€', '😀', '\u0000', '\ud800', '\udfff')
      .map((c) => Buffer.from(JSON.stringify({ ...VALID, description: `caf${c}` }))),
  },
  // Sizes around the 16 KiB limit (a valid charge padded with spaces, which JSON allows).
  {
    weight: 1,
    arbitrary: fc.integer({ min: -8, max: 8 }).map((d) => {
      const text = JSON.stringify(VALID);
      return Buffer.from(text.padEnd(16 * 1024 + d, ' '));
    }),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)) },
);

export function chargeRequestArb(tag: string): fc.Arbitrary<GeneratedRequest> {
  return fc.record({ headers: headersArb(tag), body: bodyArb, addContentLength: fc.constant(true) });
}

/** Content-Length variants the unit property also throws at the parser (the live sender frames bodies itself). */
export const contentLengthValue = fc.oneof(
  fc.integer({ min: 0, max: 20_000 }).map(String),
  fc.constantFrom('', '-1', 'abc', '5x', '+5', '1e3', ' 12', '0x10', '99999999999999999999'),
);

/** The request as bytes on the wire (HTTP/1.1, Connection: close, Content-Length of the body unless told otherwise). */
export function wireBytes(r: GeneratedRequest, extraHead: [string, string][] = []): Buffer {
  const lines = ['POST /charge HTTP/1.1', 'Host: 127.0.0.1', 'Connection: close'];
  for (const [n, v] of [...r.headers, ...extraHead]) lines.push(`${n}: ${v}`);
  if (r.addContentLength) lines.push(`Content-Length: ${r.body.length}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), r.body]);
}
