/**
 * The report as Markdown: what goes in a pull request, a wiki page or a
 * terminal. Machine and command on top (a number means nothing without
 * them), then every check in one table, then per scenario the claim, the
 * phases and the before/after rows. Tables put the variants of one phase next
 * to each other, so "mechanisms on" and "off" sit on adjacent lines.
 */
import type { BenchReport, ScenarioResult, VariantResult } from './types.js';
import {
  fmtBurn,
  fmtGiB,
  fmtCount,
  fmtMs,
  fmtPercent,
  fmtPerSecond,
  fmtSeconds,
  mdCodeBlock,
  mdText,
  phaseNames,
  variantLabel,
} from './render-format.js';
import { spreadMarkdown } from './render-spread.js';

type Cell = string;

function table(head: readonly Cell[], rows: readonly (readonly Cell[])[], align?: readonly ('l' | 'r')[]): string {
  const sep = head.map((_, i) => ((align?.[i] ?? 'l') === 'r' ? '---:' : '---'));
  const line = (cells: readonly Cell[]): string => `| ${cells.join(' | ')} |`;
  return [line(head), line(sep), ...rows.map(line)].join('\n');
}

export function renderMarkdown(report: BenchReport): string {
  const out: string[] = [];
  const m = report.machine;
  out.push('# bulwark bench report', '');
  out.push(
    table(
      ['Cores', 'CPU model', 'Memory', 'Node', 'Platform', 'Date'],
      [
        [
          fmtCount(m.cores),
          mdText(m.cpu_model),
          fmtGiB(m.memory_gib),
          mdText(m.node),
          mdText(m.platform),
          mdText(m.date),
        ],
      ],
      ['r', 'l', 'r', 'l', 'l', 'l'],
    ),
    '',
  );
  out.push('Command:', '', mdCodeBlock(report.command, 'sh'), '');
  if (report.git_commit !== undefined) out.push(`Built from commit \`${report.git_commit}\`.`, '');
  out.push(`Started ${mdText(report.started_at)}, finished ${mdText(report.finished_at)}.`, '');

  out.push('## Summary', '');
  const checks = report.scenarios.flatMap((s) => s.checks.map((c) => ({ s, c })));
  if (checks.length === 0) {
    out.push('_No checks were recorded._', '');
  } else {
    const failed = checks.filter(({ c }) => !c.passed).length;
    out.push(
      failed === 0 ? `All ${checks.length} checks passed.` : `**${failed} of ${checks.length} checks failed.**`,
      '',
    );
    out.push(
      table(
        ['Scenario', 'Check', 'Result', 'Measured'],
        checks.map(({ s, c }) => [
          mdText(s.scenario),
          mdText(c.name),
          c.passed ? 'pass' : '**FAIL**',
          mdText(c.detail),
        ]),
      ),
      '',
    );
  }
  const behind = report.scenarios.flatMap((s) =>
    s.variants.filter((v) => v.behind_schedule).map((v) => `${s.scenario} / ${variantLabel(v)}`),
  );
  if (behind.length > 0) {
    out.push(
      `> **Note:** the load generator fell behind its schedule in ${behind.map(mdText).join(', ')}; those rows are less trustworthy.`,
      '',
    );
  }

  for (const s of report.scenarios) out.push(renderScenario(s));
  return `${out.join('\n').trimEnd()}\n`;
}

