/**
 * `bulwark scenario` and `bulwark bench` as a user runs them: --help, one-line
 * errors with exit 2, and one short real run through the CLI that writes the
 * three report files (JSON, Markdown, HTML) with the machine and the command
 * on top.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseOutcomes } from '../../src/lab/load/index.js';
import { sloGood } from '../../src/lab/load/outcomes.js';
import type { BenchReport } from '../../src/lab/report/types.js';
import { SCENARIOS } from '../../src/lab/scenario/plan/scenarios/index.js';
import { outcomesFile } from '../../src/lab/scenario/run/run-variant.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const cleanup: (() => Promise<void>)[] = [];
after(() => Promise.all(cleanup.map((f) => f())));

test('the eleven scenarios, by name, in bench order', () => {
  assert.deepEqual(
    SCENARIOS.map((s) => s.name),
    [
      'capacity',
      'slow-provider',
      'overload',
      'cpu-overload',
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
    for (const flag of ['--quick', '--out', '--variants', '--seed', '--seeds', '--outcomes'])
      assert.ok(help.stdout.includes(flag), `${cmd} ${flag}`);
    for (const name of [
      'capacity',
      'slow-provider',
      'overload',
      'cpu-overload',
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
  'a quick scenario run through the CLI writes report.json, report.md and report.html, and with --outcomes every charge the SLO counted',
  { timeout: 120_000 },
  async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bulwark-scenario-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const outcomes = path.join(dir, 'outcomes');
    const child = spawn(
      process.execPath,
      [
        CLI,
        'scenario',
        'bulkhead',
        '--quick',
        '--variants',
        'gateway',
        '--out',
        dir,
        '--outcomes',
        outcomes,
        '--progress',
        'off',
      ],
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
    assert.equal(
      report.command,
      `bulwark scenario bulkhead --quick --variants gateway --out ${dir} --outcomes ${outcomes} --progress off`,
    );
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
    // After the generated-file header, the title.
    assert.match(md, /^<!-- Generated by bulwark [^\n]* do not edit [^\n]*-->\n# bulwark bench report\n/);
    assert.match(md, /## bulkhead/);
    const html = await readFile(path.join(dir, 'report.html'), 'utf8');
    assert.match(html, /<svg/);
    // One line per charge key, and the SLO's rule applied to the lines gives the report's count.
    const v = report.scenarios[0]!.variants[0]!;
    const threshold = v.not_good?.threshold_ms;
    assert.ok(threshold !== undefined && threshold > 0, 'the report names the SLO threshold');
    const file = outcomesFile(outcomes, 'bulkhead', 'gateway', 1);
    assert.deepEqual(await readdir(outcomes), [path.basename(file)]);
    assert.equal(path.basename(file), 'bulkhead-gateway-seed1.ndjson');
    const lines = parseOutcomes(await readFile(file, 'utf8'));
    assert.equal(lines.length, v.slo.total);
    assert.equal(new Set(lines.map((o) => o.key)).size, lines.length);
    for (const o of lines) {
      assert.equal(o.history.length, o.attempts, o.key);
      assert.equal(o.history.at(-1), o.status, o.key);
      assert.ok(o.intended_ms >= 0 && o.latency_ms >= 0, o.key);
    }
    assert.equal(lines.filter((o) => sloGood(o.status, o.latency_ms, threshold)).length, v.slo.good);
  },
);

/**
 * Scenarios whose quick form has a test file of its own, asserting the run
 * and its audit but reporting its checks (they measure what a shared
 * machine cannot promise; see the file).
 */
const OWN_QUICK_TEST: Readonly<Record<string, string>> = { 'cpu-overload': 'scenario-cpu-overload.test.js' };

test('the quick-form test files cover every scenario exactly once', async () => {
  const { readdir, readFile: read } = await import('node:fs/promises');
  const dir = path.dirname(fileURLToPath(import.meta.url));
  const all = await readdir(dir);
  const files = all.filter((f) => /^scenario-quick-\d+\.test\.js$/.test(f));
  const covered = (await Promise.all(files.map((f) => read(path.join(dir, f), 'utf8')))).flatMap((src) =>
    [...src.matchAll(/quickScenarioTests\(\[([^\]]*)\]\)/g)].flatMap((m) =>
      m[1]!.split(',').map((s) => s.trim().replace(/^'|'$/g, '')),
    ),
  );
  for (const [name, file] of Object.entries(OWN_QUICK_TEST)) {
    assert.ok(all.includes(file), `${name} is covered by ${file}`);
    assert.match(await read(path.join(dir, file), 'utf8'), new RegExp(`scenarioNamed\\('${name}'\\)`));
    covered.push(name);
  }
  assert.deepEqual([...covered].sort(), SCENARIOS.map((s) => s.name).sort());
});

/** Processes whose command line names `text` (read from /proc, as pgrep would). */
async function processesNaming(text: string): Promise<number[]> {
  const { readdir } = await import('node:fs/promises');
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmd = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(text)) pids.push(Number(entry));
  }
  return pids;
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`a scenario interrupted by ${signal} stops the lab's Postgres and removes its data directory, and exits as the signal would`, async () => {
    const out = await mkdtemp(path.join(tmpdir(), 'bulwark-sig-'));
    cleanup.push(() => rm(out, { recursive: true, force: true }));
    const child = spawn(
      process.execPath,
      [CLI, 'scenario', 'bulkhead', '--quick', '--variants', 'gateway', '--out', out],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    // Under load: the service is up, the Postgres behind it has been handed to pg_ctl.
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no service within 60 s: ${stderr}`)), 60_000);
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString('utf8');
        if (/listening on/.test(stderr)) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    const dir = /postgres on port \d+ \((\S+)\)/.exec(stderr)?.[1];
    assert.ok(dir, `the lab named its Postgres directory: ${stderr}`);
    assert.ok((await processesNaming(dir)).length > 0, 'its Postgres runs');
    child.kill(signal);
    assert.equal(await exited, signal === 'SIGINT' ? 130 : 143, stderr);
    assert.deepEqual(await processesNaming(dir), [], `no process left on ${dir}`);
    await assert.rejects(readFile(path.join(dir, 'pg', 'PG_VERSION')), 'the data directory is gone');
  });
}
