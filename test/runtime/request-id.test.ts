import { test } from 'node:test';
import assert from 'node:assert/strict';
import { json, problem } from '../../src/errors/catalogue.js';
import { bodyFor, failedAnswerLog, requestIdFrom } from '../../src/runtime/request-id.js';
import type { Logger } from '../../src/runtime/logger.js';

test('a sane client id is kept; anything else gets a UUID', () => {
  for (const ok of ['abc', 'req-1.2:3@x/y+z=', 'a'.repeat(128)]) assert.equal(requestIdFrom(ok), ok);
  for (const bad of [undefined, '', 'a b', 'a"b', 'é', 'a'.repeat(129), 'a\nb'])
    assert.match(requestIdFrom(bad), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
});

test('problem bodies carry the id as instance; stored outcomes and other bodies are left as they are', () => {
  const p = JSON.parse(bodyFor(problem('db_unavailable'), 'r1')) as { instance: string; code: string };
  assert.equal(p.instance, 'urn:bulwark:request:r1');
  assert.equal(p.code, 'db_unavailable');
  const decline = problem('card_declined');
  assert.equal(bodyFor(decline, 'r1'), decline.body, 'a 402 is replayed byte for byte');
  const ok = json(201, { id: 'ch_1' });
  assert.equal(bodyFor(ok, 'r1'), ok.body);
});

test('failed answers are logged with their id, shedding left out, at most N a second', () => {
  const lines: Record<string, unknown>[] = [];
  const log = { warn: (o: Record<string, unknown>, msg: string) => lines.push({ ...o, msg }) } as unknown as Logger;
  let t = 0;
  const failed = failedAnswerLog(log, 2, () => t);
  failed('a', '/charge', 503, problem('db_unavailable').body);
  failed('b', '/charge', 503, problem('overloaded').body);
  failed('c', '/charge', 201, '{}');
  failed('d', '/charge', 504, problem('deadline_exceeded').body);
  failed('e', '/charge', 503, problem('db_unavailable').body);
  assert.deepEqual(
    lines.map((l) => [l.request_id, l.code]),
    [
      ['a', 'db_unavailable'],
      ['d', 'deadline_exceeded'],
    ],
  );
  t = 1000;
  failed('f', '/charge', 500, problem('internal_error').body);
  assert.deepEqual(
    lines.slice(2).map((l) => l.not_logged ?? l.request_id),
    [1, 'f'],
  );
});
