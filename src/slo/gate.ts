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

/** Six significant digits by default: enough for people, short enough for a CI line. */
export function formatShare(x: number, digits = 6): string {
  return String(Number(x.toPrecision(digits)));
}

export function gateVerdict({ remaining, minRemaining, source }: GateInput): GateVerdict {
  if (Number.isNaN(remaining)) throw new RangeError('remaining must be a number; got NaN');
  const pass = remaining >= minRemaining;
  // 0.2499996 must not print as "0.25 is below 0.25": show more digits when six hide the difference.
  const digits = remaining !== minRemaining && formatShare(remaining) === formatShare(minRemaining) ? 12 : 6;
  const shown = `${formatShare(remaining, digits)} (${formatShare(remaining * 100, digits)} %)`;
  const line = pass
    ? `pass: error budget remaining ${shown} is at or above the threshold ${formatShare(minRemaining, digits)}; source: ${source}`
    : `fail: error budget remaining ${shown} is below the threshold ${formatShare(minRemaining, digits)}; source: ${source}`;
  return { pass, line };
}
