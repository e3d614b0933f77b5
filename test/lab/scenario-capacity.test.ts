/**
 * The `capacity` scenario in its quick form (what CI runs), through the library
 * API, against the real compiled services (gateway on and off, Fastify
 * baseline) on a real Postgres and the simulator: every check passes and
 * every variant's audit is clean (nothing lost, duplicated or pending).
 * One file per scenario keeps each file well inside the test runner's
 * per-file timeout. Checks compare within the run, never absolute speeds.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEnvironment, type Environment } from '../../src/lab/scenario/environment.js';
import { runScenario } from '../../src/lab/scenario/runner.js';
import { QUICK_VARIANTS } from '../../src/lab/scenario/scenarios/common.js';
import { scenarioNamed } from '../../src/lab/scenario/scenarios/index.js';
import { problemsOf } from '../../src/lab/scenario/verdict.js';

const logs: string[] = [];
const log = (m: string) => void logs.push(m);
let env: Environment;
before(async () => (env = await startEnvironment({ log })));
after(async () => env?.close());

test('capacity, quick form: every check passes and every audit is clean', { timeout: 180_000 }, async () => {
  const out = await runScenario(scenarioNamed('capacity')!, { mode: 'quick', env, log });
  const r = out.result;
  assert.deepEqual(r.variants.map((v) => v.variant), [...QUICK_VARIANTS], 'every variant ran');
  for (const v of r.variants) {
    assert.ok(v.timeline.length >= r.phases.at(-1)!.end_s, `${v.variant}: a timeline point per second`);
    assert.ok(v.totals.offered > 0 && v.audit.client_final > 0, `${v.variant}: the load ran`);
  }
  assert.deepEqual(problemsOf(r), [], `--- log ---\n${logs.slice(-30).join('\n')}`);
  // The gateway's timeline carries what was scraped from /metrics.
  const gw = r.variants.find((v) => v.variant === 'gateway')!;
  assert.ok(gw.timeline.some((p) => p.in_flight !== undefined), 'scraped metrics in the gateway timeline');
});
