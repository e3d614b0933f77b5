/**
 * The Fastify baseline's HTTP surface: the gateway's contract (src/gateway/
 * server.ts) answered the conventional way, in one process, by the same
 * domain modules. Fastify's own answers are all replaced so that both sides
 * are byte-for-byte comparable:
 * - its JSON body parser is removed; one catch-all parser hands the raw text
 *   to the handler, so validation order and error bodies are the gateway's;
 * - 404/405 are decided in onRequest, before any body is read (Fastify would
 *   otherwise parse the body of an unknown route and answer 413 for it);
 * - every error (body limit, bad URL, media type, thrown) becomes an RFC 9457
 *   problem from the one catalogue, never a stack trace; so do Node's own
 *   refusals of a request it cannot parse (clientErrorHandler: 431 for a
 *   header section over 16 KiB, 400 naming Content-Length for a repeated or
 *   non-numeric one, 408 for headers slower than HEADERS_TIMEOUT_MS);
 * - a charge's headers and body go through the shared request layer
 *   (src/charge/request.ts) as raw header pairs and bytes, so repeated
 *   headers and bodies that are not UTF-8 are refused as in the gateway;
 * - a body not complete BODY_TIMEOUT_MS after the headers gets 408 and a
 *   close, and at most MAX_CONNECTIONS connections are open (Node's
 *   server.maxConnections: further ones are closed at accept);
 * - with MAX_REQUESTS_PER_ADDRESS set, one client address holds at most that
 *   many open requests on the gateway's tracked routes, as in the gateway.
 */
import { methodNotAllowed, notFound, ROUTES } from '../http/contract.js';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { fastify, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { ChargeService } from '../charge/service.js';
import {
  chargeHead,
  MAX_HEADER_SECTION_BYTES,
  pairsFromRaw,
  parseChargeKey,
  parseChargeRequest,
  problemFrom,
  replyByDeadline,
} from '../charge/request.js';
import { problem, json, type Reply } from '../errors/catalogue.js';
import { QuoteService } from '../fx/quote-service.js';
import { systemClock, type Clock } from '../lib/clock.js';
import type { Logger } from '../runtime/logger.js';
import { versionInfo } from '../runtime/version.js';
import { openApiDocument } from '../http/openapi.js';
import { bodyFor, failedAnswerLog, REQUEST_ID_HEADER, requestIdFrom } from '../runtime/request-id.js';
import type { ServerSettings } from '../service/settings.js';
import type { ServiceState } from '../service/state.js';
import { AddressCap } from '../resilience/address-cap.js';

/** `maxConnections` is Node's server.maxConnections. */
export type BaselineSettings = ServerSettings;

export interface BaselineAppDeps {
  settings: BaselineSettings;
  service: Pick<ChargeService, 'charge' | 'getCharge' | 'rate'>;
  state: ServiceState;
  log: Logger;
  clock?: Clock;
  /** Registered before the routes (the --hardened plugins); runs after our own hooks. */
  plugins?: (app: FastifyInstance) => void;
  /** The per-address bookkeeping (default: one for settings.maxRequestsPerAddress); passed by tests to look inside. */
  addresses?: AddressCap;
}

/** uWebSockets.js closes idle keep-alive connections after 10 s; so do we. */
const KEEP_ALIVE_TIMEOUT_MS = 10_000;
/** Idempotency keys are validated by us (255 chars, maybe %-encoded); find-my-way's default of 100 would 404 them. */
const MAX_PARAM_LENGTH = 4096;
/** Headers must be complete this long after a request starts: uWebSockets.js's idle timeout (measured 9-12 s on v20.30). */
const HEADERS_TIMEOUT_MS = 10_000;
/** How often Node looks for requests past HEADERS_TIMEOUT_MS (its default, 30 s, would let them linger). */
const CONNECTIONS_CHECKING_INTERVAL_MS = 1000;
const CHARGES_PREFIX = '/charges/';
/** The routes the gateway tracks as open requests (its probes, 404s and 405s are answered at once, uncounted). */
const PER_ADDRESS_ROUTES = new Set(['POST /charge', 'GET /charges/:key', 'GET /quote']);

const asIs = (body: unknown): string => body as string;

/**
 * Set status and headers of a Reply and return its body (already text), for
 * callers that hand the body to Fastify themselves. While draining every
 * answer asks the client to close.
 */
export function prepareReply(reply: FastifyReply, r: Reply, state: ServiceState, close = false): string {
  // A serializer of our own stops Fastify appending `; charset=utf-8` to a
  // JSON content type: the gateway sends the catalogue's type unchanged.
  reply.code(r.status).header('content-type', r.contentType).serializer(asIs);
  if (r.headers) reply.headers(r.headers);
  if (close || state.draining) reply.header('connection', 'close');
  const id = String(reply.request.id);
  reply.header(REQUEST_ID_HEADER, id);
  return bodyFor(r, id);
}

/** Write a Reply as is. Returns nothing: a handler that returns the reply makes Fastify send it twice. */
export function sendReply(reply: FastifyReply, r: Reply, state: ServiceState, close = false): void {
  reply.send(prepareReply(reply, r, state, close));
}

const EMPTY = Buffer.alloc(0);

function splitUrl(url: string): { path: string; query: string } {
  const q = url.indexOf('?');
  return q === -1 ? { path: url, query: '' } : { path: url.slice(0, q), query: url.slice(q + 1) };
}

/**
 * Where the gateway routes a URL that find-my-way refused (bad %-encoding,
 * over-long parameter): uWS matches `/charges/:key` on the raw text and
 * answers the key's validation error; anything else is no route.
 */
function unroutableUrl(method: string, url: string): Reply {
  const { path } = splitUrl(url);
  const rest = path.startsWith(CHARGES_PREFIX) ? path.slice(CHARGES_PREFIX.length) : '';
  if (rest === '' || rest.includes('/')) return notFound();
  if (method !== 'GET') return methodNotAllowed(ROUTES['/charges/:key']!);
  const k = parseChargeKey(rest);
  return k.ok ? notFound() : problemFrom(k);
}

function errorReply(e: FastifyError, maxBodyBytes: number): Reply | undefined {
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return problem('payload_too_large', { detail: `The body may be at most ${maxBodyBytes} bytes` });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return problem('unsupported_media_type', { field: 'Content-Type' });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return problem('invalid_header', { field: 'Content-Length', detail: 'The body does not match Content-Length' });
  }
  // A body stream that failed (client aborted mid-body): the client is gone or sent garbage.
  if (e.statusCode === 400) return problem('invalid_json', { detail: 'The request body could not be read' });
  return undefined;
}

