/**
 * Micro-benchmark harness: every case proves its result is right before it
 * is timed (a fast wrong answer is worth nothing), then tinybench times it
 * and the table is printed. Figures only — nothing here asserts a speed.
 */
import { Bench } from 'tinybench';

export interface Case {
  name: string;
  /** Throws if the unit under test gives a wrong answer. */
  check: () => void | Promise<void>;
  fn: () => unknown;
  /** Set-up and tear-down around the check and each timed phase (open files, say). */
  beforeAll?: () => void;
  afterAll?: () => void;
}

export interface Suite {
  name: string;
  cases: Case[];
  teardown?: () => Promise<void> | void;
}

export async function runSuite(
  s: Suite,
  timeMs = Number(process.env.BENCH_TIME_MS ?? 500),
): Promise<Record<string, string | number | undefined>[]> {
  for (const c of s.cases) {
    c.beforeAll?.();
    try {
      await c.check();
    } finally {
      c.afterAll?.();
    }
  }
  const bench = new Bench({ name: s.name, time: timeMs, warmupTime: 100 });
  for (const c of s.cases) bench.add(c.name, c.fn, { beforeAll: c.beforeAll, afterAll: c.afterAll });
  await bench.run();
  await s.teardown?.();
  return bench
    .table()
    .filter((r): r is NonNullable<typeof r> => r !== null && r !== undefined)
    .map((r) => ({ suite: s.name, ...r }));
}
