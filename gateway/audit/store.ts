import type { SegmentWalk } from './verify.ts';
import { canonicalJson, type AuditEntry, type ChainHead, type Outcome, type PendingEntry } from './entry.ts';
import { RECORD_COLUMNS, RECORD_MEMBERS } from './record.ts';
import type { TimestampStore } from './timestamps.ts';

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

/**
 * A sealed archive segment as the store records it (audit_archive_segments): the entries
 * `firstSeq`..`lastSeq` now live in `file` under the archive directory, not in the hot store.
 */
export interface SealedSegment {
  firstSeq: number;
  lastSeq: number;
  /** The hash the segment chains from: the previous segment's lastHash, or 0…0 for the first. */
  prevHash: string;
  /** The hash of entry `lastSeq`, which is also its signed checkpoint's. */
  lastHash: string;
  /** The data file's name in the archive directory (`<first>-<last>.ndjson.gz`). */
  file: string;
  /** SHA-256 (hex) of the data file's bytes. */
  fileSha256: string;
  entries: number;
  sealedAt: string;
}

/**
 * The store's side of retention (audit/archiver.ts): which segments were sealed, dropping a
 * sealed range from the hot store, and the subject index of archived entries, which is kept so
 * a search by personal id still finds them.
 */
export interface ArchiveIndex {
  /** The sealed segments, by seq. */
  segments(): Promise<SealedSegment[]>;
  /**
   * In one transaction: records the segment and deletes its entries from the hot store. Refused
   * unless it follows the last segment, the hot rows are exactly the range with the segment's
   * first prevHash and last hash, and an entry after it stays hot (the chain's head never leaves
   * the hot store). A segment already recorded, identically, is `already`.
   */
  dropThrough(segment: SealedSegment): Promise<'dropped' | 'already'>;
  /** Archived seqs whose entry concerns `subject`, below `before`, newest first, `limit` at most. */
  subjectSeqs(subject: string, before: number, limit: number): Promise<number[]>;
  /** The oldest entry still in the hot store. */
  oldestHot(): Promise<{ seq: number; time: string } | null>;
  /** Runs `fn` while no other archiver of this chain runs (any process); `ran: false` when one does. */
  exclusive<T>(fn: () => Promise<T>): Promise<{ ran: true; value: T } | { ran: false }>;
}

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
  /** The checkpoints' RFC 3161 time-stamps (timestamps.ts); a store without it cannot anchor. */
  readonly timestamps?: TimestampStore;
  /** Sealed archive segments (archive-index.ts); a store without it cannot archive. */
  readonly archive?: ArchiveIndex;
  /**
   * Optional: walks the whole chain itself, hashes recomputed from what is stored, as seq-ordered
   * segments (each started without its first link) for verifyStore to join.
   */
  walkChain?(checkpoints: ReadonlyMap<number, string>): Promise<SegmentWalk[]>;
  /** Throws when the store cannot take a write. */
  probe(): Promise<void>;
  close(): Promise<void>;
}

/** The stores' columns, in record order (record.ts). */
export const ENTRY_COLUMNS: readonly string[] = RECORD_COLUMNS;

export type EntryRow = Record<string, string | number | null>;

/** An entry as a row of columns; arrays as their RFC 8785 JSON text, so a verifier can splice them unparsed. */
export function toRow(e: AuditEntry): EntryRow {
  const row: EntryRow = {};
  for (const m of RECORD_MEMBERS) {
    const v = e[m.name];
    row[m.column] = m.kind === 'json' ? canonicalJson(v) : (v as string | number | null) ?? null;
  }
  return row;
}

/** A row back to an entry, exactly as stored: the verifier recomputes the hash from what is there. */
export function fromRow(r: Record<string, unknown>): AuditEntry {
  const e: Record<string, unknown> = {};
  for (const m of RECORD_MEMBERS) {
    const v = r[m.column];
    if (m.optional && (v === null || v === undefined)) continue;
    if (m.kind === 'json') e[m.name] = typeof v === 'string' ? JSON.parse(v) : v;
    else if (v === null || v === undefined) e[m.name] = null;
    else if (m.kind === 'integer') e[m.name] = Number(v);
    else e[m.name] = v instanceof Date ? v.toISOString() : v;
  }
  return e as unknown as AuditEntry;
}

/** Cursor = the last seq of the previous page (newest-first order), opaque to clients. */
export const encodeCursor = (seq: number) => Buffer.from(`seq:${seq}`).toString('base64url');
export function decodeCursor(cursor: string | null | undefined): number | null {
  if (!cursor) return null;
  const m = /^seq:(\d+)$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!m) throw new RangeError('bad cursor');
  return Number(m[1]);
}
