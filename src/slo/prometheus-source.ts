/**
 * Reads the remaining error budget from a Prometheus server through its HTTP
 * API (`/api/v1/query`), from the series the SLO recording rules write — the
 * same number the dashboard shows and the alerts are built on, so the gate
 * cannot disagree with them. Every failure (unreachable, not Prometheus, a
 * PromQL error, no series) is a PrometheusSourceError whose message says
 * what to check: the gate must never read "no answer" as "budget left".
 */
import { Agent, request } from 'undici';
import { RECORDS } from './rules.js';

export class PrometheusSourceError extends Error {
  override readonly name = 'PrometheusSourceError';
}

export interface InstantSample {
  labels: Record<string, string>;
  /** NaN and ±Inf are kept as such. */
  value: number;
}

export interface QueryOptions {
  /** Bound on the whole exchange, ms. Default 5000. */
  timeoutMs?: number;
}

/** PromQL string literal (Go-style escapes). */
export function promString(s: string): string {
  return `"${s.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')}"`;
}

function apiUrl(base: string, query: string): URL {
  // Resolve against a trailing slash so a server under a path prefix (https://host/prometheus) keeps it.
  const u = new URL('api/v1/query', base.endsWith('/') ? base : `${base}/`);
  u.searchParams.set('query', query);
  return u;
}

/** One instant query; resolves with the vector's samples. */
export async function queryInstant(baseUrl: string, query: string, o: QueryOptions = {}): Promise<InstantSample[]> {
  const timeoutMs = o.timeoutMs ?? 5000;
  const url = apiUrl(baseUrl, query);
  // A private agent, closed afterwards: a pooled keep-alive socket would hold a CLI process open.
  const agent = new Agent({ connections: 1 });
  let status: number;
  let text: string;
  try {
    const res = await request(url, {
      method: 'GET',
      dispatcher: agent,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    });
    status = res.statusCode;
    text = await res.body.text();
  } catch (e) {
    const err = e as Error & { code?: string };
    throw new PrometheusSourceError(`cannot reach Prometheus at ${baseUrl}: ${err.code ?? err.name}: ${err.message}`);
  } finally {
    await agent.close();
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new PrometheusSourceError(
      `${url.origin}${url.pathname} answered ${status} with something other than JSON; is ${baseUrl} a Prometheus server?`,
    );
  }
  const b = body as {
    status?: unknown;
    error?: unknown;
    errorType?: unknown;
    data?: { resultType?: unknown; result?: unknown };
  };
  if (b.status !== 'success') {
    const why = typeof b.error === 'string' ? `${String(b.errorType)}: ${b.error}` : `answer ${text.slice(0, 200)}`;
    throw new PrometheusSourceError(`Prometheus at ${baseUrl} refused the query ${query} (HTTP ${status}; ${why})`);
  }
  if (b.data?.resultType !== 'vector' || !Array.isArray(b.data.result)) {
    throw new PrometheusSourceError(
      `Prometheus at ${baseUrl} answered the query ${query} with a ${String(b.data?.resultType)}, not an instant vector`,
    );
  }
  return b.data.result.map((r: { metric?: Record<string, string>; value?: [number, string] }) => ({
    labels: r.metric ?? {},
    value: Number(r.value?.[1]),
  }));
}

export interface BudgetReading {
  /** Share of the window's budget left; null when the job answered no /charge request in the window (nothing spent, nothing to judge). */
  remaining: number | null;
  query: string;
}

/** The remaining budget of one scrape job, from the `remaining_ratio` recording rule. */
export async function budgetRemainingFromPrometheus(
  baseUrl: string,
  job: string,
  o: QueryOptions = {},
): Promise<BudgetReading> {
  const query = `${RECORDS.budgetRemaining}{job=${promString(job)}}`;
  const samples = await queryInstant(baseUrl, query, o);
  if (samples.length === 0) {
    throw new PrometheusSourceError(
      `Prometheus at ${baseUrl} has no ${query}: load deploy/prometheus/bulwark-rules.yml (rule_files), check the scrape job is named ${JSON.stringify(job)} (--job), and give the rules a minute after the first scrapes`,
    );
  }
  if (samples.length > 1)
    throw new PrometheusSourceError(`Prometheus at ${baseUrl} has ${samples.length} series for ${query}; expected one`);
  const value = samples[0]!.value;
  return { remaining: Number.isNaN(value) ? null : value, query };
}
