/**
 * A real Postgres for a test file: a fresh database on DATABASE_URL's server
 * when it is set, otherwise an embedded Postgres of its own in a temporary
 * directory on a free port. Every call gets an empty, migrated database.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';
import { migrate } from '../../src/db/migrations.js';

export interface TestDb {
  url: string;
  sql: postgres.Sql;
  close(): Promise<void>;
}

export async function startTestDb(): Promise<TestDb> {
  let serverUrl = process.env.DATABASE_URL;
  let stopServer = async () => {};
  if (!serverUrl) {
    const dir = await mkdtemp(path.join(tmpdir(), 'bulwark-test-pg-'));
    const db = await startEmbeddedPostgres(dir, 0, () => {});
    serverUrl = db.url;
    stopServer = async () => {
      await db.stop();
      await rm(dir, { recursive: true, force: true });
    };
  }
  const name = `bulwark_test_${randomBytes(4).toString('hex')}`;
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  const sql = postgres(url, { max: 4, onnotice: () => {} });
  await migrate(sql);
  return {
    url,
    sql,
    async close() {
      await sql.end({ timeout: 1 });
      await stopServer();
    },
  };
}

/**
 * A first writer that has recorded `key` (201, `body`) in a transaction it
 * has not committed, so its row lock is held. `commitWhenBlocked(pattern)`
 * waits until another statement whose text matches the LIKE `pattern` is
 * blocked on that lock, then commits: the race a second writer must lose
 * gracefully.
 */
export async function holdRecordedRow(
  sql: postgres.Sql,
  key: string,
  body: string,
): Promise<{ commitWhenBlocked(pattern: string): Promise<void> }> {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let locked!: () => void;
  const isLocked = new Promise<void>((r) => (locked = r));
  const tx = sql.begin(async (t) => {
    await t`UPDATE charges SET status = 'succeeded', response_status = 201, response_body = ${body}, completed_at = now(), lease_token = NULL, lease_expires_at = NULL WHERE idempotency_key = ${key}`;
    locked();
    await released;
  });
  await isLocked;
  return {
    async commitWhenBlocked(pattern) {
      for (let i = 0; i < 100; i++) {
        const waiting =
          await sql`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE ${pattern}`;
        if (waiting.length > 0) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      release();
      await tx;
    },
  };
}

/** The rows' xmax: a claim that locks or updates a row changes it. */
export async function rowXmax(sql: postgres.Sql, keys: readonly string[]): Promise<string[]> {
  const rows = await sql<{ x: string }[]>`
    SELECT xmax::text AS x FROM charges WHERE idempotency_key = ANY(${keys as string[]}::text[]) ORDER BY idempotency_key`;
  return rows.map((r) => r.x);
}

/** Another transaction holding the rows FOR UPDATE (as a takeover or a record does) until released. */
export async function holdRows(sql: postgres.Sql, keys: readonly string[]): Promise<{ release(): Promise<void> }> {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let locked!: () => void;
  const isLocked = new Promise<void>((r) => (locked = r));
  const tx = sql.begin(async (t) => {
    await t`SELECT 1 FROM charges WHERE idempotency_key = ANY(${keys as string[]}::text[]) FOR UPDATE`;
    locked();
    await released;
  });
  await isLocked;
  return {
    async release() {
      release();
      await tx;
    },
  };
}

/** The promise's value, or 'blocked' when it has not settled within `ms`. */
export async function withinMs<T>(ms: number, p: Promise<T>): Promise<T | 'blocked'> {
  let timer: NodeJS.Timeout | undefined;
  const blocked = new Promise<'blocked'>((r) => (timer = setTimeout(() => r('blocked'), ms)));
  try {
    return await Promise.race([p, blocked]);
  } finally {
    clearTimeout(timer);
  }
}
