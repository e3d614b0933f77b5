import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

function run(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 20_000,
  });
}

test('serve refuses to start on the pure-JS uWebSockets.js fallback, with a clear message', () => {
  const r = run(['serve'], { UWS_USE_FALLBACK: '1', PORT: '0' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /uWebSockets\.js native binding did not load/);
  assert.match(r.stderr, /refusing to start/);
  assert.match(r.stderr, /ships binaries for Node 16, 18, 20 on linux-x64/);
  assert.doesNotMatch(r.stdout + r.stderr, /listening/);
});

test('a bad setting stops start-up with one line naming it, the value and what is allowed', () => {
  const r = run(['serve'], { WORKERS: 'many' });
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim(), 'bulwark serve: WORKERS must be an integer from 1 to 256; got "many"');
});

test('every subcommand has --help; an unknown command is refused', () => {
  for (const cmd of ['serve', 'simulate', 'baseline']) {
    const r = run([cmd, '--help']);
    assert.equal(r.status, 0, cmd);
    assert.match(r.stdout, new RegExp(`Usage: bulwark ${cmd}`), cmd);
  }
  const top = run(['--help']);
  assert.equal(top.status, 0);
  assert.match(top.stdout, /serve/);
  const bad = run(['nope']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown command "nope"/);
});

test('package.json engines allows only Node majors the uWebSockets.js build ships a binary for', async () => {
  const { supportedNodeMajors } = await import('../../src/gateway/native.js');
  const { readFileSync } = await import('node:fs');
  const pkg = JSON.parse(readFileSync(path.resolve(path.dirname(CLI), '../../../package.json'), 'utf8')) as {
    engines: { node: string };
  };
  const m = /^>=(\d+)\.\d+ <(\d+)$/.exec(pkg.engines.node);
  assert.ok(m, `engines.node is a closed range: ${pkg.engines.node}`);
  const supported = supportedNodeMajors();
  for (let major = Number(m[1]); major < Number(m[2]); major++)
    assert.ok(
      supported.includes(major),
      `Node ${major} is allowed by engines but has no binary (${supported.join(', ')})`,
    );
  assert.ok(supported.includes(Number(process.versions.node.split('.')[0])), 'the Node running the tests is supported');
});

test('--version prints the version and build; serve --help is grouped and works with a bad environment', () => {
  const v = run(['--version']);
  assert.equal(v.status, 0);
  assert.match(v.stdout, /^bulwark \d+\.\d+\.\d+ \(commit \S+, built \S+, node v\d+/);
  const h = run(['serve', '--help'], { WORKERS: 'many', DB_POOL_MAX: 'lots' });
  assert.equal(h.status, 0, h.stderr);
  for (const heading of [
    'Listeners:',
    'Postgres:',
    'Charge lifecycle:',
    'Mechanisms: admission and shedding:',
    'Process: workers and shutdown:',
  ])
    assert.ok(h.stdout.includes(`\n${heading}\n`), heading);
  assert.doesNotMatch(h.stdout, /\nOther:\n/, 'every gateway setting has a heading');
  const b = run(['baseline', '--help'], { BASELINE_PORT: 'x' });
  assert.equal(b.status, 0, b.stderr);
});
