/**
 * Thin node:http plumbing shared by both simulated services. The simulator
 * shares cores with the load test it serves, so answers are pre-serialised
 * strings and nothing here allocates beyond the response itself.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';

/** Outlives typical client pools (often 60 s) so the client closes idle sockets, not us mid-request. */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
const HEADERS_TIMEOUT_MS = 66_000;

export interface Reply {
  readonly status: number;
  /** Pre-serialised JSON. */
  readonly body: string;
  readonly replayed?: boolean;
  /** Default application/json; a fault may send something else (an HTML error page). */
  readonly contentType?: string;
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: string,
  replayed = false,
  contentType = 'application/json',
): void {
  // The client may have given up (hang, reset, timeout) while we waited.
  if (res.headersSent || res.destroyed) return;
  res.writeHead(
    status,
    replayed
      ? { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'Idempotent-Replayed': 'true' }
      : { 'content-type': contentType, 'content-length': Buffer.byteLength(body) },
  );
  res.end(body);
}

export function send(res: ServerResponse, reply: Reply): void {
  sendJson(res, reply.status, reply.body, reply.replayed === true, reply.contentType);
}

export function methodNotAllowed(res: ServerResponse, allow: string): void {
  if (res.headersSent) return;
  res.setHeader('allow', allow);
  sendJson(res, 405, errorJson('method_not_allowed', `allowed: ${allow}`));
}

export function errorJson(type: string, message?: string, extra?: Record<string, unknown>): string {
  return JSON.stringify({ error: message === undefined ? { type, ...extra } : { type, message, ...extra } });
}

/** Splits `req.url` without `new URL()`, which is costly per request. */
export function splitUrl(req: IncomingMessage): { path: string; query: string } {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q === -1 ? { path: url, query: '' } : { path: url.slice(0, q), query: url.slice(q + 1) };
}

export function decodeSegment(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/** The whole body as text, or undefined when it exceeds `maxBytes` (drained, not kept). */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > maxBytes) resolve(undefined);
      else resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
  });
}

/** A real TCP RST where the platform allows it, so clients see ECONNRESET rather than a clean FIN. */
export function resetConnection(req: IncomingMessage): void {
  const socket = req.socket;
  if (socket.destroyed) return;
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
}

export async function listen(handler: RequestListener, host: string, port: number): Promise<Server> {
  const server = createServer(handler);
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/** Stops accepting and destroys every connection, idle, busy or hung. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export function serverUrl(server: Server, host: string): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${serverPort(server)}`;
}

export function serverPort(server: Server): number {
  const addr = server.address();
  return typeof addr === 'object' && addr !== null ? addr.port : 0;
}
