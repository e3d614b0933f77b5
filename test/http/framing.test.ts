import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FramingCheck } from '../../src/http/framing.js';

const inDoubt = (headers: [string, string][]): boolean => {
  const f = new FramingCheck();
  for (const [n, v] of headers) f.see(n, v);
  return f.inDoubt;
};

test('plain framing is not in doubt: one length, the same length twice, one chunked, neither', () => {
  assert.equal(inDoubt([]), false);
  assert.equal(inDoubt([['content-length', '51']]), false);
  assert.equal(
    inDoubt([
      ['content-length', '51'],
      ['content-length', '51'],
    ]),
    false,
  );
  assert.equal(
    inDoubt([
      ['content-length', '51'],
      ['content-length', '051'],
    ]),
    false,
    'the same number',
  );
  assert.equal(inDoubt([['transfer-encoding', 'chunked']]), false);
  assert.equal(inDoubt([['transfer-encoding', ' Chunked ']]), false);
  assert.equal(
    inDoubt([
      ['host', 'x'],
      ['x-request-id', 'r'],
    ]),
    false,
  );
});

test('lengths that differ, a length that is not a number, and any coding but one chunked are in doubt', () => {
  assert.equal(
    inDoubt([
      ['content-length', '51'],
      ['content-length', '120'],
    ]),
    true,
  );
  assert.equal(
    inDoubt([
      ['content-length', '51'],
      ['content-length', '51'],
      ['content-length', '0'],
    ]),
    true,
  );
  for (const v of ['abc', '+5', '-1', '5,5', '0x5', ''])
    assert.equal(inDoubt([['content-length', v]]), true, JSON.stringify(v));
  for (const v of ['gzip', 'identity', 'xchunked', 'chunkedx', 'chunked, identity', 'gzip, chunked', ''])
    assert.equal(inDoubt([['transfer-encoding', v]]), true, JSON.stringify(v));
  assert.equal(
    inDoubt([
      ['transfer-encoding', 'chunked'],
      ['transfer-encoding', 'chunked'],
    ]),
    true,
    'twice, even the same',
  );
});
