/**
 * The Markdown and HTML renderers against a realistic report (two
 * scenarios, four variants, a failing check, a finding with `<&>`) and an
 * awkward one (one variant, millions per second, empty timelines, markup in
 * every field). What a reader relies on: the machine and the command on top,
 * every check with its numbers, the before/after rows, nothing that loads
 * from the network, and no text that turns into markup.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { renderHtml, renderMarkdown } from '../../src/lab/report/render.js';
import { reportChartFiles } from '../../src/lab/report/render-charts.js';
import {
  fmtCount,
  fmtGiB,
  fmtMs,
  fmtPercent,
  fmtPerSecond,
  fmtSeconds,
  mdCodeBlock,
  mdText,
  mergeEvents,
  shortEventLabel,
} from '../../src/lab/report/render-format.js';
import { edgeReport, fixtureReport } from './fixtures/report-fixture.js';

const report = fixtureReport();
const md = renderMarkdown(report);
const html = renderHtml(report);
const edge = edgeReport();
const edgeMd = renderMarkdown(edge);
const edgeHtml = renderHtml(edge);

/** Cells of a Markdown table row, honouring escaped pipes. */
const cells = (row: string): string[] =>
  row
    .trim()
    .replace(/^\||\|$/g, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());

/** The Markdown table right after a heading (or a paragraph line) that matches. */
function tableAfter(text: string, heading: RegExp): string[][] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => heading.test(l));
  assert.ok(start >= 0, `no line matches ${heading}`);
  let i = start + 1;
  while (i < lines.length && !lines[i]!.startsWith('|')) i++;
  const rows: string[][] = [];
  for (; i < lines.length && lines[i]!.startsWith('|'); i++) rows.push(cells(lines[i]!));
  return rows;
}

describe('number formats', () => {
  it('ms and rates: one decimal under 10, grouped integers above, a dash for nothing', () => {
    assert.equal(fmtMs(4.26), '4.3');
    assert.equal(fmtMs(0), '0.0');
    assert.equal(fmtMs(9.96), '10.0');
    assert.equal(fmtMs(10.4), '10');
    assert.equal(fmtMs(1942.4), '1,942');
    assert.equal(fmtMs(123_456_789), '123,456,789');
    assert.equal(fmtMs(null), '—');
    assert.equal(fmtMs(NaN), '—');
    assert.equal(fmtPerSecond(0), '0');
    assert.equal(fmtPerSecond(2.5), '2.5');
    assert.equal(fmtCount(11282), '11,282');
    assert.equal(fmtGiB(62.83), '62.8 GiB');
  });

  it('percentages never round a non-zero share to 0% or a partial one to 100%', () => {
    assert.equal(fmtPercent(0), '0%');
    assert.equal(fmtPercent(1), '100%');
    assert.equal(fmtPercent(0.854), '85.4%');
    assert.equal(fmtPercent(0.0004), '<0.1%');
    assert.equal(fmtPercent(0.99999), '>99.9%');
    assert.equal(fmtPercent(null), '—');
  });

  it('seconds stay whole when whole', () => {
    assert.equal(fmtSeconds(0), '0 s');
    assert.equal(fmtSeconds(10), '10 s');
    assert.equal(fmtSeconds(22.4), '22.4 s');
    assert.equal(fmtSeconds(0.84), '0.84 s');
    assert.equal(fmtSeconds(1.02), '1 s');
    assert.equal(fmtSeconds(1234.5), '1,235 s');
  });
});

