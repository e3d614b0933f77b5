/**
 * The OpenAPI document is a valid OpenAPI 3.1 document, states the limits the
 * validator enforces (it is built from them), lists every catalogue code under
 * the status it is sent with, and the conformance checker the contract suite
 * uses does catch an answer that breaks it (it is not vacuous).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Validator } from '@seriousme/openapi-schema-validator';
import { openApiDocument } from '../../src/http/openapi.js';
import { LIMITS } from '../../src/charge/input.js';
import { parseChargeBody } from '../../src/charge/validate.js';
import { catalogue, problem } from '../../src/errors/catalogue.js';
import { Conformance } from '../support/openapi-conformance.js';

const doc = openApiDocument({
  maxBodyBytes: 16384,
  minRequestTimeoutMs: 50,
  maxRequestTimeoutMs: 30000,
  requestTimeoutMs: 1000,
});

test('the document passes the OpenAPI 3.1 schema', async () => {
  const v = new Validator();
  const r = await v.validate(structuredClone(doc) as never);
  assert.equal(v.version, '3.1');
  assert.deepEqual(r.errors, undefined, JSON.stringify(r.errors, null, 2));
  assert.equal(r.valid, true);
});

test("the body schema carries the validator's limits", () => {
  const s = (
    doc as { components: { schemas: { ChargeRequest: { properties: Record<string, Record<string, unknown>> } } } }
  ).components.schemas.ChargeRequest.properties;
  assert.equal(s.amount!.minimum, LIMITS.amountMin);
  assert.equal(s.amount!.maximum, LIMITS.amountMax);
  assert.equal(s.source!.maxLength, LIMITS.sourceMaxChars);
  assert.equal(s.description!.maxLength, LIMITS.descriptionMaxChars);
  assert.equal(s.metadata!.maxProperties, LIMITS.metadataMaxKeys);
});

test('every catalogue code that POST /charge can answer is documented under its status', () => {
  const responses = (
    doc as { paths: Record<string, { post?: { responses: Record<string, { description: string }> } }> }
  ).paths['/charge']!.post!.responses;
  const notFromCharge = new Set([
    'not_found',
    'method_not_allowed',
    'invalid_query',
    'fx_unavailable',
    'forbidden',
    'unauthorized',
    'internal_error',
  ]);
  for (const [code, entry] of Object.entries(catalogue)) {
    if (notFromCharge.has(code)) continue;
    const r = responses[String(entry.status)];
    assert.ok(r, `${code}: status ${entry.status} documented`);
    assert.match(r.description, new RegExp(`\\b${code}\\b`), `${code} listed under ${entry.status}`);
  }
});

test('conformance: real answers pass, broken ones are caught', () => {
  const c = new Conformance(doc);
  const ok = {
    id: 'ch_1',
    status: 'succeeded',
    amount: 100,
    currency: 'USD',
    provider_charge_id: 'pch_1',
    created_at: new Date().toISOString(),
  };
  assert.deepEqual(
    c.check({
      method: 'POST',
      path: '/charge',
      status: 201,
      contentType: 'application/json',
      body: JSON.stringify(ok),
    }),
    [],
  );
  const p = problem('validation_failed', { field: 'amount', detail: 'x' });
  assert.deepEqual(
    c.check({ method: 'POST', path: '/charge', status: 400, contentType: p.contentType, body: p.body }),
    [],
  );
  assert.notDeepEqual(
    c.check({
      method: 'POST',
      path: '/charge',
      status: 201,
      contentType: 'application/json',
      body: JSON.stringify({ ...ok, amount: 'lots' }),
    }),
    [],
  );
  assert.notDeepEqual(
    c.check({
      method: 'POST',
      path: '/charge',
      status: 400,
      contentType: p.contentType,
      body: problem('breaker_open').body,
    }),
    [],
    'a 503 code under 400',
  );
  assert.notDeepEqual(
    c.check({ method: 'POST', path: '/charge', status: 418, contentType: 'application/json', body: '{}' }),
    [],
  );
  assert.notDeepEqual(
    c.check({ method: 'GET', path: '/charges/k', status: 200, contentType: 'text/html', body: '<html>' }),
    [],
  );
  assert.equal(c.template('/charges/abc?x=1'), '/charges/{idempotencyKey}');
});

test('the request schema and the validator agree on what a charge body is', () => {
  const c = new Conformance(doc);
  const accepted = [
    { amount: 1, currency: 'usd', source: 't' },
    { amount: LIMITS.amountMax, currency: 'EUR', source: 'tok', description: 'd', metadata: { order: '1' } },
  ];
  const refused = [
    { amount: 0, currency: 'usd', source: 't' },
    { amount: 1.5, currency: 'usd', source: 't' },
    { amount: 1, currency: 'us', source: 't' },
    { amount: 1, currency: 'usd', source: '' },
    { amount: 1, currency: 'usd', source: 't', ammount: 1 },
    { amount: 1, currency: 'usd', source: 't', metadata: { n: 1 } },
    JSON.parse('{"amount":1,"currency":"usd","source":"t","metadata":{"__proto__":"x"}}') as unknown,
    {
      amount: 1,
      currency: 'usd',
      source: 't',
      metadata: Object.fromEntries(Array.from({ length: LIMITS.metadataMaxKeys + 1 }, (_, i) => [`k${i}`, 'v'])),
    },
  ];
  for (const body of accepted) {
    assert.ok(parseChargeBody(JSON.stringify(body)).ok, JSON.stringify(body));
    assert.deepEqual(c.checkRequestBody('POST', '/charge', body), [], JSON.stringify(body));
  }
  for (const body of refused) {
    const text = JSON.stringify(body);
    assert.equal(parseChargeBody(text).ok, false, `validator refuses ${text}`);
    assert.notDeepEqual(c.checkRequestBody('POST', '/charge', JSON.parse(text)), [], `schema refuses ${text}`);
  }
});
