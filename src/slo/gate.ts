/**
 * The shipping gate's verdict: pass when the remaining error budget is at or
 * above the threshold. Pure, so the lab can gate without spawning the CLI;
 * the one line it returns is what CI shows, so it says the number, the
 * threshold and where the number came from.
 */

export interface GateInput {
  /** Share of the window's error budget left (1 = untouched, negative = overspent). */
  remaining: number;
  /** Lowest acceptable remaining share, 0 to 1. */
  minRemaining: number;
  /** Where `remaining` came from, e.g. "prometheus http://prom:9090, job bulwark, 28-day window". */
  source: string;
}

export interface GateVerdict {
  pass: boolean;
  /** One line: verdict, remaining, threshold, source. */
  line: string;
}

/** Six significant digits: enough to see why 0.2499996 failed a 0.25 threshold. */
export function formatShare(x: number): string {
  return String(Number(x.toPrecision(6)));
}

export function gateVerdict({ remaining, minRemaining, source }: GateInput): GateVerdict {
  if (Number.isNaN(remaining)) throw new RangeError('remaining must be a number; got NaN');
  const pass = remaining >= minRemaining;
  const percent = `${formatShare(remaining * 100)} %`;
  const line = pass
    ? `pass: error budget remaining ${formatShare(remaining)} (${percent}) is at or above the threshold ${formatShare(minRemaining)}; source: ${source}`
    : `fail: error budget remaining ${formatShare(remaining)} (${percent}) is below the threshold ${formatShare(minRemaining)}; source: ${source}`;
  return { pass, line };
}
