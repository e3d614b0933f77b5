/**
 * The process and Node.js families every Node service exports and every
 * dashboard expects (process_cpu_seconds_total, process_resident_memory_bytes,
 * process_start_time_seconds, nodejs_heap_*, nodejs_gc_duration_seconds,
 * nodejs_eventloop_lag_*), from prom-client's default collectors: the
 * ecosystem's reference, not ours to re-invent.
 *
 * Cost: the collectors run only when /metrics is scraped (a few /proc reads
 * and V8 statistics), plus a GC observer; nothing runs per request. The
 * event-loop lag gauges come from a delay histogram that prom-client resets at
 * every collect, so each reports the interval since the previous scrape by
 * anyone; bulwark_event_loop_lag_seconds (loop-delay.ts) accumulates over the
 * process life, so every scraper sees every stall (the admission signal,
 * bulwark_event_loop_delay_seconds, is the last 100 ms only).
 */
import { collectDefaultMetrics, Registry } from 'prom-client';
import { LoopDelayHistogram } from './loop-delay.js';

export interface ProcessMetrics {
  /** Prometheus text of the default families and bulwark_event_loop_lag_seconds. */
  render(): Promise<string>;
  /** Stops the event-loop monitors' timers. */
  close(): void;
}

export function createProcessMetrics(): ProcessMetrics {
  const loopLag = new LoopDelayHistogram();
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 });
  // Gauges whose names end in _total break the naming rules `promtool check
  // metrics` enforces; their per-type twins (nodejs_active_handles{type}, …)
  // carry the same numbers.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
    registry.removeSingleMetric(name);
  return {
    render: async () => (await registry.metrics()) + loopLag.render(),
    close: () => {
      loopLag.close();
      registry.clear();
    },
  };
}
