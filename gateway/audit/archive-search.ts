/**
 * Searching archived entries (docs/architecture.md, retention). The subject index of archived
 * entries stays in the store (ArchiveIndex.subjectSeqs), so a search by personal id finds their
 * seqs by index, then reads just those entries from their segments: each segment's manifest says
 * where each gzip member starts, so one member (a few hundred entries) is decompressed per entry
 * found, not the segment. Newest first, the archived entries follow the hot ones (all archived
 * seqs are below the hot store's), and the cursor is a seq either way, so paging runs on across
 * the boundary. Searches without a personal id cover the hot store only (documented).
 */
import { join } from 'node:path';
import { access } from 'node:fs/promises';
import type { AuditEntry } from './entry.ts';
import { readManifest, readSegmentEntries, segmentLines, type SegmentManifest } from './archive-files.ts';
import { decodeCursor, encodeCursor, type ArchiveIndex, type AuditFilter, type AuditPage, type AuditStore, type SealedSegment } from './store.ts';

/** Archived seqs looked at for one page at most: a filter that drops most of a subject's entries pages on instead of reading on. */
const MAX_EXAMINED = 2000;
const SEQ_CHUNK = 200;

const matches = (e: AuditEntry, f: AuditFilter) =>
  (!f.subject || e.subjects.includes(f.subject)) && (!f.client || e.client === f.client) &&
  (!f.service || e.service === f.service) && (!f.purpose || e.purpose === f.purpose) &&
  (!f.caseId || e.caseId === f.caseId) && (!f.outcome || e.outcome === f.outcome) &&
  (!f.from || e.time >= f.from) && (!f.to || e.time < f.to);

/** A segment as the console and GET /audit/archives list it. */
export interface ArchiveListing extends SealedSegment {
  manifest: string;
  checkpoint: { seq: number; time: string } | null;
  /** Whether its checkpoint carries an RFC 3161 time-stamp, and from whom, when. */
  timestamp: { tsa: string; genTime: string } | null;
  /** False when its manifest or data file is not in the archive directory. */
  present: boolean;
}

export interface ArchiveReader {
  /** A page of entries like AuditStore.query, archived entries included when the filter names a subject. */
  page(filter: AuditFilter, limit: number, cursor?: string | null): Promise<AuditPage>;
  /** An entry by id: the hot store's, else the archive's (read segment by segment, newest first). */
  get(id: string): Promise<AuditEntry | null>;
  list(): Promise<ArchiveListing[]>;
}

const manifestName = (file: string) => file.replace(/\.ndjson\.gz$/, '.manifest.json');

export function archiveReader(store: AuditStore & { archive: ArchiveIndex }, dir: string): ArchiveReader {
  const index = store.archive;
  // Manifests never change once written.
  const manifests = new Map<string, Promise<SegmentManifest | null>>();
  const manifestOf = (s: SealedSegment) => {
    let m = manifests.get(s.file);
    if (!m) manifests.set(s.file, m = readManifest(dir, manifestName(s.file)).catch(() => null));
    return m;
  };
  const segmentOf = (segments: readonly SealedSegment[], seq: number) => {
    let lo = 0;
    let hi = segments.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = segments[mid]!;
      if (seq < s.firstSeq) hi = mid - 1;
      else if (seq > s.lastSeq) lo = mid + 1;
      else return s;
    }
    return null;
  };
  /** The archived entries of `seqs`, newest first (those whose segment cannot be read are left out). */
  const read = async (segments: readonly SealedSegment[], seqs: readonly number[]): Promise<AuditEntry[]> => {
    const bySegment = new Map<SealedSegment, number[]>();
    for (const seq of seqs) {
      const s = segmentOf(segments, seq);
      if (s) (bySegment.get(s) ?? bySegment.set(s, []).get(s)!).push(seq);
    }
    const found = new Map<number, AuditEntry>();
    for (const [s, wanted] of bySegment) {
      const manifest = await manifestOf(s);
      const entries = manifest ? await readSegmentEntries(dir, manifest, wanted).catch(() => new Map<number, AuditEntry>()) : new Map<number, AuditEntry>();
      for (const [seq, e] of entries) found.set(seq, e);
    }
    return seqs.flatMap((seq) => (found.has(seq) ? [found.get(seq)!] : []));
  };

  return {
    async page(filter, limit, cursor) {
      const hot = await store.query(filter, limit, cursor);
      if (!filter.subject || hot.nextCursor) return hot;
      const segments = await index.segments();
      if (!segments.length) return hot;
      const entries = [...hot.entries];
      let below = Math.min(decodeCursor(cursor) ?? Infinity, segments.at(-1)!.lastSeq + 1);
      let examined = 0;
      while (entries.length < limit) {
        const seqs = await index.subjectSeqs(filter.subject, below, SEQ_CHUNK);
        if (!seqs.length) return { entries, nextCursor: null };
        for (const e of await read(segments, seqs)) {
          if (entries.length === limit) break;
          below = e.seq;
          if (matches(e, filter)) entries.push(e);
        }
        if (entries.length < limit) below = seqs.at(-1)!;
        examined += seqs.length;
        if (examined >= MAX_EXAMINED && entries.length < limit) return { entries, nextCursor: encodeCursor(below) };
      }
      // A full page: more only if the subject has an archived entry below its last.
      const more = (await index.subjectSeqs(filter.subject, entries.at(-1)!.seq, 1)).length > 0;
      return { entries, nextCursor: more ? encodeCursor(entries.at(-1)!.seq) : null };
    },
    async get(id) {
      const hot = await store.get(id);
      if (hot) return hot;
      const needle = `"id":${JSON.stringify(id)},`;
      for (const s of (await index.segments()).reverse()) {
        try {
          for await (const line of segmentLines(join(dir, s.file)).lines) if (line.includes(needle)) return JSON.parse(line) as AuditEntry;
        } catch { /* a segment that cannot be read holds nothing to show */ }
      }
      return null;
    },
    async list() {
      return Promise.all((await index.segments()).map(async (s): Promise<ArchiveListing> => {
        const m = await manifestOf(s);
        const present = Boolean(m) && (await access(join(dir, s.file)).then(() => true, () => false));
        return {
          ...s, manifest: manifestName(s.file), present,
          checkpoint: m?.checkpoint ? { seq: m.checkpoint.seq, time: m.checkpoint.time } : null,
          timestamp: m?.timestamp ? { tsa: m.timestamp.tsa, genTime: m.timestamp.genTime } : null,
        };
      }));
    },
  };
}
