/**
 * The adaptive limit under a long surge, a lasting latency shift and a crash,
 * driven by a closed-loop model in plain numbers (no clock): a service with
 * `capacity` requests' worth of parallelism answers in `base` ms; beyond that
 * requests queue (Little's law), so the RTT grows with what the limit lets
 * in, and the callers always have more to send. An answer slower than
 * `timeout` is a drop, and so is every `refuseEvery`-th (a fast downstream
 * refusal). The settings are admission's own (src/gateway/admission.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GradientLimit, type GradientConfig } from '../../src/resilience/limit.js';
import { seededRandom } from '../../src/lib/random.js';
import { GRADIENT_SHAPE } from '../../src/gateway/admission.js';
import { parseOptions } from '../../src/config/options.js';
import { gatewaySpecs } from '../../src/config/service.js';

/** The gateway's own shape (src/gateway/admission.ts) and bounds (its configuration defaults). */
const defaults = parseOptions(gatewaySpecs, [], {}).values;
const real: GradientConfig = {
  initial: defaults.concurrencyLimitStatic,
  min: defaults.concurrencyLimitMin,
  max: defaults.concurrencyLimitMax,
  ...GRADIENT_SHAPE,
};

interface Load {
  capacity: number;
  base: number;
  /** Factor on the service time (CPU contention). */
  inflate?: number;
  /** Delay added to every answer whatever the concurrency (a busy event loop). */
  add?: number;
  timeout?: number;
  refuseEvery?: number;
  /** Requests the callers keep in flight; the limit caps them. */
  offered?: number;
  /** Every answer is a fast failure (the database is down). */
  down?: boolean;
}

function drive(l: GradientLimit, random: () => number, load: Load, samples: number): number[] {
  const seen: number[] = [];
  for (let i = 1; i <= samples; i++) {
    const inflight = Math.min(l.current, load.offered ?? Infinity);
    const rtt =
      (load.base * Math.max(1, inflight / load.capacity) * (load.inflate ?? 1) + (load.add ?? 0)) *
      (0.8 + 0.4 * random());
    const refused = load.down === true || (load.refuseEvery !== undefined && i % load.refuseEvery === 0);
    const timedOut = load.timeout !== undefined && rtt > load.timeout;
    l.onSample(refused ? 0.5 : timedOut ? load.timeout! : rtt, inflight, refused || timedOut);
    seen.push(l.current);
  }
  return seen;
}

