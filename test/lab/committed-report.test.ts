/**
 * The lab report committed under docs/lab/ is what the README links and what
 * docs/mechanisms.md, docs/slo.md and docs/readiness.md quote: it must be a
 * full `bulwark bench` run (not --quick) over every scenario and variant,
 * carry the machine and the command, pass every check with every audit
 * clean, and its Markdown, HTML and chart files must be exactly what the
 * renderers make of its JSON (so nobody edited a figure by hand, and a new
 * layout reaches it by `npm run report:render`, which rewrites them from the
 * JSON without re-running the bench). The Markdown opens with the verdict
 * (a column for every variant the report holds) and where bulwark loses,
 * and links its charts as files a code host shows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderHtml, renderMarkdown } from '../../src/lab/report/render.js';
import type { BenchReport } from '../../src/lab/report/types.js';
import { SCENARIOS } from '../../src/lab/scenario/plan/scenarios/index.js';
import { problemsOf } from '../../src/lab/scenario/audit/verdict.js';
import { CHART_DIR, reportChartFiles } from '../../src/lab/report/render-charts.js';
import { verdictOf } from '../../src/lab/report/verdict-table.js';

/**
 * Scenarios added after the committed report was measured. The next full
 * bench (on the final code of the crash-safety and abuse work) covers them;
 * until then the report says nothing about them, and this list says so
 * instead of the test pretending otherwise. Empty it when docs/lab is
 * regenerated.
 */
const NOT_YET_IN_REPORT: readonly string[] = [];
/**
 * Variants added to the full form after the committed report was measured
 * (peers such as one Fastify per core, or Fastify behind HAProxy): list them
 * here when adding one, and empty the list when docs/lab is regenerated.
 */
const VARIANTS_NOT_YET_IN_REPORT: readonly string[] = [];

/**
 * The longest a full bench may take, in minutes. Estimated from the
 * committed report: 17.9 min for 869 s of load over 30 variant runs, so
 * about 6.9 s per run of start-up, prewarm, settle and audit besides its
 * load. The full form now runs 6 variants (the gateway on and off and four
 * peers; rolling-restart 2), steps of >= 10 s, and `--seeds 3` repeats the
 * headline scenarios (capacity, overload, retry-storm): 4 328 s of load
 * over 98 runs (summed from every scenario's full plan), so about 72 + 11 =
 * 83 minutes. The benches at 6d140b1 and e54684a took 90.6 and 92.4:
 * capacity and cpu-overload now start with an 18 s calibration ramp and
 * run a longer fitted ladder.
 * The three seeds of slow-provider, deploy and rolling-restart add about
 * 2 × (194 + 204 + 63) s = 15 minutes (their single runs at d9798c1), so
 * about 111 minutes in all.
 * The bound leaves a fifth on top for runs that stretch.
 */
const BENCH_MINUTES_LIMIT = 135;

/**
 * Checks the committed report may show as failed: each is a bar an open
 * issue still sets (the report shows it failed, and its "where bulwark
 * loses" names it). Audits are held below whatever this says. The test fails on any other failed
 * check, and on an entry that no longer fails, so the list cannot go stale.
 * The report's "where bulwark loses" names the peers' wins in words; each
 * entry here says why.
 */
const KNOWN_FAILING: readonly { scenario: string; check: RegExp; why: string }[] = [
  // The bench at c85c8a8 (calibration 3 808/s for capacity, 4 383/s for
  // cpu-overload). The provider-bulkhead estimate still sheds below the
  // ceiling: seed 1 shed 10 at 950/s, 11 at 2 850/s, 620 at 3 450/s and 382
  // at 4 400/s of a 5 022/s ceiling; seed 2 46 at 1 900/s; seed 3 140 at
  // 2 850/s. The median p99 over the seeds was above the mechanisms-off
  // build's at 2 850/s (68 against 42 ms), below it at every other step
  // (issue 14).
  {
    scenario: 'capacity',
    check: /^gateway: below the ceiling, nothing is shed/,
    why: 'the bulkhead estimate sheds below the ceiling (620 at 3 450/s of a 5 022/s ceiling, on downstream; issue 14)',
  },
  {
    scenario: 'capacity',
    check: /^gateway: over 3 seeds, the median p99 below the ceiling/,
    why: 'median p99 68 against 42 ms at 2 850/s; below the off build at every other step (issue 14)',
  },
  // cpu-overload's surge offered 6 989/s, 1.6x the in-run ceiling of
  // 4 387/s. The gateway kept 41 % of that ceiling (the bar is 90 %; 58 % in
  // the bench before, at 1.48x), and its last seconds of the surge fell to
  // 0-173/s with p99 over 1.3 s. Its limit rose from 1 374 before the surge
  // to 1 851-2 022 in it. 3 DB acquire timeouts. The generator fell behind
  // in a surge second for every variant: the gateway's worst second 430 ms
  // late at 1 116 ms/s of generator CPU, the others' 0.8-2.3 s (issue 17).
  ...[
    /^gateway: in the surge, goodput holds >= 90 %/,
    /^gateway: no DB acquire timeouts/,
    /^gateway: the admission limit stays within/,
    /^[\w-]+: the load generator was not the bottleneck/,
  ].map((check) => ({
    scenario: 'cpu-overload',
    check,
    why: 'surge 1.6x a 4 387/s ceiling, goodput 41 % of it, 3 DB acquire timeouts, the limit 1 374 before and 1 851-2 022 in the surge; the generator 0.43 s late in a surge second for the gateway, 0.8-2.3 s for the others (issue 17)',
  })),
];

