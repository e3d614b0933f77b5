/**
 * A scenario result's verdict in one list: every failed check, and every
 * variant whose audit is not clean (belt and braces: the audit checks say
 * the same, but a scenario whose checks forgot one must not pass). Empty
 * means the scenario proved its claim. The CLI's exit code and the CI tests
 * read it.
 */
import type { ScenarioResult } from '../../report/types.js';
import { auditClean } from './audit.js';

export function problemsOf(r: ScenarioResult): string[] {
  const out: string[] = [];
  if (r.variants.length === 0) out.push(`${r.scenario}: no variant ran`);
  for (const c of r.checks) if (!c.passed) out.push(`${r.scenario}: FAIL ${c.name} (${c.detail})`);
  for (const v of r.variants) {
    // A variant whose audit the scenario reports as measured (its checks say whether the audit ran).
    if (r.audit_reported_only?.includes(v.variant)) continue;
    const a = v.audit;
    if (!auditClean(a))
      out.push(
        `${r.scenario}/${v.variant}: audit lost ${a.lost}, duplicates ${a.duplicates}, pending ${a.pending}; ${a.findings.slice(0, 3).join('; ')}`,
      );
  }
  return out;
}
