/**
 * The report as one self-contained HTML file: inline CSS and inline SVG, no
 * script, nothing fetched (a Content-Security-Policy of default-src 'none'
 * makes that a property of the file, not a promise: a mail client, an
 * air-gapped lab or a CI artifact viewer shows it the same). Same content as
 * the Markdown (the verdict and where bulwark loses first), with the charts
 * of each scenario inline instead of as files beside it.
 * All text from the report is escaped; it comes from scenario files and
 * audit findings that may hold `<` or `&`.
 */
import type { BenchReport, Check, PhaseTotals, ScenarioResult, VariantResult } from './types.js';
import { escapeXml as esc } from './svg-chart.js';
import { scenarioCharts } from './render-charts.js';
import { spreadHtml } from './render-spread.js';
import { VERDICT_LEGEND, cellText, lossReport, rowLabel, verdictOf } from './verdict-table.js';
import {
  describeCalibration,
  fmtBurn,
  fmtGiB,
  fmtCount,
  fmtMs,
  fmtPercent,
  fmtPerSecond,
  fmtSeconds,
  phaseNames,
  scenarioAnchor,
  variantLabel,
  variantStyle,
  AUDIT_COLUMNS,
} from './render-format.js';

const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

const CSS = `
:root { color-scheme: light; --fg: #1a1a1a; --muted: #5b5b5b; --line: #dadada; --bg-alt: #f6f6f4; --pass: #1f6f3f; --fail: #b3261e; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 28px 48px; color: var(--fg); background: #fff;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 1060px; margin: 0 auto; }
h1 { font-size: 24px; margin: 0 0 12px; }
h2 { font-size: 19px; margin: 36px 0 6px; padding-top: 14px; border-top: 2px solid var(--fg); }
h3 { font-size: 15px; margin: 20px 0 6px; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
pre { background: var(--bg-alt); border: 1px solid var(--line); padding: 8px 10px; white-space: pre-wrap; word-break: break-all; margin: 4px 0 8px; }
.machine { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 6px 16px; margin: 0 0 12px; padding: 10px 12px; background: var(--bg-alt); border: 1px solid var(--line); }
.machine div { min-width: 0; }
.machine dt { font-size: 11.5px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.machine dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }
.muted { color: var(--muted); }
.claim { font-size: 15px; margin: 4px 0 10px; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
th { font-weight: 600; border-bottom: 1.5px solid #999; background: var(--bg-alt); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
tr.group-start td { border-top: 1.5px solid #aaa; }
td.phase { font-weight: 600; }
.fault { color: #9b1c1c; font-weight: 400; }
.pass, .fail { display: inline-block; padding: 0 7px; border-radius: 3px; font-weight: 700; font-size: 12px; }
.pass { color: var(--pass); border: 1px solid var(--pass); }
.fail { color: #fff; background: var(--fail); }
.bad { color: var(--fail); font-weight: 700; }
.note { border-left: 4px solid #c77700; background: #fff6e5; padding: 6px 10px; margin: 8px 0; }
.swatch { vertical-align: middle; margin-right: 6px; }
td.variant { white-space: nowrap; }
.scroll { overflow-x: auto; max-width: 100%; }
/* Below ~760 px the chart text would shrink under 9 px: scroll instead. */
.charts { display: grid; grid-template-columns: 1fr; gap: 4px; margin: 8px 0 4px; overflow-x: auto; }
figure { margin: 0; }
svg.chart { display: block; width: 100%; min-width: 760px; max-width: 1060px; height: auto; }
ul.findings { margin: 4px 0 10px; padding-left: 20px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
a { color: #0b57a3; }
@media print { body { padding: 0; } h2 { break-before: page; } figure, table { break-inside: avoid; } }
`;

