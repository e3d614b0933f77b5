/**
 * outcome-windows counts where a run's charges missed the SLO by the window
 * after each event their intended send fell in: plain outcomes in, counts out,
 * and the command as a user runs it on a file `--outcomes` wrote.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { outcomeWindows } from '../../scripts/outcome-windows.js';
import type { ChargeOutcome } from '../../src/lab/load/types.js';

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../scripts/outcome-windows.js');

const charge = (
  n: number,
  intendedMs: number,
  history: ChargeOutcome['history'],
  latencyMs: number,
): ChargeOutcome => ({
  key: `k${n}`,
  status: history.at(-1)!,
  attempts: history.length,
  history,
  latency_ms: latencyMs,
  intended_ms: intendedMs,
  replayed: false,
});

const OUTCOMES: ChargeOutcome[] = [
  charge(1, 1_000, [201], 120), // good, before any event
  charge(2, 2_000, [201], 350), // slow, elsewhere
  charge(3, 8_100, ['error', 'error', 'error'], 400), // in [0, 0.5) after 8
  charge(4, 14_200, ['error', 503, 201], 1_300), // in [0, 0.5) after 14
  charge(5, 8_600, [201], 340), // in [0.5, 2) after 8: slow
  charge(6, 14_900, [201], 200), // in [0.5, 2) after 14: good
  { ...charge(7, 15_000, [503, 201], 1_200), codes: ['starting', ''] }, // in [0.5, 2) after 14
  charge(8, 8_700, [201], 330), // in [0.5, 2) after 8: slow
  charge(9, 9_000, [500], 90), // in [0.5, 2) after 8: 5xx, fast but not good
];

test('charges not good are counted by the window after an event their intended send fell in, summed over events', () => {
  const w = outcomeWindows(OUTCOMES, [8, 14], [0, 0.5, 2], 300);
  assert.equal(w.charges, 9);
  assert.equal(w.not_good, 7);
  assert.equal(w.not_good_elsewhere, 1);
  assert.deepEqual(
    w.windows.map((x) => [x.from_s, x.to_s, x.charges, x.not_good]),
    [
      [0, 0.5, 2, 2],
      [0.5, 2, 5, 4],
    ],
  );
  assert.deepEqual(w.windows[1]!.histories, [
    ['201', 2],
    ['500', 1],
    ['503 starting,201', 1],
  ]);
  assert.deepEqual(w.windows[0]!.histories, [
    ['error,503,201', 1],
    ['error,error,error', 1],
  ]);
});

test('the command reads --outcomes files and prints the windows; bad arguments exit 2 with one line', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'outcome-windows-'));
  try {
    const file = path.join(dir, 'deploy-gateway-seed1.ndjson');
    writeFileSync(file, OUTCOMES.map((o) => JSON.stringify(o)).join('\n') + '\n');
    const r = spawnSync(process.execPath, [SCRIPT, '--at', '8,14', '--edges', '0,0.5,2', file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stdout,
      [
        'deploy-gateway-seed1.ndjson: 7 of 9 charges not good',
        '  [0, 0.5) s after each event: 2 of 2 (error,503,201 ×1, error,error,error ×1)',
        '  [0.5, 2) s after each event: 4 of 5 (201 ×2, 500 ×1, 503 starting,201 ×1)',
        '  elsewhere: 1',
        '',
      ].join('\n'),
    );
    const bad = spawnSync(process.execPath, [SCRIPT, '--at', '8,x', '--edges', '0,1', file], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.equal(bad.stderr, 'outcome-windows: --at: a comma-separated list of numbers; got "8,x"\n');
    const none = spawnSync(process.execPath, [SCRIPT, '--at', '8'], { encoding: 'utf8' });
    assert.equal(none.status, 2);
    assert.match(none.stderr, /^outcome-windows: usage: /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
