import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { GatewayError } from './errors.ts';
import type { GatewayConfig } from './config/types.ts';

/**
 * What `begin` found for a client's Idempotency-Key:
 * - `'new'`: first use; the caller now holds the key and must `complete`, `markUncertain` or `release` it;
 * - `'uncertain'`: an earlier attempt may or may not have reached the upstream (it timed out, or
 *   its holder vanished); the caller holds the key and must look the write up before doing it again;
 * - `{ replay }`: done before; answer with the stored response.
 */
export type BeginOutcome = 'new' | 'uncertain' | { replay: Record<string, unknown> };

/**
 * Idempotency keys of write services, per client (the IETF httpapi Idempotency-Key draft, as
 * Stripe does it). A key with another request's hash is IDEMPOTENCY_KEY_REUSED; a key whose first
 * request is still running is IDEMPOTENCY_IN_PROGRESS.
 */
export interface IdempotencyStore {
  begin(clientId: string, key: string, requestHash: string): Promise<BeginOutcome>;
  /** Stores the answer that every repeat of the key gets. */
  complete(clientId: string, key: string, response: Record<string, unknown>): Promise<void>;
  /** The write failed in a way that leaves its effect unknown (a timeout): the next attempt looks it up first. */
  markUncertain(clientId: string, key: string): Promise<void>;
  /** The write certainly did not happen (refused before or by the upstream): the key is free again. */
  release(clientId: string, key: string): Promise<void>;
  close(): Promise<void>;
}

export interface IdempotencyOptions {
  /** How long a key is remembered (default 24 h). */
  ttlSeconds?: number;
  /** A key held longer than this without an outcome is taken to be abandoned (its holder crashed) and becomes uncertain. */
  leaseMs?: number;
  now?: () => number;
}

type State = 'in_progress' | 'uncertain' | 'completed';
interface KeyRow { requestHash: string; state: State; response: string | null; createdAt: number; updatedAt: number }

const DEFAULT_TTL_SECONDS = 24 * 3600;
const DEFAULT_LEASE_MS = 120_000;

/** The one decision both stores make about an existing row; throws the catalogue's conflicts. */
function decide(row: KeyRow | undefined, requestHash: string, now: number, leaseMs: number): BeginOutcome {
  if (!row) return 'new';
  if (row.requestHash !== requestHash) throw new GatewayError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used with a different request');
  if (row.state === 'completed') return { replay: JSON.parse(row.response!) as Record<string, unknown> };
  if (row.state === 'in_progress' && now - row.updatedAt < leaseMs) {
    throw new GatewayError('IDEMPOTENCY_IN_PROGRESS', 'a request with this Idempotency-Key is still running; retry later', { headers: { 'Retry-After': '1' } });
  }
  return 'uncertain';
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS idempotency_keys (
  client_id TEXT NOT NULL, idem_key TEXT NOT NULL, request_hash TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('in_progress', 'uncertain', 'completed')),
  response TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  PRIMARY KEY (client_id, idem_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_by_age ON idempotency_keys (created_at);
`;

/** Keys in one SQLite file (WAL, synchronous=FULL), so a replay still works after a restart. */
export function createSqliteIdempotencyStore(file: string, options: IdempotencyOptions = {}): IdempotencyStore {
  const { ttlSeconds = DEFAULT_TTL_SECONDS, leaseMs = DEFAULT_LEASE_MS, now = Date.now } = options;
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.exec(SCHEMA);
  const purge = db.prepare('DELETE FROM idempotency_keys WHERE created_at < ?');
  const read = db.prepare(`SELECT request_hash AS requestHash, state, response, created_at AS createdAt, updated_at AS updatedAt
    FROM idempotency_keys WHERE client_id = ? AND idem_key = ?`);
  const insert = db.prepare(`INSERT INTO idempotency_keys (client_id, idem_key, request_hash, state, response, created_at, updated_at)
    VALUES (?, ?, ?, 'in_progress', NULL, ?, ?)`);
  const setState = db.prepare('UPDATE idempotency_keys SET state = ?, response = ?, updated_at = ? WHERE client_id = ? AND idem_key = ?');
  const remove = db.prepare('DELETE FROM idempotency_keys WHERE client_id = ? AND idem_key = ?');

  const begin = db.transaction((clientId: string, key: string, requestHash: string): BeginOutcome => {
    const t = now();
    purge.run(t - ttlSeconds * 1000);
    const outcome = decide(read.get(clientId, key) as KeyRow | undefined, requestHash, t, leaseMs);
    if (outcome === 'new') insert.run(clientId, key, requestHash, t, t);
    else if (outcome === 'uncertain') setState.run('in_progress', null, t, clientId, key);
    return outcome;
  });

  return {
    // IMMEDIATE takes the write lock before reading, so two instances sharing the file cannot both get 'new'.
    begin: async (clientId, key, requestHash) => begin.immediate(clientId, key, requestHash),
    async complete(clientId, key, response) {
      setState.run('completed', JSON.stringify(response), now(), clientId, key);
    },
    async markUncertain(clientId, key) {
      setState.run('uncertain', null, now(), clientId, key);
    },
    async release(clientId, key) {
      remove.run(clientId, key);
    },
    async close() {
      if (db.open) db.close();
    },
  };
}

/** Keys in process memory (tests, and a gateway whose audit store is memory too). */
export function createMemoryIdempotencyStore(options: IdempotencyOptions = {}): IdempotencyStore {
  const { ttlSeconds = DEFAULT_TTL_SECONDS, leaseMs = DEFAULT_LEASE_MS, now = Date.now } = options;
  const rows = new Map<string, KeyRow>();
  const id = (clientId: string, key: string) => `${clientId}\u0000${key}`;
  const update = (clientId: string, key: string, state: State, response: string | null) => {
    const row = rows.get(id(clientId, key));
    if (row) Object.assign(row, { state, response, updatedAt: now() });
  };
  return {
    async begin(clientId, key, requestHash) {
      const t = now();
      for (const [k, row] of rows) if (row.createdAt < t - ttlSeconds * 1000) rows.delete(k);
      const outcome = decide(rows.get(id(clientId, key)), requestHash, t, leaseMs);
      if (outcome === 'new') rows.set(id(clientId, key), { requestHash, state: 'in_progress', response: null, createdAt: t, updatedAt: t });
      else if (outcome === 'uncertain') update(clientId, key, 'in_progress', null);
      return outcome;
    },
    async complete(clientId, key, response) {
      update(clientId, key, 'completed', JSON.stringify(response));
    },
    async markUncertain(clientId, key) {
      update(clientId, key, 'uncertain', null);
    },
    async release(clientId, key) {
      rows.delete(id(clientId, key));
    },
    async close() {},
  };
}

/** The store a gateway uses: `<dataDir>/idempotency.sqlite`, or memory when the audit log is memory too. */
export function openIdempotencyStore(cfg: GatewayConfig, options: IdempotencyOptions = {}): IdempotencyStore {
  if (cfg.audit.store === 'memory') return createMemoryIdempotencyStore(options);
  mkdirSync(cfg.dataDir, { recursive: true });
  return createSqliteIdempotencyStore(join(cfg.dataDir, 'idempotency.sqlite'), options);
}
