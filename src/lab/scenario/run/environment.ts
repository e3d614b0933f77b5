/**
 * Everything a scenario runs against, all on loopback: an embedded Postgres
 * in a temporary directory on a free port, the simulator as a child process
 * (so the load generator and the downstreams never starve each other on one
 * event loop), and, per variant, the service under test as a child process.
 *
 * Variants run one after another on the same Postgres and simulator, each on
 * an emptied `charges` table and a cleared provider ledger, so their ratios
 * come from one machine state. `close()` stops everything it started, in
 * reverse order, even when a scenario failed half-way.
 */
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres, { type Sql } from 'postgres';
import { freePort, startEmbeddedPostgres, type EmbeddedDb } from '../../../db/embedded.js';
import { startChild, type Child } from './child.js';
import { PostgresControl } from '../faults/pg-control.js';
import { SimulatorControl } from '../faults/sim-control.js';

export interface EnvironmentOptions {
  /** Simulator seed (fault dice, latency samples). Default 42. */
  seed?: number;
  /** Use this Postgres instead of an embedded one (its `charges` table is emptied per variant). */
  databaseUrl?: string;
  /** Progress lines. */
  log?: (msg: string) => void;
}

export interface Environment {
  readonly databaseUrl: string;
  /** The simulator's process, for CPU accounting. */
  readonly simulatorPid: number;
  readonly sim: SimulatorControl;
  /** The lab's own small pool: truncation, the settle poll and the audit read. */
  readonly sql: Sql;
  /**
   * Crash and restart of the embedded Postgres (the `crash` scenario);
   * undefined with an external database, which the lab does not own.
   */
  readonly postgres?: { crash(): Promise<void>; restart(): Promise<{ recovered: boolean }> };
  /** Empty `charges` (when it exists), heal both simulated services, clear the ledger. */
  resetForVariant(): Promise<void>;
  close(): Promise<void>;
}

export async function startEnvironment(o: EnvironmentOptions = {}): Promise<Environment> {
  const log = o.log ?? (() => {});
  const stops: (() => Promise<void>)[] = [];
  // Once, however many ask: the runner's close and a signal's may overlap.
  let closing: Promise<void> | undefined;
  const closeAll = (): Promise<void> =>
    (closing ??= (async () => {
      for (const s of stops.reverse()) await s().catch((e: unknown) => log(`cleanup: ${(e as Error).message}`));
      stops.length = 0;
    })());
  // The embedded Postgres runs under pg_ctl, in a session of its own: an
  // interrupted run (Ctrl-C, a SIGTERM) used to leave it running, with its
  // data directory, until someone found it. The embedded package's exit hook
  // ends the process on those signals once its own (now empty) work is done,
  // so the Postgres is stopped synchronously here, inside the handler; the
  // simulator and the services under test end with their stdin pipe.
  let stopPostgresNow: (() => void) | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping the lab's Postgres`);
    try {
      stopPostgresNow?.();
      stopPostgresNow = undefined;
    } catch (e) {
      log(`cleanup: ${(e as Error).message}`);
    }
    const code = signal === 'SIGINT' ? 130 : 143;
    setTimeout(() => process.exit(code), 15_000).unref();
    void closeAll().finally(() => process.exit(code));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  stops.push(async () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  });
  try {
    let databaseUrl = o.databaseUrl;
    let postgresCrash: Environment['postgres'];
    if (databaseUrl === undefined) {
      const dir = await mkdtemp(path.join(tmpdir(), 'bulwark-lab-pg-'));
      stops.push(() => rm(dir, { recursive: true, force: true }));
      // After a signal the process may end before the stops above run: the directory goes at once too.
      const removeNow = () => rmSync(dir, { recursive: true, force: true });
      const db: EmbeddedDb = await startEmbeddedPostgres(dir, 0, log);
      // Started as the product starts it (initdb, its flags, the database),
      // then handed over to pg_ctl, which starts it again from its own
      // postmaster.opts: the embedded package waits for the exit of the child
      // it spawned, at our stop and at process exit, and a crash (the `crash`
      // scenario) makes that wait endless. A clean stop now costs a second.
      const control = new PostgresControl(path.join(dir, 'pg'));
      await db.stop();
      await control.start();
      const stopSync = await control.syncStopper();
      stopPostgresNow = () => {
        stopSync();
        removeNow();
      };
      stops.push(async () => {
        if (stopPostgresNow === undefined) return; // a signal stopped it already
        stopPostgresNow = undefined;
        await control.stop();
      });
      postgresCrash = { crash: () => control.crash(), restart: () => control.start() };
      databaseUrl = db.url;
      log(`postgres on port ${db.port} (${dir})`);
    }
    const simChild: Child = await startChild({
      name: 'simulator',
      args: ['simulate', '--provider-port', '0', '--fx-port', '0', '--seed', String(o.seed ?? 42)],
      env: {},
    });
    // `bulwark simulate` watches its stdin for the exit-with-parent contract
    // and keeps running after SIGTERM while that pipe is open: closing the
    // pipe is the stop it honours.
    stops.push(async () => void (await simChild.stopViaStdin(5000)));
    const providerUrl = String(simChild.listening.providerUrl);
    const fxUrl = String(simChild.listening.fxUrl);
    const sim = new SimulatorControl(providerUrl, fxUrl);
    stops.push(() => sim.close());
    log(`simulator pid ${simChild.pid}: provider ${providerUrl}, fx ${fxUrl}`);
    const sql = postgres(databaseUrl, { max: 4, onnotice: () => {}, idle_timeout: 30 });
    stops.push(() => sql.end({ timeout: 2 }));
    return {
      databaseUrl,
      simulatorPid: simChild.pid,
      sim,
      sql,
      ...(postgresCrash ? { postgres: postgresCrash } : {}),
      async resetForVariant() {
        // The services migrate at start; before the first one there is nothing to empty.
        await sql`DO $$ BEGIN IF to_regclass('public.charges') IS NOT NULL THEN TRUNCATE charges; END IF; END $$`;
        await sim.healAll();
        await sim.clearLedger();
      },
      close: closeAll,
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}

/** A free loopback port, picked once so a restarted service comes back where the load generator points. */
export { freePort };
