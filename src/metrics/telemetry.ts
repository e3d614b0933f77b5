/**
 * What the gateway measures on its hot paths, laid out in shared memory so
 * the front thread and every worker record without locks or messages:
 * request counts by route and status, request durations by route and status
 * class, and stage durations (queue wait, claim, provider attempt, record,
 * acquire waits). Only src/metrics knows these layouts; mechanisms call
 * `observe` and `request` through plain functions.
 */
import { CHARGE_STAGES } from '../charge/stages.js';
import { SharedCounters } from '../shm/counters.js';
import { allocateShared, openRegion, type SharedLayout } from '../shm/regions.js';
import { HISTOGRAM_BUCKETS, SharedHistogram } from './histogram.js';

export const ROUTE_LABELS = [
  '/charge',
  '/charges/:key',
  '/quote',
  '/health',
  '/ready',
  '/version',
  '/openapi.json',
  '/metrics',
  'other',
] as const;
export type RouteLabel = (typeof ROUTE_LABELS)[number];

/** Every status the public listener answers (the OpenAPI document and the catalogue, less the admin-only 401/403). */
export const STATUSES = [200, 201, 400, 402, 404, 405, 408, 409, 413, 415, 422, 431, 500, 503, 504] as const;
export const STATUS_CLASSES = ['2xx', '4xx', '5xx'] as const;
type StatusClass = (typeof STATUS_CLASSES)[number];

/** The worker queue wait (the gateway's own), then the charge service's stages. */
export const STAGES = ['queue_wait', ...CHARGE_STAGES] as const;
export type Stage = (typeof STAGES)[number];

const requestCounterNames = (): string[] => {
  const names: string[] = [];
  for (const r of ROUTE_LABELS) {
    for (const s of STATUSES) names.push(`${r}|${s}`);
    names.push(`${r}|other`, `${r}|aborted`);
  }
  return names;
};
const REQUEST_COUNTERS = requestCounterNames();

function statusClass(status: number): StatusClass {
  return status < 400 ? '2xx' : status < 500 ? '4xx' : '5xx';
}

export function createTelemetryLayout(): SharedLayout {
  const regions: Record<string, { ints: number; floats: number }> = {
    requests: SharedCounters.spec(REQUEST_COUNTERS.length),
  };
  for (const r of ROUTE_LABELS)
    for (const c of STATUS_CLASSES) regions[`http:${r}:${c}`] = { ints: HISTOGRAM_BUCKETS, floats: 0 };
  for (const s of STAGES) regions[`stage:${s}`] = { ints: HISTOGRAM_BUCKETS, floats: 0 };
  return allocateShared(regions);
}

export class Telemetry {
  readonly requests: SharedCounters<string>;
  readonly http = new Map<string, SharedHistogram>();
  readonly stages = new Map<Stage, SharedHistogram>();

  constructor(layout: SharedLayout) {
    this.requests = new SharedCounters(openRegion(layout, 'requests'), REQUEST_COUNTERS);
    for (const r of ROUTE_LABELS) {
      for (const c of STATUS_CLASSES)
        this.http.set(`${r}:${c}`, new SharedHistogram(openRegion(layout, `http:${r}:${c}`).i32));
    }
    for (const s of STAGES) this.stages.set(s, new SharedHistogram(openRegion(layout, `stage:${s}`).i32));
  }

  /** A request was answered with `status` after `ms`. */
  request(route: RouteLabel, status: number, ms: number): void {
    const known = (STATUSES as readonly number[]).includes(status);
    this.requests.inc(`${route}|${known ? status : 'other'}`);
    this.http.get(`${route}:${statusClass(status)}`)!.recordMs(ms);
  }

  /** The client went away before an answer. */
  aborted(route: RouteLabel): void {
    this.requests.inc(`${route}|aborted`);
  }

  observe(stage: Stage, ms: number): void {
    this.stages.get(stage)!.recordMs(ms);
  }
}