/**
 * Audit findings the committed report shows that were the audit's own race,
 * not the service's: the audit read the provider's ledger before Postgres,
 * and a straggler that Fastify --hardened was still working through after
 * its clients left claimed, charged and recorded its row in between (rows
 * `succeeded` naming a charge the ledger read did not hold yet; 0 lost,
 * 0 duplicated, 0 pending). The audit now asks the provider again about such
 * rows (rowsNewerThanRead): a re-run of `scenario capacity --variants
 * baseline-hardened` on the fixed audit logged 11 such rows and 0 still
 * contradicted, and the full bench at 32caad5 found none in any variant, so
 * the list is empty; an entry whose findings are gone fails, so it cannot go
 * stale.
 */
const AUDIT_READ_RACE: readonly { scenario: string; variant: string }[] = [];

/**
 * Peers (never the gateway) that left charges `started` past the audit's
 * settle period: nothing lost or charged twice, but not finished in time.
 * The bench at 529c32c had one (Fastify ×cores through cascade's deploy
 * left 53 of the charges sent in the last seconds still started). The bench
 * at b2c4ab4 had one Fastify in capacity with 4 rows claimed after the
 * settle period ended (its backlog still draining); the audit now settles
 * again when it reads such rows, and the bench at d9798c1 has none. An
 * entry whose variant left nothing pending fails, so it cannot go stale.
 */
const PEER_UNFINISHED: readonly { scenario: string; variant: string }[] = [];
const UNFINISHED_FINDING = /^[\w-]+: still started after the settle period$|^\.\.\. and \d+ more finding/;
const READ_RACE_FINDING =
  /^[\w-]+: Postgres holds succeeded with pch_\w+ but the provider has no charge$|^\.\.\. and \d+ more finding/;

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const DIR = path.join(ROOT, 'docs', 'lab');

test('docs/lab holds a full bench report of every scenario and variant, every check passing but the listed known failures', async () => {
  const report = JSON.parse(await readFile(path.join(DIR, 'report.json'), 'utf8')) as BenchReport;
  assert.match(report.command, /^bulwark bench\b/);
  assert.doesNotMatch(report.command, /--quick|--variants/);
  assert.ok(
    report.machine.cores > 0 &&
      report.machine.cpu_model !== '' &&
      report.machine.memory_gib > 0 &&
      report.machine.node.startsWith('v'),
  );
  assert.match(report.git_commit ?? '', /^[0-9a-f]{40}$/, 'the report names the commit it measured');
  const measured = SCENARIOS.filter((s) => !NOT_YET_IN_REPORT.includes(s.name));
  assert.deepEqual(
    report.scenarios.map((s) => s.scenario),
    measured.map((s) => s.name),
  );
  for (const def of measured) {
    const s = report.scenarios.find((x) => x.scenario === def.name)!;
    assert.deepEqual(
      s.variants.map((v) => v.variant),
      def.plan('full').variants.filter((v) => !VARIANTS_NOT_YET_IN_REPORT.includes(v)),
      `${def.name}: every variant of the full form`,
    );
    // Every audit clean, except those the scenario reports as measured (the baselines through a crash).
    for (const v of s.variants.filter((x) => !s.audit_reported_only?.includes(x.variant))) {
      const raced = AUDIT_READ_RACE.some((r) => r.scenario === def.name && r.variant === v.variant);
      const unfinished = PEER_UNFINISHED.some((r) => r.scenario === def.name && r.variant === v.variant);
      assert.ok(v.audit.duplicates === 0 && v.audit.lost === 0, `${def.name}/${v.variant}: audit`);
      if (unfinished) {
        assert.ok(
          v.audit.pending > 0,
          `${def.name}/${v.variant} is listed in PEER_UNFINISHED but left nothing pending`,
        );
        for (const f of v.audit.findings) assert.match(f, UNFINISHED_FINDING, `${def.name}/${v.variant}`);
        continue;
      }
      assert.equal(v.audit.pending, 0, `${def.name}/${v.variant}: audit pending`);
      if (!raced) assert.deepEqual(v.audit.findings, [], `${def.name}/${v.variant}: audit findings`);
      else {
        assert.ok(v.audit.findings.length > 0, `${def.name}/${v.variant} is listed in AUDIT_READ_RACE but is clean`);
        for (const f of v.audit.findings) assert.match(f, READ_RACE_FINDING, `${def.name}/${v.variant}`);
      }
    }
    // Every check passed, except the known failures this file lists.
    const known = KNOWN_FAILING.filter((k) => k.scenario === def.name);
    const failed = s.checks.filter((c) => !c.passed);
    assert.deepEqual(
      failed.filter((c) => !known.some((k) => k.check.test(c.name))).map((c) => `${c.name} (${c.detail})`),
      [],
      `${def.name}: failed checks not in KNOWN_FAILING`,
    );
    for (const k of known)
      assert.ok(
        failed.some((c) => k.check.test(c.name)),
        `${def.name}: ${k.check} is listed as failing (${k.why}) but passes: take it off the list`,
      );
    assert.deepEqual(
      problemsOf(s).filter(
        (p) =>
          !p.includes(': FAIL ') &&
          !AUDIT_READ_RACE.some((r) =>
            p.startsWith(`${r.scenario}/${r.variant}: audit lost 0, duplicates 0, pending 0;`),
          ) &&
          !PEER_UNFINISHED.some((r) =>
            p.startsWith(`${r.scenario}/${r.variant}: audit lost 0, duplicates 0, pending `),
          ),
      ),
      [],
      `${def.name}: every variant ran, every audit clean`,
    );
  }
  const minutes = (Date.parse(report.finished_at) - Date.parse(report.started_at)) / 60_000;
  assert.ok(
    minutes > 0 && minutes < BENCH_MINUTES_LIMIT,
    `the bench took ${minutes.toFixed(1)} minutes; the bound is ${BENCH_MINUTES_LIMIT}`,
  );
});

