/**
 * The spread table of a scenario run over several seeds (`--seeds N`): per
 * variant the min – median – max of its headline goodput, SLO good % and
 * recovery time, and how many checks each seed passed. Its own file so the
 * Markdown and HTML renderers each call it in one line; nothing is rendered
 * for a single-seed run.
 */
import { VARIANT_LABELS, type MinMedianMax, type ScenarioResult, type SpreadRow } from './types.js';
import { escapeXml as esc } from './svg-chart.js';
import { fmtPerSecond, fmtSeconds, mdText } from './render-format.js';

const HEAD = ['Variant', 'Goodput/s', 'SLO good %', 'Recovery'];

function range(x: MinMedianMax | null, f: (v: number) => string): string {
  return x === null ? '—' : `${f(x.min)} – ${f(x.median)} – ${f(x.max)}`;
}

function cells(r: SpreadRow, seeds: number): string[] {
  const rec = range(r.recovery_s, fmtSeconds);
  const never = r.not_recovered ? ` (${r.not_recovered} not recovered)` : '';
  const name = (VARIANT_LABELS as Record<string, string>)[r.variant] ?? r.variant;
  return [
    r.runs < seeds ? `${name} (ran under ${r.runs} of ${seeds} seeds)` : name,
    range(r.goodput_per_s, fmtPerSecond),
    // One decimal: 99.5 % good must not read as 100 %.
    range(r.slo_good_pct, (v) => `${v.toFixed(1)}%`),
    `${rec}${never}`,
  ];
}

function caption(s: ScenarioResult): string {
  const sp = s.spread!;
  const checks = sp.checks_passed.map((c) => `seed ${c.seed}: ${c.passed}/${c.total}`).join(', ');
  // The first seed's failures are in its check table below; the others' are named here.
  const others = sp.checks_passed
    .slice(1)
    .filter((c) => (c.failed?.length ?? 0) > 0)
    .map((c) => ` Seed ${c.seed} failed: ${c.failed!.join('; ')}.`)
    .join('');
  return `min – median – max over ${sp.seeds.length} seeds (${sp.seeds.join(', ')}); the rest of this section is seed ${sp.seeds[0]}'s run. Checks passed per seed: ${checks}.${others}`;
}

/** Markdown lines (with a trailing blank), or none without a spread. */
export function spreadMarkdown(s: ScenarioResult): string[] {
  if (!s.spread || s.spread.seeds.length < 2) return [];
  const line = (c: readonly string[]) => `| ${c.join(' | ')} |`;
  return [
    '### Spread over seeds',
    '',
    mdText(caption(s)),
    '',
    line(HEAD),
    line(['---', '---:', '---:', '---:']),
    ...s.spread.rows.map((r) => line(cells(r, s.spread!.seeds.length).map(mdText))),
    '',
  ];
}

/** An HTML fragment, or '' without a spread. */
export function spreadHtml(s: ScenarioResult): string {
  if (!s.spread || s.spread.seeds.length < 2) return '';
  const th = HEAD.map((h, i) => `<th${i > 0 ? ' class="num"' : ''}>${esc(h)}</th>`).join('');
  const rows = s.spread.rows.map(
    (r) =>
      `<tr>${cells(r, s.spread!.seeds.length)
        .map((c, i) => `<td${i > 0 ? ' class="num"' : ''}>${esc(c)}</td>`)
        .join('')}</tr>`,
  );
  return `<h3>Spread over seeds</h3><p class="muted">${esc(caption(s))}</p><table class="spread"><thead><tr>${th}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}
