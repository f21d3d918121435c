/**
 * Where each audit store records its sealed archive segments (`audit_archive_segments`, one row
 * per segment) and how it drops a sealed range from its hot table (ArchiveIndex in store.ts).
 * The table is new beside the others: SQLite creates it if missing, PostgreSQL adds it in a
 * migration of its own. The subject index (`audit_subjects`) keeps the rows of archived entries:
 * they are small, and they are how a search by personal id finds archived seqs.
 */
import type Database from 'better-sqlite3';
import type pg from 'pg';
import type { PoolClient } from 'pg';
import { GENESIS, type AuditEntry } from './entry.ts';
import { inProcessLock, lockFile } from './archive-lock.ts';
import type { ArchiveIndex, SealedSegment } from './store.ts';

interface SegmentRow { first_seq: number | string; last_seq: number | string; prev_hash: string; last_hash: string; file: string; file_sha256: string; entries: number | string; sealed_at: string }
const fromSegmentRow = (r: SegmentRow): SealedSegment => ({
  firstSeq: Number(r.first_seq), lastSeq: Number(r.last_seq), prevHash: r.prev_hash, lastHash: r.last_hash,
  file: r.file, fileSha256: r.file_sha256, entries: Number(r.entries), sealedAt: r.sealed_at,
});
const COLUMNS = 'first_seq, last_seq, prev_hash, last_hash, file, file_sha256, entries, sealed_at';

/** The SQLite table; `IF NOT EXISTS`, so an existing audit file gains it at its next open. */
export const SQLITE_ARCHIVE_TABLE = `CREATE TABLE IF NOT EXISTS audit_archive_segments (
  first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL UNIQUE, prev_hash TEXT NOT NULL, last_hash TEXT NOT NULL,
  file TEXT NOT NULL, file_sha256 TEXT NOT NULL, entries INTEGER NOT NULL, sealed_at TEXT NOT NULL)`;

/**
 * Reads on the store's connection; the drop goes to `drop` (the writer thread, or this
 * connection for an in-memory database), which owns writes to audit_entries. A file's archivers
 * take turns by a lock file beside it.
 */
export function sqliteArchiveIndex(db: Database.Database, file: string, drop: (segment: SealedSegment) => Promise<'dropped' | 'already'>): ArchiveIndex {
  db.exec(SQLITE_ARCHIVE_TABLE);
  const all = db.prepare(`SELECT ${COLUMNS} FROM audit_archive_segments ORDER BY first_seq`);
  const subjectSeqs = db.prepare('SELECT seq FROM audit_subjects WHERE subject = ? AND seq < ? ORDER BY seq DESC LIMIT ?').pluck();
  const oldest = db.prepare('SELECT seq, time FROM audit_entries ORDER BY seq LIMIT 1');
  return {
    async segments() { return (all.all() as SegmentRow[]).map(fromSegmentRow); },
    dropThrough: drop,
    async subjectSeqs(subject, before, limit) { return subjectSeqs.all(subject, Math.min(before, Number.MAX_SAFE_INTEGER), limit) as number[]; },
    async oldestHot() { return (oldest.get() as { seq: number; time: string } | undefined) ?? null; },
    exclusive: file === ':memory:' ? inProcessLock() : lockFile(`${file}.archiver.lock`),
  };
}

/** The PostgreSQL migration that adds the table (postgres-store.ts, MIGRATIONS). */
export const POSTGRES_ARCHIVE_MIGRATION = `CREATE TABLE audit_archive_segments (
  first_seq bigint PRIMARY KEY, last_seq bigint NOT NULL UNIQUE, prev_hash text NOT NULL, last_hash text NOT NULL,
  file text NOT NULL, file_sha256 text NOT NULL, entries integer NOT NULL, sealed_at text NOT NULL
);`;

const refused = (why: string) => Object.assign(new Error(`archive segment refused: ${why}`), { name: 'ArchiveRefused', code: 'ARCHIVE_REFUSED' });

/**
 * `table` qualifies a table name with the store's schema; `inTransaction` is the store's own.
 * Instances on one chain take turns by a session-level advisory lock, which the server releases
 * when the holder's connection ends (a SIGKILLed archiver holds nothing).
 */
