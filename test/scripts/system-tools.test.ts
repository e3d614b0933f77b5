/**
 * Suites that need a system binary skip on a developer's fresh machine with a
 * line naming the Debian package, and fail under BULWARK_REQUIRE_SYSTEM_TOOLS=1
 * (CI), so CI can never pass by skipping them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DIRS_ENV, REQUIRE_ENV, SYSTEM_TOOL_DIRS, systemTool } from '../support/system-tools.js';

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

test('PATH without sbin still finds a tool Debian installs in /usr/sbin (haproxy)', () => {
  const onlyInSbin = readdirSync('/usr/sbin').find((n) => !existsSync(path.join('/usr/bin', n)));
  assert.ok(onlyInSbin, 'this machine has some binary in /usr/sbin that /usr/bin lacks');
  const env = { PATH: '/nonexistent', [REQUIRE_ENV]: '1' };
  assert.equal(systemTool(onlyInSbin, 'x', env).path, path.join('/usr/sbin', onlyInSbin));
  assert.ok(SYSTEM_TOOL_DIRS.includes('/usr/local/bin'));
});

test(`${DIRS_ENV} replaces the fixed folders, so the skip path can be run where the tools are installed`, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'bulwark-tools-'));
  try {
    await writeFile(path.join(dir, missing), '#!/bin/sh\n', { mode: 0o755 });
    assert.equal(systemTool(missing, 'x', { PATH: '/nonexistent', [DIRS_ENV]: dir }).path, path.join(dir, missing));
    // `sh` is in /usr/bin (and /bin): with no fixed folders and no PATH, it is missing.
    assert.match(String(systemTool('sh', 'dash', { PATH: '/nonexistent', [DIRS_ENV]: '' }).skip), /SKIPPED/);
    assert.throws(() => systemTool('sh', 'dash', { PATH: '/nonexistent', [DIRS_ENV]: '', [REQUIRE_ENV]: '1' }));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