test('the committed Markdown and HTML are the renderings of the committed JSON', async () => {
  const report = JSON.parse(await readFile(path.join(DIR, 'report.json'), 'utf8')) as BenchReport;
  assert.equal(await readFile(path.join(DIR, 'report.md'), 'utf8'), renderMarkdown(report));
  assert.equal(await readFile(path.join(DIR, 'report.html'), 'utf8'), renderHtml(report));
});

test('the committed chart files are the renderings of the committed JSON, each linked from report.md, none extra', async () => {
  const report = JSON.parse(await readFile(path.join(DIR, 'report.json'), 'utf8')) as BenchReport;
  const md = await readFile(path.join(DIR, 'report.md'), 'utf8');
  const charts = reportChartFiles(report.scenarios);
  assert.ok(charts.length >= 3 * report.scenarios.length, 'three charts a scenario');
  for (const c of charts) {
    assert.equal(await readFile(path.join(DIR, c.path), 'utf8'), c.content, c.path);
    assert.ok(md.includes(`](${c.path})`), `report.md links ${c.path}`);
  }
  assert.deepEqual((await readdir(path.join(DIR, CHART_DIR))).sort(), charts.map((c) => path.basename(c.path)).sort());
});

test('the committed report opens with the verdict: a column for every variant, then where bulwark loses', async () => {
  const report = JSON.parse(await readFile(path.join(DIR, 'report.json'), 'utf8')) as BenchReport;
  const md = await readFile(path.join(DIR, 'report.md'), 'utf8');
  const at = (h: string) => md.indexOf(`\n## ${h}\n`);
  assert.ok(at('Verdict') > 0 && at('Verdict') < at('Where bulwark loses'), 'the verdict first');
  assert.ok(at('Where bulwark loses') < at('Summary'), 'losses before the checks');
  const head = md
    .slice(at('Verdict'))
    .split('\n')
    .find((l) => l.startsWith('| Scenario |'))!;
  const v = verdictOf(report);
  assert.deepEqual(
    head
      .split(' | ')
      .slice(1)
      .map((c) => c.replace(/ \|$/, '')),
    v.variants.map((x) => x.label),
  );
  // Every variant any scenario ran has its column, the gateway's first.
  const ran = new Set(report.scenarios.flatMap((s) => s.variants.map((x) => x.variant)));
  assert.deepEqual(new Set(v.variants.map((x) => x.id)), ran);
  assert.equal(v.variants[0]?.id, 'gateway');
  const losses = md.slice(at('Where bulwark loses'), at('Summary'));
  assert.match(losses, /bulwark \(mechanisms on\) is beaten in|No peer beats bulwark/);
});

test('the README links the committed report', async () => {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  assert.ok(readme.includes('(docs/lab/report.md)'), 'README links docs/lab/report.md');
});
