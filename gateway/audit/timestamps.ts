/**
 * Where each audit store keeps the checkpoints' time-stamp tokens: a table of its own beside the
 * checkpoints (`audit_checkpoint_timestamps`, one row per stamped checkpoint), added to an
 * existing database without touching what is there. A checkpoint without a row is waiting for
 * its stamp.
 */
import type Database from 'better-sqlite3';
import type pg from 'pg';
import type { Checkpoint } from './store.ts';

/** A checkpoint's time-stamp as kept and served: who stamped it, the token, and the token's time. */
export interface CheckpointTimestamp {
  /** The authority's URL (without credentials). */
  tsa: string;
  /** The RFC 3161 TimeStampToken, base64 of its DER. */
  token: string;
  /** The token's genTime, ISO 8601. */
  time: string;
}

/** A checkpoint as GET /audit/checkpoints serves it: with its time-stamp, or null while it has none. */
export type StampedCheckpoint = Checkpoint & { timestamp: CheckpointTimestamp | null };

export interface TimestampStore {
  /** Keeps a checkpoint's time-stamp; a seq already stamped keeps its first. */
  save(seq: number, ts: CheckpointTimestamp): Promise<void>;
  /** Every time-stamp, by seq. */
  all(): Promise<Map<number, CheckpointTimestamp>>;
  /** Checkpoints still without a time-stamp, oldest first (at most `limit`), and how many there are. */
  pending(limit: number): Promise<{ count: number; checkpoints: Checkpoint[] }>;
}

/** The checkpoints with their time-stamps, oldest first. */
export async function stampedCheckpoints(store: { checkpoints(): Promise<Checkpoint[]>; timestamps?: TimestampStore }): Promise<StampedCheckpoint[]> {
  const [checkpoints, stamps] = await Promise.all([store.checkpoints(), store.timestamps?.all() ?? new Map<number, CheckpointTimestamp>()]);
  return checkpoints.map((c) => ({ ...c, timestamp: stamps.get(c.seq) ?? null }));
}

interface TimestampRow { seq: number | string; tsa: string; token: Uint8Array; gen_time: string }
const fromTimestampRow = (r: TimestampRow): [number, CheckpointTimestamp] =>
  [Number(r.seq), { tsa: r.tsa, token: Buffer.from(r.token).toString('base64'), time: r.gen_time }];
const tokenBytes = (ts: CheckpointTimestamp) => Buffer.from(ts.token, 'base64');

export function memoryTimestamps(checkpoints: () => Promise<Checkpoint[]>): TimestampStore {
  const stamps = new Map<number, CheckpointTimestamp>();
  return {
    async save(seq, ts) { if (!stamps.has(seq)) stamps.set(seq, { ...ts }); },
    async all() { return new Map(stamps); },
    async pending(limit) {
      const waiting = (await checkpoints()).filter((c) => !stamps.has(c.seq));
      return { count: waiting.length, checkpoints: waiting.slice(0, limit) };
    },
  };
}

/** The SQLite table; `IF NOT EXISTS`, so an existing audit file gains it at its next open. */
const SQLITE_TABLE = 'CREATE TABLE IF NOT EXISTS audit_checkpoint_timestamps (seq INTEGER PRIMARY KEY, tsa TEXT NOT NULL, token BLOB NOT NULL, gen_time TEXT NOT NULL)';

/**
 * On the store's own connection: a stamp is written once per checkpoint (not in any request's
 * path), so it is committed here rather than through the writer thread.
 */
export function sqliteTimestamps(db: Database.Database): TimestampStore {
  db.exec(SQLITE_TABLE);
  const insert = db.prepare('INSERT OR IGNORE INTO audit_checkpoint_timestamps (seq, tsa, token, gen_time) VALUES (?, ?, ?, ?)');
  const select = db.prepare('SELECT seq, tsa, token, gen_time FROM audit_checkpoint_timestamps ORDER BY seq');
  const waiting = 'FROM audit_checkpoints c WHERE NOT EXISTS (SELECT 1 FROM audit_checkpoint_timestamps t WHERE t.seq = c.seq)';
  const count = db.prepare(`SELECT count(*) AS n ${waiting}`);
  const oldest = db.prepare(`SELECT c.seq, c.hash, c.time, c.jws ${waiting} ORDER BY c.seq LIMIT ?`);
  return {
    async save(seq, ts) { insert.run(seq, ts.tsa, tokenBytes(ts), ts.time); },
    async all() { return new Map((select.all() as TimestampRow[]).map(fromTimestampRow)); },
    async pending(limit) {
      return { count: (count.get() as { n: number }).n, checkpoints: oldest.all(limit) as Checkpoint[] };
    },
  };
}

/** The PostgreSQL migration that adds the table (postgres-store.ts, MIGRATIONS). */
export const POSTGRES_TIMESTAMPS_MIGRATION = `CREATE TABLE audit_checkpoint_timestamps (
  seq bigint PRIMARY KEY REFERENCES audit_checkpoints (seq), tsa text NOT NULL, token bytea NOT NULL, gen_time text NOT NULL
);`;

/** `table` qualifies a table name with the store's schema. */
export function postgresTimestamps(pool: pg.Pool, table: (name: string) => string): TimestampStore {
  const waiting = `FROM ${table('audit_checkpoints')} c WHERE NOT EXISTS (SELECT 1 FROM ${table('audit_checkpoint_timestamps')} t WHERE t.seq = c.seq)`;
  return {
    async save(seq, ts) {
      await pool.query(`INSERT INTO ${table('audit_checkpoint_timestamps')} (seq, tsa, token, gen_time) VALUES ($1, $2, $3, $4) ON CONFLICT (seq) DO NOTHING`, [seq, ts.tsa, tokenBytes(ts), ts.time]);
    },
    async all() {
      const { rows } = await pool.query<TimestampRow>(`SELECT seq, tsa, token, gen_time FROM ${table('audit_checkpoint_timestamps')} ORDER BY seq`);
      return new Map(rows.map(fromTimestampRow));
    },
    async pending(limit) {
      const [{ rows: [n] }, { rows }] = await Promise.all([
        pool.query<{ n: string }>(`SELECT count(*) AS n ${waiting}`),
        pool.query<{ seq: string; hash: string; time: string; jws: string }>(`SELECT c.seq, c.hash, c.time, c.jws ${waiting} ORDER BY c.seq LIMIT $1`, [limit]),
      ]);
      return { count: Number(n!.n), checkpoints: rows.map((r) => ({ ...r, seq: Number(r.seq) })) };
    },
  };
}