/** Node's parser refusals (before Fastify sees a request) as catalogue problems. */
function clientErrorReply(e: Error & { code?: string; reason?: string }): Reply {
  switch (e.code) {
    case 'HPE_HEADER_OVERFLOW':
      return problem('request_header_too_large', {
        detail: `The header section may be at most ${MAX_HEADER_SECTION_BYTES} bytes`,
      });
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return problem('request_timeout', {
        detail: `The request headers did not arrive within ${HEADERS_TIMEOUT_MS} ms`,
      });
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_CONTENT_LENGTH':
      return problem('invalid_header', {
        field: 'Content-Length',
        detail: 'Content-Length must be sent once, as a non-negative integer',
      });
  }
  return problem('invalid_header', { detail: 'The request is not valid HTTP/1.1' });
}

function writeRaw(socket: Socket, r: Reply): void {
  const headers = [
    `HTTP/1.1 ${r.status} ${STATUS_CODES[r.status] ?? ''}`,
    `Content-Type: ${r.contentType}`,
    `Content-Length: ${Buffer.byteLength(r.body)}`,
    'Connection: close',
  ];
  for (const [k, v] of Object.entries(r.headers ?? {})) headers.push(`${k}: ${v}`);
  socket.end(`${headers.join('\r\n')}\r\n\r\n${r.body}`);
}

