/**
 * Scenarios in their quick form (what CI runs), through the library API,
 * against the real compiled services (gateway on and off, the Fastify
 * baseline; two replicas behind HAProxy for rolling-restart) on a real
 * Postgres and the simulator: every check passes and every variant's audit
 * is clean (nothing lost, duplicated or pending). The checks compare within
 * a run (phase against phase, variant against variant), never absolute
 * speeds, and each scenario also asserts that its fault really bit (the
 * breaker opened, shedding happened, the unprotected variant collapsed).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEnvironment, type Environment } from '../../src/lab/scenario/run/environment.js';
import { runScenario } from '../../src/lab/scenario/run/runner.js';
import { scenarioNamed } from '../../src/lab/scenario/plan/scenarios/index.js';
import { problemsOf } from '../../src/lab/scenario/audit/verdict.js';
import { haproxyTool } from './system-tools.js';

/**
 * One test per named scenario, on one shared environment. The scenarios are
 * spread over a few test files because the runner's timeout bounds a whole
 * file (each file is one process).
 */
export function quickScenarioTests(names: readonly string[]): void {
  const logs: string[] = [];
  const log = (m: string) => void logs.push(m);
  let env: Environment;
  before(async () => (env = await startEnvironment({ log })));
  after(async () => env?.close());

  for (const name of names) {
    const def = scenarioNamed(name);
    if (!def) throw new Error(`no scenario named ${name}`);
    // Two replicas behind HAProxy need the haproxy binary.
    const skip = def.plan('quick').topology === 'pair' ? haproxyTool().skip : false;
    test(
      `${def.name}, quick form: every check passes and every audit is clean`,
      { timeout: 180_000, skip },
      async () => {
        const plan = def.plan('quick');
        const out = await runScenario(def, { mode: 'quick', env, log });
        const r = out.result;
        assert.deepEqual(
          r.variants.map((v) => v.variant),
          [...plan.variants],
          `every variant ran\n${logs.slice(-30).join('\n')}`,
        );
        for (const v of r.variants) {
          assert.ok(v.timeline.length >= r.phases.at(-1)!.end_s, `${v.variant}: a timeline point per second`);
          assert.ok(v.totals.offered > 0 && v.audit.client_final > 0, `${v.variant}: the load ran`);
        }
        // The problems lead the message: CI shows the head of a failure.
        const problems = problemsOf(r);
        assert.deepEqual(problems, [], `${problems.join('\n')}\n--- log ---\n${logs.slice(-30).join('\n')}`);
        const gw = r.variants.find((v) => v.variant === 'gateway');
        if (gw && plan.topology !== 'pair')
          assert.ok(
            gw.timeline.some((p) => p.in_flight !== undefined),
            'scraped metrics in the gateway timeline',
          );
      },
    );
  }
}
