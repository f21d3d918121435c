import type { JSONWebKeySet } from 'jose';
import { verifyCheckpointJws } from '../signing.ts';
import { entryHash, GENESIS, type AuditEntry } from './entry.ts';
import type { AuditStore, Checkpoint } from './store.ts';

export type ChainProblem = 'hash_mismatch' | 'broken_link' | 'missing_entry' | 'truncated' | 'checkpoint_mismatch' | 'checkpoint_signature'
  // Sealed archive segments (archive-verify.ts): gone, a manifest that does not describe its segment, a data file that is not the one sealed, a token that does not verify.
  | 'segment_missing' | 'segment_manifest_mismatch' | 'segment_file_mismatch' | 'segment_timestamp_invalid';

export interface VerifyReport {
  ok: boolean;
  entries: number;
  headSeq: number;
  /** Every entry up to this seq is intact and linked. */
  verifiedUpTo: number;
  lastCheckpoint: { seq: number; time: string } | null;
  firstBadSeq: number | null;
  problem: ChainProblem | null;
  /** With archived segments: how many, their entries, and the data file that holds the first bad seq (null: none does). */
  archive?: { segments: number; entries: number; segment: string | null };
}

/** One stored entry as the chain check needs it; `recomputed` is the hash of the entry as it is stored. */
export interface ChainLink { seq: number; prevHash: string; hash: string; recomputed: string }

/** The outcome of walking a run of consecutive links (a whole chain, or one segment of it). */
export interface SegmentWalk {
  count: number;
  firstSeq: number | null;
  firstPrevHash: string | null;
  /** The last seq and hash that passed every check. */
  lastSeq: number;
  lastHash: string | null;
  problem: ChainProblem | null;
  firstBadSeq: number | null;
}

/**
 * Checks links in seq order after `start`: seqs contiguous, every hash recomputed, every link,
 * every checkpoint at its seq. A `start.hash` of null leaves the first link to the caller, who
 * knows the previous segment's last hash.
 */
export class ChainWalker {
  readonly walk: SegmentWalk;
  readonly #checkpoints: ReadonlyMap<number, string>;

  constructor(start: { seq: number; hash: string | null }, checkpoints: ReadonlyMap<number, string>) {
    this.walk = { count: 0, firstSeq: null, firstPrevHash: null, lastSeq: start.seq, lastHash: start.hash, problem: null, firstBadSeq: null };
    this.#checkpoints = checkpoints;
  }

  /** False once a problem is found; the walk then says which and where. */
  step(link: ChainLink): boolean {
    const w = this.walk;
    if (w.problem) return false;
    w.count++;
    if (w.count === 1) {
      w.firstSeq = link.seq;
      w.firstPrevHash = link.prevHash;
    }
    if (link.seq !== w.lastSeq + 1) return this.#fail(link.seq > w.lastSeq + 1 ? 'missing_entry' : 'broken_link', w.lastSeq + 1);
    if (link.recomputed !== link.hash) return this.#fail('hash_mismatch', link.seq);
    if (w.lastHash !== null && link.prevHash !== w.lastHash) return this.#fail('broken_link', link.seq);
    const cp = this.#checkpoints.get(link.seq);
    if (cp !== undefined && cp !== link.hash) return this.#fail('checkpoint_mismatch', link.seq);
    w.lastSeq = link.seq;
    w.lastHash = link.hash;
    return true;
  }

  #fail(problem: ChainProblem, seq: number): false {
    this.walk.problem = problem;
    this.walk.firstBadSeq = seq;
    return false;
  }
}

/** The hash of an entry as stored; a row that cannot even be encoded (a number column holding text) matches no hash. */
export function rehash(entry: AuditEntry): string {
  try {
    return entryHash(entry);
  } catch {
    return 'unencodable';
  }
}

/** Checkpoints whose signature holds, by seq; the seq of the first bad one, if any. */
async function checkedCheckpoints(checkpoints: readonly Checkpoint[], jwks: JSONWebKeySet) {
  const bySeq = new Map<number, string>();
  let last: Checkpoint | null = null;
  let badSignature: number | null = null;
  for (const cp of checkpoints) {
    try {
      const payload = await verifyCheckpointJws(cp.jws, jwks);
      if (payload.seq !== cp.seq || payload.hash !== cp.hash) throw new Error('payload differs');
      bySeq.set(cp.seq, cp.hash);
      if (!last || cp.seq > last.seq) last = cp;
    } catch {
      badSignature ??= cp.seq;
    }
  }
  return { bySeq, last, badSignature };
}

/**
 * Joins segment walks (in seq order, each started without its first link) into one verdict, as
 * one walk over the whole chain would give it: the first problem in seq order wins.
 */
