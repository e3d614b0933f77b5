/**
 * The port while the service starts: GET /health answers 200 (the process
 * is alive, do not restart it) and everything else 503 `starting` (so
 * GET /ready says no and no charge is taken) until the database answers and
 * the real listener takes the port over. Without it a probe during a long
 * crash recovery sees "connection refused", which a liveness probe reads as
 * dead and restarts us, turning one recovery into a crash loop.
 *
 * Plain node:http, so it works before the gateway's workers or the
 * baseline's Fastify exist. The real listener binds the port this one had
 * (port 0 included) right after close(): the gap is one event-loop turn.
 */
import { createServer, type Server } from 'node:http';
import { problem } from '../errors/catalogue.js';

export interface StartingListener {
  /** The bound port (the one asked for, or the one the OS picked for 0). */
  readonly port: number;
  /**
   * The database is up and migrated: what is left is the server's own start,
   * well under a second. `starting` answers say `Retry-After: 0` from now on,
   * so clients come back on their own short backoff, spread over it, instead
   * of all together a second later. The gateway calls it (its admission
   * control takes the early retries); the Fastify baseline does not, since
   * the same retries queue at its provider pool.
   */
  databaseReady(): void;
  /** Stop listening and drop its connections, so the real listener can bind the port. */
  close(): Promise<void>;
}

export async function listenWhileStarting(host: string, port: number): Promise<StartingListener> {
  let waitingForDatabase = problem('starting');
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/health') {
      res.writeHead(200, { 'content-type': 'application/json', connection: 'close' }).end('{"status":"starting"}');
      return;
    }
    const r = waitingForDatabase;
    res.writeHead(r.status, { 'content-type': r.contentType, ...r.headers, connection: 'close' }).end(r.body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    databaseReady: () => {
      waitingForDatabase = problem('starting', {
        detail: 'The database is ready; the instance opens in a moment',
        headers: { 'Retry-After': '0' },
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
