import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { ConfigError } from '../../src/config/options.js';
import { simulateCommand } from '../../src/simulator/command.js';
import { startSimulator } from '../../src/simulator/index.js';
import { request } from './helpers.js';

const COMMAND_MODULE = new URL('../../src/simulator/command.js', import.meta.url).href;

function runCommand(args: string[]): {
  child: ReturnType<typeof spawn>;
  firstLine: Promise<string>;
  exit: Promise<number | null>;
} {
  const script = `import { simulateCommand } from ${JSON.stringify(COMMAND_MODULE)};
await simulateCommand(${JSON.stringify(args)}, process.env);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = createInterface({ input: child.stdout! });
  const firstLine = new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`exited with ${code} before printing a line`)));
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, firstLine, exit };
}

void describe('simulateCommand', () => {
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bulwark-sim-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  void it('prints one listening line with ephemeral ports, applies a fault file, and exits 0 on SIGTERM', async () => {
    const faultFile = join(dir, 'faults.json');
    await writeFile(faultFile, JSON.stringify({ provider: { declineRate: 1 }, fx: { latencyMs: 1 } }));
    const { child, firstLine, exit } = runCommand([
      '--provider-port',
      '0',
      '--fx-port',
      '0',
      '--seed',
      '9',
      '--faults',
      faultFile,
    ]);
    try {
      const line = JSON.parse(await firstLine);
      assert.equal(line.level, 'info');
      assert.equal(line.msg, 'listening');
      assert.equal(line.service, 'simulator');
      assert.ok(line.providerPort > 0 && line.fxPort > 0);
      assert.equal(line.providerUrl, `http://127.0.0.1:${line.providerPort}`);
      assert.equal(line.fxUrl, `http://127.0.0.1:${line.fxPort}`);
      assert.deepEqual((await request(`${line.providerUrl}/_faults`)).body, { declineRate: 1 });
      assert.deepEqual((await request(`${line.fxUrl}/_faults`)).body, { latencyMs: { dist: 'fixed', ms: 1 } });
      assert.equal((await request(`${line.fxUrl}/v1/rates/USD-EUR`)).status, 200);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exit, 0);
  });

  void it('prints help and exits 0', async () => {
    const { firstLine, exit } = runCommand(['--help']);
    assert.match(await firstLine, /^Usage: bulwark simulate/);
    assert.equal(await exit, 0);
  });

  void it('throws ConfigError for a bad option value', async () => {
    await assert.rejects(simulateCommand(['--provider-port', '70000'], {}), (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /--provider-port/);
      return true;
    });
    await assert.rejects(
      simulateCommand([], { SIM_SEED: 'abc' }),
      (err: Error) => err instanceof ConfigError && /SIM_SEED/.test(err.message),
    );
  });

  void it('throws ConfigError naming the field of a bad fault file', async () => {
    const file = join(dir, 'bad.json');
    await writeFile(file, JSON.stringify({ provider: { errorRate: 3 } }));
    await assert.rejects(
      simulateCommand(['--faults', file], {}),
      (err: Error) => err instanceof ConfigError && /provider: errorRate must be/.test(err.message),
    );
    await writeFile(file, JSON.stringify({ gateway: {} }));
    await assert.rejects(
      simulateCommand(['--faults', file], {}),
      (err: Error) => err instanceof ConfigError && /gateway/.test(err.message),
    );
    await assert.rejects(simulateCommand(['--faults', join(dir, 'missing.json')], {}), ConfigError);
  });

  void it('throws ConfigError naming the flag when a port is taken', async () => {
    const taken = await startSimulator();
    try {
      await assert.rejects(
        simulateCommand(['--provider-port', String(taken.providerPort), '--fx-port', '0'], {}),
        (err: Error) => err instanceof ConfigError && /--provider-port/.test(err.message),
      );
    } finally {
      await taken.close();
    }
  });
});
