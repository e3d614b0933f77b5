/**
 * Writing a report: the raw JSON and, from it, the Markdown, the
 * self-contained HTML and the charts the Markdown links (SVG files under
 * charts/, so a code host shows them). The renderers in ../report/ lay out
 * the numbers; nothing is computed twice.
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BenchReport } from '../../report/types.js';
import { CHART_DIR, reportChartFiles } from '../../report/render-charts.js';

export interface WrittenReport {
  dir: string;
  json: string;
  markdown: string;
  html: string;
  /** The chart files report.md links, absolute paths. */
  charts: string[];
}

export async function writeReport(dir: string, report: BenchReport): Promise<WrittenReport> {
  await mkdir(dir, { recursive: true });
  const json = path.join(dir, 'report.json');
  await writeFile(json, `${JSON.stringify(report, null, 2)}\n`);
  return { json, ...(await writeRenderings(dir, report)) };
}

/**
 * Everything rendered from a report (report.md, report.html, charts/*.svg),
 * without touching report.json: what re-rendering a committed report with
 * the current renderer writes. Chart files no longer rendered (a scenario
 * dropped or renamed) are removed, so the folder holds only what report.md
 * links.
 */
export async function writeRenderings(dir: string, report: BenchReport): Promise<Omit<WrittenReport, 'json'>> {
  const { renderMarkdown, renderHtml } = await import('../../report/render.js');
  const markdown = path.join(dir, 'report.md');
  const html = path.join(dir, 'report.html');
  const chartDir = path.join(dir, CHART_DIR);
  const charts = reportChartFiles(report.scenarios);
  await mkdir(chartDir, { recursive: true });
  const keep = new Set(charts.map((c) => path.basename(c.path)));
  for (const name of await readdir(chartDir))
    if (name.endsWith('.svg') && !keep.has(name)) await rm(path.join(chartDir, name));
  for (const c of charts) await writeFile(path.join(dir, c.path), c.content);
  await writeFile(markdown, renderMarkdown(report));
  await writeFile(html, renderHtml(report));
  return { dir, markdown, html, charts: charts.map((c) => path.join(dir, c.path)) };
}

/** reports/<local date and time>, e.g. reports/2025-03-01-142530: one directory per run, never overwritten by the next. */
export function defaultReportDir(now = new Date(), suffix = ''): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}-${p(now.getMonth() + 1)}-${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
  return path.join('reports', suffix === '' ? stamp : `${stamp}-${suffix}`);
}
