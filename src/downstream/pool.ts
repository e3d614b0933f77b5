/**
 * The keep-alive undici Pool behind each downstream client (provider, fx),
 * with every timeout set: undici's defaults are 300 s and unbounded
 * connections.
 */
import { Pool, type Dispatcher } from 'undici';

export interface DownstreamPoolOptions {
  url: string;
  connections: number;
  keepAliveMs: number;
  connectTimeoutMs: number;
}

export function createPool(options: DownstreamPoolOptions): Pool {
  return new Pool(options.url, {
    connections: options.connections,
    keepAliveTimeout: options.keepAliveMs,
    keepAliveMaxTimeout: options.keepAliveMs,
    connectTimeout: options.connectTimeoutMs,
    // Per-request deadlines are enforced with an AbortSignal; these are the
    // backstops for a request sent without one.
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
    pipelining: 1,
  });
}

/** A request's status and whole body, or why there is none. */
export type TextAnswer = { statusCode: number; text: string } | { failed: 'timeout' | 'connection' };

/**
 * One request, its body read whole, within `timeoutMs` (connecting, headers
 * and body together). The timer is cleared when the answer is read: Node's
 * AbortSignal.timeout stays armed for its whole length after the call ends
 * (it is cleared only when the signal is collected), so each call on the
 * charge path left a live timer behind it, and a DOMException built when
 * it fired for nobody.
 */
export async function requestText(
  pool: Dispatcher,
  options: Omit<Dispatcher.RequestOptions, 'signal'>,
  timeoutMs: number,
): Promise<TextAnswer> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), Math.max(1, Math.ceil(timeoutMs)));
  try {
    const res = await pool.request({ ...options, signal: abort.signal });
    return { statusCode: res.statusCode, text: await res.body.text() };
  } catch {
    return { failed: abort.signal.aborted ? 'timeout' : 'connection' };
  } finally {
    clearTimeout(timer);
  }
}
