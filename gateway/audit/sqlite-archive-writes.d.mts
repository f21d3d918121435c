import type Database from 'better-sqlite3';
import type { SealedSegment } from './store.ts';

export function prepareArchiveWrites(db: Database.Database): {
  dropThrough(segment: SealedSegment): 'dropped' | 'already';
};