export function joinSegments(segments: readonly SegmentWalk[], lastCheckpoint: Checkpoint | null): VerifyReport {
  const report = (count: number, headSeq: number, problem: ChainProblem | null = null, firstBadSeq: number | null = null): VerifyReport => ({
    ok: !problem, entries: count, headSeq, verifiedUpTo: headSeq,
    lastCheckpoint: lastCheckpoint ? { seq: lastCheckpoint.seq, time: lastCheckpoint.time } : null, firstBadSeq, problem,
  });
  let count = 0;
  let prevSeq = GENESIS.seq;
  let prevHash = GENESIS.hash;
  for (const s of segments) {
    if (s.count === 0) continue;
    if (s.firstSeq !== prevSeq + 1) return report(count + 1, prevSeq, s.firstSeq! > prevSeq + 1 ? 'missing_entry' : 'broken_link', prevSeq + 1);
    const firstFailed = s.firstBadSeq === s.firstSeq && s.problem === 'hash_mismatch';
    if (!firstFailed && s.firstPrevHash !== prevHash) return report(count + 1, prevSeq, 'broken_link', s.firstSeq);
    if (s.problem) return report(count + s.count, s.lastSeq, s.problem, s.firstBadSeq);
    count += s.count;
    prevSeq = s.lastSeq;
    prevHash = s.lastHash!;
  }
  if (lastCheckpoint && lastCheckpoint.seq > prevSeq) return report(count, prevSeq, 'truncated', prevSeq + 1);
  return report(count, prevSeq);
}

function signatureProblem(seq: number, last: Checkpoint | null): VerifyReport {
  return { ok: false, entries: 0, headSeq: 0, verifiedUpTo: 0, lastCheckpoint: last ? { seq: last.seq, time: last.time } : null, firstBadSeq: seq, problem: 'checkpoint_signature' };
}

/**
 * Re-checks a chain: every hash recomputed over RFC 8785 JSON, every link, seqs contiguous from 1,
 * and every signed checkpoint matching the entry at its seq; a checkpoint beyond the last entry
 * means the tail was cut off.
 */
export async function verifyChain(entries: AsyncIterable<AuditEntry> | Iterable<AuditEntry>, checkpoints: readonly Checkpoint[], jwks: JSONWebKeySet, archive?: ArchiveSource): Promise<VerifyReport> {
  const { bySeq, last, badSignature } = await checkedCheckpoints(checkpoints, jwks);
  if (badSignature !== null) return signatureProblem(badSignature, last);
  if (!archive) return joinSegments([await walkEntries(entries, bySeq, GENESIS)], last);
  const { withArchive } = await import('./archive-verify.ts');
  const sealed = await archive(bySeq);
  // After the archive, the hot chain's first link is joinSegments' to check, against the last segment.
  return withArchive(joinSegments([...sealed.walks, await walkEntries(entries, bySeq, null)], last), sealed);
}

/** The walk of entries in seq order, from `start` (null: from wherever the first entry is, its link left to the caller). */
async function walkEntries(entries: AsyncIterable<AuditEntry> | Iterable<AuditEntry>, checkpoints: ReadonlyMap<number, string>, start: { seq: number; hash: string } | null): Promise<SegmentWalk> {
  let walker = start ? new ChainWalker(start, checkpoints) : null;
  for await (const e of entries) {
    walker ??= new ChainWalker({ seq: e.seq - 1, hash: null }, checkpoints);
    if (!walker.step({ seq: e.seq, prevHash: e.prevHash, hash: e.hash, recomputed: rehash(e) })) break;
  }
  return (walker ?? new ChainWalker(GENESIS, checkpoints)).walk;
}

/** The walks of the archived segments that precede the entries, given the checkpoints that verified (archive-verify.ts). */
export type ArchiveSource = (checkpoints: ReadonlyMap<number, string>) => Promise<import('./archive-verify.ts').ArchiveWalk>;

/**
 * Verifies a store's own chain. A store that can walk its chain itself (SQLite: in segments, on
 * worker threads, without building entry objects) does so; any other is scanned entry by entry.
 */
export async function verifyStore(store: AuditStore, jwks: JSONWebKeySet, options: { archiveDir?: string } & import('./archive-verify.ts').ArchiveCheckOptions = {}): Promise<VerifyReport> {
  const checkpoints = await store.checkpoints();
  const sealed = (await store.archive?.segments()) ?? [];
  // Archived segments come first in the one chain: each checked from its files against the store's record of it.
  const archive: ArchiveSource | undefined = sealed.length ? async (bySeq) => {
    const { walkRecordedArchive } = await import('./archive-verify.ts');
    if (!options.archiveDir) throw new Error('the store has archived segments: verifying it needs the archive directory (audit.archive.dir)');
    return walkRecordedArchive(options.archiveDir, sealed, bySeq, jwks, options);
  } : undefined;
  if (!store.walkChain) return verifyChain(store.scan(1), checkpoints, jwks, archive);
  const { bySeq, last, badSignature } = await checkedCheckpoints(checkpoints, jwks);
  if (badSignature !== null) return signatureProblem(badSignature, last);
  if (!archive) return joinSegments(await store.walkChain(bySeq), last);
  const { withArchive } = await import('./archive-verify.ts');
  const walked = await archive(bySeq);
  return withArchive(joinSegments([...walked.walks, ...(await store.walkChain(bySeq))], last), walked);
}
