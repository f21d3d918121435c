import type { JSONWebKeySet } from 'jose';
import { verifyCheckpointJws } from '../signing.ts';
import { entryHash, GENESIS, type AuditEntry } from './entry.ts';
import type { Checkpoint } from './store.ts';

export type ChainProblem = 'hash_mismatch' | 'broken_link' | 'missing_entry' | 'truncated' | 'checkpoint_mismatch' | 'checkpoint_signature';

export interface VerifyReport {
  ok: boolean;
  entries: number;
  headSeq: number;
  /** Every entry up to this seq is intact and linked. */
  verifiedUpTo: number;
  lastCheckpoint: { seq: number; time: string } | null;
  firstBadSeq: number | null;
  problem: ChainProblem | null;
}

/**
 * Re-checks a chain: every hash recomputed over RFC 8785 JSON, every link, seqs contiguous from 1,
 * and every signed checkpoint matching the entry at its seq; a checkpoint beyond the last entry
 * means the tail was cut off.
 */
export async function verifyChain(entries: AsyncIterable<AuditEntry> | Iterable<AuditEntry>, checkpoints: readonly Checkpoint[], jwks: JSONWebKeySet): Promise<VerifyReport> {
  const cps = new Map<number, Checkpoint>();
  let lastCheckpoint: Checkpoint | null = null;
  let badSignature: number | null = null;
  for (const cp of checkpoints) {
    try {
      const payload = await verifyCheckpointJws(cp.jws, jwks);
      if (payload.seq !== cp.seq || payload.hash !== cp.hash) throw new Error('payload differs');
      cps.set(cp.seq, cp);
      if (!lastCheckpoint || cp.seq > lastCheckpoint.seq) lastCheckpoint = cp;
    } catch {
      badSignature ??= cp.seq;
    }
  }
  const report = (fields: Partial<VerifyReport> & { count: number; prevSeq: number }): VerifyReport => ({
    ok: !fields.problem,
    entries: fields.count,
    headSeq: fields.prevSeq,
    verifiedUpTo: fields.verifiedUpTo ?? fields.prevSeq,
    lastCheckpoint: lastCheckpoint ? { seq: lastCheckpoint.seq, time: lastCheckpoint.time } : null,
    firstBadSeq: fields.firstBadSeq ?? null,
    problem: fields.problem ?? null,
  });
  if (badSignature !== null) return report({ count: 0, prevSeq: 0, verifiedUpTo: 0, firstBadSeq: badSignature, problem: 'checkpoint_signature' });

  let prev = GENESIS;
  let count = 0;
  for await (const e of entries) {
    count++;
    if (e.seq !== prev.seq + 1) {
      return report({ count, prevSeq: prev.seq, firstBadSeq: prev.seq + 1, problem: e.seq > prev.seq + 1 ? 'missing_entry' : 'broken_link' });
    }
    if (entryHash(e) !== e.hash) return report({ count, prevSeq: prev.seq, firstBadSeq: e.seq, problem: 'hash_mismatch' });
    if (e.prevHash !== prev.hash) return report({ count, prevSeq: prev.seq, firstBadSeq: e.seq, problem: 'broken_link' });
    const cp = cps.get(e.seq);
    if (cp && cp.hash !== e.hash) return report({ count, prevSeq: prev.seq, firstBadSeq: e.seq, problem: 'checkpoint_mismatch' });
    prev = e;
  }
  if (lastCheckpoint && lastCheckpoint.seq > prev.seq) {
    return report({ count, prevSeq: prev.seq, firstBadSeq: prev.seq + 1, problem: 'truncated' });
  }
  return report({ count, prevSeq: prev.seq });
}
