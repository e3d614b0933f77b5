/**
 * `bulwark load` as a user runs it: --help, a bad flag exits 2 with one
 * line, and a short run prints the table and writes the JSON result (with
 * the slo block `bulwark slo burn` reads) and one outcome line per key.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseOutcomes } from '../../src/lab/load/outcomes.js';
import { charged, send, startServer, type TestServer } from './fixtures/load-servers.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const cleanup: (() => Promise<void>)[] = [];
after(() => Promise.all(cleanup.map((f) => f())));

test('bulwark load --help lists its options; a bad flag or value exits 2 with one line', () => {
  const help = spawnSync(process.execPath, [CLI, 'load', '--help'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /Usage: bulwark load/);
  for (const flag of [
    '--rate',
    '--schedule',
    '--steps',
    '--duration',
    '--deadline-ms',
    '--connections',
    '--mix',
    '--retry',
    '--seed',
    '--json',
    '--outcomes',
    '--max-requests',
    '--slo-latency-ms',
  ]) {
    assert.ok(help.stdout.includes(flag), flag);
  }
  const top = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8', timeout: 20_000 });
  assert.match(top.stdout, /^\s+load\s/m);

  const bad = spawnSync(process.execPath, [CLI, 'load', '--nope'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr.trim(), 'bulwark load: unknown option --nope (see --help)');
  const badValue = spawnSync(process.execPath, [CLI, 'load', '--rate', 'fast'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(badValue.status, 2);
  assert.equal(badValue.stderr.trim(), 'bulwark load: --rate must be a number >= 0; got "fast"');
});

test('a CLI run prints the table and writes the JSON result and one outcome line per key', async () => {
  const s: TestServer = await startServer((seen, _req, res) => send(res, 201, charged(seen.key)));
  const dir = await mkdtemp(path.join(tmpdir(), 'bulwark-load-'));
  cleanup.push(
    () => s.close(),
    () => rm(dir, { recursive: true, force: true }),
  );
  const json = path.join(dir, 'result.json');
  const outcomes = path.join(dir, 'outcomes.jsonl');
  const child = spawn(
    process.execPath,
    [
      CLI,
      'load',
      '--url',
      s.url,
      '--rate',
      '40',
      '--duration',
      '1',
      '--seed',
      '9',
      '--json',
      json,
      '--outcomes',
      outcomes,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 0, stderr);
  assert.match(stdout, /per second/);
  assert.match(stdout, /^total\s+40\s+40\s+0\s+40\s+40\s/m);
  assert.match(stdout, /slo \/charge: 40\/40 good/);
  assert.match(stderr, /\[load\] t=0s offered 40/);

  const result = JSON.parse(await readFile(json, 'utf8')) as Record<string, unknown> & {
    slo: Record<string, unknown>;
    totals: { offered: number };
  };
  assert.deepEqual(result.slo, {
    route: '/charge',
    total: 40,
    good: 40,
    duration_seconds: 1,
    latency_threshold_ms: 300,
  });
  assert.equal(result.totals.offered, 40);
  assert.equal(result.outcomes, undefined, 'per-key outcomes live in their own file');
  assert.equal(result.outcomes_file, outcomes);
  for (const field of ['run_id', 'seed', 'behind_schedule', 'schedule_lag', 'classes', 'seconds', 'stopped_by'])
    assert.ok(field in result, field);

  const lines = parseOutcomes(await readFile(outcomes, 'utf8'));
  assert.equal(lines.length, 40);
  assert.deepEqual(
    lines.map((o) => o.key),
    Array.from({ length: 40 }, (_, i) => `load-9-${i + 1}`),
  );
  assert.ok(lines.every((o) => o.status === 201 && o.attempts === 1 && o.provider_charge_id === `pc_${o.key}`));
});
