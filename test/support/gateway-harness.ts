/**
 * The fixture most gateway integration tests share: a real Postgres and the
 * simulator for the file (started in before(), stopped in after()), and
 * gateways started against them on demand, every one killed in after() even
 * when a test failed half-way.
 */
import { after, before } from 'node:test';
import { startSimulator, type Simulator } from '../../src/simulator/index.js';
import { startTestDb, type TestDb } from './postgres.js';
import { adminUrl, startTarget, type Target } from './target.js';

export interface GatewayHarness {
  readonly db: TestDb;
  readonly sim: Simulator;
  /** Gateways still to be killed in after(); a test that stops one itself takes it out. */
  readonly targets: Target[];
  /** A gateway with the harness's settings, then `env` on top; with its admin base URL. */
  gateway(env?: Record<string, string>): Promise<{ t: Target; admin: string }>;
}

export function gatewayHarness(defaults: Record<string, string> = {}): GatewayHarness {
  let db: TestDb | undefined;
  let sim: Simulator | undefined;
  const targets: Target[] = [];
  before(async () => {
    db = await startTestDb();
    sim = await startSimulator({ providerPort: 0, fxPort: 0 });
  });
  after(async () => {
    await Promise.allSettled(targets.map((t) => t.kill()));
    await sim?.close();
    await db?.close();
  });
  const started = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`${what} is not started yet (used before before() ran)`);
    return v;
  };
  return {
    get db() {
      return started(db, 'the test Postgres');
    },
    get sim() {
      return started(sim, 'the simulator');
    },
    targets,
    async gateway(env = {}) {
      const s = started(sim, 'the simulator');
      const t = await startTarget('gateway', {
        databaseUrl: started(db, 'the test Postgres').url,
        providerUrl: s.providerUrl,
        fxUrl: s.fxUrl,
        env: { LOG_LEVEL: 'info', ...defaults, ...env },
      });
      targets.push(t);
      return { t, admin: adminUrl(t) };
    },
  };
}
