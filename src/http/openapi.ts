/**
 * The public API as an OpenAPI 3.1 document, built from the same definitions
 * the servers enforce: the field limits of the charge input (LIMITS), the
 * error catalogue (every code with its status), the route table and the
 * request-header rules. A limit changed in the validator changes the document;
 * nothing here restates a number. Served at GET /openapi.json by both servers;
 * test/contract holds every answer of the contract suite to it.
 */
import { catalogue, type ErrorCode } from '../errors/catalogue.js';
import { LIMITS } from '../charge/input.js';
import { versionInfo } from '../runtime/version.js';

type Json = Record<string, unknown>;

const codesWithStatus = (status: number): ErrorCode[] =>
  (Object.keys(catalogue) as ErrorCode[]).filter((c) => catalogue[c].status === status);

/** A problem response of `status`, listing the catalogue codes it can carry. */
function problemResponse(status: number, description: string): Json {
  const codes = codesWithStatus(status);
  return {
    description: `${description} Codes: ${codes.join(', ')}.`,
    ...(catalogue[codes[0]!] && 'retryAfterS' in catalogue[codes[0]!]
      ? { headers: { 'Retry-After': { $ref: '#/components/headers/RetryAfter' } } }
      : {}),
    content: {
      'application/problem+json': {
        schema: {
          allOf: [
            { $ref: '#/components/schemas/Problem' },
            { type: 'object', properties: { status: { const: status }, code: { enum: codes } } },
          ],
        },
      },
    },
  };
}

const jsonContent = (ref: string): Json => ({
  'application/json': { schema: { $ref: `#/components/schemas/${ref}` } },
});

export interface OpenApiOptions {
  maxBodyBytes: number;
  minRequestTimeoutMs: number;
  maxRequestTimeoutMs: number;
  requestTimeoutMs: number;
}

