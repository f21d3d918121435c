import type { SegmentWalk } from './verify.ts';
import { upstreamsJson, type AuditEntry, type ChainHead, type Outcome, type PendingEntry } from './entry.ts';

/** A signed statement of the chain's head: `{seq, hash, time}` as a compact JWS. */
export interface Checkpoint { seq: number; hash: string; time: string; jws: string }

export interface AuditFilter {
  /** Pseudonym of a subject (the caller hashes personal ids before searching). */
  subject?: string;
  client?: string;
  service?: string;
  purpose?: string;
  caseId?: string;
  outcome?: Outcome;
  /** ISO times, inclusive from, exclusive to. */
  from?: string;
  to?: string;
}

export interface AuditPage { entries: AuditEntry[]; nextCursor: string | null }

/** What every audit store does; SQLite, PostgreSQL and memory implement it alike. */
export interface AuditStore {
  readonly kind: string;
  /** Appends pending entries in one transaction, chained after the current head; resolves once committed. */
  appendBatch(pending: readonly PendingEntry[]): Promise<AuditEntry[]>;
  head(): Promise<ChainHead>;
  /** Entries in ascending seq order from `fromSeq`, read in pages. */
  scan(fromSeq?: number, filter?: AuditFilter): AsyncIterable<AuditEntry>;
  /** Newest first, `limit` at most, continuing after `cursor`. */
  query(filter: AuditFilter, limit: number, cursor?: string | null): Promise<AuditPage>;
  get(id: string): Promise<AuditEntry | null>;
  saveCheckpoint(cp: Checkpoint): Promise<void>;
  checkpoints(): Promise<Checkpoint[]>;
  /**
   * Optional: walks the whole chain itself, hashes recomputed from what is stored, as seq-ordered
   * segments (each started without its first link) for verifyStore to join.
   */
  walkChain?(checkpoints: ReadonlyMap<number, string>): Promise<SegmentWalk[]>;
  /** Throws when the store cannot take a write. */
  probe(): Promise<void>;
  close(): Promise<void>;
}

export const ENTRY_COLUMNS = [
  'seq', 'id', 'time', 'client', 'user_id', 'purpose', 'case_id', 'service', 'version', 'subjects', 'fields',
  'outcome', 'status', 'error_code', 'upstreams', 'latency_ms', 'request_sha256', 'response_sha256', 'prev_hash', 'hash',
] as const;

export type EntryRow = Record<(typeof ENTRY_COLUMNS)[number], string | number | null>;

/** An entry as a row of columns; arrays as their RFC 8785 JSON text, so a verifier can splice them unparsed. */
export function toRow(e: AuditEntry): EntryRow {
  return {
    seq: e.seq, id: e.id, time: e.time, client: e.client, user_id: e.userId, purpose: e.purpose, case_id: e.caseId,
    service: e.service, version: e.version, subjects: JSON.stringify(e.subjects), fields: JSON.stringify(e.fields),
    outcome: e.outcome, status: e.status, error_code: e.errorCode, upstreams: upstreamsJson(e.upstreams),
    latency_ms: e.latencyMs, request_sha256: e.requestSha256, response_sha256: e.responseSha256, prev_hash: e.prevHash, hash: e.hash,
  };
}

/** A row back to an entry, exactly as stored: the verifier recomputes the hash from what is there. */
export function fromRow(r: Record<string, unknown>): AuditEntry {
  const json = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v);
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    seq: Number(r.seq), id: r.id as string, time: r.time instanceof Date ? r.time.toISOString() : (r.time as string),
    client: r.client as string, userId: (r.user_id as string) ?? null, purpose: (r.purpose as string) ?? null,
    caseId: (r.case_id as string) ?? null, service: r.service as string, version: num(r.version),
    subjects: json(r.subjects), fields: json(r.fields), outcome: r.outcome as Outcome, status: Number(r.status),
    errorCode: (r.error_code as string) ?? null, upstreams: json(r.upstreams), latencyMs: Number(r.latency_ms),
    requestSha256: r.request_sha256 as string, responseSha256: (r.response_sha256 as string) ?? null,
    prevHash: r.prev_hash as string, hash: r.hash as string,
  };
}

/** Cursor = the last seq of the previous page (newest-first order), opaque to clients. */
export const encodeCursor = (seq: number) => Buffer.from(`seq:${seq}`).toString('base64url');
export function decodeCursor(cursor: string | null | undefined): number | null {
  if (!cursor) return null;
  const m = /^seq:(\d+)$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!m) throw new RangeError('bad cursor');
  return Number(m[1]);
}
