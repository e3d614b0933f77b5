/**
 * Structured JSON logs (pino) to stdout. Log lines never carry card data:
 * callers log keys and codes, not request bodies.
 */
import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, name: string): Logger {
  // Level names ("warn"), not pino's numbers: what log pipelines and people read.
  return pino({
    level,
    base: { service: name },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
