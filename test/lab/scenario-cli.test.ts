/**
 * `bulwark scenario` and `bulwark bench` as a user runs them: --help, one-line
 * errors with exit 2, and one short real run through the CLI that writes the
 * three report files (JSON, Markdown, HTML) with the machine and the command
 * on top.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchReport } from '../../src/lab/report/types.js';
import { SCENARIOS } from '../../src/lab/scenario/plan/scenarios/index.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const cleanup: (() => Promise<void>)[] = [];
after(() => Promise.all(cleanup.map((f) => f())));

test('the ten scenarios, by name, in bench order', () => {
  assert.deepEqual(
    SCENARIOS.map((s) => s.name),
    [
      'capacity',
      'slow-provider',
      'overload',
      'retry-storm',
      'deploy',
      'bulkhead',
      'cascade',
      'crash',
      'abuse',
      'rolling-restart',
    ],
  );
});

test('scenario and bench --help list the options and the scenarios; both are in the top-level help', () => {
  for (const cmd of ['scenario', 'bench']) {
    const help = spawnSync(process.execPath, [CLI, cmd, '--help'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, new RegExp(`Usage: bulwark ${cmd}`));
    for (const flag of ['--quick', '--out', '--variants', '--seed'])
      assert.ok(help.stdout.includes(flag), `${cmd} ${flag}`);
    for (const name of [
      'capacity',
      'slow-provider',
      'overload',
      'retry-storm',
      'deploy',
      'bulkhead',
      'cascade',
      'crash',
      'abuse',
      'rolling-restart',
    ])
      assert.ok(help.stdout.includes(name), `${cmd} names ${name}`);
  }
  const top = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8', timeout: 20_000 });
  assert.match(top.stdout, /^\s+scenario\s/m);
  assert.match(top.stdout, /^\s+bench\s/m);
});

test('an unknown scenario, a missing name or a bad variant exits 2 with one line', () => {
  const cases: [string[], RegExp][] = [
    [['scenario', 'nope'], /^bulwark scenario: unknown scenario "nope" \(allowed: capacity, slow-provider/],
    [['scenario'], /^bulwark scenario: bulwark scenario needs one scenario NAME/],
    [
      ['scenario', 'deploy', '--variants', 'gateway,fastify'],
      /^bulwark scenario: --variants: "fastify" is not a variant/,
    ],
    [['bench', 'extra'], /^bulwark bench: unexpected argument "extra"/],
  ];
  for (const [args, pattern] of cases) {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr.trim(), pattern);
  }
});

test(
  'a quick scenario run through the CLI writes report.json, report.md and report.html',
  { timeout: 120_000 },
  async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bulwark-scenario-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const child = spawn(
      process.execPath,
      [CLI, 'scenario', 'bulkhead', '--quick', '--variants', 'gateway', '--out', dir, '--progress', 'off'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    assert.match(stdout, /bulkhead:\n {2}pass {2}gateway: no charge lost/);
    const report = JSON.parse(await readFile(path.join(dir, 'report.json'), 'utf8')) as BenchReport;
    assert.equal(report.command, `bulwark scenario bulkhead --quick --variants gateway --out ${dir} --progress off`);
    assert.ok(report.machine.cores > 0 && report.machine.cpu_model !== '' && report.machine.node === process.version);
    assert.deepEqual(
      report.scenarios.map((s) => s.scenario),
      ['bulkhead'],
    );
    assert.deepEqual(
      report.scenarios[0]!.variants.map((v) => v.variant),
      ['gateway'],
    );
    const md = await readFile(path.join(dir, 'report.md'), 'utf8');
    assert.match(md, /^# bulwark bench report/);
    assert.match(md, /## bulkhead/);
    const html = await readFile(path.join(dir, 'report.html'), 'utf8');
    assert.match(html, /<svg/);
  },
);

test('the quick-form test files cover every scenario exactly once', async () => {
  const { readdir, readFile: read } = await import('node:fs/promises');
  const dir = path.dirname(fileURLToPath(import.meta.url));
  const files = (await readdir(dir)).filter((f) => /^scenario-quick-\d+\.test\.js$/.test(f));
  const covered = (await Promise.all(files.map((f) => read(path.join(dir, f), 'utf8')))).flatMap((src) =>
    [...src.matchAll(/quickScenarioTests\(\[([^\]]*)\]\)/g)].flatMap((m) =>
      m[1]!.split(',').map((s) => s.trim().replace(/^'|'$/g, '')),
    ),
  );
  assert.deepEqual([...covered].sort(), SCENARIOS.map((s) => s.name).sort());
});