/** A service starting up: its callers come one by one, so the baseline learns the RTT without a queue. */
function warmUp(l: GradientLimit, random: () => number, load: Load): void {
  for (let offered = 1; offered <= (load.offered ?? 2 * load.capacity); offered++)
    drive(l, random, { ...load, offered }, 15);
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const SEEDS = [17, 18, 19];

// Healthy: callers want twice what the service can run at once.
const healthy: Load = { capacity: 100, base: 10, offered: 200, timeout: 100 };
// The surge: callers without end, answers over 100 ms dropped (they queued
// too long), and one in ten refused at once by a full downstream. 30 000
// samples are 50 long windows: many seconds at any rate this gateway runs at.
const surge: Load = { capacity: 100, base: 10, timeout: 100, refuseEvery: 10 };

function healthyStart(seed: number): { l: GradientLimit; random: () => number; healthyLimit: number } {
  const random = seededRandom(seed);
  const l = new GradientLimit(real);
  warmUp(l, random, healthy);
  return { l, random, healthyLimit: mean(drive(l, random, healthy, 6000).slice(-2000)) };
}

// What this model shows and the real gateway does not want: answers that
// queued (slower because of our own concurrency, not dropped) still teach
// the baseline, as in Gradient2, so under a surge the limit settles above its
// healthy value (~2.4× here). Keeping them out (an attempt did) pinned the
// real gateway's limit at its floor on a healthy step from 800 to 2 000/s on
// two shared cores, where answers are slower because the cores are busier,
// and shed 42 % of a load the service without mechanisms carried. What holds:
// no runaway (the limit settles, bounded), and drops alone move nothing.
test('a sustained surge: the limit settles (no runaway), bounded to 3× its healthy value', () => {
  for (const seed of SEEDS) {
    const { l, random, healthyLimit } = healthyStart(seed);
    const during = drive(l, random, surge, 30_000);
    const [middle, last] = [mean(during.slice(10_000, 20_000)), mean(during.slice(20_000))];
    assert.ok(
      Math.abs(last - middle) / middle < 0.05,
      `seed ${seed}: still moving, ${middle.toFixed(0)} → ${last.toFixed(0)}`,
    );
    assert.ok(
      Math.max(...during) <= 3 * healthyLimit && Math.min(...during.slice(2000)) >= 0.75 * healthyLimit,
      `seed ${seed}: healthy ${healthyLimit.toFixed(0)}, during the surge ${Math.min(...during.slice(2000))}..${Math.max(...during)}`,
    );
  }
});

test('drops never move the baseline, however long or short they took, and push the limit down', () => {
  const l = new GradientLimit(real);
  for (let i = 0; i < 1000; i++) l.onSample(10, l.current, false);
  const baseline = l.longRttMs;
  const before = l.current;
  for (let i = 0; i < 5000; i++) l.onSample(i % 2 ? 0 : 10_000, l.current, true);
  assert.equal(l.longRttMs, baseline);
  assert.ok(l.current < before / 2, `${before} → ${l.current}`);
});

test("drops before any answer (a replacement's first burst refused by a full bulkhead) move nothing and invent no baseline; the first answers then teach it", () => {
  const l = new GradientLimit(real);
  // Measured before: these 200 drops took a fresh limit of 256 to its floor of 16.
  for (let i = 0; i < 200; i++) l.onSample(i % 2 ? 100 : 1000, l.current, true);
  assert.equal(l.current, real.initial);
  assert.equal(l.longRttMs, 0);
  // The first answers set the baseline; drops then count as they do in any process.
  for (let i = 0; i < 50; i++) l.onSample(200, l.current, false);
  assert.equal(l.longRttMs, 200);
  const learned = l.current;
  for (let i = 0; i < 200; i++) l.onSample(1000, l.current, true);
  assert.ok(l.current < learned / 2, `${learned} → ${l.current}`);
});

test('a lasting latency shift (the downstream itself is slower) is learned within 1 000 samples, not pinned at the floor', () => {
  for (const factor of [1.6, 1.8, 3, 10]) {
    for (const seed of SEEDS) {
      const { l, random } = healthyStart(seed);
      const newBase = healthy.base * factor;
      const slower: Load = { ...healthy, base: newBase, timeout: healthy.timeout! * factor };
      // The same service, only slower: its limit when learned from scratch.
      const fresh = new GradientLimit(real);
      const r2 = seededRandom(seed);
      warmUp(fresh, r2, slower);
      const target = mean(drive(fresh, r2, slower, 6000).slice(-2000));
      drive(l, random, slower, 1000);
      const after = drive(l, random, slower, 2000);
      // Learned far enough that an answer without a queue is within tolerance again.
      const learned = l.longRttMs * real.tolerance;
      assert.ok(
        learned >= 0.9 * newBase,
        `×${factor}, seed ${seed}: baseline ${l.longRttMs.toFixed(1)} ms for answers of ${newBase} ms`,
      );
      // It settles where a fresh start on the slower service does, and stays there.
      const [lo, m] = [Math.min(...after), mean(after)];
      assert.ok(
        lo >= 0.75 * target && m <= 1.25 * target,
        `×${factor}, seed ${seed}: limit ${lo}..${Math.max(...after)} vs ${target.toFixed(0)} when learned from scratch`,
      );
    }
  }
});

test('after a crash (only fast failures) and a cold restart (slower for a while) the limit returns to its healthy value', () => {
  for (const seed of SEEDS) {
    const { l, random, healthyLimit } = healthyStart(seed);
    const baseline = l.longRttMs;
    drive(l, random, { ...healthy, down: true }, 3000);
    assert.equal(l.current, real.min, `seed ${seed}: the crash drives the limit to its floor`);
    assert.equal(l.longRttMs, baseline, `seed ${seed}: and leaves the baseline alone`);
    // Cold: three times slower for a while. Not pinned at the floor meanwhile.
    const cold = drive(l, random, { ...healthy, base: 30, timeout: 300 }, 3000);
    assert.ok(
      mean(cold.slice(-1000)) >= 0.5 * healthyLimit,
      `seed ${seed}: cold downstream, limit ${mean(cold.slice(-1000)).toFixed(0)} vs healthy ${healthyLimit.toFixed(0)}`,
    );
    drive(l, random, healthy, 2000);
    const after = mean(drive(l, random, healthy, 1000));
    assert.ok(
      Math.abs(after - healthyLimit) <= 0.25 * healthyLimit,
      `seed ${seed}: healthy ${healthyLimit.toFixed(0)}, after ${after.toFixed(0)}`,
    );
  }
});

test('no swinging: under a steady overload the limit stays within ±30 % of its mean', () => {
  const overloads: Load[] = [
    surge,
    { ...surge, timeout: 60 },
    // CPU contention: every answer slower, whatever the concurrency.
    { capacity: 100, base: 10, inflate: 2, add: 10, timeout: 200, refuseEvery: 10 },
    { capacity: 100, base: 10, add: 50, timeout: 100, refuseEvery: 20 },
    { capacity: 20, base: 2, add: 20, timeout: 60 },
  ];
  for (const [k, load] of overloads.entries()) {
    for (const seed of SEEDS) {
      const { l, random } = healthyStart(seed);
      // After the first 4 000 samples: a limit that creeps is swinging slowly.
      const seen = drive(l, random, load, 20_000).slice(4000);
      const m = mean(seen);
      const [lo, hi] = [Math.min(...seen), Math.max(...seen)];
      assert.ok(lo >= 0.7 * m && hi <= 1.3 * m, `overload ${k}, seed ${seed}: ${lo}..${hi} around ${m.toFixed(0)}`);
    }
  }
});
