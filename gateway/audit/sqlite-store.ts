import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { chainEntries, GENESIS, type AuditEntry, type ChainHead, type PendingEntry } from './entry.ts';
import { decodeCursor, encodeCursor, ENTRY_COLUMNS, fromRow, toRow, type AuditFilter, type AuditPage, type AuditStore, type Checkpoint } from './store.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS audit_entries (
  seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, time TEXT NOT NULL, client TEXT NOT NULL, user_id TEXT,
  purpose TEXT, case_id TEXT, service TEXT NOT NULL, version INTEGER, subjects TEXT NOT NULL, fields TEXT NOT NULL,
  outcome TEXT NOT NULL, status INTEGER NOT NULL, error_code TEXT, upstreams TEXT NOT NULL, latency_ms INTEGER NOT NULL,
  request_sha256 TEXT NOT NULL, response_sha256 TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_subjects (subject TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (subject, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS audit_by_client ON audit_entries (client, seq);
CREATE INDEX IF NOT EXISTS audit_by_service ON audit_entries (service, seq);
CREATE INDEX IF NOT EXISTS audit_by_case ON audit_entries (case_id, seq);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit_entries (time);
CREATE TABLE IF NOT EXISTS audit_checkpoints (seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, time TEXT NOT NULL, jws TEXT NOT NULL);
`;

/** Builds the WHERE clause shared by query and scan. */
export function whereClause(filter: AuditFilter, param: (v: unknown) => string): string[] {
  const where: string[] = [];
  if (filter.subject) where.push(`seq IN (SELECT seq FROM audit_subjects WHERE subject = ${param(filter.subject)})`);
  if (filter.client) where.push(`client = ${param(filter.client)}`);
  if (filter.service) where.push(`service = ${param(filter.service)}`);
  if (filter.purpose) where.push(`purpose = ${param(filter.purpose)}`);
  if (filter.caseId) where.push(`case_id = ${param(filter.caseId)}`);
  if (filter.outcome) where.push(`outcome = ${param(filter.outcome)}`);
  if (filter.from) where.push(`time >= ${param(filter.from)}`);
  if (filter.to) where.push(`time < ${param(filter.to)}`);
  return where;
}

/**
 * The embedded audit store: one SQLite file in WAL mode with synchronous=FULL, so a commit is on
 * disk before the writer resolves. The head is read inside each write transaction (BEGIN IMMEDIATE), so
 * two processes on one file serialise on SQLite's lock and never fork the chain.
 */
export function createSqliteStore(file: string): AuditStore {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.exec(SCHEMA);

  const insertEntry = db.prepare(`INSERT INTO audit_entries (${ENTRY_COLUMNS.join(',')}) VALUES (${ENTRY_COLUMNS.map((c) => '@' + c).join(',')})`);
  const insertSubject = db.prepare('INSERT OR IGNORE INTO audit_subjects (subject, seq) VALUES (?, ?)');
  const readHead = db.prepare('SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1');
  const currentHead = () => (readHead.get() as ChainHead | undefined) ?? GENESIS;

  const append = db.transaction((pending: readonly PendingEntry[]) => {
    const entries = chainEntries(currentHead(), pending);
    for (const e of entries) {
      insertEntry.run(toRow(e));
      for (const s of e.subjects) insertSubject.run(s, e.seq);
    }
    return entries;
  });

  const select = (filter: AuditFilter, extra: string[], order: string, limit: number) => {
    const params: unknown[] = [];
    const where = [...whereClause(filter, (v) => (params.push(v), '?')), ...extra];
    const sql = `SELECT * FROM audit_entries ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY seq ${order} LIMIT ${limit}`;
    return (db.prepare(sql).all(...params) as Record<string, unknown>[]).map(fromRow);
  };

  return {
    kind: 'sqlite',
    async appendBatch(pending) {
      return append.immediate(pending);
    },
    async head() {
      return currentHead();
    },
    async *scan(fromSeq = 1, filter = {}) {
      const page = 5000;
      let next = fromSeq;
      for (;;) {
        const rows = select(filter, [`seq >= ${Number(next)}`], 'ASC', page);
        yield* rows;
        if (rows.length < page) return;
        next = rows[rows.length - 1]!.seq + 1;
      }
    },
    async query(filter, limit, cursor) {
      const before = decodeCursor(cursor);
      const rows = select(filter, before === null ? [] : [`seq < ${before}`], 'DESC', limit + 1);
      const more = rows.length > limit;
      const entries = rows.slice(0, limit);
      return { entries, nextCursor: more ? encodeCursor(entries[entries.length - 1]!.seq) : null } satisfies AuditPage;
    },
    async get(id) {
      const row = db.prepare('SELECT * FROM audit_entries WHERE id = ?').get(id) as Record<string, unknown> | undefined;
      return row ? fromRow(row) : null;
    },
    async saveCheckpoint(cp: Checkpoint) {
      db.prepare('INSERT OR IGNORE INTO audit_checkpoints (seq, hash, time, jws) VALUES (@seq, @hash, @time, @jws)').run(cp);
    },
    async checkpoints() {
      return db.prepare('SELECT seq, hash, time, jws FROM audit_checkpoints ORDER BY seq').all() as Checkpoint[];
    },
    async probe() {
      db.prepare('SELECT 1').get();
      if (!db.open) throw new Error('audit store closed');
    },
    async close() {
      if (db.open) db.close();
    },
  };
}

/** Opens an existing store read-write for offline tools (the verifier, tests that tamper with a copy). */
export const openSqlite = (file: string) => new Database(file, { fileMustExist: true });
export type { AuditEntry };
