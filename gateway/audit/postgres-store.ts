import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { PoolClient } from 'pg';
import { chainEntries, type AuditEntry, type ChainHead, type PendingEntry } from './entry.ts';
import { whereClause } from './sqlite-store.ts';
import { postgresType, RECORD_MEMBERS } from './record.ts';
import { decodeCursor, encodeCursor, ENTRY_COLUMNS, fromRow, toRow, type AuditFilter, type AuditPage, type AuditStore, type Checkpoint } from './store.ts';
import { POSTGRES_TIMESTAMPS_MIGRATION, postgresTimestamps } from './timestamps.ts';
import { POSTGRES_ARCHIVE_MIGRATION, postgresArchiveIndex } from './archive-index.ts';

export interface PostgresStoreOptions {
  /** A libpq connection URL, e.g. postgres://gateway@db:5432/gateway. */
  url: string;
  /** The schema that holds the audit tables (created when missing). */
  schema: string;
  /** How long to wait for a connection, new or from the pool (default 3000). */
  connectTimeoutMs?: number;
  /**
   * How long one statement may run (default 5000): the server cancels it after this, and the
   * client gives up 1 s later, so a server that accepts connections but never answers (a stalled
   * primary, a black-holed proxy) still fails the batch in bounded time.
   */
  queryTimeoutMs?: number;
}

/** The same pattern the config schema enforces, so the name can be quoted into SQL safely. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Numbered migrations, applied in order and recorded in `schema_migrations`; never edit one that
 * has shipped, append a new one. `time` is text (the exact ISO string) and the JSON columns are
 * text (the exact JSON), so what the verifier reads back hashes to what was chained. Collation "C"
 * makes time ranges compare bytewise, as SQLite does.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE audit_entries (
     seq bigint PRIMARY KEY, id text NOT NULL UNIQUE, time text COLLATE "C" NOT NULL, client text NOT NULL, user_id text,
     purpose text, case_id text, service text NOT NULL, version integer, subjects text NOT NULL, fields text NOT NULL,
     outcome text NOT NULL, status integer NOT NULL, error_code text, upstreams text NOT NULL, latency_ms integer NOT NULL,
     request_sha256 text NOT NULL, response_sha256 text, prev_hash text NOT NULL, hash text NOT NULL
   );
   CREATE TABLE audit_subjects (subject text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (subject, seq));
   CREATE INDEX audit_by_client ON audit_entries (client, seq);
   CREATE INDEX audit_by_service ON audit_entries (service, seq);
   CREATE INDEX audit_by_purpose ON audit_entries (purpose, seq);
   CREATE INDEX audit_by_case ON audit_entries (case_id, seq);
   CREATE INDEX audit_by_time ON audit_entries (time);
   CREATE TABLE audit_checkpoints (seq bigint PRIMARY KEY, hash text NOT NULL, time text NOT NULL, jws text NOT NULL);
   -- The one chain head every instance locks to append: one global chain, no fork.
   CREATE TABLE audit_chain_head (one boolean PRIMARY KEY DEFAULT true CHECK (one), seq bigint NOT NULL, hash text NOT NULL);
   INSERT INTO audit_chain_head (seq, hash) VALUES (0, '${'0'.repeat(64)}');`,
  // Readiness writes here: a commit that needs WAL space like a batch does, outside the chain.
  `CREATE TABLE audit_write_probe (id integer PRIMARY KEY CHECK (id = 1), written_at text NOT NULL, pad text NOT NULL);`,
  // The checkpoints' RFC 3161 time-stamps, beside them (timestamps.ts).
  POSTGRES_TIMESTAMPS_MIGRATION,
  // Sealed archive segments (archive-index.ts).
  POSTGRES_ARCHIVE_MIGRATION,
  // The agency a federated gateway called for (record.ts, `actingFor`; NULL in older rows, read as absent).
  'ALTER TABLE audit_entries ADD COLUMN IF NOT EXISTS acting_for text;',
];


/** What a readiness probe writes: about the size of a batch of entries, and not compressible. */
const PROBE_PAD = randomBytes(48 * 1024).toString('base64');

