/**
 * Latency distributions for injected delay. Real downstreams are rarely
 * "fixed 200 ms": a long tail (lognormal, exponential) is what trips breakers
 * and fills bulkheads, so scenarios pick a shape, not just a number.
 * Samples draw from the injected `Random` so a seed replays the same delays.
 */
import { exponential, standardNormal, type Random } from '../lib/random.js';

export type LatencyDist =
  | { readonly dist: 'fixed'; readonly ms: number }
  | { readonly dist: 'uniform'; readonly minMs: number; readonly maxMs: number }
  | { readonly dist: 'normal'; readonly meanMs: number; readonly stdDevMs: number }
  | { readonly dist: 'exponential'; readonly meanMs: number }
  | { readonly dist: 'lognormal'; readonly medianMs: number; readonly sigma: number };

export type LatencyResult = { ok: true; latency: LatencyDist } | { ok: false; field: string; message: string };

/** A day: anything longer is a typo, and setTimeout overflows past 2^31-1 ms. */
const MAX_LATENCY_MS = 86_400_000;
const MAX_TIMER_MS = 2_147_483_647;
const MAX_SIGMA = 10;

const PARAMS: Record<LatencyDist['dist'], readonly string[]> = {
  fixed: ['ms'],
  uniform: ['minMs', 'maxMs'],
  normal: ['meanMs', 'stdDevMs'],
  exponential: ['meanMs'],
  lognormal: ['medianMs', 'sigma'],
};

/** Accepts a bare number (fixed) or a `{ dist, ... }` object; `field` prefixes error names. */
export function parseLatency(json: unknown, field = 'latencyMs'): LatencyResult {
  if (typeof json === 'number') {
    const bad = checkMs(json, field);
    return bad ?? { ok: true, latency: Object.freeze({ dist: 'fixed', ms: json }) };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return fail(field, `${field} must be a number of ms or an object { "dist": ${distNames()}, ... }`);
  }
  const o = json as Record<string, unknown>;
  const dist = o['dist'];
  if (typeof dist !== 'string' || !Object.hasOwn(PARAMS, dist)) {
    return fail(`${field}.dist`, `${field}.dist must be one of ${distNames()}; got ${JSON.stringify(dist)}`);
  }
  const params = PARAMS[dist as LatencyDist['dist']];
  for (const k of Object.keys(o)) {
    if (k !== 'dist' && !params.includes(k)) {
      return fail(
        `${field}.${k}`,
        `${field}.${k} is not a parameter of the ${dist} distribution (allowed: ${params.join(', ')})`,
      );
    }
  }
  const values: Record<string, number> = {};
  for (const p of params) {
    const v = o[p];
    const name = `${field}.${p}`;
    if (v === undefined) return fail(name, `${name} is required for the ${dist} distribution`);
    const bad = p === 'sigma' ? checkSigma(v, name) : checkMs(v, name);
    if (bad) return bad;
    values[p] = v as number;
  }
  if (dist === 'uniform' && values['minMs']! > values['maxMs']!) {
    return fail(`${field}.maxMs`, `${field}.maxMs must be >= minMs; got ${values['maxMs']} < ${values['minMs']}`);
  }
  return { ok: true, latency: Object.freeze({ dist, ...values }) as LatencyDist };
}

/** One delay in ms, clamped to [0, max timer]: a normal sample can be negative, a lognormal huge. */
export function sampleLatencyMs(d: LatencyDist, random: Random): number {
  let ms: number;
  switch (d.dist) {
    case 'fixed':
      return d.ms;
    case 'uniform':
      ms = d.minMs + (d.maxMs - d.minMs) * random();
      break;
    case 'normal':
      ms = d.meanMs + d.stdDevMs * standardNormal(random);
      break;
    case 'exponential':
      ms = exponential(random, d.meanMs);
      break;
    case 'lognormal':
      ms = d.medianMs * Math.exp(d.sigma * standardNormal(random));
      break;
  }
  return ms <= 0 ? 0 : ms >= MAX_TIMER_MS ? MAX_TIMER_MS : ms;
}

function checkMs(v: unknown, name: string): { ok: false; field: string; message: string } | undefined {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > MAX_LATENCY_MS) {
    return fail(name, `${name} must be a number of ms from 0 to ${MAX_LATENCY_MS}; got ${JSON.stringify(v)}`);
  }
  return undefined;
}

function checkSigma(v: unknown, name: string): { ok: false; field: string; message: string } | undefined {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > MAX_SIGMA) {
    return fail(name, `${name} must be a number from 0 to ${MAX_SIGMA}; got ${JSON.stringify(v)}`);
  }
  return undefined;
}

function fail(field: string, message: string): { ok: false; field: string; message: string } {
  return { ok: false, field, message };
}

function distNames(): string {
  return Object.keys(PARAMS)
    .map((d) => JSON.stringify(d))
    .join(', ');
}
