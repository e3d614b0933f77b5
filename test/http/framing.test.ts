import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FramingCheck } from '../../src/http/framing.js';

const inDoubt = (headers: [string, string][]): boolean => {
  const f = new FramingCheck();
  for (const [n, v] of headers) f.see(n, v);
  return f.inDoubt;
};

const cl = (v: string): [string, string] => ['content-length', v];
const te = (v: string): [string, string] => ['transfer-encoding', v];

test('plain framing is not in doubt: one length, the same length twice, one chunked, neither', () => {
  const plain: [string, [string, string][]][] = [
    [
      'no framing header',
      [
        ['host', 'x'],
        ['x-request-id', 'r'],
      ],
    ],
    ['one length', [cl('51')]],
    ['the same length twice', [cl('51'), cl('51')]],
    ['the same number twice', [cl('51'), cl('051')]],
    ['one chunked', [te('chunked')]],
    ['one chunked, any case and blanks', [te(' Chunked ')]],
  ];
  for (const [why, hs] of plain) assert.equal(inDoubt(hs), false, why);
});

test('lengths that differ, a length that is not a number, a length with a coding, and any coding but one chunked are in doubt', () => {
  const doubtful: [string, [string, string][]][] = [
    ['two lengths', [cl('51'), cl('120')]],
    ['a third length that differs', [cl('51'), cl('51'), cl('0')]],
    ['chunked twice, even the same', [te('chunked'), te('chunked')]],
    ['a length, then chunked', [cl('51'), te('chunked')]],
    ['chunked, then a length', [te('chunked'), cl('51')]],
    ...['abc', '+5', '-1', '5,5', '0x5', ''].map((v): [string, [string, string][]] => [
      `length ${JSON.stringify(v)}`,
      [cl(v)],
    ]),
    ...['gzip', 'identity', 'xchunked', 'chunkedx', 'chunked, identity', 'gzip, chunked', ''].map(
      (v): [string, [string, string][]] => [`coding ${JSON.stringify(v)}`, [te(v)]],
    ),
  ];
  for (const [why, hs] of doubtful) assert.equal(inDoubt(hs), true, why);
});

test('one check serves request after request: reset forgets the last one', () => {
  const f = new FramingCheck();
  f.see('content-length', '5');
  f.see('content-length', '6');
  assert.equal(f.inDoubt, true);
  f.reset().see('content-length', '6');
  assert.equal(f.inDoubt, false, 'the earlier length is forgotten');
  f.reset().see('transfer-encoding', 'chunked');
  assert.equal(f.inDoubt, false, 'and the count of codings');
});
