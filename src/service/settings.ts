/**
 * The HTTP settings both servers answer the contract with, whatever their
 * transport: the request layer's limits and deadlines, the slow-body and
 * open-request bounds, the quote cache.
 */
import type { ChargeRequestSettings } from '../charge/request.js';

export interface ServerSettings extends ChargeRequestSettings {
  /** A body not complete this long after its headers gets 408 and a close. */
  bodyTimeoutMs: number;
  /** Requests (gateway) or connections (baseline: Node's server.maxConnections) open at once before new ones are refused. */
  maxConnections: number;
  /** Open requests one remote address may hold before its new ones get 503 and a close; 0 = no cap. */
  maxRequestsPerAddress: number;
  /** How long a fetched fx rate answers quotes without a new fetch. */
  fxCacheTtlMs: number;
}
