import { chainEntries, GENESIS, type AuditEntry, type ChainHead } from './entry.ts';
import { decodeCursor, encodeCursor, type AuditFilter, type AuditStore, type Checkpoint } from './store.ts';
import { memoryTimestamps } from './timestamps.ts';
import { memoryArchiveIndex } from './archive-index.ts';

const matches = (e: AuditEntry, f: AuditFilter) =>
  (!f.subject || e.subjects.includes(f.subject)) && (!f.client || e.client === f.client) &&
  (!f.service || e.service === f.service) && (!f.purpose || e.purpose === f.purpose) &&
  (!f.caseId || e.caseId === f.caseId) && (!f.outcome || e.outcome === f.outcome) &&
  (!f.from || e.time >= f.from) && (!f.to || e.time < f.to);

/** A volatile store for tests and for measuring the cost of durability; never for production. */
export function createMemoryStore(): AuditStore & { entries: AuditEntry[] } {
  const entries: AuditEntry[] = [];
  const cps: Checkpoint[] = [];
  let head: ChainHead = GENESIS;
  return {
    kind: 'memory',
    entries,
    async appendBatch(pending) {
      const chained = chainEntries(head, pending);
      entries.push(...chained);
      const last = chained[chained.length - 1];
      if (last) head = { seq: last.seq, hash: last.hash };
      return chained;
    },
    async head() { return head; },
    async *scan(fromSeq = 1, filter = {}) {
      for (const e of entries) if (e.seq >= fromSeq && matches(e, filter)) yield e;
    },
    async query(filter, limit, cursor) {
      const before = decodeCursor(cursor) ?? Infinity;
      const found: AuditEntry[] = [];
      for (let i = entries.length - 1; i >= 0 && found.length <= limit; i--) {
        const e = entries[i]!;
        if (e.seq < before && matches(e, filter)) found.push(e);
      }
      const page = found.slice(0, limit);
      return { entries: page, nextCursor: found.length > limit ? encodeCursor(page[page.length - 1]!.seq) : null };
    },
    async get(id) { return entries.find((e) => e.id === id) ?? null; },
    async saveCheckpoint(cp) { if (!cps.some((c) => c.seq === cp.seq)) cps.push(cp); },
    async checkpoints() { return [...cps].sort((a, b) => a.seq - b.seq); },
    timestamps: memoryTimestamps(async () => [...cps].sort((a, b) => a.seq - b.seq)),
    archive: memoryArchiveIndex(entries),
    async probe() {},
    async close() {},
  };
}
