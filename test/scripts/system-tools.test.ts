/**
 * Suites that need a system binary skip on a developer's fresh machine with a
 * line naming the Debian package, and fail under BULWARK_REQUIRE_SYSTEM_TOOLS=1
 * (CI), so CI can never pass by skipping them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REQUIRE_ENV, systemTool } from '../support/system-tools.js';

const missing = 'bulwark-no-such-tool';

test('a missing tool skips with the Debian package to install', () => {
  const t = systemTool(missing, 'some-debian-pkg', { PATH: '/nonexistent' });
  assert.equal(t.path, undefined);
  assert.match(String(t.skip), /apt-get install some-debian-pkg/);
});

test(`a missing tool fails under ${REQUIRE_ENV}=1`, () => {
  assert.throws(
    () => systemTool(missing, 'some-debian-pkg', { PATH: '/nonexistent', [REQUIRE_ENV]: '1' }),
    /apt-get install some-debian-pkg/,
  );
});

test('a present tool is found on PATH, and an override names its path', () => {
  const sh = systemTool('sh', 'dash', { PATH: '/bin:/usr/bin', [REQUIRE_ENV]: '1' });
  assert.equal(sh.skip, false);
  assert.match(sh.path ?? '', /\/sh$/);
  assert.equal(systemTool('sh', 'dash', { PATH: '/nonexistent', SH: '/bin/sh' }).path, '/bin/sh');
});
