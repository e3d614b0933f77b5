/**
 * Request ids: every answer carries `X-Request-Id`, the client's own when it
 * sent a sane one (so one id follows a request through a proxy, the gateway
 * and the client's logs), otherwise one we make. Problem bodies carry it as
 * `instance`, and the log lines about a failed request name it, so a 503 a
 * client reports can be found. Final outcomes (201, 402) are stored and
 * replayed byte for byte, so their bodies never carry it; the header does.
 */
import { randomUUID } from 'node:crypto';
import { PROBLEM_CONTENT_TYPE, type Reply } from '../errors/catalogue.js';
import type { Logger } from './logger.js';

export const REQUEST_ID_HEADER = 'X-Request-Id';

// Visible characters that need no escaping in JSON, a header or a log line.
const SANE = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

/** The client's id when sane, else a new one (a UUID). */
export function requestIdFrom(raw: string | undefined): string {
  return raw !== undefined && SANE.test(raw) ? raw : randomUUID();
}

const instanceOf = (requestId: string): string => `urn:bulwark:request:${requestId}`;

/**
 * The body to send for `reply` on request `requestId`: a problem body gets
 * `instance` (a cheap splice: the catalogue renders a JSON object and the id
 * is sane); a stored outcome (402 decline) and every other body are kept as
 * they are.
 */
export function bodyFor(reply: Reply, requestId: string): string {
  if (reply.contentType !== PROBLEM_CONTENT_TYPE || reply.status === 402 || !reply.body.endsWith('}'))
    return reply.body;
  return `${reply.body.slice(0, -1)},"instance":"${instanceOf(requestId)}"}`;
}

/**
 * One warn line per 5xx answer (shedding excepted: it is summarised apart),
 * at most `perSecond` a second; the rest are counted into the next line.
 */
export function failedAnswerLog(
  log: Logger,
  perSecond = 20,
  now: () => number = () => performance.now(),
): (requestId: string, route: string, status: number, body: string) => void {
  let windowStart = -Infinity;
  let logged = 0;
  let suppressed = 0;
  return (requestId, route, status, body) => {
    if (status < 500) return;
    const code = /"code":"([a-z_]+)"/.exec(body)?.[1];
    if (code === 'overloaded') return;
    const t = now();
    if (t - windowStart >= 1000) {
      if (suppressed > 0) log.warn({ not_logged: suppressed }, 'failed answers not logged (rate limit)');
      windowStart = t;
      logged = 0;
      suppressed = 0;
    }
    if (logged >= perSecond) {
      suppressed++;
      return;
    }
    logged++;
    log.warn({ request_id: requestId, route, status, code }, 'request failed');
  };
}