/**
 * Runs `fn` in one transaction on a client of its own. While a client is checked out the pool
 * does not listen for its errors, and a connection that drops then (a failover, a proxy restart)
 * emits 'error' on the client: unheard, that ends the process. Here it is heard, and it fails the
 * transaction. A failed transaction's connection is destroyed, not rolled back: the server aborts
 * the transaction when the connection closes, and a ROLLBACK sent to a stalled server would wait
 * out a second timeout.
 */
async function inTransaction<T>(pool: pg.Pool, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let dropped: Error | undefined;
  const onError = (e: Error) => { dropped ??= e; };
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    client.off('error', onError);
    client.release(dropped);
    return result;
  } catch (e) {
    client.off('error', onError);
    client.release(dropped ?? (e instanceof Error ? e : new Error(String(e))));
    throw dropped ?? e;
  }
}

/**
 * Applies missing migrations in one transaction under a transaction-scoped advisory lock keyed by
 * the schema, so instances starting together apply each migration once and the others wait.
 */
export async function migrate(pool: pg.Pool, schema: string): Promise<number[]> {
  return inTransaction(pool, async (c) => {
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`gateway-audit-migrations:${schema}`]);
    await c.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await c.query(`SET LOCAL search_path TO "${schema}"`);
    await c.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    const { rows } = await c.query<{ version: number }>('SELECT version FROM schema_migrations');
    const done = new Set(rows.map((r) => r.version));
    const applied: number[] = [];
    for (const [version, sql] of MIGRATIONS.map((m, i): [number, string] => [i + 1, m])) {
      if (done.has(version)) continue;
      await c.query(sql);
      await c.query('INSERT INTO schema_migrations (version) VALUES ($1)', [version]);
      applied.push(version);
    }
    return applied;
  });
}

/**
 * The shared audit store for several gateway instances: one global hash chain in PostgreSQL.
 * Each batch locks the single chain-head row, chains after it, inserts every row with UNNEST and
 * moves the head, in one transaction; concurrent instances therefore append in turn, never fork.
 */
