/**
 * cpu-overload, quick form, through the library API against the real
 * compiled services on a real Postgres and the simulator.
 *
 * Asserted: every variant runs to the end with a clean audit (nothing lost,
 * duplicated or pending after a surge past the CPU ceiling), every check of
 * the scenario is evaluated with its measured figures, and the measurements
 * those checks stand on exist (the generator's per-second lag and CPU, the
 * /proc CPU samples of the service and the machine, the scraped admission
 * limit and shed counts).
 *
 * Reported, not asserted: the scenario's own bars (goodput >= 90 % of the
 * ceiling, shed p99 <= 5 ms, no DB acquire timeouts, the limit within
 * ±25 %, memory flat, recovery within 3 s, the ladder finding a ceiling
 * and the generator keeping up). The scenario saturates the CPU on purpose,
 * and on a shared two-core machine the load generator, Postgres, the
 * simulator and other tenants' processes compete for the same cores, so
 * whether those figures hold says as much about the neighbours as about the
 * gateway (measured here at a load average of 18-22: the generator got
 * about 0.1 core and fell 140 s behind). Some are also expected to fail
 * today (issue 17: the adaptive limit drifts under a sustained surge); they
 * are the admission work's target, not this test's.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEnvironment, type Environment } from '../../src/lab/scenario/run/environment.js';
import { runScenario } from '../../src/lab/scenario/run/runner.js';
import { scenarioNamed } from '../../src/lab/scenario/plan/scenarios/index.js';
import {
  GENERATOR_CPU,
  MACHINE_BUSY,
  SERVICE_CPU,
  meanFact,
} from '../../src/lab/scenario/plan/scenarios/cpu-sample.js';
import { GENERATOR_NICE } from '../../src/lab/scenario/plan/scenarios/generator-priority.js';
import { readFileSync } from 'node:fs';
import { phase } from '../../src/lab/scenario/plan/checks.js';

/** CAP_SYS_NICE (bit 23) in this process's effective capabilities: root in a default container lacks it. */
function mayRenice(): boolean {
  const line = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return line !== null && (BigInt(`0x${line[1]}`) & (1n << 23n)) !== 0n;
}

const logs: string[] = [];
const log = (m: string) => void logs.push(m);
let env: Environment;
before(async () => (env = await startEnvironment({ log })));
after(async () => env?.close());

const def = scenarioNamed('cpu-overload')!;

test(
  'cpu-overload, quick form: every variant runs with a clean audit and every check is measured',
  { timeout: 900_000 },
  async (t) => {
    // The gateway only: its audit and its measurements are what this test holds; the peers' rows are the
    // report's (bulwark scenario cpu-overload). A CPU-bound run stretches several-fold on a busy shared
    // machine (the generator falls behind and catches up), so each variant costs minutes there.
    const plan = { variants: ['gateway'] as const };
    const out = await runScenario(def, { mode: 'quick', env, log, variants: plan.variants });
    const r = out.result;
    const tail = `\n--- log ---\n${logs.slice(-30).join('\n')}`;
    for (const c of r.checks) t.diagnostic(`${c.passed ? 'pass' : 'FAIL'}  ${c.name} (${c.detail})`);

    assert.deepEqual(
      r.variants.map((v) => v.variant),
      [...plan.variants],
      `every variant ran${tail}`,
    );
    assert.ok(!r.checks.some((c) => /ran to the end|could be evaluated/.test(c.name)), tail);
    for (const v of r.variants) {
      assert.deepEqual(
        { lost: v.audit.lost, duplicates: v.audit.duplicates, pending: v.audit.pending, findings: v.audit.findings },
        { lost: 0, duplicates: 0, pending: 0, findings: [] },
        `${v.variant}: audit`,
      );
      assert.ok(v.audit.client_final > 0, `${v.variant}: charges reached a final answer`);
      assert.ok(v.timeline.length >= r.phases.at(-1)!.end_s, `${v.variant}: a timeline point per second`);
    }
    const audits = r.checks.filter((c) => c.name.includes('no charge lost'));
    assert.equal(audits.length, plan.variants.length);
    assert.ok(
      audits.every((c) => c.passed),
      audits.map((c) => c.detail).join('\n'),
    );

    // Every bar of the scenario was evaluated on measured figures (pass or fail).
    const expected = [
      /gateway: the ladder found a ceiling/,
      /gateway: in the surge, goodput holds >= 90 %/,
      /gateway: shed answers at p99 <= 5 ms in the service/,
      /gateway: no DB acquire timeouts/,
      /gateway: the admission limit stays within ±25 %/,
      /gateway: memory flat over the surge/,
      /gateway: goodput back to >= 80 % of the warm-up within 3 s/,
      ...plan.variants.map((v) => new RegExp(`^${v}: the load generator was not the bottleneck`)),
    ];
    for (const re of expected) {
      const c = r.checks.find((x) => re.test(x.name));
      assert.ok(c, `a check matching ${re}`);
      assert.ok(c.detail.length > 0 && !/^n\/a/.test(c.detail), `${c.name}: ${c.detail}`);
    }

    // The figures those checks stand on were measured, for every variant.
    const surge = phase(r.phases, 'fault');
    for (const run of out.runs) {
      const facts = run.actions.cpu?.facts ?? {};
      // The checks read the mean over the surge's seconds. A lagging generator (same process as the
      // sampler) closes a sample late and skips a second now and then, so no one second is required.
      for (const name of [SERVICE_CPU, GENERATOR_CPU, MACHINE_BUSY])
        assert.ok(
          meanFact(facts, name, surge.start_s, surge.end_s) !== null,
          `${run.result.variant}: ${name} sampled in the surge`,
        );
      const secs = run.load.seconds.filter((s) => s.second >= surge.start_s && s.second < surge.end_s);
      assert.ok(
        secs.length > 0 && secs.every((s) => s.generator !== undefined && s.generator.lag_max_ms >= 0),
        `${run.result.variant}: the generator measured its lag in every surge second`,
      );
      assert.ok(run.load.generator_cpu_s > 0, `${run.result.variant}: generator CPU`);
      // The generator ran ahead of the service in the kernel's queue where it may (root): see generator-priority.ts.
      const nice = run.actions['generator-priority']?.facts[GENERATOR_NICE];
      assert.equal(typeof nice, 'number', `${run.result.variant}: the generator's nice value reported`);
      if (mayRenice())
        assert.ok(nice! < 0, `${run.result.variant}: with CAP_SYS_NICE, the generator ran at nice ${nice}`);
    }
    const gw = out.runs.find((x) => x.result.variant === 'gateway')!;
    assert.ok(
      gw.scrapes.some((p) => p.t >= surge.start_s && p.t < surge.end_s && p.snapshot.admissionLimit !== undefined),
      'the admission limit was scraped during the surge',
    );
    assert.ok(
      gw.result.timeline.some((p) => p.t >= surge.start_s && p.t < surge.end_s && (p.shed_per_s ?? 0) > 0),
      'the gateway shed during the surge (the surge overloaded it)',
    );
  },
);