export function postgresArchiveIndex(pool: pg.Pool, schema: string, table: (name: string) => string, inTransaction: <T>(pool: pg.Pool, fn: (c: PoolClient) => Promise<T>) => Promise<T>): ArchiveIndex {
  const segments = table('audit_archive_segments');
  const entries = table('audit_entries');
  const lockKey = `gateway-audit-archiver:${schema}`;
  return {
    async segments() {
      const { rows } = await pool.query<SegmentRow>(`SELECT ${COLUMNS} FROM ${segments} ORDER BY first_seq`);
      return rows.map(fromSegmentRow);
    },
    dropThrough: (s) => inTransaction(pool, async (c) => {
      // Appends go on meanwhile: they insert above the range and lock only the chain head.
      await c.query(`LOCK TABLE ${segments} IN SHARE ROW EXCLUSIVE MODE`);
      const { rows: [known] } = await c.query<SegmentRow>(`SELECT ${COLUMNS} FROM ${segments} WHERE first_seq = $1`, [s.firstSeq]);
      if (known) {
        if (Number(known.last_seq) === s.lastSeq && known.file_sha256 === s.fileSha256) return 'already' as const;
        throw refused(`another segment starting at seq ${s.firstSeq} is recorded`);
      }
      const { rows: [last] } = await c.query<SegmentRow>(`SELECT ${COLUMNS} FROM ${segments} ORDER BY first_seq DESC LIMIT 1`);
      if ((last ? Number(last.last_seq) : 0) + 1 !== s.firstSeq || (last?.last_hash ?? GENESIS.hash) !== s.prevHash) throw refused(`it does not follow the last segment (seq ${last?.last_seq ?? 0})`);
      const { rows: [range] } = await c.query<{ n: string; first: string | null; last: string | null; after: boolean }>(
        `SELECT count(*) AS n,
           (SELECT prev_hash FROM ${entries} WHERE seq = $1) AS first, (SELECT hash FROM ${entries} WHERE seq = $2) AS last,
           EXISTS (SELECT 1 FROM ${entries} WHERE seq > $2) AS after
         FROM ${entries} WHERE seq BETWEEN $1 AND $2`, [s.firstSeq, s.lastSeq]);
      if (s.entries !== s.lastSeq - s.firstSeq + 1 || Number(range!.n) !== s.entries) throw refused(`the hot store does not hold exactly seqs ${s.firstSeq}..${s.lastSeq}`);
      if (range!.first !== s.prevHash || range!.last !== s.lastHash) throw refused('its hashes differ from the hot store\'s');
      if (!range!.after) throw refused('the chain\'s head entry stays in the hot store');
      await c.query(`INSERT INTO ${segments} (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, [s.firstSeq, s.lastSeq, s.prevHash, s.lastHash, s.file, s.fileSha256, s.entries, s.sealedAt]);
      await c.query(`DELETE FROM ${entries} WHERE seq BETWEEN $1 AND $2`, [s.firstSeq, s.lastSeq]);
      return 'dropped' as const;
    }),
    async subjectSeqs(subject, before, limit) {
      const { rows } = await pool.query<{ seq: string }>(`SELECT seq FROM ${table('audit_subjects')} WHERE subject = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`, [subject, Math.min(before, Number.MAX_SAFE_INTEGER), limit]);
      return rows.map((r) => Number(r.seq));
    },
    async oldestHot() {
      const { rows: [row] } = await pool.query<{ seq: string; time: string }>(`SELECT seq, time FROM ${entries} ORDER BY seq LIMIT 1`);
      return row ? { seq: Number(row.seq), time: row.time } : null;
    },
    async exclusive(fn) {
      const client = await pool.connect();
      let dropped: Error | undefined;
      const onError = (e: Error) => { dropped ??= e; };
      client.on('error', onError);
      try {
        const { rows: [got] } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [lockKey]);
        if (!got?.ok) return { ran: false };
        try {
          return { ran: true, value: await fn() };
        } finally {
          await client.query('SELECT pg_advisory_unlock(hashtext($1))', [lockKey]).catch((e: Error) => { dropped ??= e; });
        }
      } finally {
        client.off('error', onError);
        // A connection that failed is destroyed, which releases the lock too.
        client.release(dropped);
      }
    },
  };
}

/** The memory store's: `entries` is its hot table, oldest first. */
export function memoryArchiveIndex(entries: AuditEntry[]): ArchiveIndex {
  const sealed: SealedSegment[] = [];
  const subjects = new Map<string, number[]>();
  return {
    async segments() { return sealed.map((s) => ({ ...s })); },
    async dropThrough(s) {
      const known = sealed.find((k) => k.firstSeq === s.firstSeq);
      if (known) {
        if (known.lastSeq === s.lastSeq && known.fileSha256 === s.fileSha256) return 'already';
        throw refused(`another segment starting at seq ${s.firstSeq} is recorded`);
      }
      const last = sealed.at(-1);
      if ((last?.lastSeq ?? 0) + 1 !== s.firstSeq || (last?.lastHash ?? GENESIS.hash) !== s.prevHash) throw refused(`it does not follow the last segment (seq ${last?.lastSeq ?? 0})`);
      const n = s.lastSeq - s.firstSeq + 1;
      const range = entries.slice(0, n);
      if (s.entries !== n || range.length !== n || range[0]?.seq !== s.firstSeq || range.at(-1)?.seq !== s.lastSeq) throw refused(`the hot store does not hold exactly seqs ${s.firstSeq}..${s.lastSeq}`);
      if (range[0]!.prevHash !== s.prevHash || range.at(-1)!.hash !== s.lastHash) throw refused('its hashes differ from the hot store\'s');
      if (entries.length === n) throw refused('the chain\'s head entry stays in the hot store');
      for (const e of range) for (const subject of e.subjects) (subjects.get(subject) ?? subjects.set(subject, []).get(subject)!).push(e.seq);
      sealed.push({ ...s });
      entries.splice(0, n);
      return 'dropped';
    },
    async subjectSeqs(subject, before, limit) {
      return (subjects.get(subject) ?? []).filter((seq) => seq < before).reverse().slice(0, limit);
    },
    async oldestHot() { return entries[0] ? { seq: entries[0].seq, time: entries[0].time } : null; },
    exclusive: inProcessLock(),
  };
}
