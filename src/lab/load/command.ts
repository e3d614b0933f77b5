/**
 * `bulwark load`: options → run → table on stdout, and the files asked for.
 * Progress goes to stderr so stdout stays the report. SIGINT/SIGTERM stop
 * the schedule early; stragglers still get their deadline and the partial
 * result is reported like a full one (stopped_by: "signal").
 */
import { writeFile } from 'node:fs/promises';
import { ConfigError, renderHelp } from '../../config/options.js';
import { LOAD_SPECS, parseLoadArgs } from './options.js';
import { writeOutcomes } from './outcomes.js';
import { renderReport, renderSecond } from './report.js';
import { runLoad } from './run.js';
import { REQUEST_CLASSES, type LoadResult } from './types.js';

const SUMMARY =
  'Open-loop load generator for the gateway: requests leave on a schedule (constant, steps, Poisson) whether or not ' +
  'earlier ones returned, and latency is measured from the intended send time, so stalls are not hidden. Reports ' +
  'offered, sent, retries, goodput (201/402/replay within the deadline), statuses, timeouts and p50/p99/p999 per ' +
  'request class, per second and in total, and flags a run that fell behind its own schedule.';

export async function loadCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const args = parseLoadArgs(argv, env);
  if (args.help) {
    process.stdout.write(`${renderHelp('bulwark load [options]', SUMMARY, LOAD_SPECS)}\n`);
    return;
  }
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let result: LoadResult;
  try {
    result = await runLoad(args.options, {
      signal: stop.signal,
      onSecond: args.progress
        ? (s) => {
            const main = REQUEST_CLASSES.find((c) => s.latency_ms[c] !== undefined);
            process.stderr.write(`${renderSecond(s, main ? s.latency_ms[main]?.p99 : undefined)}\n`);
          }
        : undefined,
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  process.stdout.write(`${renderReport(result)}\n`);
  if (args.outcomesFile !== '')
    await writeOrExplain('--outcomes', args.outcomesFile, () => writeOutcomes(args.outcomesFile, result.outcomes));
  if (args.jsonFile !== '') {
    // Per-key outcomes can run to millions of lines: they go to --outcomes, not into the summary.
    const { outcomes: _outcomes, ...summary } = result;
    const body = { ...summary, outcomes_file: args.outcomesFile === '' ? null : args.outcomesFile };
    await writeOrExplain('--json', args.jsonFile, () => writeFile(args.jsonFile, `${JSON.stringify(body, null, 2)}\n`));
  }
}

/** An unwritable output path is the user's setting: one line naming it, exit 2. */
async function writeOrExplain(flag: string, file: string, write: () => Promise<void>): Promise<void> {
  try {
    await write();
  } catch (e) {
    throw new ConfigError(
      `${flag} cannot write ${JSON.stringify(file)}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
    );
  }
}
