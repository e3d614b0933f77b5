/**
 * `bulwark baseline --hardened`: what a team adds to a Fastify service with
 * the ecosystem's popular plugins, so comparisons are also made against the
 * best such a service ships with:
 * - @fastify/under-pressure sheds with 503 when the event loop's delay or
 *   utilisation (sampled once a second) crosses a threshold;
 * - an opossum circuit breaker around the payment provider, opening on the
 *   error rate over a 10 s rolling window.
 * Both are per process and react to coarse signals; that is the point of
 * the comparison with the gateway's admission control and breakers. Neither
 * changes the HTTP contract: a shed request gets the catalogue's
 * `overloaded` problem and an open breaker its `breaker_open` problem.
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
  /** ms of mean event-loop delay over a sample. */
  maxEventLoopDelay: 200,
  /** Fraction of the sample the loop was busy. */
  maxEventLoopUtilization: 0.98,
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
}) satisfies CircuitBreaker.Options;

/** Probes are never shed, as in the gateway: an orchestrator must see the instance alive. */
const NEVER_SHED: ReadonlySet<string> = new Set(['/health', '/ready', '/version']);

export function registerUnderPressure(
  app: FastifyInstance,
  state: ServiceState,
  overrides: Partial<FastifyUnderPressureOptions> = {},
): void {
  void app.register(underPressure, {
    ...UNDER_PRESSURE_OPTIONS,
    ...overrides,
    // Returning a value makes the plugin send it; returning nothing lets the request through.
    // Its default answer is an Error serialized by Fastify, not our problem body.
    pressureHandler: (req, reply, type) => {
      if (NEVER_SHED.has(req.routeOptions.url ?? '')) return;
      const body = prepareReply(
        reply,
        problem('overloaded', { detail: `Shed by @fastify/under-pressure (${type})` }),
        state,
      );
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

export interface ProviderBreaker {
  /** For `createChargeService(settings, { decorateProvider })`. */
  decorateProvider(p: Provider): Provider;
  readonly breaker: CircuitBreaker<[Call], AttemptOutcome>;
  shutdown(): void;
}

/**
 * One breaker for the provider (both calls). A timeout, reset or 5xx is a
 * failure; a decline or a 4xx is the provider answering, so a success. When
 * open, nothing is sent and the lifecycle answers 503 breaker_open (and does
 * not retry: retrying into an open breaker is a retry storm).
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
      if ((e as { code?: unknown }).code === 'EOPENBREAKER') return { kind: 'refused', code: 'breaker_open' };
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
