/**
 * The check of a chain against time-stamped checkpoints (docs/architecture.md, anchoring). The
 * gateway's own key signs its checkpoints, so whoever holds that key can rewrite the log, re-hash
 * the chain and re-sign every checkpoint: the chain check alone still passes. A time-stamp is
 * the authority's signature over the checkpoint's JWS at a time; it cannot be made again for a
 * re-signed checkpoint, nor dated back. So a rewritten log shows either as a checkpoint whose
 * token no longer fits it (it was re-signed after it was stamped), or as a chain that disagrees
 * with a stamped checkpoint kept from before.
 */
import { readFileSync } from 'node:fs';
import type { JSONWebKeySet } from 'jose';
import { verifyCheckpointJws } from '../signing.ts';
import type { AuditEntry } from './entry.ts';
import type { AuditStore, Checkpoint } from './store.ts';
import { stampedCheckpoints, type CheckpointTimestamp } from './timestamps.ts';
import { parseTsaCertificates, stampedBytes, TimestampError, verifyToken, type TokenProblem, type TsaCertificate } from './tsp.ts';
import type { ChainProblem, VerifyReport } from './verify.ts';

/** How far a token's time may lie before its checkpoint's when no other tolerance is given (as `audit.timestamping.toleranceSeconds`). */
export const DEFAULT_TOLERANCE_SECONDS = 60;

export type AnchorProblem = 'timestamp_invalid' | 'timestamp_contradiction' | 'not_anchored';

/** What the time-stamps say about the chain. */
export interface AnchorReport {
  /** Checkpoints whose token verifies. */
  stamped: number;
  /** Checkpoints without a token. */
  unstamped: number;
  /** Every entry up to this seq is covered by a time-stamped checkpoint the chain agrees with. */
  anchoredUpTo: number;
  /** The last such checkpoint: its seq, who stamped it and when. */
  lastAnchor: { seq: number; tsa: string; time: string } | null;
  /** The first checkpoint whose token does not verify, and why. */
  invalid: { seq: number; problem: TokenProblem | 'checkpoint_signature' } | null;
  /** The first time-stamped checkpoint the chain disagrees with: its hash, the chain's (null: the chain ends before). */
  contradiction: { seq: number; stampedHash: string; chainHash: string | null; tsa: string; time: string } | null;
}

export type AnchoredReport = Omit<VerifyReport, 'problem'> & { problem: ChainProblem | AnchorProblem | null; anchoring: AnchorReport };

type MaybeStamped = Checkpoint & { timestamp?: CheckpointTimestamp | null };

/** The time-stamping certificates of the PEM files given (`--tsa-cert`). */
export const readTsaCertificates = (files: readonly string[]): TsaCertificate[] => files.flatMap((f) => parseTsaCertificates(readFileSync(f, 'utf8'), f));

/**
 * Checks every checkpoint's token (signature by one of `certificates`, imprint over the
 * checkpoint's JWS, time not before the checkpoint's less `toleranceSeconds`), then walks the
 * entries: each time-stamped checkpoint must hold the hash of the entry at its seq.
 */
export async function verifyAnchors(entries: AsyncIterable<AuditEntry> | Iterable<AuditEntry>, checkpoints: readonly MaybeStamped[], jwks: JSONWebKeySet, certificates: readonly TsaCertificate[], toleranceSeconds = DEFAULT_TOLERANCE_SECONDS): Promise<AnchorReport> {
  const report: AnchorReport = { stamped: 0, unstamped: 0, anchoredUpTo: 0, lastAnchor: null, invalid: null, contradiction: null };
  const anchors: { seq: number; hash: string; tsa: string; time: string }[] = [];
  for (const cp of [...checkpoints].sort((a, b) => a.seq - b.seq)) {
    if (!cp.timestamp) {
      report.unstamped++;
      continue;
    }
    const payload = await verifyCheckpointJws(cp.jws, jwks).catch(() => null);
    if (!payload || payload.seq !== cp.seq || payload.hash !== cp.hash) {
      report.invalid ??= { seq: cp.seq, problem: 'checkpoint_signature' };
      continue;
    }
    try {
      const token = await verifyToken(Buffer.from(cp.timestamp.token, 'base64'), { data: stampedBytes(cp.jws), certificates, notBefore: new Date(payload.time), toleranceSeconds });
      report.stamped++;
      anchors.push({ seq: cp.seq, hash: cp.hash, tsa: cp.timestamp.tsa, time: token.genTime.toISOString() });
    } catch (e) {
      report.invalid ??= { seq: cp.seq, problem: e instanceof TimestampError ? e.problem : 'malformed' };
    }
  }
  const wanted = new Set(anchors.map((a) => a.seq));
  const chainHash = new Map<number, string>();
  for await (const e of entries) if (wanted.has(e.seq)) chainHash.set(e.seq, e.hash);
  for (const a of anchors) {
    const found = chainHash.get(a.seq) ?? null;
    if (found !== a.hash) {
      report.contradiction = { seq: a.seq, stampedHash: a.hash, chainHash: found, tsa: a.tsa, time: a.time };
      break;
    }
    report.anchoredUpTo = a.seq;
    report.lastAnchor = { seq: a.seq, tsa: a.tsa, time: a.time };
  }
  return report;
}

