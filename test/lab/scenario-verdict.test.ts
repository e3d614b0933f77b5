/**
 * The verdict with variants whose audit a scenario reports as measured (the
 * baselines of `crash`): their unclean audit is shown, in the Markdown and
 * the HTML, but does not fail the scenario; every other variant's still does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderHtml, renderMarkdown } from '../../src/lab/report/render.js';
import { problemsOf } from '../../src/lab/scenario/audit/verdict.js';
import { fixtureReport } from './fixtures/report-fixture.js';

function deployWithLostBaseline() {
  const s = fixtureReport().scenarios[1]!;
  // Only the audits are under test here.
  return { ...s, checks: [] };
}

test('an unclean audit fails the scenario unless the scenario reports that variant as measured', () => {
  const s = deployWithLostBaseline();
  const lost = s.variants.find((v) => v.variant === 'baseline')!.audit;
  assert.ok(lost.lost > 0, 'the fixture baseline lost charges');
  assert.equal(problemsOf(s).length, 1);
  assert.match(problemsOf(s)[0]!, /deploy\/baseline: audit lost 14/);
  assert.deepEqual(problemsOf({ ...s, audit_reported_only: ['baseline'] }), []);
  // Reporting another variant as measured does not excuse this one.
  assert.equal(problemsOf({ ...s, audit_reported_only: ['baseline-hardened'] }).length, 1);
  // Nor does it excuse a gateway whose audit is unclean.
  const gw = {
    ...s,
    audit_reported_only: ['baseline' as const],
    variants: s.variants.map((v) => (v.variant === 'gateway' ? { ...v, audit: { ...v.audit, duplicates: 2 } } : v)),
  };
  assert.deepEqual(
    problemsOf(gw).map((p) => p.split(':')[0]),
    ['deploy/gateway'],
  );
});

test('the report says which audits are reported as measured, and still shows their counts', () => {
  const base = fixtureReport();
  const report = {
    ...base,
    scenarios: [base.scenarios[0]!, { ...deployWithLostBaseline(), audit_reported_only: ['baseline' as const] }],
  };
  const md = renderMarkdown(report);
  assert.match(md, /_Audit reported as measured, not judged: Fastify baseline\._/);
  assert.match(md, /\| Fastify baseline \|[^\n]*\*\*14\*\*/);
  assert.match(renderHtml(report), /Audit reported as measured, not judged: Fastify baseline\./);
  assert.doesNotMatch(renderMarkdown(base), /reported as measured/);
});
