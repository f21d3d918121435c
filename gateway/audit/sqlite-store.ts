import { mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { chainEntries, GENESIS, sha256Hex, type AuditEntry, type ChainHead } from './entry.ts';
import { decodeCursor, encodeCursor, ENTRY_COLUMNS, fromRow, toRow, type AuditFilter, type AuditPage, type AuditStore, type Checkpoint, type EntryRow } from './store.ts';
import { ChainWalker, rehash, type SegmentWalk } from './verify.ts';
import { prepareWrites } from './sqlite-writes.mjs';
import { RECORD_MEMBERS, SQLITE_ENTRIES_TABLE } from './record.ts';
import { sqliteTimestamps } from './timestamps.ts';
import { SQLITE_ARCHIVE_TABLE, sqliteArchiveIndex } from './archive-index.ts';
import { prepareArchiveWrites } from './sqlite-archive-writes.mjs';
import type { SealedSegment } from './store.ts';

const SCHEMA = `
${SQLITE_ENTRIES_TABLE}
CREATE TABLE IF NOT EXISTS audit_subjects (subject TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (subject, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS audit_by_client ON audit_entries (client, seq);
CREATE INDEX IF NOT EXISTS audit_by_service ON audit_entries (service, seq);
CREATE INDEX IF NOT EXISTS audit_by_case ON audit_entries (case_id, seq);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit_entries (time);
CREATE TABLE IF NOT EXISTS audit_checkpoints (seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, time TEXT NOT NULL, jws TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_write_probe (id INTEGER PRIMARY KEY CHECK (id = 1), written_at TEXT NOT NULL, pad BLOB NOT NULL);
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

/*
 * The chain check's shortcut: SQLite assembles each row's canonical JSON itself, so no entry
 * object is built. Strings are quoted without escaping, arrays spliced as stored (they are stored
 * in RFC 8785 form), and a value of an unexpected type becomes a backslash. A row is taken as
 * intact only when this text hashes to the stored hash and holds no backslash. That text is then
 * the very JSON that was hashed when the entry was written. Its top-level member names fix where
 * each column's text starts and ends (the names that recur inside upstreams all come after the
 * columns they could be mistaken for), so each column holds the text that was hashed and, as it
 * holds nothing JSON escapes, the very value. Any other row goes through fromRow and entryHash,
 * so the verdict never depends on the shortcut.
 */
const BAD = `'\\'`;
const text = (c: string) => `iif(typeof(${c}) = 'text', '"' || ${c} || '"', iif(${c} IS NULL, 'null', ${BAD}))`;
const integer = (c: string) => `iif(typeof(${c}) = 'integer', ${c}, iif(${c} IS NULL, 'null', ${BAD}))`;
const json = (c: string) => `iif(typeof(${c}) = 'text', ${c}, ${BAD})`;
// Every member but `hash`, in RFC 8785 member order (names sorted), each as the text its kind takes;
// an optional member (record.ts) with its name and comma, or nothing at all when the column is NULL.
const CANONICAL: [string, string][] = RECORD_MEMBERS.filter((m) => m.name !== 'hash')
  .map((m): [string, string] => {
    const value = m.name === 'seq' ? 'seq' : { text, integer, json }[m.kind](m.column);
    return [m.name, m.optional ? `iif(${m.column} IS NULL, '', '"${m.name}":' || ${value} || ',')` : value];
  })
  .sort(([a], [b]) => (a < b ? -1 : 1));
const OPTIONAL = new Set(RECORD_MEMBERS.filter((m) => m.optional).map((m) => m.name as string));
// An optional member carries its own comma, so it may not be the last; none is (`seq` sorts after `actingFor`).
const FORMAT = CANONICAL.map(([k], i) => (OPTIONAL.has(k) ? '%s' : `"${k}":%s${i < CANONICAL.length - 1 ? ',' : ''}`)).join('');
const CHAIN_SQL = `SELECT seq, prev_hash, hash, printf('{${FORMAT}}', ${CANONICAL.map(([, e]) => e).join(', ')})
  FROM audit_entries WHERE seq BETWEEN ? AND ? ORDER BY seq`;

/** Below this many entries a verification runs on the calling thread: starting workers would cost more. */
const PARALLEL_FROM = 50_000;
const WALK_PAGE = 10_000;
/** How often a batch is chained again after another process moved the head. */
const MAX_RECHAIN = 20;

/** The worker scripts are plain JavaScript: they start without the parent's TypeScript loader (faster, smaller). */
const PLAIN_NODE: string[] = [];

/**
 * A row as the writer takes it: the column values in ENTRY_COLUMNS order, and the subjects to
 * index. Positional arrays cost less to pass between threads and to bind than named objects.
 */
type WriterRow = [values: EntryRow[keyof EntryRow][], subjects: string[]];
const writerRow = (e: AuditEntry): WriterRow => {
  const row = toRow(e);
  return [ENTRY_COLUMNS.map((c) => row[c]), e.subjects];
};

/** Where committed rows go: the writer thread, or this thread's connection for an in-memory database. */
interface RowSink {
  /** Commits the rows if the head is still `expected`; else commits nothing and returns the head found. */
  append(expected: ChainHead, rows: WriterRow[]): Promise<ChainHead | null>;
  checkpoint(cp: Checkpoint): Promise<void>;
  /** Commits a write of about a batch's size outside the chain: fails when a batch would. */
  probe(): Promise<void>;
  /** Records a sealed segment and deletes its entries, in one transaction (sqlite-archive-writes.mjs). */
  dropThrough(segment: SealedSegment): Promise<'dropped' | 'already'>;
  close(): Promise<void>;
}

function inlineSink(db: Database.Database): RowSink {
  const writes = prepareWrites(db, ENTRY_COLUMNS);
  const archive = prepareArchiveWrites(db);
  return {
    async append(expected, rows) { return writes.append(expected, rows); },
    async checkpoint(cp) { writes.saveCheckpoint(cp); },
    async probe() { writes.probe(); },
    async dropThrough(segment) { return archive.dropThrough(segment); },
    async close() {},
  };
}

/**
 * The writer thread (sqlite-writer.mjs): it owns the write connection, so the fsync of a durable
 * commit never stalls the event loop. It is referenced only while a write is outstanding, and
 * restarted if it ever dies.
 */
function threadSink(file: string): RowSink {
  let worker: Worker | null = null;
  let nextId = 0;
  const waiting = new Map<number, { resolve: (stale: ChainHead | null) => void; reject: (e: Error) => void }>();
  const start = () => {
    const w = new Worker(new URL('./sqlite-writer.mjs', import.meta.url), { workerData: { file, columns: ENTRY_COLUMNS }, execArgv: PLAIN_NODE });
    w.unref();
    w.on('message', (m: { id: number; stale: ChainHead | null; error?: { name?: string; code?: string; message: string } }) => {
      const p = waiting.get(m.id);
      waiting.delete(m.id);
      if (!waiting.size) w.unref();
      if (!p) return;
      if (!m.error) return p.resolve(m.stale);
      p.reject(Object.assign(new Error(m.error.message), { name: m.error.name ?? 'Error', code: m.error.code }));
    });
    const fail = (e: Error) => {
      if (worker === w) worker = null;
      for (const p of waiting.values()) p.reject(e);
      waiting.clear();
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`audit writer thread exited (${code})`)));
    return w;
  };
  const send = (message: Record<string, unknown>) => new Promise<ChainHead | null>((resolve, reject) => {
    worker ??= start();
    const id = nextId++;
    waiting.set(id, { resolve, reject });
    worker.ref();
    worker.postMessage({ ...message, id });
  });
  return {
    // One string per batch: V8 serialises it to JSON faster than it structured-clones the rows.
    append: (expected, rows) => send({ op: 'append', expected, rows: JSON.stringify(rows) }),
    checkpoint: async (checkpoint) => { await send({ op: 'checkpoint', checkpoint }); },
    probe: async () => { await send({ op: 'probe' }); },
    dropThrough: async (segment) => (await send({ op: 'dropThrough', segment })) as unknown as 'dropped' | 'already',
    async close() {
      if (!worker) return;
      const w = worker;
      await send({ op: 'close' }).catch(() => {});
      worker = null;
      await w.terminate();
    },
  };
}

/**
 * The embedded audit store: one SQLite file in WAL mode with synchronous=FULL, so a commit is on
 * disk before the writer resolves. Writes go through a writer thread (except for `:memory:`);
 * reads use this thread's connection. A batch is chained after the head read here and committed
 * only if that is still the head inside the write transaction (BEGIN IMMEDIATE), so two
 * processes on one file serialise on SQLite's lock and never fork the chain.
 */
export function createSqliteStore(file: string, options: { writerThread?: boolean } = {}): AuditStore {
  const inMemory = file === ':memory:';
  if (!inMemory) mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.exec(SCHEMA);
  db.exec(SQLITE_ARCHIVE_TABLE);
  addMissingColumns(db);
  const sink = (options.writerThread ?? !inMemory) ? threadSink(file) : inlineSink(db);

  const readHead = db.prepare('SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1');
  const currentHead = () => (readHead.get() as ChainHead | undefined) ?? GENESIS;
  // This process's batches go one at a time; another process's are caught by the head check.
  let tail: Promise<unknown> = Promise.resolve();
  let lastCommitted: ChainHead | null = null;

  const select = (filter: AuditFilter, extra: string[], order: string, limit: number) => {
    const params: unknown[] = [];
    const where = [...whereClause(filter, (v) => (params.push(v), '?')), ...extra];
    const sql = `SELECT * FROM audit_entries ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY seq ${order} LIMIT ${limit}`;
    return (db.prepare(sql).all(...params) as Record<string, unknown>[]).map(fromRow);
  };

  const chainRows = db.prepare(CHAIN_SQL).raw();
  const rowBySeq = db.prepare('SELECT * FROM audit_entries WHERE seq = ?');
  /** One stored row as a link: the shortcut when it holds, else the full recomputation. */
  const link = ([seq, prevHash, hash, canonical]: [number, string, string, string]) => ({
    seq, prevHash, hash,
    recomputed: sha256Hex(canonical) === hash && !canonical.includes('\\') ? hash : rehash(fromRow(rowBySeq.get(seq) as Record<string, unknown>)),
  });
  const walkRange = (from: number, to: number, start: { seq: number; hash: string | null }, checkpoints: ReadonlyMap<number, string>): SegmentWalk => {
    const walker = new ChainWalker(start, checkpoints);
    for (let next = from; next <= to; next += WALK_PAGE) {
      for (const row of chainRows.all(next, Math.min(to, next + WALK_PAGE - 1)) as [number, string, string, string][]) {
        if (!walker.step(link(row))) return walker.walk;
      }
    }
    return walker.walk;
  };

  return {
    kind: 'sqlite',
    appendBatch(pending) {
      const run = tail.then(async () => {
        // The head this process last committed is the head unless another process wrote since;
        // the writer's check inside the transaction catches that, so no read is needed here.
        let head = lastCommitted ?? currentHead();
        for (let attempt = 1; ; attempt++) {
          const entries = chainEntries(head, pending);
          const stale = await sink.append(head, entries.map(writerRow));
          if (!stale) {
            lastCommitted = entries.length ? { seq: entries.at(-1)!.seq, hash: entries.at(-1)!.hash } : head;
            return entries;
          }
          if (attempt === MAX_RECHAIN) throw new Error('audit chain head kept moving under this batch');
          head = stale;
        }
      });
      tail = run.catch(() => { lastCommitted = null; });
      return run;
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
    async walkChain(checkpoints) {
      const bounds = db.prepare('SELECT min(seq) AS first, max(seq) AS last FROM audit_entries').get() as { first: number | null; last: number | null };
      // After archiving, the hot chain starts past the last segment: its first link is the caller's to check.
      const first = bounds.first ?? 1;
      const last = bounds.last ?? 0;
      const start = (from: number) => ({ seq: from - 1, hash: from === 1 ? GENESIS.hash : null });
      const threads = Math.min(availableParallelism(), 4);
      if (inMemory || last - first + 1 < PARALLEL_FROM || threads < 2) return [walkRange(first, last, start(first), checkpoints)];
      const size = Math.ceil((last - first + 1) / threads);
      const ranges = Array.from({ length: threads }, (_, i) => [first + i * size, Math.min(last, first + (i + 1) * size - 1)] as const).filter(([a, b]) => a <= b);
      const cps = [...checkpoints];
      return Promise.all(ranges.map(async ([from, to], i) => {
        const walk = await walkInWorker(file, from, to, cps);
        // A range the shortcut could not clear is walked again here, row by row, in full.
        return walk ?? walkRange(from, to, i === 0 ? start(from) : { seq: from - 1, hash: null }, checkpoints);
      }));
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
      await sink.checkpoint(cp);
    },
    async checkpoints() {
      return db.prepare('SELECT seq, hash, time, jws FROM audit_checkpoints ORDER BY seq').all() as Checkpoint[];
    },
    timestamps: sqliteTimestamps(db),
    archive: sqliteArchiveIndex(db, file, (segment) => sink.dropThrough(segment)),
    async probe() {
      if (!db.open) throw new Error('audit store closed');
      await sink.probe();
    },
    async close() {
      await tail;
      await sink.close();
      if (db.open) db.close();
    },
  };
}

/** Walks seqs `from`..`to` on a worker thread; null when a row there needs the full check. */
function walkInWorker(file: string, from: number, to: number, checkpoints: [number, string][]): Promise<SegmentWalk | null> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./sqlite-chain-worker.mjs', import.meta.url), { workerData: { file, sql: CHAIN_SQL, from, to, checkpoints }, execArgv: PLAIN_NODE });
    worker.once('message', (m: SegmentWalk | { anomaly: number }) => resolve('anomaly' in m ? null : { ...m, problem: null, firstBadSeq: null }));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`chain walker exited (${code})`)));
  });
}

/**
 * A store written before a record member existed gets its column (NULL in every old row, which
 * an optional member reads as absent), before the writer thread prepares its inserts.
 */
function addMissingColumns(db: Database.Database): void {
  const have = new Set((db.prepare('PRAGMA table_info(audit_entries)').all() as { name: string }[]).map((c) => c.name));
  for (const m of RECORD_MEMBERS) if (!have.has(m.column)) db.exec(`ALTER TABLE audit_entries ADD COLUMN ${m.column} ${m.kind === 'integer' ? 'INTEGER' : 'TEXT'}`);
}

/** Opens an existing store read-write for offline tools (the verifier, tests that tamper with a copy). */
export const openSqlite = (file: string) => new Database(file, { fileMustExist: true });
export type { AuditEntry };
