/**
 * `bulwark baseline --hardened`: what a careful team adds to a Fastify
 * service with the ecosystem's popular plugins, so comparisons are also made
 * against the best such a service ships with:
 * - @fastify/under-pressure sheds with 503 when the event loop's mean delay
 *   or its utilisation over a sample crosses a limit, and refuses charges
 *   while a database health check (a bounded ping through the baseline's
 *   own pool) fails;
 * - an opossum circuit breaker around the payment provider, opening on the
 *   error rate over a 10 s rolling window, with `capacity` (opossum's
 *   bulkhead) so excess concurrent provider calls get 503 at once instead of
 *   queueing for a connection.
 * Both are per process and react to coarse signals; that is the point of
 * the comparison with the gateway's admission control and breakers. Neither
 * changes the HTTP contract: a shed request gets the catalogue's
 * `overloaded` problem, a failed health check `db_unavailable`, an open
 * breaker `breaker_open` and a full one `bulkhead_full`.
 *
 * The values, and why (also in docs/design.md §8):
 * - maxEventLoopUtilization 0.90 over 500 ms samples: a Node process doing
 *   I/O-bound work answers promptly up to ~90 % utilisation; past it the
 *   loop's backlog grows faster than it drains and latency climbs towards
 *   the 300 ms SLO (docs/slo.md) within a second. 0.98 (the old value) only
 *   fired once the process was already saturated and every answer late;
 *   lower values shed healthy traffic on GC pauses. 500 ms halves the
 *   plugin's default 1 s reaction time while a sample still spans many
 *   requests (a shorter one flaps on a single GC pause).
 * - maxEventLoopDelay 100 ms (mean over the sample): a third of the 300 ms
 *   SLO spent waiting for the loop leaves the DB and provider round trips
 *   the rest; 200 ms left no room for them.
 * - healthCheck every 1 s, the ping bounded by the service's 1 s ping budget
 *   (src/charge/service.ts): a dead database is seen within ~2 s and
 *   charges are refused at once instead of each waiting for its own DB
 *   timeout. The ping goes through the serving pool, so "pool busy but the
 *   server answered within the last second" counts as healthy (a busy pool
 *   is overload, not an outage).
 * - breaker errorThresholdPercentage 50, volumeThreshold 20, 10 s rolling
 *   window, resetTimeout 5 s: opossum's defaults for rate and window (a
 *   team starts there), a minimum volume so a handful of failures at low
 *   traffic does not open it, and a reset equal to the catalogue's
 *   breaker_open Retry-After (5 s) so clients come back when it half-opens.
 * - capacity = this process's provider connections (PROVIDER_CONNECTIONS,
 *   64; a share of it per cluster worker): beyond that many calls undici
 *   would queue the rest inside its pool, each waiting for a connection
 *   with no bound but its own deadline. A call over capacity is a local
 *   refusal, not a provider failure: it is filtered out of the breaker's
 *   error rate (opossum then counts it as a success, which slows the
 *   breaker's opening when a slow provider fills the capacity; counting it
 *   as a failure would open the breaker on our own overload instead).
 */
import underPressure, { type FastifyUnderPressureOptions } from '@fastify/under-pressure';
import type { FastifyInstance } from 'fastify';
import CircuitBreaker from 'opossum';
import type { AttemptOutcome, Provider } from '../downstream/provider-client.js';
import { problem } from '../errors/catalogue.js';
import type { Logger } from '../runtime/logger.js';
import { prepareReply } from './app.js';
import type { ServiceState } from '../service/state.js';

export const UNDER_PRESSURE_OPTIONS = Object.freeze({
  /** ms of mean event-loop delay over a sample (header: why 100). */
  maxEventLoopDelay: 100,
  /** Fraction of the sample the loop was busy (header: why 0.90). */
  maxEventLoopUtilization: 0.9,
  /** ms between samples of delay and utilisation. */
  sampleInterval: 500,
  /** ms between database health checks. */
  healthCheckInterval: 1000,
  /** Seconds; the plugin's own 503 uses it, ours carries the catalogue's Retry-After (also 1 s). */
  retryAfter: 1,
  exposeStatusRoute: false,
}) satisfies FastifyUnderPressureOptions;

export const BREAKER_OPTIONS = Object.freeze({
  // The provider client bounds every attempt with its own timeout (and the
  // request deadline); a second timer in the breaker would race it.
  timeout: false as const,
  errorThresholdPercentage: 50,
  volumeThreshold: 20,
  rollingCountTimeout: 10_000,
  resetTimeout: 5_000,
  // A refusal over capacity says nothing about the provider (header).
  errorFilter: (e: unknown) => (e as { code?: unknown }).code === 'ESEMLOCKED',
}) satisfies CircuitBreaker.Options;

