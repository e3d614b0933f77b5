/**
 * Re-renders a report folder from its report.json with the current renderer:
 * report.md, report.html and charts/*.svg. `npm run report:render DIR`
 * (default docs/lab). Nothing is measured: the JSON is the run; a new layout
 * reaches a committed report without re-running the bench, and the
 * committed-report test fails when the files differ from what this writes.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchReport } from '../src/lab/report/types.js';
import { writeRenderings } from '../src/lab/scenario/write/report-files.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const COMMITTED_REPORT_DIR = path.join(ROOT, 'docs', 'lab');

export async function rerender(dir: string): Promise<string[]> {
  const report = JSON.parse(await readFile(path.join(dir, 'report.json'), 'utf8')) as BenchReport;
  const w = await writeRenderings(dir, report);
  return [w.markdown, w.html, ...w.charts];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = path.resolve(process.argv[2] ?? COMMITTED_REPORT_DIR);
  const written = await rerender(dir);
  process.stdout.write(`re-rendered ${dir}: ${written.length} files\n`);
}