export function openApiDocument(options: OpenApiOptions): Json {
  const idempotencyKey = {
    type: 'string',
    minLength: 1,
    maxLength: LIMITS.idempotencyKeyMaxChars,
    pattern: '^[\\x21-\\x7e]+$',
    description: `1-${LIMITS.idempotencyKeyMaxChars} visible ASCII characters (0x21-0x7e). Sent once; a repeated header is refused.`,
  };
  const currency = {
    type: 'string',
    pattern: '^[A-Za-z]{3}$',
    description: 'ISO-4217 code, any case; answers use upper case.',
  };
  const stringWithin = (max: number, extra: Json = {}): Json => ({ type: 'string', maxLength: max, ...extra });
  return {
    openapi: '3.1.0',
    info: {
      title: 'bulwark charge gateway',
      version: versionInfo.version,
      description:
        'One POST /charge path in front of a payment provider and Postgres. Every error is RFC 9457 application/problem+json with a stable `code`. ' +
        'A charge is idempotent by its Idempotency-Key: a replay returns the stored answer with Idempotent-Replayed: true.',
    },
    paths: {
      '/charge': {
        post: {
          operationId: 'createCharge',
          summary: 'Create a charge, idempotently',
          parameters: [
            { name: 'Idempotency-Key', in: 'header', required: true, schema: idempotencyKey },
            {
              name: 'X-Request-Timeout-Ms',
              in: 'header',
              required: false,
              description: `The request's deadline in ms (default ${options.requestTimeoutMs}); below ${options.minRequestTimeoutMs} is refused as too short to serve.`,
              schema: { type: 'integer', minimum: options.minRequestTimeoutMs, maximum: options.maxRequestTimeoutMs },
            },
          ],
          requestBody: {
            required: true,
            description: `At most ${options.maxBodyBytes} bytes of UTF-8 JSON.`,
            content: { 'application/json': { schema: { $ref: '#/components/schemas/ChargeRequest' } } },
          },
          responses: {
            '201': {
              description: 'Charged (or a replay of a charge that was).',
              headers: { 'Idempotent-Replayed': { $ref: '#/components/headers/IdempotentReplayed' } },
              content: jsonContent('Charge'),
            },
            '400': problemResponse(400, 'Malformed or invalid request; `field` names the field or header.'),
            '402': problemResponse(
              402,
              'The provider declined or rejected the charge: a final outcome, stored and replayed.',
            ),
            '408': problemResponse(408, 'The body did not arrive in time.'),
            '409': problemResponse(409, 'A request with this key is in progress; retry after Retry-After.'),
            '413': problemResponse(413, 'The body is too large.'),
            '415': problemResponse(415, 'Content-Type is not application/json.'),
            '422': problemResponse(422, 'The key was used with a different body.'),
            '431': problemResponse(431, 'The header section is too large.'),
            '503': problemResponse(
              503,
              'Refused now, nothing charged unless the code says the charge may complete; retry after Retry-After.',
            ),
            '504': problemResponse(
              504,
              'The deadline passed; the charge may still complete: the same key later returns its outcome.',
            ),
          },
        },
      },
      '/charges/{idempotencyKey}': {
        get: {
          operationId: 'getCharge',
          summary: 'Read a charge by its Idempotency-Key',
          parameters: [{ name: 'idempotencyKey', in: 'path', required: true, schema: idempotencyKey }],
          responses: {
            '200': { description: 'The charge as stored.', content: jsonContent('ChargeRecord') },
            '400': problemResponse(400, 'The key is not a valid Idempotency-Key.'),
            '404': problemResponse(404, 'No charge has this key.'),
            '503': problemResponse(503, 'Refused now.'),
            '504': problemResponse(504, 'The deadline passed.'),
          },
        },
      },
      '/quote': {
        get: {
          operationId: 'getQuote',
          summary: 'Convert an amount with the fx-rates downstream (cached; stale when fx fails)',
          parameters: [
            { name: 'from', in: 'query', required: true, schema: currency },
            { name: 'to', in: 'query', required: true, schema: currency },
            {
              name: 'amount',
              in: 'query',
              required: true,
              schema: { type: 'integer', minimum: LIMITS.amountMin, maximum: LIMITS.amountMax },
            },
          ],
          responses: {
            '200': {
              description: 'A quote; `stale` when served from the last known rate.',
              content: jsonContent('Quote'),
            },
            '400': problemResponse(400, 'A query parameter is invalid.'),
            '503': problemResponse(503, 'fx is unavailable and no rate is cached, or the request was shed.'),
          },
        },
      },
      '/health': {
        get: {
          operationId: 'health',
          summary: 'Liveness (shallow; never shed)',
          responses: { '200': { description: 'Alive.', content: jsonContent('Health') } },
        },
      },
      '/ready': {
        get: {
          operationId: 'ready',
          summary:
            'Readiness (false while starting or draining, workers missing, or the DB unreachable; never calls the provider)',
          responses: {
            '200': { description: 'Ready.', content: jsonContent('Readiness') },
            '503': problemResponse(503, 'Not ready; the body also carries `ready: false` and the checks.'),
          },
        },
      },
      '/version': {
        get: {
          operationId: 'version',
          summary: 'Build information',
          responses: { '200': { description: 'The running build.', content: jsonContent('Version') } },
        },
      },
      '/openapi.json': {
        get: {
          operationId: 'openapi',
          summary: 'This document',
          responses: {
            '200': { description: 'OpenAPI 3.1.', content: { 'application/json': { schema: { type: 'object' } } } },
          },
        },
      },
    },
    components: {
      headers: {
        RetryAfter: { description: 'Seconds to wait before retrying.', schema: { type: 'string', pattern: '^\\d+$' } },
        IdempotentReplayed: {
          description: '`true` on a replay of a completed key.',
          schema: { type: 'string', enum: ['true'] },
        },
      },
      schemas: {
        ChargeRequest: {
          type: 'object',
          additionalProperties: false,
          required: ['amount', 'currency', 'source'],
          properties: {
            amount: {
              type: 'integer',
              minimum: LIMITS.amountMin,
              maximum: LIMITS.amountMax,
              description: 'Minor units.',
            },
            currency,
            source: stringWithin(LIMITS.sourceMaxChars, { minLength: 1, description: 'A payment-method token.' }),
            description: stringWithin(LIMITS.descriptionMaxChars),
            metadata: {
              type: 'object',
              maxProperties: LIMITS.metadataMaxKeys,
              propertyNames: {
                minLength: 1,
                maxLength: LIMITS.metadataKeyMaxChars,
                not: { enum: ['__proto__', 'constructor', 'prototype'] },
              },
              additionalProperties: stringWithin(LIMITS.metadataValueMaxChars),
            },
          },
        },
        Charge: {
          type: 'object',
          required: ['id', 'status', 'amount', 'currency', 'provider_charge_id', 'created_at'],
          properties: {
            id: { type: 'string' },
            status: { const: 'succeeded' },
            amount: { type: 'integer' },
            currency: { type: 'string', pattern: '^[A-Z]{3}$' },
            provider_charge_id: { type: 'string' },
            created_at: { type: 'string', format: 'date-time' },
          },
        },
        ChargeRecord: {
          type: 'object',
          required: ['idempotency_key', 'id', 'status', 'amount', 'currency', 'created_at'],
          properties: {
            idempotency_key: { type: 'string' },
            id: { type: 'string' },
            status: { type: 'string', description: '`started` while the outcome is unknown, then the final status.' },
            amount: { type: 'integer' },
            currency: { type: 'string' },
            provider_charge_id: { type: ['string', 'null'] },
            response_status: { type: ['integer', 'null'] },
            created_at: { type: 'string', format: 'date-time' },
            completed_at: { type: ['string', 'null'], format: 'date-time' },
          },
        },
        Quote: {
          type: 'object',
          required: ['from', 'to', 'amount', 'rate', 'converted_amount', 'as_of', 'stale'],
          properties: {
            from: { type: 'string' },
            to: { type: 'string' },
            amount: { type: 'integer' },
            rate: { type: 'number' },
            converted_amount: { type: 'integer' },
            as_of: { type: 'string' },
            stale: { type: 'boolean' },
          },
        },
        Health: { type: 'object', required: ['status'], properties: { status: { const: 'ok' } } },
        Readiness: {
          type: 'object',
          required: ['ready', 'checks'],
          properties: {
            ready: { type: 'boolean' },
            checks: { type: 'object', additionalProperties: { type: 'boolean' } },
          },
        },
        Version: {
          type: 'object',
          required: ['service', 'version', 'git_commit', 'build_time', 'node'],
          properties: {
            service: { type: 'string' },
            version: { type: 'string' },
            git_commit: { type: 'string' },
            build_time: { type: 'string' },
            node: { type: 'string' },
            uws: { type: ['object', 'null'], description: 'The uWebSockets.js build (null on the Fastify baseline).' },
          },
        },
        Problem: {
          type: 'object',
          description: 'RFC 9457 problem details plus a stable `code` (and `field` for validation errors).',
          required: ['type', 'title', 'status', 'detail', 'code'],
          properties: {
            type: { type: 'string', pattern: '^urn:bulwark:problem:[a-z_]+$' },
            title: { type: 'string' },
            status: { type: 'integer' },
            detail: { type: 'string' },
            code: { enum: Object.keys(catalogue) },
            field: { type: 'string' },
            instance: { type: 'string', description: 'The request id (X-Request-Id).' },
          },
        },
      },
    },
  };
}