describe('markdown escaping', () => {
  it('turns markup into text: HTML, entities, pipes, emphasis, leading list or heading marks', () => {
    assert.equal(mdText('<script>alert(1)</script>'), '\\<script>alert(1)\\</script>');
    assert.equal(mdText('a | b * c'), 'a \\| b \\* c');
    assert.equal(mdText('&lt; & 3'), '\\&lt; & 3');
    assert.equal(mdText('# not a heading'), '\\# not a heading');
    assert.equal(mdText('- not a list'), '\\- not a list');
    assert.equal(mdText('> not a quote'), '\\> not a quote');
    assert.equal(mdText('1. not a list'), '1\\. not a list');
    assert.equal(mdText('_em_ but db_acquire_timeouts stays'), '\\_em\\_ but db_acquire_timeouts stays');
    assert.equal(mdText('two\nlines'), 'two lines');
  });

  it('fences code with more backticks than it holds', () => {
    assert.equal(mdCodeBlock('a ```` b', 'sh'), '`````sh\na ```` b\n`````');
  });
});

describe('events', () => {
  it('short labels for the chart markers', () => {
    assert.equal(shortEventLabel('breaker provider open'), 'breaker open');
    assert.equal(shortEventLabel('breaker provider half-open'), 'breaker half-open');
    assert.equal(shortEventLabel('breaker fx closed'), 'fx breaker closed');
    assert.equal(shortEventLabel('SIGTERM sent'), 'SIGTERM');
    assert.equal(shortEventLabel('restart: ready'), 'restart');
    assert.equal(shortEventLabel('something long happened to the pool'), 'something long ha…');
  });

  it('the same event in several variants at one moment is one marker', () => {
    const merged = mergeEvents(report.scenarios[1]!.variants);
    const sigterms = merged.filter((e) => e.label === 'SIGTERM');
    assert.equal(sigterms.length, 2);
    assert.deepEqual(sigterms[0]!.variants, [0, 1, 2, 3]);
    assert.equal(merged.filter((e) => e.label === 'restart').length, 8, 'restarts at different moments stay apart');
  });
});