export function renderHtml(report: BenchReport): string {
  const m = report.machine;
  const body: string[] = [];
  body.push('<header>', '<h1>bulwark bench report</h1>');
  body.push('<dl class="machine">');
  for (const [k, v] of [
    ['Cores', fmtCount(m.cores)],
    ['CPU model', m.cpu_model],
    ['Memory', fmtGiB(m.memory_gib)],
    ['Node', m.node],
    ['Platform', m.platform],
    ['Date', m.date],
  ] as const) {
    body.push(`<div><dt>${esc(k)}</dt><dd>${esc(v)}</dd></div>`);
  }
  body.push('</dl>');
  body.push(`<div class="muted">Command</div><pre><code>${esc(report.command)}</code></pre>`);
  if (report.git_commit !== undefined)
    body.push(`<div class="muted">Built from commit <code>${esc(report.git_commit)}</code></div>`);
  body.push(`<p class="muted">Started ${esc(report.started_at)}, finished ${esc(report.finished_at)}.</p>`);
  body.push('</header>');

  body.push(verdictSection(report));
  body.push(summary(report));
  report.scenarios.forEach((s, i) => body.push(scenarioSection(s, i)));
  body.push(
    '<footer>Generated by bulwark. Every number is a measured value from the run; the raw JSON report sits next to this file.</footer>',
  );

  return [
    '<!doctype html>',
    '<!-- Generated by bulwark from report.json beside this file: do not edit (re-render with `npm run report:render DIR`). -->',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${esc(CSP)}">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>bulwark bench report, ${esc(m.date)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body><main>',
    ...body,
    '</main></body>',
    '</html>',
    '',
  ].join('\n');
}

function verdictSection(report: BenchReport): string {
  const v = verdictOf(report);
  const out: string[] = ['<section id="verdict">', '<h2>Verdict</h2>'];
  if (v.rows.length === 0) out.push('<p class="muted">No scenario ran.</p>');
  else {
    out.push(
      `<div class="scroll"><table class="verdict"><thead><tr><th>Scenario</th>${v.variants.map((x) => `<th class="num">${esc(x.label)}</th>`).join('')}</tr></thead><tbody>`,
    );
    report.scenarios.forEach((s, i) => {
      const row = v.rows[i]!;
      const cells = v.variants.map(
        (x) => `<td class="num">${cellText(row, x.id, (t) => `<strong>${esc(t)}</strong>`)}</td>`,
      );
      out.push(`<tr><td><a href="#${esc(scenarioAnchor(s, i))}">${esc(rowLabel(row))}</a></td>${cells.join('')}</tr>`);
    });
    out.push('</tbody></table></div>', `<p class="muted">${esc(VERDICT_LEGEND)}</p>`);
  }
  const losses = lossReport(v);
  out.push('<h2 id="losses">Where bulwark loses</h2>', `<p class="losses-lead">${esc(losses.lead)}</p>`);
  if (losses.items.length > 0)
    out.push(`<ul class="losses">${losses.items.map((t) => `<li>${esc(t)}</li>`).join('')}</ul>`);
  out.push('</section>');
  return out.join('\n');
}

function summary(report: BenchReport): string {
  const out: string[] = ['<section id="summary">', '<h2>Summary</h2>'];
  const rows = report.scenarios.flatMap((s, i) => s.checks.map((c) => ({ s, i, c })));
  if (rows.length === 0) {
    out.push('<p class="muted">No checks were recorded.</p>');
  } else {
    const failed = rows.filter((r) => !r.c.passed).length;
    out.push(
      failed === 0
        ? `<p>All ${rows.length} checks passed.</p>`
        : `<p><strong class="bad">${failed} of ${rows.length} checks failed.</strong></p>`,
    );
    out.push(
      '<table class="checks"><thead><tr><th>Scenario</th><th>Check</th><th>Result</th><th>Measured</th></tr></thead><tbody>',
    );
    for (const { s, i, c } of rows) {
      out.push(
        `<tr><td><a href="#${esc(scenarioAnchor(s, i))}">${esc(s.scenario)}</a></td><td>${esc(c.name)}</td><td>${verdict(c)}</td><td>${esc(c.detail)}</td></tr>`,
      );
    }
    out.push('</tbody></table>');
  }
  const behind = report.scenarios.flatMap((s) =>
    s.variants.filter((v) => v.behind_schedule).map((v) => `${s.scenario} / ${variantLabel(v)}`),
  );
  if (behind.length > 0) {
    out.push(
      `<p class="note"><strong>Note:</strong> the load generator fell behind its schedule in ${esc(behind.join(', '))}; those rows are less trustworthy.</p>`,
    );
  }
  out.push('</section>');
  return out.join('\n');
}

function verdict(c: Check): string {
  return c.passed ? '<span class="pass">pass</span>' : '<span class="fail">FAIL</span>';
}

