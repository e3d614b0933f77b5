/**
 * Where a run's charges missed the SLO, by time after each of a scenario's
 * events (a deploy's SIGTERM, a crash): reads the per-charge outcomes
 * `bulwark scenario NAME --outcomes DIR` writes and counts the charges that
 * were not good (5xx, no answer, or later than the threshold from their
 * intended send) by the window after an event that their intended send fell
 * in, summed over the events, with the commonest attempt histories in each.
 *
 *   node dist/scripts/outcome-windows.js --at 8,14,20 --edges 0,0.5,1.25,2.5,5 DIR/deploy-gateway-seed1.ndjson ...
 *
 * `--at`: the events, seconds from the start of the load; `--edges`: the
 * window edges, seconds after each event; `--threshold-ms`: the SLO's latency
 * threshold (300 by default, the gateway's).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { sloGood } from '../src/lab/load/outcomes.js';
import { parseOutcomes } from '../src/lab/load/index.js';
import type { ChargeOutcome } from '../src/lab/load/types.js';

export interface WindowCount {
  /** Seconds after each event. */
  from_s: number;
  to_s: number;
  /** Charges whose intended send fell in the window after any event. */
  charges: number;
  not_good: number;
  /** Attempt histories of the charges not good (`201`, `503 starting,201`, `error,error,error`), commonest first. */
  histories: [string, number][];
}

export interface Windows {
  charges: number;
  not_good: number;
  windows: WindowCount[];
  /** Charges not good outside every window. */
  not_good_elsewhere: number;
}

export function outcomeWindows(
  outcomes: readonly ChargeOutcome[],
  atS: readonly number[],
  edgesS: readonly number[],
  thresholdMs: number,
): Windows {
  const windows: WindowCount[] = edgesS.slice(1).map((to, i) => ({
    from_s: edgesS[i]!,
    to_s: to,
    charges: 0,
    not_good: 0,
    histories: [],
  }));
  const histories = windows.map(() => new Map<string, number>());
  let notGood = 0;
  let elsewhere = 0;
  for (const o of outcomes) {
    const good = sloGood(o.status, o.latency_ms, thresholdMs);
    if (!good) notGood++;
    const t = o.intended_ms / 1000;
    const i = windows.findIndex((w) => atS.some((at) => t >= at + w.from_s && t < at + w.to_s));
    if (i < 0) {
      if (!good) elsewhere++;
      continue;
    }
    windows[i]!.charges++;
    if (good) continue;
    windows[i]!.not_good++;
    // `503 starting`: the status and, where the answer had one, its problem code.
    const h = o.history.map((x, a) => (o.codes?.[a] ? `${x} ${o.codes[a]}` : String(x))).join(',');
    histories[i]!.set(h, (histories[i]!.get(h) ?? 0) + 1);
  }
  windows.forEach((w, i) => (w.histories = [...histories[i]!].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))));
  return { charges: outcomes.length, not_good: notGood, windows, not_good_elsewhere: elsewhere };
}

function numbers(flag: string, text: string): number[] {
  const xs = text.split(',').map(Number);
  if (text === '' || xs.some((x) => !Number.isFinite(x)))
    throw new Error(`${flag}: a comma-separated list of numbers; got ${JSON.stringify(text)}`);
  return xs;
}

function main(): void {
  const { values, positionals } = parseArgs({
    options: { at: { type: 'string' }, edges: { type: 'string' }, 'threshold-ms': { type: 'string', default: '300' } },
    allowPositionals: true,
  });
  if (values.at === undefined || values.edges === undefined || positionals.length === 0)
    throw new Error('usage: outcome-windows --at S,S,... --edges S,S,... [--threshold-ms N] FILE.ndjson ...');
  const at = numbers('--at', values.at);
  const edges = numbers('--edges', values.edges);
  const threshold = Number(values['threshold-ms']);
  for (const file of positionals) {
    const w = outcomeWindows(parseOutcomes(readFileSync(file, 'utf8')), at, edges, threshold);
    process.stdout.write(`${path.basename(file)}: ${w.not_good} of ${w.charges} charges not good\n`);
    for (const x of w.windows) {
      const top = x.histories
        .slice(0, 4)
        .map(([h, n]) => `${h} ×${n}`)
        .join(', ');
      process.stdout.write(
        `  [${x.from_s}, ${x.to_s}) s after each event: ${x.not_good} of ${x.charges}${top ? ` (${top})` : ''}\n`,
      );
    }
    process.stdout.write(`  elsewhere: ${w.not_good_elsewhere}\n`);
  }
}

if (
  process.argv[1] !== undefined &&
  path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)
) {
  try {
    main();
  } catch (e) {
    process.stderr.write(`outcome-windows: ${(e as Error).message}\n`);
    process.exitCode = 2;
  }
}
