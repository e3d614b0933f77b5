/**
 * Versioned schema migrations, applied in order at start under an advisory
 * lock so replicas starting together do not race. A migration is never edited
 * once shipped: add a new one.
 */
import type { Sql } from 'postgres';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'charges',
    sql: `
      CREATE TABLE charges (
        idempotency_key    text PRIMARY KEY,
        fingerprint        text NOT NULL,
        status             text NOT NULL CHECK (status IN ('started', 'succeeded', 'declined', 'failed')),
        charge_id          text NOT NULL UNIQUE,
        provider_key       text NOT NULL UNIQUE,
        amount             integer NOT NULL,
        currency           text NOT NULL,
        request            jsonb NOT NULL,
        lease_token        uuid,
        lease_expires_at   timestamptz,
        attempts           integer NOT NULL DEFAULT 1,
        provider_charge_id text,
        response_status    smallint,
        response_body      text,
        created_at         timestamptz NOT NULL DEFAULT now(),
        updated_at         timestamptz NOT NULL DEFAULT now(),
        completed_at       timestamptz,
        CHECK ((status = 'started') = (completed_at IS NULL))
      );
      -- The reconciler's scan: only started rows, oldest lease first.
      CREATE INDEX charges_pending_idx ON charges (lease_expires_at) WHERE status = 'started';
      -- The reaper's scan: only completed rows, oldest first.
      CREATE INDEX charges_completed_idx ON charges (completed_at) WHERE status <> 'started';
    `,
  },
  {
    // A charge whose outcome stays unknown after the reconciler's last try
    // becomes `needs_attention`: a status, not a flag column, so that every
    // statement that drives a charge (claim takeover, the reconciler's
    // lease, record: all `WHERE status = 'started'`) leaves it alone without
    // being told — a flag would have to be added to each of them, and one
    // forgotten would charge again. It is not final either: no completion
    // time, no stored answer, no lease, so the reaper never prunes it and
    // nothing replays it. The constraints say exactly that. They are added
    // NOT VALID: rows written under version 1 satisfy them by construction
    // (version 1's constraints imply them), and validating would scan the
    // whole table under an exclusive lock at start-up.
    version: 2,
    name: 'charges-needs-attention',
    sql: `
      ALTER TABLE charges ADD COLUMN reconcile_attempts integer NOT NULL DEFAULT 0;
      ALTER TABLE charges DROP CONSTRAINT charges_status_check;
      ALTER TABLE charges ADD CONSTRAINT charges_status_check
        CHECK (status IN ('started', 'succeeded', 'declined', 'failed', 'needs_attention')) NOT VALID;
      ALTER TABLE charges DROP CONSTRAINT charges_check;
      ALTER TABLE charges ADD CONSTRAINT charges_completed_check
        CHECK ((status IN ('started', 'needs_attention')) = (completed_at IS NULL)) NOT VALID;
      ALTER TABLE charges ADD CONSTRAINT charges_needs_attention_check
        CHECK (status <> 'needs_attention' OR (lease_token IS NULL AND lease_expires_at IS NULL AND response_status IS NULL AND response_body IS NULL)) NOT VALID;
      ALTER TABLE charges ADD CONSTRAINT charges_reconcile_attempts_check CHECK (reconcile_attempts >= 0) NOT VALID;
      -- The operator's list and the gauge: only rows that need attention, oldest first.
      CREATE INDEX charges_needs_attention_idx ON charges (created_at) WHERE status = 'needs_attention';
    `,
  },
];

const LOCK_ID = 0x62756c77; // "bulw"

export async function migrate(sql: Sql): Promise<number[]> {
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${LOCK_ID})`;
    await tx`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`;
    const done = new Set(
      (await tx<{ version: number }[]>`SELECT version FROM schema_migrations`).map((r) => r.version),
    );
    const applied: number[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await tx.unsafe(m.sql);
      await tx`INSERT INTO schema_migrations (version, name) VALUES (${m.version}, ${m.name})`;
      applied.push(m.version);
    }
    return applied;
  });
}
