/**
 * The control API both simulated services serve: `/_faults` to set what goes
 * wrong, `/_ledger` to read what happened. Control routes never pass through
 * the fault pipeline: a scenario must be able to heal a hung provider and
 * audit it while it is still failing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { NO_FAULTS, parseFaults, type Faults, type ServiceName } from './faults.js';
import { decodeSegment, errorJson, methodNotAllowed, readBody, sendJson } from './http.js';

const MAX_CONTROL_BODY_BYTES = 64 * 1024;

export interface ControlTarget {
  readonly service: ServiceName;
  readonly faults: Faults;
  setFaults(faults: Faults): void;
  ledgerSummary(): unknown;
  clearLedger(): void;
  /** One provider key's record; undefined when never seen. Absent on services without keys. */
  ledgerEntry?(key: string): unknown;
  /** Every charge created for a client reference. Absent on services without references. */
  ledgerByReference?(reference: string): unknown;
}

export async function handleControl(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  query: string,
  target: ControlTarget,
): Promise<void> {
  if (path === '/_faults') return faultsRoute(req, res, target);
  if (path === '/_ledger') return ledgerRoute(req, res, query, target);
  if (path.startsWith('/_ledger/')) {
    if (req.method !== 'GET') return methodNotAllowed(res, 'GET');
    const key = decodeSegment(path.slice('/_ledger/'.length));
    const entry = key === undefined || target.ledgerEntry === undefined ? undefined : target.ledgerEntry(key);
    if (entry === undefined) return sendJson(res, 404, errorJson('not_found', 'no such key in the ledger'));
    return sendJson(res, 200, JSON.stringify(entry));
  }
  sendJson(res, 404, errorJson('not_found', `no control route ${path}`));
}

async function faultsRoute(req: IncomingMessage, res: ServerResponse, target: ControlTarget): Promise<void> {
  switch (req.method) {
    case 'GET':
      return sendJson(res, 200, JSON.stringify(target.faults));
    case 'DELETE':
      target.setFaults(NO_FAULTS);
      return sendJson(res, 200, JSON.stringify(NO_FAULTS));
    case 'PUT': {
      const text = await readBody(req, MAX_CONTROL_BODY_BYTES);
      if (text === undefined)
        return sendJson(
          res,
          413,
          errorJson('invalid_request', `a fault set is at most ${MAX_CONTROL_BODY_BYTES} bytes`),
        );
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        return sendJson(res, 400, errorJson('invalid_request', 'the body is not valid JSON'));
      }
      const parsed = parseFaults(json, target.service);
      // The old set stays on a bad PUT: a typo must not silently heal (or break) a running scenario.
      if (!parsed.ok) return sendJson(res, 400, errorJson('invalid_faults', parsed.message, { field: parsed.field }));
      target.setFaults(parsed.faults);
      return sendJson(res, 200, JSON.stringify(parsed.faults));
    }
    default:
      return methodNotAllowed(res, 'GET, PUT, DELETE');
  }
}

function ledgerRoute(req: IncomingMessage, res: ServerResponse, query: string, target: ControlTarget): void {
  if (req.method === 'DELETE') {
    target.clearLedger();
    return sendJson(res, 200, JSON.stringify(target.ledgerSummary()));
  }
  if (req.method !== 'GET') return methodNotAllowed(res, 'GET, DELETE');
  const reference = query === '' ? null : new URLSearchParams(query).get('reference');
  if (reference === null) return sendJson(res, 200, JSON.stringify(target.ledgerSummary()));
  if (target.ledgerByReference === undefined) {
    return sendJson(res, 400, errorJson('invalid_request', `the ${target.service} ledger has no references`));
  }
  sendJson(res, 200, JSON.stringify(target.ledgerByReference(reference)));
}