/** A short line in the variant's colour and dash, so tables key to the charts. */
function swatch(v: VariantResult, index: number): string {
  const st = variantStyle(v.variant, index);
  const dash = st.dash ? ` stroke-dasharray="${esc(st.dash)}"` : '';
  return `<svg class="swatch" width="26" height="8" viewBox="0 0 26 8" aria-hidden="true"><line x1="1" x2="25" y1="4" y2="4" stroke="${esc(st.color)}" stroke-width="${st.width + 0.5}"${dash}/></svg>`;
}

function variantCell(v: VariantResult, index: number): string {
  return `${swatch(v, index)}${esc(variantLabel(v))}`;
}

function flag(n: number): string {
  return n === 0 ? '0' : `<span class="bad">${esc(fmtCount(n))}</span>`;
}

function scenarioSection(s: ScenarioResult, index: number): string {
  const anchor = scenarioAnchor(s, index);
  const out: string[] = [`<section class="scenario" id="${esc(anchor)}">`];
  const title = s.title && s.title !== s.scenario ? `${esc(s.scenario)}: ${esc(s.title)}` : esc(s.scenario);
  out.push(`<h2>${title}</h2>`);
  if (s.claim) out.push(`<p class="claim"><strong>Claim:</strong> ${esc(s.claim)}</p>`);
  if (s.calibration)
    out.push(
      `<p class="note"><strong>Fitted to this machine:</strong> ${esc(describeCalibration(s.calibration))}.</p>`,
    );
  for (const v of s.variants.filter((x) => x.behind_schedule)) {
    out.push(
      `<p class="note"><strong>Note:</strong> the load generator fell behind its schedule for ${esc(variantLabel(v))}; its latency and goodput are less trustworthy.</p>`,
    );
  }

  if (s.phases.length > 0) {
    out.push(
      '<h3>Phases</h3><table class="phases"><thead><tr><th>Phase</th><th class="num">From</th><th class="num">To</th><th>Fault</th></tr></thead><tbody>',
    );
    for (const p of s.phases) {
      out.push(
        `<tr><td>${esc(p.name)}</td><td class="num">${esc(fmtSeconds(p.start_s))}</td><td class="num">${esc(fmtSeconds(p.end_s))}</td><td>${p.fault ? `<span class="fault">${esc(p.fault)}</span>` : '—'}</td></tr>`,
      );
    }
    out.push('</tbody></table>');
  }

  if (s.variants.length === 0) {
    out.push('<p class="muted">No variant ran.</p>');
  } else {
    if (s.variants.some((v) => v.timeline.length > 0)) {
      out.push('<div class="charts">');
      for (const { metric, svg } of scenarioCharts(s, anchor))
        out.push(`<figure data-metric="${esc(metric.key)}">${svg}</figure>`);
      out.push('</div>');
    } else {
      out.push('<p class="muted">No per-second timeline was recorded, so there are no charts.</p>');
    }
    out.push('<h3>Before / after</h3>', `<div class="scroll">${resultsTable(s)}</div>${spreadHtml(s)}`);
    out.push('<h3>Audit and SLO</h3>', `<div class="scroll">${auditTable(s)}</div>`);
    const reported = s.variants.filter((v) => s.audit_reported_only?.includes(v.variant));
    if (reported.length > 0)
      out.push(
        `<p><em>Audit reported as measured, not judged: ${esc(reported.map((v) => variantLabel(v)).join(', '))}.</em></p>`,
      );
    const findings = s.variants.flatMap((v, i) =>
      v.audit.findings.map((f) => `<li>${variantCell(v, i)}: ${esc(f)}</li>`),
    );
    if (findings.length > 0)
      out.push('<p><strong>Audit findings</strong></p>', `<ul class="findings">${findings.join('')}</ul>`);
    out.push(eventsTable(s), drainsTable(s));
  }

  if (s.checks.length > 0) {
    out.push(
      '<h3>Checks</h3><table class="checks"><thead><tr><th>Check</th><th>Result</th><th>Measured</th></tr></thead><tbody>',
    );
    for (const c of s.checks)
      out.push(`<tr><td>${esc(c.name)}</td><td>${verdict(c)}</td><td>${esc(c.detail)}</td></tr>`);
    out.push('</tbody></table>');
  }
  out.push('</section>');
  return out.join('\n');
}