function renderScenario(s: ScenarioResult): string {
  const out: string[] = [];
  const heading = s.title && s.title !== s.scenario ? `${mdText(s.scenario)}: ${mdText(s.title)}` : mdText(s.scenario);
  out.push(`## ${heading}`, '');
  if (s.claim) out.push(`**Claim:** ${mdText(s.claim)}`, '');

  if (s.phases.length > 0) {
    out.push('### Phases', '');
    out.push(
      table(
        ['Phase', 'From', 'To', 'Fault'],
        s.phases.map((p) => [
          mdText(p.name),
          fmtSeconds(p.start_s),
          fmtSeconds(p.end_s),
          p.fault ? mdText(p.fault) : '—',
        ]),
        ['l', 'r', 'r', 'l'],
      ),
      '',
    );
  }

  if (s.variants.length === 0) {
    out.push('_No variant ran._', '');
  } else {
    out.push('### Before / after', '');
    out.push(resultsTable(s), '', ...spreadMarkdown(s));
    out.push('### Audit and SLO', '');
    out.push(
      table(
        [
          'Variant',
          'Offered',
          'Goodput',
          'p999 ms',
          'Client final',
          'Duplicates',
          'Lost',
          'Pending',
          'SLO good / total',
          'Error ratio',
          'Burn rate',
        ],
        s.variants.map((v) => [
          mdText(variantLabel(v)),
          fmtCount(v.totals.offered),
          fmtCount(v.totals.goodput),
          fmtMs(v.totals.p999_ms),
          fmtCount(v.audit.client_final),
          flagCount(v.audit.duplicates),
          flagCount(v.audit.lost),
          flagCount(v.audit.pending),
          `${fmtCount(v.slo.good)} / ${fmtCount(v.slo.total)}`,
          fmtPercent(v.slo.error_ratio),
          fmtBurn(v.slo.burn_rate),
        ]),
        ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      ),
      '',
    );
    const reported = s.variants.filter((v) => s.audit_reported_only?.includes(v.variant));
    if (reported.length > 0)
      out.push(
        `_Audit reported as measured, not judged: ${reported.map((v) => mdText(variantLabel(v))).join(', ')}._`,
        '',
      );
    const findings = s.variants.flatMap((v) =>
      v.audit.findings.map((f) => `- ${mdText(variantLabel(v))}: ${mdText(f)}`),
    );
    if (findings.length > 0) out.push('Audit findings:', '', ...findings, '');

    const events = s.variants.flatMap((v) => v.events.map((e) => ({ v, e }))).sort((a, b) => a.e.t - b.e.t);
    if (events.length > 0) {
      out.push('### Events', '');
      out.push(
        table(
          ['t', 'Variant', 'Event'],
          events.map(({ v, e }) => [fmtSeconds(e.t), mdText(variantLabel(v)), mdText(e.what)]),
          ['r', 'l', 'l'],
        ),
        '',
      );
    }

    const drains = s.variants.flatMap((v) => (v.drains ?? []).map((d, i) => ({ v, d, i })));
    if (drains.length > 0) {
      out.push('### Drains', '');
      out.push(
        table(
          ['Variant', 'Drain', 'Duration', 'Abandoned'],
          drains.map(({ v, d, i }) => [
            mdText(variantLabel(v)),
            `#${i + 1}`,
            fmtSeconds(d.duration_s),
            flagCount(d.abandoned),
          ]),
          ['l', 'r', 'r', 'r'],
        ),
        '',
      );
    }

    for (const v of s.variants.filter((x) => x.behind_schedule)) {
      out.push(
        `> **Note:** the load generator fell behind its schedule for ${mdText(variantLabel(v))}; its latency and goodput are less trustworthy.`,
        '',
      );
    }
  }

  if (s.checks.length > 0) {
    out.push('### Checks', '');
    for (const c of s.checks) out.push(`- ${c.passed ? 'pass' : '**FAIL**'}: ${mdText(c.name)} (${mdText(c.detail)})`);
    out.push('');
  }
  return out.join('\n');
}

/** Rows grouped by phase, one row per variant inside a group: before and after sit on adjacent lines. */
function resultsTable(s: ScenarioResult): string {
  const faults = new Map(s.phases.map((p) => [p.name, p.fault]));
  const rows: Cell[][] = [];
  const groups: {
    name: string;
    pick: (
      v: VariantResult,
    ) => { goodput_per_s: number; p99_ms: number | null; rate_503: number; timeouts: number } | undefined;
  }[] = [
    ...phaseNames(s).map((name) => ({ name, pick: (v: VariantResult) => v.phases[name] })),
    { name: 'total', pick: (v: VariantResult) => v.totals },
  ];
  for (const g of groups) {
    s.variants.forEach((v, i) => {
      const t = g.pick(v);
      const fault = faults.get(g.name);
      const phaseCell =
        i === 0 ? (g.name === 'total' ? '**total**' : `${mdText(g.name)}${fault ? ` (${mdText(fault)})` : ''}`) : '';
      rows.push([
        phaseCell,
        mdText(variantLabel(v)),
        t ? fmtPerSecond(t.goodput_per_s) : '—',
        t ? fmtMs(t.p99_ms) : '—',
        t ? fmtPercent(t.rate_503) : '—',
        t ? fmtCount(t.timeouts) : '—',
      ]);
    });
  }
  return table(['Phase', 'Variant', 'Goodput/s', 'p99 ms', '503 rate', 'Timeouts'], rows, [
    'l',
    'l',
    'r',
    'r',
    'r',
    'r',
  ]);
}

/** Counts that should be zero are bold when they are not. */
function flagCount(n: number): string {
  return n === 0 ? '0' : `**${fmtCount(n)}**`;
}
