/**
 * The keep-alive undici Pool behind each downstream client (provider, fx),
 * with every timeout set: undici's defaults are 300 s and unbounded
 * connections.
 */
import { Pool } from 'undici';

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
