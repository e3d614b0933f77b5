/**
 * Running wrk (the Debian package) and reading its report: requests per
 * second, the latency percentiles of its --latency table, non-2xx answers.
 * wrk is closed loop: each connection sends its next request when the last
 * one returned, so its percentiles are those of the requests it managed to
 * send (a stall shows as fewer requests, not as their latency). The native
 * benches compare ceilings and latency at a fixed concurrency; open-loop
 * latency under a schedule is the lab's job (`bulwark load`).
 */
import { spawnSync } from 'node:child_process';

export interface WrkResult {
  rps: number;
  /** Answers other than 2xx/3xx per second. */
  non2xxPerS: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  seconds: number;
}

function unitMs(v: string, unit: string): number {
  const n = Number(v);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n;
}

export function wrk(
  url: string,
  o: { connections: number; seconds: number; script?: string; scriptArgs?: string[] },
): WrkResult {
  const args = [
    '-t1',
    `-c${o.connections}`,
    `-d${o.seconds}s`,
    '--latency',
    ...(o.script ? ['-s', o.script] : []),
    url,
    ...(o.scriptArgs && o.scriptArgs.length > 0 ? ['--', ...o.scriptArgs] : []),
  ];
  const r = spawnSync('wrk', args, { encoding: 'utf8' });
  if (r.error) throw new Error(`wrk is needed (Debian package wrk): ${r.error.message}`);
  const out = r.stdout;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  if (!Number.isFinite(rps)) throw new Error(`wrk printed no Requests/sec: ${out}${r.stderr}`);
  const p = (q: string) => {
    const m = new RegExp(`^\\s+${q}%\\s+([\\d.]+)(us|ms|s|m)`, 'm').exec(out);
    return m ? unitMs(m[1]!, m[2]!) : NaN;
  };
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  return { rps, non2xxPerS: non2xx / o.seconds, p50Ms: p('50'), p99Ms: p('99'), non2xx, seconds: o.seconds };
}

/** The middle value; the mean of the two middle ones for an even count. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