export function buildBaselineApp(d: BaselineAppDeps): FastifyInstance {
  const { settings: s, service, state, log } = d;
  const clock = d.clock ?? systemClock;
  const quotes = new QuoteService({
    clock,
    cacheTtlMs: s.fxCacheTtlMs,
    requestTimeoutMs: s.requestTimeoutMs,
    fetchRate: (from, to, deadline) => service.rate(from, to, deadline),
  });
  const send = (reply: FastifyReply, r: Reply, close = false) => sendReply(reply, r, state, close);

  const app = fastify({
    logger: false,
    // The client's X-Request-Id when sane, else a new one: echoed, and `instance` in problem bodies.
    genReqId: (req) => {
      const raw = req.headers['x-request-id'];
      return requestIdFrom(Array.isArray(raw) ? raw[0] : raw);
    },
    bodyLimit: s.maxBodyBytes,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    // Deadlines are the application's (X-Request-Timeout-Ms), as in the gateway.
    requestTimeout: 0,
    // uWS answers HEAD on a GET route with 405, so no implicit HEAD routes.
    exposeHeadRoutes: false,
    // Fastify's closing 503 has its own JSON body; the draining hook below
    // answers the catalogue's `draining` problem (with Connection: close) instead.
    return503OnClosing: false,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: (_e, req, reply) => send(reply, unroutableUrl(req.method, req.url)),
    http: {
      maxHeaderSize: MAX_HEADER_SECTION_BYTES,
      headersTimeout: HEADERS_TIMEOUT_MS,
      connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS,
    },
    clientErrorHandler: (e, socket) => {
      // A reset connection has no one to answer (Node's own rule).
      if ((e as { code?: string }).code === 'ECONNRESET' || socket.destroyed) return;
      if (socket.writable) writeRaw(socket, clientErrorReply(e));
      socket.destroySoon();
    },
  });
  app.server.maxConnections = s.maxConnections;
  let refusedConnections = 0;
  let refusalLoggedAt = -Infinity;
  app.server.on('drop', () => {
    refusedConnections++;
    // At most one line a second: a flood of refusals must not become a flood of logs.
    if (clock.now() - refusalLoggedAt >= 1000) {
      refusalLoggedAt = clock.now();
      log.warn({ refusedConnections, maxConnections: s.maxConnections }, 'connection refused: MAX_CONNECTIONS open');
    }
  });
  /** Charges whose body is still arriving: the 408 timers. */
  const uploads = new WeakMap<FastifyRequest, ReturnType<typeof setTimeout>>();
  const uploaded = (req: FastifyRequest) => {
    clearTimeout(uploads.get(req));
    uploads.delete(req);
  };

  const addresses = d.addresses ?? new AddressCap(s.maxRequestsPerAddress);
  const atAddressCap = problem('overloaded', { detail: 'Too many requests open from this address' });

  // In flight from routing until the response closes (answered or client gone), like the gateway's Exchange.
  app.addHook('onRequest', (req, reply, done) => {
    reply.raw.once('close', state.begin());
    if (req.is404) return send(reply, notFound());
    if (addresses.enabled && PER_ADDRESS_ROUTES.has(`${req.method} ${req.routeOptions.url}`)) {
      const address = req.socket.remoteAddress;
      if (address !== undefined) {
        const within = addresses.take(address);
        // 'close' comes once for every response: answered, refused, timed out (408) or abandoned by the client.
        reply.raw.once('close', () => addresses.release(address));
        if (!within) {
          addresses.refusals++;
          return send(reply, atAddressCap, true);
        }
      }
    }
    done();
  });

  // One warn line per failed (5xx) answer, rate-limited, naming its request id, as the gateway does.
  const failedAnswer = failedAnswerLog(log);
  app.addHook('onSend', (req, reply, payload, done) => {
    failedAnswer(
      String(req.id),
      req.routeOptions.url ?? 'other',
      reply.statusCode,
      typeof payload === 'string' ? payload : '',
    );
    done(null, payload);
  });

  app.setNotFoundHandler((_req, reply) => send(reply, notFound()));
  app.setErrorHandler((e: FastifyError, req, reply) => {
    const known = errorReply(e, s.maxBodyBytes);
    if (known) return send(reply, known, known.status === 413);
    log.error({ err: e, method: req.method, url: req.url }, 'request failed');
    send(reply, problem('internal_error'));
  });

  // One parser for every media type: the raw text goes to the handler, which
  // checks the Content-Type itself after the body limit (the gateway's order).
  app.removeAllContentTypeParsers();
  // Bytes, not text: the request layer refuses a body that is not UTF-8 instead of decoding it with U+FFFD.
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  d.plugins?.(app);

  /** The service's reply, or 504 at the deadline plus grace, as in the gateway. */
  const byDeadline = (op: string, work: Promise<Reply>, deadline: number): Promise<Reply> =>
    replyByDeadline(clock, deadline, work, (e) => {
      log.error({ err: e, op }, 'task failed');
      return problem('internal_error');
    });

  /** POST /charge after the body is read: the shared request layer, then the service. */
  function charge(req: FastifyRequest, arrival: number): Reply | Promise<Reply> {
    const body = Buffer.isBuffer(req.body) ? req.body : EMPTY;
    const r = parseChargeRequest(pairsFromRaw(req.raw.rawHeaders), body, s, arrival);
    if (!r.ok) return problemFrom(r);
    const { key, input, deadline } = r.value;
    return byDeadline('charge', service.charge(key, input, deadline, undefined, String(req.id)), deadline);
  }

  app.post('/charge', {
    onRequest: (req, reply, done) => {
      if (state.draining) return send(reply, problem('draining'));
      // Framing (a repeated contract header, Content-Length over the limit):
      // refuse before reading a byte, and close: the rest of the body is not wanted.
      const head = chargeHead(pairsFromRaw(req.raw.rawHeaders), s);
      if (!head.ok) return send(reply, problemFrom(head), true);
      uploads.set(
        req,
        setTimeout(() => {
          uploads.delete(req);
          if (reply.sent) return;
          // Close: whatever the client still sends is not wanted, and the connection is what it holds.
          send(
            reply,
            problem('request_timeout', { detail: `The request body did not arrive within ${s.bodyTimeoutMs} ms` }),
            true,
          );
        }, s.bodyTimeoutMs),
      );
      reply.raw.once('close', () => uploaded(req));
      done();
    },
    preValidation: (req, _reply, done) => {
      uploaded(req);
      done();
    },
    // Fastify stamps the request when it is routed: the deadline counts the body upload too.
    handler: async (req, reply) => {
      // The body completed after its 408 went out: nothing may be charged for it.
      if (reply.sent) return;
      send(reply, await charge(req, clock.epochMs() - reply.elapsedTime));
    },
  });

  app.get('/charges/:key', {
    // uWS does not match an empty parameter: `/charges/` is no route there, for any method.
    onRequest: (req, reply, done) => (rawKeySegment(req) === '' ? send(reply, notFound()) : done()),
    handler: async (req, reply) => {
      const arrival = clock.epochMs() - reply.elapsedTime;
      const k = parseChargeKey(rawKeySegment(req));
      const deadline = arrival + s.requestTimeoutMs;
      send(reply, k.ok ? await byDeadline('get', service.getCharge(k.value, deadline), deadline) : problemFrom(k));
    },
  });

  app.get('/quote', async (req, reply) => send(reply, await quotes.quote(splitUrl(req.url).query)));

  const health = json(200, { status: 'ok' });
  // The baseline does not run uWebSockets.js: `uws` is null where the gateway reports its build.
  const version = json(200, { ...versionInfo, uws: null });
  app.get('/health', (_req, reply) => send(reply, health));
  app.get('/ready', (_req, reply) => send(reply, state.readiness()));
  app.get('/version', (_req, reply) => send(reply, version));
  const openapi = json(200, openApiDocument(s));
  app.get('/openapi.json', (_req, reply) => send(reply, openapi));

  for (const [url, allowed] of Object.entries(ROUTES)) {
    const others = app.supportedMethods.filter((m) => !allowed.includes(m));
    const reply405 = methodNotAllowed(allowed);
    app.route({
      method: others,
      url,
      // Answer before the body is read: a PUT of 1 MB to /charge is a 405, not a 413.
      onRequest: (req, reply) =>
        send(reply, url === '/charges/:key' && rawKeySegment(req) === '' ? notFound() : reply405),
      handler: () => {},
    });
  }
  return app;
}

function rawKeySegment(req: FastifyRequest): string {
  return splitUrl(req.url).path.slice(CHARGES_PREFIX.length);
}
