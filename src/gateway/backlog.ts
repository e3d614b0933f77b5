/**
 * The unfinished charges as a worker last read them, for /metrics and
 * /admin/state: the front thread does no DB I/O, so it shows the last
 * reading and when it was taken rather than querying on a scrape.
 */
import type { BacklogStats } from '../charge/service.js';
import type { Clock } from '../lib/clock.js';

export class BacklogReading {
  stats: BacklogStats | null = null;
  /** Epoch ms of the last reading, or null before the first. */
  readAt: number | null = null;

  constructor(
    private readonly read: () => Promise<BacklogStats | null>,
    private readonly clock: Clock,
  ) {}

  /** Read again; a worker that could not read (null) keeps the last reading. */
  async refresh(): Promise<void> {
    const stats = await this.read();
    if (stats) {
      this.stats = stats;
      this.readAt = this.clock.epochMs();
    }
  }
}