describe('renderMarkdown', () => {
  it('puts the machine and the exact command on top', () => {
    const top = md.slice(0, md.indexOf('## Summary'));
    const [head, , row] = tableAfter(top, /^# bulwark bench report/);
    assert.deepEqual(head, ['Cores', 'CPU model', 'Memory', 'Node', 'Platform', 'Date']);
    assert.deepEqual(row, [
      '16',
      'AMD EPYC 7B13 64-Core Processor',
      '62.8 GiB',
      'v20.20.2',
      'linux x64 (6.1.0-18-cloud-amd64)',
      '2025-06-02T09:14:07.512Z',
    ]);
    assert.ok(top.includes(`\`\`\`sh\n${report.command}\n\`\`\``), 'the command, verbatim, in a code block');
  });

  it('summarises every check with its verdict and measured detail, the failure first to the eye', () => {
    assert.match(md, /\*\*1 of 6 checks failed\.\*\*/);
    const rows = tableAfter(md, /^## Summary/);
    assert.deepEqual(rows[0], ['Scenario', 'Check', 'Result', 'Measured']);
    assert.equal(rows.length, 2 + 6);
    const failed = rows.filter((r) => r[2] === '**FAIL**');
    assert.equal(failed.length, 1);
    assert.deepEqual(failed[0], [
      'deploy',
      'goodput during deploy >= 90% of offered (mechanisms on)',
      '**FAIL**',
      'deploy phase 86.2% (258.6/s of 300/s) \\< 90% & restart gap 1.2 s',
    ]);
  });

  it('per scenario: the claim, the phases with their faults', () => {
    assert.match(md, /^## slow-provider: The provider slows to 4 s$/m);
    assert.match(md, /^\*\*Claim:\*\* When the provider slows/m);
    const phases = tableAfter(md, /^### Phases/);
    assert.deepEqual(phases.slice(2), [
      ['warm-up', '0 s', '10 s', '—'],
      ['fault', '10 s', '40 s', 'provider latency 4 s (p50), 10% hang'],
      ['recovery', '40 s', '60 s', '—'],
    ]);
  });

  it('a before/after table: every variant in every phase and in total, with goodput, p99, 503 rate, timeouts', () => {
    const rows = tableAfter(md, /^### Before \/ after/);
    assert.deepEqual(rows[0], ['Phase', 'Variant', 'Goodput/s', 'p99 ms', '503 rate', 'Timeouts']);
    const body = rows.slice(2);
    assert.equal(body.length, 4 * 4, '3 phases + total, 4 variants each');
    assert.ok(body.every((r) => r.length === 6));
    assert.deepEqual(
      body.slice(0, 4).map((r) => r[1]),
      ['bulwark (mechanisms on)', 'bulwark (mechanisms off)', 'Fastify baseline', 'Fastify baseline --hardened'],
    );
    assert.equal(body[4]![0], 'fault (provider latency 4 s (p50), 10% hang)');
    assert.equal(body[12]![0], '**total**');
    const v = report.scenarios[0]!.variants[0]!;
    assert.deepEqual(body[4]!.slice(2), [
      fmtPerSecond(v.phases.fault!.goodput_per_s),
      fmtMs(v.phases.fault!.p99_ms),
      fmtPercent(v.phases.fault!.rate_503),
      fmtCount(v.phases.fault!.timeouts),
    ]);
  });

  it('audit and SLO per variant, a non-zero loss in bold, findings escaped', () => {
    const deploy = md.slice(md.indexOf('## deploy'));
    const rows = tableAfter(deploy, /^### Audit and SLO/);
    assert.deepEqual(rows[0], [
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
    ]);
    const baseline = rows.find((r) => r[0] === 'Fastify baseline')!;
    assert.deepEqual(baseline.slice(4, 8), ['11,420', '0', '**14**', '**14**']);
    assert.match(
      deploy,
      /^- Fastify baseline: key \\<k-1042> & 13 others: charged at the provider, row still \\`started\\` after settle \(>30 s\)$/m,
    );
  });

  it('events, drains and the behind-schedule note', () => {
    const deploy = md.slice(md.indexOf('## deploy'));
    const events = tableAfter(deploy, /^### Events/);
    assert.equal(events.length, 2 + 16);
    assert.deepEqual(events[2], ['10 s', 'bulwark (mechanisms on)', 'SIGTERM sent']);
    const drains = tableAfter(deploy, /^### Drains/);
    assert.deepEqual(drains.slice(2, 4), [
      ['bulwark (mechanisms on)', '#1', '0.84 s', '0'],
      ['bulwark (mechanisms on)', '#2', '1.1 s', '0'],
    ]);
    assert.ok(drains.some((r) => r[0] === 'Fastify baseline' && r[3] === '**14**'));
    assert.match(deploy, /^> \*\*Note:\*\* the load generator fell behind its schedule for Fastify baseline/m);
    assert.doesNotMatch(
      md.slice(0, md.indexOf('## deploy')).slice(md.indexOf('## slow-provider')),
      /fell behind/,
      'no note where it kept up',
    );
  });

  it('every table row has as many cells as its header', () => {
    for (const text of [md, edgeMd]) {
      const lines = text.split('\n');
      for (let i = 0; i < lines.length; i++) {
        if (!lines[i]!.startsWith('|') || lines[i - 1]?.startsWith('|')) continue;
        const width = cells(lines[i]!).length;
        for (let j = i + 1; j < lines.length && lines[j]!.startsWith('|'); j++)
          assert.equal(cells(lines[j]!).length, width, lines[j]);
      }
    }
  });

  it('edge cases: markup stays text, nothing undefined or NaN, empty scenarios say so', () => {
    assert.doesNotMatch(edgeMd, /NaN|undefined|Infinity|\[object/);
    assert.doesNotMatch(edgeMd, /(?<!\\)<script>/);
    assert.match(edgeMd, /^## huge & \\<lonely>: \\<script>alert\(1\)\\<\/script>$/m);
    assert.match(edgeMd, /\| a \\\| pipe \\\* star \\_under\\_ \| \*\*FAIL\*\* \|/);
    assert.match(edgeMd, /^`````sh$/m, 'a command holding ```` gets a longer fence');
    assert.match(edgeMd, /^_No variant ran\._$/m);
  });
});

describe('renderHtml', () => {
  it('is one self-contained document: no script, no external resource, a CSP that forbids loading', () => {
    for (const doc of [html, edgeHtml]) {
      assert.match(doc, /^<!doctype html>/);
      assert.doesNotMatch(doc, /<script/i);
      assert.doesNotMatch(doc, /\ssrc\s*=/i);
      assert.doesNotMatch(doc, /<link\b/i);
      assert.doesNotMatch(doc, /@import/i);
      assert.doesNotMatch(doc, /url\(\s*['"]?(https?:|\/\/|data:)/i);
      assert.doesNotMatch(doc, /\son\w+\s*=/i, 'no inline event handlers');
      const hrefs = [...doc.matchAll(/\shref\s*=\s*"([^"]*)"/gi)].map((m) => m[1]!);
      assert.ok(
        hrefs.every((h) => h.startsWith('#')),
        `only in-page anchors: ${hrefs.join(', ')}`,
      );
      assert.match(
        doc,
        /<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;; style-src &#39;unsafe-inline&#39;; img-src data:">/,
      );
    }
  });

  it('ids are unique across all charts, and every anchor and clip reference has its target', () => {
    for (const doc of [html, edgeHtml]) {
      const all = [...doc.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
      assert.equal(new Set(all).size, all.length, 'no id twice: inline SVGs share one document');
      const ids = new Set(all);
      for (const m of doc.matchAll(/href="#([^"]+)"/g)) assert.ok(ids.has(m[1]), `#${m[1]} has a target`);
      for (const m of doc.matchAll(/url\(#([^)]+)\)/g)) assert.ok(ids.has(m[1]), `url(#${m[1]}) has a target`);
      for (const m of doc.matchAll(/aria-labelledby="([^"]+)"/g)) assert.ok(ids.has(m[1]), `${m[1]} labels its chart`);
    }
  });

  it('shows the machine, the command and the failing check', () => {
    for (const v of [
      '16',
      'AMD EPYC 7B13 64-Core Processor',
      '62.8 GiB',
      'v20.20.2',
      'linux x64 (6.1.0-18-cloud-amd64)',
      '2025-06-02T09:14:07.512Z',
    ]) {
      assert.ok(html.includes(`<dd>${v}</dd>`), v);
    }
    assert.ok(html.includes(`<pre><code>${report.command}</code></pre>`));
    assert.match(html, /1 of 6 checks failed/);
    assert.match(
      html,
      /<td>goodput during deploy &gt;= 90% of offered \(mechanisms on\)<\/td><td><span class="fail">FAIL<\/span><\/td><td>deploy phase 86\.2% \(258\.6\/s of 300\/s\) &lt; 90% &amp; restart gap 1\.2 s<\/td>/,
    );
  });

  it('escapes every text from the report', () => {
    assert.match(html, /key &lt;k-1042&gt; &amp; 13 others/);
    assert.doesNotMatch(html, /<k-1042/);
    assert.doesNotMatch(edgeHtml, /<script>|<b>not bold|<Xeon>|<lonely>|<hang>|<1>/);
    assert.match(edgeHtml, /huge &amp; &lt;lonely&gt;: &lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.match(edgeHtml, /Intel &lt;Xeon&gt; &amp; &quot;friends&quot;/);
  });

  it('three charts per scenario (goodput, p99, 503), each with the fault window shaded and the events marked', () => {
    assert.equal((html.match(/<svg [^>]*class="chart"/g) ?? []).length, 2 * 3);
    for (const s of html.split('<section class="scenario"').slice(1)) {
      const figures = [
        ...s.matchAll(/<figure data-metric="([^"]+)"><svg [^>]*class="chart"[\s\S]*?<\/svg><\/figure>/g),
      ];
      assert.deepEqual(
        figures.map((f) => f[1]),
        ['goodput', 'p99', '503'],
      );
      for (const [fig] of figures) {
        assert.equal((fig.match(/<rect class="band"/g) ?? []).length, 1, 'one fault phase, one shaded window');
        assert.equal((fig.match(/<g class="series">/g) ?? []).length, 4, 'one line per variant');
        assert.ok((fig.match(/<g class="marker">/g) ?? []).length >= 4);
        for (const label of [
          'bulwark (mechanisms on)',
          'bulwark (mechanisms off)',
          'Fastify baseline',
          'Fastify baseline --hardened',
        ]) {
          assert.ok(fig.includes(`>${label}</text>`), `legend has ${label}`);
        }
      }
    }
    assert.match(html, />breaker open<\/text>/);
    assert.match(html, />SIGTERM<\/text>/);
    assert.match(html, /p99 \(ms\), log scale/);
  });

  it('a fourth chart, SLO good % by send second, once the timeline carries it; the same in report.md and its files', () => {
    const withSlo = fixtureReport();
    for (const sc of withSlo.scenarios)
      for (const v of sc.variants) v.timeline.forEach((p, i) => (p.slo_good_pct = i === 0 ? null : 90 - i));
    const metrics = (h: string) => [...h.matchAll(/<figure data-metric="([^"]+)">/g)].map((m) => m[1]).slice(0, 4);
    assert.deepEqual(metrics(renderHtml(withSlo)), ['goodput', 'p99', '503', 'slo']);
    assert.match(renderHtml(withSlo), /SLO good % of the charges sent each second/);
    const files = reportChartFiles(withSlo.scenarios).map((f) => f.path);
    const text = renderMarkdown(withSlo);
    for (const f of files) assert.ok(text.includes(`](${f})`), `report.md links ${f}`);
    assert.ok(files.some((f) => f.endsWith('-slo.svg')));
    // A result without it (older reports) keeps three: no empty chart.
    assert.ok(!reportChartFiles(report.scenarios).some((f) => f.path.endsWith('-slo.svg')));
  });

  it('the variants keep one colour and dash across charts and tables', () => {
    const dashes = [
      ...html.matchAll(
        /<path d="[^"]+" fill="none" stroke="(#[0-9A-Fa-f]{6})" stroke-width="[\d.]+"(?: stroke-dasharray="([^"]+)")?/g,
      ),
    ].map((m) => `${m[1]} ${m[2] ?? 'solid'}`);
    assert.deepEqual([...new Set(dashes)].sort(), ['#0072B2 solid', '#009E73 9 3 2 3', '#D55E00 2 3', '#E69F00 7 4']);
  });

  it('edge cases: one variant, huge values, gaps, empty timelines and no variants all render', () => {
    assert.doesNotMatch(edgeHtml, /NaN|undefined|Infinity|\[object/);
    const sections = edgeHtml.split('<section class="scenario"').slice(1);
    assert.equal((sections[0]!.match(/<svg [^>]*class="chart"/g) ?? []).length, 3);
    assert.equal((sections[0]!.match(/<g class="series">/g) ?? []).length, 3, 'a single variant: one line per chart');
    assert.match(sections[0]!, />3M</, 'millions get compact ticks');
    assert.match(sections[0]!, /<circle /, 'a lone second between gaps is a dot');
    assert.doesNotMatch(sections[1]!, /<svg [^>]*class="chart"/);
    assert.match(sections[1]!, /No per-second timeline was recorded/);
    assert.match(sections[2]!, /No variant ran/);
  });

  it('is deterministic: the same report renders to the same bytes', () => {
    assert.equal(renderHtml(fixtureReport()), html);
    assert.equal(renderMarkdown(fixtureReport()), md);
  });
});