/** Grouped by phase, a row per variant: before and after on adjacent lines. */
function resultsTable(s: ScenarioResult): string {
  const faults = new Map(s.phases.map((p) => [p.name, p.fault]));
  const out: string[] = [
    '<table class="results"><thead><tr><th>Phase</th><th>Variant</th><th class="num">Goodput/s</th><th class="num">p99 ms</th><th class="num">503 rate</th><th class="num">Timeouts</th></tr></thead><tbody>',
  ];
  const groups: { name: string; pick: (v: VariantResult) => PhaseTotals | undefined }[] = [
    ...phaseNames(s).map((name) => ({ name, pick: (v: VariantResult) => v.phases[name] })),
    { name: 'total', pick: (v: VariantResult) => v.totals },
  ];
  for (const g of groups) {
    s.variants.forEach((v, i) => {
      const t = g.pick(v);
      const fault = faults.get(g.name);
      const head =
        i === 0
          ? `<td class="phase" rowspan="${s.variants.length}">${esc(g.name)}${fault ? `<br><span class="fault">${esc(fault)}</span>` : ''}</td>`
          : '';
      const cells = t
        ? [fmtPerSecond(t.goodput_per_s), fmtMs(t.p99_ms), fmtPercent(t.rate_503), fmtCount(t.timeouts)]
        : ['—', '—', '—', '—'];
      out.push(
        `<tr${i === 0 ? ' class="group-start"' : ''}>${head}<td class="variant">${variantCell(v, i)}</td>${cells.map((c) => `<td class="num">${esc(c)}</td>`).join('')}</tr>`,
      );
    });
  }
  out.push('</tbody></table>');
  return out.join('\n');
}

function auditTable(s: ScenarioResult): string {
  const head = AUDIT_COLUMNS;
  const out: string[] = [
    `<table class="audit"><thead><tr>${head.map((h, i) => `<th${i > 0 ? ' class="num"' : ''}>${esc(h)}</th>`).join('')}</tr></thead><tbody>`,
  ];
  s.variants.forEach((v, i) => {
    const cells = [
      esc(fmtCount(v.totals.offered)),
      esc(fmtCount(v.totals.goodput)),
      esc(fmtMs(v.totals.p999_ms)),
      esc(fmtCount(v.audit.client_final)),
      flag(v.audit.duplicates),
      flag(v.audit.lost),
      flag(v.audit.pending),
      `${esc(fmtCount(v.slo.good))} / ${esc(fmtCount(v.slo.total))}`,
      esc(fmtPercent(v.slo.error_ratio)),
      esc(fmtBurn(v.slo.burn_rate)),
    ];
    out.push(
      `<tr><td class="variant">${variantCell(v, i)}</td>${cells.map((c) => `<td class="num">${c}</td>`).join('')}</tr>`,
    );
  });
  out.push('</tbody></table>');
  return out.join('\n');
}

function eventsTable(s: ScenarioResult): string {
  const events = s.variants.flatMap((v, i) => v.events.map((e) => ({ v, i, e }))).sort((a, b) => a.e.t - b.e.t);
  if (events.length === 0) return '';
  const rows = events.map(
    ({ v, i, e }) =>
      `<tr><td class="num">${esc(fmtSeconds(e.t))}</td><td class="variant">${variantCell(v, i)}</td><td>${esc(e.what)}</td></tr>`,
  );
  return `<h3>Events</h3><table class="events"><thead><tr><th class="num">t</th><th>Variant</th><th>Event</th></tr></thead><tbody>${rows.join('\n')}</tbody></table>`;
}

function drainsTable(s: ScenarioResult): string {
  const drains = s.variants.flatMap((v, vi) => (v.drains ?? []).map((d, i) => ({ v, vi, d, i })));
  if (drains.length === 0) return '';
  const rows = drains.map(
    ({ v, vi, d, i }) =>
      `<tr><td class="variant">${variantCell(v, vi)}</td><td class="num">#${i + 1}</td><td class="num">${esc(fmtSeconds(d.duration_s))}</td><td class="num">${flag(d.abandoned)}</td></tr>`,
  );
  return `<h3>Drains</h3><table class="drains"><thead><tr><th>Variant</th><th class="num">Drain</th><th class="num">Duration</th><th class="num">Abandoned</th></tr></thead><tbody>${rows.join('\n')}</tbody></table>`;
}
