/**
 * How a Fastify process of the baseline drains, single or a cluster worker:
 * mark draining so every answer says Connection: close, close the listener
 * (and idle keep-alive connections; busy ones close as they answer), wait for
 * the requests in flight, then run the process's own `close`.
 */
import type { FastifyInstance } from 'fastify';
import type { Drainable } from '../runtime/process.js';
import type { ServiceState } from '../service/state.js';

export function fastifyDrainable(app: FastifyInstance, state: ServiceState, close: () => Promise<void>): Drainable {
  return {
    stopAccepting() {
      state.draining = true;
      app.server.close();
    },
    whenIdle: (ms) => state.whenIdle(ms),
    inFlight: () => state.inFlight,
    close,
  };
}
