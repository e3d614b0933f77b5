/**
 * HTTP contract pieces both services answer identically: the route table
 * (every other method on these paths is a 405 with Allow), and the readiness
 * body. One definition, so the gateway and the baseline cannot drift apart.
 */
import { json, problem, type Reply } from '../errors/catalogue.js';

export const ROUTES: Readonly<Record<string, readonly string[]>> = {
  '/charge': ['POST'],
  '/charges/:key': ['GET'],
  '/quote': ['GET'],
  '/health': ['GET'],
  '/ready': ['GET'],
  '/version': ['GET'],
  '/openapi.json': ['GET'],
};

export function methodNotAllowed(allowed: readonly string[]): Reply {
  const allow = allowed.join(', ');
  return problem('method_not_allowed', { detail: `Allowed: ${allow}`, headers: { Allow: allow } });
}

export const notFound = (): Reply => problem('not_found', { detail: 'No such route' });

/** A cached DB check older than this no longer counts as reachable. */
export const DB_CHECK_FRESH_MS = 3000;

export interface ReadinessChecks {
  draining: boolean;
  workers_up: boolean;
  db_reachable: boolean;
}

export function readinessReply(checks: ReadinessChecks): Reply {
  if (!checks.draining && checks.workers_up && checks.db_reachable) return json(200, { ready: true, checks });
  return problem(checks.draining ? 'draining' : 'db_unavailable', {
    detail: 'Not ready',
    members: { ready: false, checks },
  });
}