export async function createPostgresStore({ url, schema, connectTimeoutMs = 3000, queryTimeoutMs = 5000 }: PostgresStoreOptions): Promise<AuditStore> {
  if (!url) throw new Error('audit.postgresUrl is required when audit.store is "postgres"');
  if (!SCHEMA_NAME.test(schema)) throw new Error(`audit.postgresSchema "${schema}" must match ${SCHEMA_NAME}`);
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    // A stalled database must fail the batch (AUDIT_UNAVAILABLE), not hold requests forever.
    connectionTimeoutMillis: connectTimeoutMs,
    statement_timeout: queryTimeoutMs,
    query_timeout: queryTimeoutMs + 1000,
    idle_in_transaction_session_timeout: Math.max(30_000, 2 * queryTimeoutMs),
    // Dead peers are found by TCP keep-alive while idle, not only by the next query.
    keepAlive: true,
    application_name: 'interagency-gateway',
  });
  // An idle client losing its connection emits here; without a listener that would crash the
  // process. The pool drops the client and the next query reports the outage to its caller.
  pool.on('error', () => {});
  try {
    await migrate(pool, schema);
  } catch (e) {
    await pool.end();
    throw e;
  }

  const t = (table: string) => `"${schema}".${table}`;
  const insertEntries = `INSERT INTO ${t('audit_entries')} (${ENTRY_COLUMNS.join(', ')})
    SELECT * FROM unnest(${RECORD_MEMBERS.map((m, i) => `$${i + 1}::${postgresType(m)}[]`).join(', ')})`;
  const insertSubjects = `INSERT INTO ${t('audit_subjects')} (subject, seq) SELECT * FROM unnest($1::text[], $2::bigint[]) ON CONFLICT DO NOTHING`;

  const appendChained = async (c: PoolClient, pending: readonly PendingEntry[]) => {
    const { rows: [locked] } = await c.query<{ seq: string; hash: string }>(`SELECT seq, hash FROM ${t('audit_chain_head')} FOR UPDATE`);
    if (!locked) throw new Error('audit chain head row missing');
    const head: ChainHead = { seq: Number(locked.seq), hash: locked.hash };
    // chainEntries makes every text storable (no NUL, no lone surrogate) before hashing it.
    const entries = chainEntries(head, pending);
    const rows = entries.map(toRow);
    await c.query(insertEntries, ENTRY_COLUMNS.map((col) => rows.map((r) => r[col])));
    const subjectSeqs = entries.flatMap((e) => e.subjects.map((s) => [s, e.seq] as const));
    if (subjectSeqs.length) await c.query(insertSubjects, [subjectSeqs.map(([s]) => s), subjectSeqs.map(([, seq]) => seq)]);
    const last = entries[entries.length - 1]!;
    await c.query(`UPDATE ${t('audit_chain_head')} SET seq = $1, hash = $2 WHERE seq = $3`, [last.seq, last.hash, head.seq]);
    return entries;
  };

  const select = async (filter: AuditFilter, extra: string[], order: 'ASC' | 'DESC', limit: number): Promise<AuditEntry[]> => {
    const params: unknown[] = [];
    // The shared clause names tables unqualified; here they live in the configured schema.
    const where = [...whereClause(filter, (v) => `$${params.push(v)}`), ...extra]
      .map((w) => w.replace('FROM audit_subjects', `FROM ${t('audit_subjects')}`));
    const sql = `SELECT * FROM ${t('audit_entries')} ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY seq ${order} LIMIT ${Number(limit)}`;
    const { rows } = await pool.query(sql, params);
    return rows.map(fromRow);
  };

  return {
    kind: 'postgres',
    async appendBatch(pending) {
      if (!pending.length) return [];
      return inTransaction(pool, (c) => appendChained(c, pending));
    },
    async head() {
      const { rows: [row] } = await pool.query<{ seq: string; hash: string }>(`SELECT seq, hash FROM ${t('audit_chain_head')}`);
      return { seq: Number(row!.seq), hash: row!.hash };
    },
    async *scan(fromSeq = 1, filter = {}) {
      const page = 5000;
      let next = fromSeq;
      for (;;) {
        const rows = await select(filter, [`seq >= ${Number(next)}`], 'ASC', page);
        yield* rows;
        if (rows.length < page) return;
        next = rows[rows.length - 1]!.seq + 1;
      }
    },
    async query(filter, limit, cursor) {
      const before = decodeCursor(cursor);
      const rows = await select(filter, before === null ? [] : [`seq < ${before}`], 'DESC', limit + 1);
      const more = rows.length > limit;
      const entries = rows.slice(0, limit);
      return { entries, nextCursor: more ? encodeCursor(entries[entries.length - 1]!.seq) : null } satisfies AuditPage;
    },
    async get(id) {
      const { rows: [row] } = await pool.query(`SELECT * FROM ${t('audit_entries')} WHERE id = $1`, [id]);
      return row ? fromRow(row) : null;
    },
    async saveCheckpoint(cp: Checkpoint) {
      await pool.query(`INSERT INTO ${t('audit_checkpoints')} (seq, hash, time, jws) VALUES ($1, $2, $3, $4) ON CONFLICT (seq) DO NOTHING`, [cp.seq, cp.hash, cp.time, cp.jws]);
    },
    async checkpoints() {
      const { rows } = await pool.query<{ seq: string; hash: string; time: string; jws: string }>(`SELECT seq, hash, time, jws FROM ${t('audit_checkpoints')} ORDER BY seq`);
      return rows.map((r) => ({ ...r, seq: Number(r.seq) }));
    },
    timestamps: postgresTimestamps(pool, t),
    archive: postgresArchiveIndex(pool, schema, t, inTransaction),
    async probe() {
      // A real commit of about a batch's size, outside the chain: refused on a read-only primary or
      // a standby, failing when the server cannot write, and it never waits for the head lock.
      await pool.query(
        `INSERT INTO ${t('audit_write_probe')} (id, written_at, pad) VALUES (1, $1, $2)
         ON CONFLICT (id) DO UPDATE SET written_at = EXCLUDED.written_at, pad = EXCLUDED.pad`,
        [new Date().toISOString(), PROBE_PAD],
      );
    },
    async close() {
      if (!pool.ended) await pool.end();
    },
  };
}
