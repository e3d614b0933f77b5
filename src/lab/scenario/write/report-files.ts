/**
 * Writing a report: the raw JSON and, from it, the Markdown and the
 * self-contained HTML (the renderers in ../report/render.js lay out the
 * numbers; nothing is computed twice).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BenchReport } from '../../report/types.js';

export interface WrittenReport {
  dir: string;
  json: string;
  markdown: string;
  html: string;
}

export async function writeReport(dir: string, report: BenchReport): Promise<WrittenReport> {
  await mkdir(dir, { recursive: true });
  const { renderMarkdown, renderHtml } = await import('../../report/render.js');
  const files = {
    json: path.join(dir, 'report.json'),
    markdown: path.join(dir, 'report.md'),
    html: path.join(dir, 'report.html'),
  };
  await writeFile(files.json, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(files.markdown, renderMarkdown(report));
  await writeFile(files.html, renderHtml(report));
  return { dir, ...files };
}

/** reports/<local date and time>, e.g. reports/2025-03-01-142530: one directory per run, never overwritten by the next. */
export function defaultReportDir(now = new Date(), suffix = ''): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}-${p(now.getMonth() + 1)}-${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
  return path.join('reports', suffix === '' ? stamp : `${stamp}-${suffix}`);
}
