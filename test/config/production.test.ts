/**
 * Production-safe defaults, judged on the compiled CLI: with
 * NODE_ENV=production `serve` and `baseline` refuse to start without real
 * downstreams (never an embedded Postgres or a simulator), and no error or
 * log line carries a secret.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { freePort } from '../../src/db/embedded.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

function run(args: string[], env: Record<string, string>) {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'bulwark-prod-'));
  try {
    const base: Record<string, string | undefined> = {
      ...process.env,
      PORT: '0',
      ADMIN_PORT: '0',
      BASELINE_PORT: '0',
      EMBEDDED_PG_PORT: '0',
      SIM_PROVIDER_PORT: '0',
      SIM_FX_PORT: '0',
      BULWARK_DATA_DIR: dataDir,
    };
    for (const k of ['DATABASE_URL', 'PROVIDER_URL', 'FX_URL', 'PROVIDER_KEY_SECRET', 'NODE_ENV']) delete base[k];
    const r = spawnSync(process.execPath, [CLI, ...args], {
      encoding: 'utf8',
      env: { ...base, ...env },
      timeout: 30_000,
    });
    // Nothing was started under the data directory: no embedded Postgres.
    return { ...r, dataDirEntries: readdirSync(dataDir) };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

for (const cmd of ['serve', 'baseline']) {
  test(`${cmd}: NODE_ENV=production without downstreams stops with one line naming every missing one, and starts nothing`, () => {
    const r = run([cmd], { NODE_ENV: 'production' });
    assert.equal(r.status, 2, r.stderr);
    assert.equal(
      r.stderr.trim(),
      `bulwark ${cmd}: NODE_ENV=production needs DATABASE_URL, PROVIDER_URL, FX_URL, PROVIDER_KEY_SECRET (missing); the embedded Postgres, the simulator and the development provider key secret are for development only`,
    );
    assert.doesNotMatch(r.stdout, /embedded postgres started|simulator started|listening/);
    assert.deepEqual(r.dataDirEntries, []);
  });

  test(`${cmd}: NODE_ENV=production names only what is missing`, () => {
    const r = run([cmd], {
      NODE_ENV: 'production',
      DATABASE_URL: 'postgres://u:hunter2hunter2@127.0.0.1:1/db',
      PROVIDER_URL: 'http://127.0.0.1:1',
      FX_URL: 'http://127.0.0.1:1',
    });
    assert.equal(r.status, 2);
    assert.match(
      r.stderr.trim(),
      new RegExp(`^bulwark ${cmd}: NODE_ENV=production needs PROVIDER_KEY_SECRET \\(missing\\)`),
    );
    assert.doesNotMatch(r.stderr + r.stdout, /hunter2/);
  });
}

test('a bad DATABASE_URL is reported with its password masked; a bad secret is not shown at all', () => {
  const bad = run(['serve'], { DATABASE_URL: 'mysql://app:s3cr3t-pw@db.internal:3306/x' });
  assert.equal(bad.status, 2);
  assert.equal(
    bad.stderr.trim(),
    'bulwark serve: DATABASE_URL must be an http(s) or postgres URL; got "mysql://app:***@db.internal:3306/x"',
  );
  const unparseable = run(['baseline'], { DATABASE_URL: 'postgres://app:s3cr3t-pw@db.internal:notaport/x' });
  assert.equal(unparseable.status, 2);
  assert.doesNotMatch(unparseable.stderr, /s3cr3t/);
  assert.match(
    unparseable.stderr,
    /DATABASE_URL must be an absolute URL; got "postgres:\/\/app:\*\*\*@db\.internal:notaport\/x"/,
  );
  const short = run(['serve'], { PROVIDER_KEY_SECRET: 'tooshort' });
  assert.equal(short.status, 2);
  assert.equal(
    short.stderr.trim(),
    'bulwark serve: PROVIDER_KEY_SECRET must be at least 16 characters; got a value of 8 characters',
  );
});

test('production with every setting waits for its database with one line per wait, then fails naming host and port only', async () => {
  const port = await freePort(); // nothing listens there
  const r = run(['serve'], {
    NODE_ENV: 'production',
    DATABASE_URL: `postgres://app:s3cr3t-pw@127.0.0.1:${port}/bulwark`,
    PROVIDER_URL: 'http://127.0.0.1:1',
    FX_URL: 'http://127.0.0.1:1',
    PROVIDER_KEY_SECRET: 'a-production-secret-0123456789',
    DB_STARTUP_TIMEOUT_MS: '1500',
  });
  assert.equal(r.status, 1);
  const waits = r.stdout
    .split('\n')
    .filter((l) => l.includes('"waiting for postgres"'))
    .map((l) => JSON.parse(l) as { attempt: number; retry_in_ms: number; target: string; error: string });
  assert.ok(waits.length >= 3, `several waits logged:\n${r.stdout}`);
  waits.forEach((w, i) => {
    assert.equal(w.attempt, i + 1);
    assert.equal(w.target, `127.0.0.1:${port}/bulwark`);
    assert.match(w.error, /ECONNREFUSED/);
  });
  // Backoff grows (equal jitter: each wait is at least half its ceiling).
  assert.ok(waits.at(-1)!.retry_in_ms > waits[0]!.retry_in_ms || waits.length > 4);
  assert.match(r.stderr, new RegExp(`postgres at 127\\.0\\.0\\.1:${port}/bulwark did not answer within 1500 ms`));
  assert.doesNotMatch(r.stdout + r.stderr, /s3cr3t|a-production-secret/);
  assert.doesNotMatch(r.stdout, /listening|embedded postgres started|simulator started/);
});
