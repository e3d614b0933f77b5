/**
 * Prometheus text exposition (format 0.0.4), written by hand: the gateway's
 * numbers live in shared memory across threads, which prom-client cannot
 * aggregate, so a registry would only copy them. Families are declared once
 * with HELP and TYPE; histograms use one fixed `le` ladder on every replica so
 * they aggregate across replicas.
 */
import { countAndSum, cumulativeAt, summarize } from './histogram.js';

export type Labels = Record<string, string>;

/** Seconds. 0.3 is the /charge SLO threshold. */
export const LE_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1, 2.5, 5, 10, 30] as const;

function escape(v: string): string {
  return v.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');
}

function fmtLabels(labels: Labels | undefined): string {
  if (!labels) return '';
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escape(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function fmtValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export class Exposition {
  readonly #out: string[] = [];

  family(name: string, type: 'counter' | 'gauge' | 'histogram' | 'summary', help: string): this {
    this.#out.push(`# HELP ${name} ${help.replaceAll('\\', '\\\\').replaceAll('\n', '\\n')}`, `# TYPE ${name} ${type}`);
    return this;
  }

  sample(name: string, value: number, labels?: Labels): this {
    this.#out.push(`${name}${fmtLabels(labels)} ${fmtValue(value)}`);
    return this;
  }

  /** Samples of one histogram series from bucket counts. */
  histogram(name: string, counts: Int32Array, labels: Labels = {}): this {
    const cumulative = cumulativeAt(counts, LE_SECONDS);
    // Buckets, count and sum only: percentiles are the reader's (histogram_quantile).
    const s = countAndSum(counts);
    LE_SECONDS.forEach((le, i) => this.sample(`${name}_bucket`, cumulative[i]!, { ...labels, le: String(le) }));
    this.sample(`${name}_bucket`, s.count, { ...labels, le: '+Inf' });
    this.sample(`${name}_sum`, s.sumSeconds, labels);
    this.sample(`${name}_count`, s.count, labels);
    return this;
  }

  /** Samples of one summary series (quantiles over a window) from bucket counts. */
  summary(name: string, counts: Int32Array, labels: Labels = {}): this {
    const s = summarize(counts);
    for (const [quantile, v] of Object.entries(s.quantiles)) this.sample(name, v, { ...labels, quantile });
    this.sample(`${name}_sum`, s.sumSeconds, labels);
    this.sample(`${name}_count`, s.count, labels);
    return this;
  }

  text(): string {
    return `${this.#out.join('\n')}\n`;
  }
}
