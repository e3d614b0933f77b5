import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const ROOT = path.resolve(path.dirname(CLI), '../../..');
const readJson = (file: string) =>
  JSON.parse(readFileSync(path.resolve(ROOT, file), 'utf8')) as Record<string, unknown>;
const enginesNode = (readJson('package.json').engines as { node: string }).node;

/** semver is in node_modules (a transitive dependency) without types: the part used here. */
interface SemVer {
  version: string;
  major: number;
  minor: number;
  patch: number;
}
const semver = createRequire(import.meta.url)('semver') as {
  satisfies(version: string, range: string): boolean;
  subset(sub: string, dom: string): boolean;
  minVersion(range: string): SemVer | null;
  gt(a: string, b: string): boolean;
};

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
  // The advice is what engines allows, never a Node the service does not support.
  assert.ok(r.stderr.includes(`engines allows (node ${enginesNode})`), r.stderr);
  assert.match(r.stderr, /has a binary on linux-x64 for Node 20\.\n?$/);
  assert.doesNotMatch(r.stderr, /Node 1[68]\b|\b16, 18\b/);
  assert.doesNotMatch(r.stdout + r.stderr, /listening/);
});

test('a bad setting stops start-up with one line naming it, the value and what is allowed', () => {
  const r = run(['serve'], { WORKERS: 'many' });
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim(), 'bulwark serve: WORKERS must be an integer from 0 to 256; got "many"');
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
  const m = /^>=(\d+)\.\d+\.\d+ <(\d+)$/.exec(enginesNode);
  assert.ok(m, `engines.node is a closed range: ${enginesNode}`);
  const supported = supportedNodeMajors();
  for (let major = Number(m[1]); major < Number(m[2]); major++)
    assert.ok(
      supported.includes(major),
      `Node ${major} is allowed by engines but has no binary (${supported.join(', ')})`,
    );
  assert.ok(semver.satisfies(process.versions.node, enginesNode), 'the Node running the tests is allowed');
});

/**
 * Packages the service installs whose own `engines` engines does not imply,
 * each with why that is safe. A stale entry fails too.
 */
const ENGINES_EXCEPTIONS: Readonly<Record<string, string>> = {
  // fastify → light-my-request → cookie 2 says >=22; fastify requires
  // light-my-request only inside inject(), which the service never calls.
  cookie: 'light-my-request',
};

test('every Node engines allows is one every runtime package allows: the floor is the highest they ask for', () => {
  const lock = readJson('package-lock.json') as {
    packages: Record<string, { dev?: boolean; engines?: { node?: string } }>;
  };
  const offenders: string[] = [];
  const floors: string[] = [];
  for (const [where, entry] of Object.entries(lock.packages)) {
    const range = entry.engines?.node;
    if (where === '' || entry.dev || !range) continue;
    const name = where.replace(/^.*node_modules\//, '');
    // The lock copies each package's engines: check the installed copy says the same
    // (other platforms' optional binaries are in the lock, not installed).
    if (existsSync(path.join(ROOT, where))) {
      const installed = (readJson(path.join(where, 'package.json')) as { engines?: { node?: string } }).engines?.node;
      assert.equal(installed, range, `${where}: package-lock and package.json disagree`);
    }
    if (semver.subset(enginesNode, range)) {
      floors.push(semver.minVersion(range)!.version);
      assert.ok(!(name in ENGINES_EXCEPTIONS), `${name} is allowed now: drop its exception`);
    } else if (!(name in ENGINES_EXCEPTIONS)) offenders.push(`${where} needs node ${range}`);
  }
  assert.deepEqual(offenders, [], `engines.node ${enginesNode} allows versions these runtime packages do not`);
  // Not looser than it must be, and not stricter: the floor is the highest floor a package asks for.
  const highest = floors.reduce((a, b) => (semver.gt(b, a) ? b : a));
  assert.equal(semver.minVersion(enginesNode)!.version, highest);
  for (const direct of Object.keys(readJson('package.json').dependencies as object))
    assert.ok(`node_modules/${direct}` in lock.packages, `${direct} is in the lock`);
});

test('start-up refuses any Node outside engines, naming the range', async () => {
  const { checkNodeVersion, NODE_ENGINES } = await import('../../src/gateway/native.js');
  assert.equal(NODE_ENGINES, enginesNode);
  const floor = semver.minVersion(enginesNode)!;
  const justBelow = floor.patch > 0 ? `${floor.major}.${floor.minor}.${floor.patch - 1}` : `${floor.major - 1}.99.0`;
  for (const v of [justBelow, '16.20.2', '18.20.4', '20.10.0', '21.0.0', '22.11.0', '24.1.0']) {
    assert.equal(semver.satisfies(v, enginesNode), false, v);
    assert.throws(
      () => checkNodeVersion(v),
      (e: Error) => e.name === 'NativeBindingError' && e.message.includes(`engines: node ${enginesNode}`),
      v,
    );
  }
  for (const v of [floor.version, `${floor.major}.${floor.minor + 1}.0`, '20.99.99', process.versions.node]) {
    assert.equal(semver.satisfies(v, enginesNode), true, v);
    checkNodeVersion(v);
  }
  // A range in any other shape is refused, not guessed at.
  assert.throws(() => checkNodeVersion('20.18.1', '^20.18.1'), /engines.node must read/);
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