/** The breaker's options for a process with `providerConnections` connections to the provider: capacity = connections. */
export function breakerOptionsFor(providerConnections: number): CircuitBreaker.Options {
  return { ...BREAKER_OPTIONS, capacity: providerConnections };
}

/** Probes are never shed, as in the gateway: an orchestrator must see the instance alive. */
const NEVER_SHED: ReadonlySet<string> = new Set(['/health', '/ready', '/version']);

/**
 * `dbHealthy`: the database health check (the service's bounded ping); while
 * it last answered false, every request but the probes gets 503 db_unavailable.
 */
export function registerUnderPressure(
  app: FastifyInstance,
  state: ServiceState,
  dbHealthy?: () => Promise<boolean>,
  overrides: Partial<FastifyUnderPressureOptions> = {},
): void {
  void app.register(underPressure, {
    ...UNDER_PRESSURE_OPTIONS,
    ...(dbHealthy ? { healthCheck: () => dbHealthy() } : {}),
    ...overrides,
    // Returning a value makes the plugin send it; returning nothing lets the request through.
    // Its default answer is an Error serialized by Fastify, not our problem body.
    pressureHandler: (req, reply, type) => {
      if (NEVER_SHED.has(req.routeOptions.url ?? '')) return;
      const refusal =
        type === underPressure.TYPE_HEALTH_CHECK
          ? problem('db_unavailable', { detail: 'The database health check of @fastify/under-pressure failed' })
          : problem('overloaded', { detail: `Shed by @fastify/under-pressure (${type})` });
      const body = prepareReply(reply, refusal, state);
      // The plugin's typings say void, but its code sends whatever non-null value is returned (README: pressureHandler).
      return body as unknown as void;
    },
  });
}

/** Carries an unknown outcome out of the breaker's action so the breaker counts it as a failure. */
class UnknownOutcome extends Error {
  constructor(readonly outcome: AttemptOutcome) {
    super('provider outcome unknown');
  }
}

type Call = () => Promise<AttemptOutcome>;

interface ProviderBreaker {
  /** For `createChargeService(settings, { decorateProvider })`. */
  decorateProvider(p: Provider): Provider;
  readonly breaker: CircuitBreaker<[Call], AttemptOutcome>;
  shutdown(): void;
}

/**
 * One breaker for the provider (both calls). A timeout, reset or 5xx is a
 * failure; a decline or a 4xx is the provider answering, so a success. When
 * open, nothing is sent and the lifecycle answers 503 breaker_open (and does
 * not retry: retrying into an open breaker is a retry storm); over capacity,
 * nothing is sent either and the answer is 503 bulkhead_full.
 */
export function createProviderBreaker(log: Logger, options: CircuitBreaker.Options = BREAKER_OPTIONS): ProviderBreaker {
  const breaker = new CircuitBreaker<[Call], AttemptOutcome>(
    async (call) => {
      const outcome = await call();
      if (outcome.kind === 'unknown') throw new UnknownOutcome(outcome);
      return outcome;
    },
    { ...options, name: 'provider' },
  );
  breaker.on('open', () => log.warn({ breaker: 'provider', state: 'open' }, 'breaker transition'));
  breaker.on('halfOpen', () => log.info({ breaker: 'provider', state: 'half_open' }, 'breaker transition'));
  breaker.on('close', () => log.info({ breaker: 'provider', state: 'closed' }, 'breaker transition'));

  const guarded = async (call: Call): Promise<AttemptOutcome> => {
    try {
      return await breaker.fire(call);
    } catch (e) {
      if (e instanceof UnknownOutcome) return e.outcome;
      const code = (e as { code?: unknown }).code;
      if (code === 'EOPENBREAKER') return { kind: 'refused', code: 'breaker_open' };
      if (code === 'ESEMLOCKED') return { kind: 'refused', code: 'bulkhead_full' };
      throw e;
    }
  };
  return {
    breaker,
    decorateProvider: (p) => ({
      createCharge: (providerKey, reference, input, timeoutMs) =>
        guarded(() => p.createCharge(providerKey, reference, input, timeoutMs)),
      getCharge: (providerKey, timeoutMs) => guarded(() => p.getCharge(providerKey, timeoutMs)),
    }),
    shutdown: () => breaker.shutdown(),
  };
}
