/** A real pino logger whose lines land in memory, for tests that assert what is logged. */
import { Writable } from 'node:stream';
import pino from 'pino';

export function capturedLogger(): { log: pino.Logger; lines: () => Record<string, unknown>[]; raw: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      cb();
    },
  });
  const log = pino({ level: 'info' }, stream);
  const raw = () => chunks.join('');
  return {
    log,
    raw,
    lines: () =>
      raw()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
