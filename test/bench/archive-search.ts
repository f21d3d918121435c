/**
 * An auditor's search by personal id whose entries are archived: the p50/p95 of the first page
 * (50 entries) when the subject's entries all lie in sealed segments. The audit-at-scale bench
 * calls `archivedSearchLatency` on the chain it built; alone, `tsx test/bench/archive-search.ts N`
 * builds one of N entries itself. How it is found: the subject index (kept for archived entries)
 * gives the seqs, the manifests' block offsets the gzip members to decompress (archive-search.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { archiveReader } from '../../gateway/audit/archive-search.ts';
import { archivePass } from '../../gateway/audit/archiver.ts';
import { createSqliteStore, makePseudonymizer, type PendingEntry } from '../../gateway/audit/index.ts';
import type { ArchiveIndex, AuditStore } from '../../gateway/audit/store.ts';
import { generatePrivateJwk, keyPairFromJwk } from '../../gateway/keys.ts';
import { createSigner, type Signer } from '../../gateway/signing.ts';

export interface ArchivedSearchResult { archivedEntries: number; segments: number; archiveSeconds: number; searchP50Ms: number; searchP95Ms: number; found: number }

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

/**
 * Signs checkpoints every `every` entries of `store` (times a year back), archives all but the head
 * into `dir` (segments of `maxSegmentEntries`), then times `searches` searches by the pseudonyms
 * `subjects` (cycled), each the first page of 50, newest first.
 */
export async function archivedSearchLatency(store: AuditStore, subjects: readonly string[], { signer, dir, every = 10_000, maxSegmentEntries = 50_000, searches = 400 }: { signer: Signer; dir: string; every?: number; maxSegmentEntries?: number; searches?: number }): Promise<ArchivedSearchResult> {
  const head = await store.head();
  const old = new Date(Date.now() - 365 * 86_400_000).toISOString();
  for (let seq = every; seq < head.seq; seq += every) {
    const e = (await store.scan(seq)[Symbol.asyncIterator]().next()).value;
    await store.saveCheckpoint({ seq, hash: e.hash, time: old, jws: await signer.signCheckpoint({ seq, hash: e.hash, time: old }) });
  }
  const t0 = performance.now();
  const pass = await archivePass(store, { dir, hotDays: 30, maxSegmentEntries, stamped: false });
  const archiveSeconds = (performance.now() - t0) / 1000;
  const reader = archiveReader(store as AuditStore & { archive: ArchiveIndex }, dir);
  const times: number[] = [];
  let found = 0;
  for (let k = 0; k < searches; k++) {
    const subject = subjects[(k * 104729) % subjects.length]!;
    const s = performance.now();
    found += (await reader.page({ subject }, 50)).entries.length;
    times.push(performance.now() - s);
  }
  return {
    archivedEntries: pass.sealed.reduce((n, s) => n + s.entries, 0), segments: pass.sealed.length, archiveSeconds,
    searchP50Ms: percentile(times, 50), searchP95Ms: percentile(times, 95), found,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const n = Number(process.argv[2] ?? 200_000);
  const dir = mkdtempSync(join(tmpdir(), 'gw-bench-archive-'));
  try {
    const store = createSqliteStore(join(dir, 'audit.sqlite'));
    const pseudonym = makePseudonymizer('bench-pseudonym-key-0123456789abcdef');
    const people = Array.from({ length: 20_000 }, (_, i) => pseudonym(`0010851${String(i).padStart(5, '0')}`));
    const start = Date.parse('2025-01-01T00:00:00Z');
    for (let i = 0; i < n; i += 5000) {
      const pending: PendingEntry[] = [];
      for (let j = i; j < Math.min(n, i + 5000); j++) {
        pending.push({
          id: randomUUID(), time: new Date(start + j * 25).toISOString(), client: 'portal', userId: null, purpose: 'LAND_TRANSFER_REGISTRATION', caseId: null,
          service: 'population.identity', version: 1, subjects: [people[(j * 7919) % people.length]!], fields: ['population.identity:core'], outcome: 'released',
          status: 200, errorCode: null, upstreams: [{ agency: 'population', operation: 'cong-dan/tra-cuu', outcome: 'ok', errorCode: null, latencyMs: 3, reference: `TC${j}` }],
          latencyMs: 4, requestSha256: 'a'.repeat(64), responseSha256: 'b'.repeat(64),
        });
      }
      await store.appendBatch(pending);
    }
    const signer = createSigner(await keyPairFromJwk(await generatePrivateJwk('ES256')));
    console.log(JSON.stringify({ entries: n, ...(await archivedSearchLatency(store, people, { signer, dir: join(dir, 'archive') })) }, null, 2));
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