/**
 * The chain's report with the anchoring's: the first problem in seq order wins, a time-stamped
 * contradiction over a plain checkpoint mismatch at the same seq (it is the stronger evidence).
 * With time-stamps asked for, a chain with no checkpoint time-stamped is not anchored.
 */
export function withAnchors(chain: VerifyReport, anchoring: AnchorReport): AnchoredReport {
  const found: { problem: AnchorProblem; seq: number }[] = [];
  if (anchoring.contradiction) found.push({ problem: 'timestamp_contradiction', seq: anchoring.contradiction.seq });
  if (anchoring.invalid) found.push({ problem: 'timestamp_invalid', seq: anchoring.invalid.seq });
  if (!anchoring.stamped && !anchoring.invalid) found.push({ problem: 'not_anchored', seq: 1 });
  const first = found.sort((a, b) => a.seq - b.seq)[0];
  const chainFirst = chain.ok ? Infinity : chain.firstBadSeq ?? 0;
  if (!first || chainFirst < first.seq || (chainFirst === first.seq && chain.problem !== 'checkpoint_mismatch')) return { ...chain, anchoring };
  return { ...chain, ok: false, problem: first.problem, firstBadSeq: first.seq, verifiedUpTo: Math.min(chain.verifiedUpTo, anchoring.anchoredUpTo), anchoring };
}

/** The anchoring's verdict line for `audit verify`: why the chain is refused, or what the stamps cover. */
export function anchorVerdict(report: AnchoredReport): string {
  const a = report.anchoring;
  const upTo = a.lastAnchor ? `anchored up to seq ${a.anchoredUpTo} (time-stamped by ${a.lastAnchor.tsa} at ${a.lastAnchor.time})` : 'anchored nowhere';
  switch (report.problem) {
    case 'timestamp_contradiction': {
      const c = a.contradiction!;
      const chain = c.chainHash ? `the chain's entry ${c.seq} hashes to ${c.chainHash}` : `the chain ends before seq ${c.seq}`;
      return `CHAIN CONTRADICTS A TIME-STAMPED CHECKPOINT at seq ${c.seq}: ${chain}, the checkpoint time-stamped by ${c.tsa} at ${c.time} says ${c.stampedHash}; ${upTo}: an entry from seq ${a.anchoredUpTo + 1} to ${c.seq} was changed after it was stamped`;
    }
    case 'timestamp_invalid':
      return `TIME-STAMP INVALID at checkpoint seq ${a.invalid!.seq}: ${a.invalid!.problem}${a.invalid!.problem === 'imprint' ? ' (the token stamps another checkpoint: this one was signed again after it was stamped)' : ''}; ${upTo}`;
    case 'not_anchored':
      return `NOT ANCHORED: no checkpoint carries a valid time-stamp (${a.unstamped} without one)`;
    default:
      return `${upTo}${a.unstamped ? `; ${a.unstamped} checkpoint${a.unstamped === 1 ? '' : 's'} without a time-stamp` : ''}`;
  }
}

/**
 * Online (`/audit/verify`, `gateway audit verify --config`): the hot store's time-stamped
 * checkpoints checked as the offline verifier checks them, each token against the configured
 * authorities and each stamped hash against the entry at its seq, read at those seqs only. The
 * archived ones are the segments' (archive-verify.ts). A log no token covers yet is not refused
 * here (stamping lags behind signing; `/readyz` reports the lag): only a bad token or a
 * contradiction is.
 */
export async function verifyHotAnchors(store: AuditStore, chain: VerifyReport, jwks: JSONWebKeySet, certificates: readonly TsaCertificate[], toleranceSeconds = DEFAULT_TOLERANCE_SECONDS): Promise<VerifyReport | AnchoredReport> {
  const firstHot = (await store.archive?.oldestHot())?.seq ?? 1;
  const checkpoints = (await stampedCheckpoints(store)).filter((cp) => cp.seq >= firstHot);
  async function* atStampedSeqs() {
    for (const cp of checkpoints) {
      if (!cp.timestamp) continue;
      for await (const e of store.scan(cp.seq)) {
        if (e.seq === cp.seq) yield e;
        break;
      }
    }
  }
  const report = withAnchors(chain, await verifyAnchors(atStampedSeqs(), checkpoints, jwks, certificates, toleranceSeconds));
  return report.problem === 'not_anchored' ? { ...chain, anchoring: report.anchoring } as AnchoredReport : report;
}

