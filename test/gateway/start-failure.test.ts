/**
 * A start that fails after the worker pool is up (it starts before the
 * migrations run): the gateway exits 1 naming the cause, stops its workers
 * on purpose (no "worker thread died" alarm) and the embedded Postgres it
 * started, rather than hanging or leaving a server behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

function listen(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve({ server, port: typeof a === 'object' && a ? a.port : 0 });
    });
  });
}

test('the admin port taken: after migrations and with its workers loaded, the gateway exits 1 naming it, workers and Postgres stopped', async () => {
  const { server, port } = await listen();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'bulwark-startfail-'));
  try {
    const env: Record<string, string | undefined> = {
      ...process.env,
      PORT: '0',
      ADMIN_PORT: String(port),
      ADMIN_HOST: '127.0.0.1',
      EMBEDDED_PG_PORT: '0',
      SIM_PROVIDER_PORT: '0',
      SIM_FX_PORT: '0',
      BULWARK_DATA_DIR: dataDir,
    };
    for (const k of ['DATABASE_URL', 'PROVIDER_URL', 'FX_URL', 'NODE_ENV', 'BULWARK_EXIT_WITH_PARENT']) delete env[k];
    const child = spawn(process.execPath, [CLI, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(null);
      }, 60_000);
      child.on('exit', (c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
    assert.equal(code, 1, `exit code 1, not a hang\n${out}\n${err}`);
    assert.match(err, new RegExp(`cannot listen on admin 127\\.0\\.0\\.1:${port}`));
    assert.match(out, /"msg":"(migrations applied|embedded postgres started)"/, 'it failed late, past the migrations');
    assert.doesNotMatch(out, /worker thread died/, 'a failed start stops its workers on purpose, without the alarm');
    assert.doesNotMatch(out, /"msg":"listening"/);
    assert.equal(existsSync(path.join(dataDir, 'pg', 'postmaster.pid')), false, 'the embedded Postgres was stopped');
  } finally {
    server.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
