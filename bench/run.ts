// npm run bench:micro — every hot-path micro-benchmark, one table. BENCH_TIME_MS sets time per case.
import os from 'node:os';
import { runSuite, type Suite } from './harness.js';

const files = ['histogram', 'metrics', 'scrape', 'admission', 'breaker-bulkhead', 'validation', 'worker'];
const only = process.argv.slice(2);
const rows: Record<string, string | number | undefined>[] = [];
for (const f of files) {
  if (only.length && !only.includes(f)) continue;
  const { suite } = (await import(`./${f}.bench.js`)) as { suite: Suite };
  rows.push(...(await runSuite(suite)));
}
console.log(
  `machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, node ${process.version}, ${new Date().toISOString()}`,
);
console.table(rows);
