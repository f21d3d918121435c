import type Database from 'better-sqlite3';

export interface ChainHeadRow { seq: number; hash: string }
export interface CheckpointRow { seq: number; hash: string; time: string; jws: string }
/** Column values in the store's column order (seq first), and the subjects to index. */
export type WriterRow = [values: unknown[], subjects: string[]];

export function prepareWrites(db: Database.Database, columns: readonly string[]): {
  append(expected: ChainHeadRow, rows: WriterRow[]): ChainHeadRow | null;
  saveCheckpoint(checkpoint: CheckpointRow): void;
  /** Commits a write of about a batch's size outside the chain (readiness). */
  probe(): void;
};
