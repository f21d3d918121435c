/**
 * The chain check of sealed archive segments (archive-files.ts), as the part of one chain that
 * precedes the hot store. Each segment is a walk for joinSegments (verify.ts): its manifest must
 * describe it (range, file, entries, the store's record of it when online), its checkpoint must be
 * signed by the gateway's key and hold its last hash, its data file must hash to the manifest's
 * SHA-256, every line must be the entry at its seq with its hash recomputed and linked, and, when
 * time-stamping certificates are given, its checkpoint's RFC 3161 token must verify.
 * A problem is placed at the seq it concerns, so the first one in seq order wins, and the report
 * names the segment that holds it.
 */
import { join } from 'node:path';
import type { JSONWebKeySet } from 'jose';
import { verifyCheckpointJws } from '../signing.ts';
import { GENESIS, type AuditEntry } from './entry.ts';
import { archiveFiles, dataFileName, readManifest, SEGMENT_FORMAT, segmentLines, type SegmentManifest } from './archive-files.ts';
import type { SealedSegment } from './store.ts';
import { stampedBytes, verifyToken, type TsaCertificate } from './tsp.ts';
import { ChainWalker, rehash, type ChainProblem, type SegmentWalk, type VerifyReport } from './verify.ts';

export interface ArchiveCheckOptions {
  /** Time-stamping certificates: each manifest's token is checked against them (none: tokens are not checked). */
  certificates?: readonly TsaCertificate[];
  toleranceSeconds?: number;
}

/** The walks of every segment, in seq order, and which file holds which seqs. */
export interface ArchiveWalk {
  walks: SegmentWalk[];
  ranges: { file: string; firstSeq: number; lastSeq: number }[];
  entries: number;
  /** Each segment's manifest, when it could be read (offline: what the anchoring check adds). */
  manifests: SegmentManifest[];
}

/** A segment that could not be walked: one link's worth, failed at `seq`, linked to what came before so the problem itself is reported. */
const failed = (firstSeq: number, prevHash: string, problem: ChainProblem, seq = firstSeq): SegmentWalk =>
  ({ count: 1, firstSeq, firstPrevHash: prevHash, lastSeq: firstSeq - 1, lastHash: null, problem, firstBadSeq: seq });

const failedAt = (walk: SegmentWalk, problem: ChainProblem, seq: number): SegmentWalk =>
  ({ ...walk, problem, firstBadSeq: seq, lastSeq: Math.min(walk.lastSeq, seq - 1) });

/** Whether a manifest says what its name (and the store's record, online) says. */
function describes(m: SegmentManifest, firstSeq: number, lastSeq: number, record?: SealedSegment): boolean {
  if (m?.format !== SEGMENT_FORMAT || m.firstSeq !== firstSeq || m.lastSeq !== lastSeq || m.file !== dataFileName(firstSeq, lastSeq)) return false;
  if (m.entries !== lastSeq - firstSeq + 1 || m.checkpoint?.seq !== lastSeq || m.checkpoint?.hash !== m.lastHash) return false;
  return !record || (record.file === m.file && record.fileSha256 === m.fileSha256 && record.prevHash === m.prevHash && record.lastHash === m.lastHash && record.entries === m.entries);
}

/** One segment's walk (see the module's comment). */
async function walkSegment(dir: string, firstSeq: number, lastSeq: number, manifest: SegmentManifest | null, prevHash: string, checkpoints: ReadonlyMap<number, string>, jwks: JSONWebKeySet, options: ArchiveCheckOptions, record?: SealedSegment): Promise<SegmentWalk> {
  if (!manifest) return failed(firstSeq, prevHash, 'segment_missing');
  if (!describes(manifest, firstSeq, lastSeq, record)) return failed(firstSeq, prevHash, 'segment_manifest_mismatch');
  const payload = await verifyCheckpointJws(manifest.checkpoint.jws, jwks).catch(() => null);
  const walker = new ChainWalker({ seq: firstSeq - 1, hash: null }, checkpoints);
  const { lines, sha256 } = segmentLines(join(dir, manifest.file));
  try {
    for await (const line of lines) {
      let entry: AuditEntry | null = null;
      try {
        entry = JSON.parse(line) as AuditEntry;
      } catch { /* a line that is not JSON hashes to nothing */ }
      const seq = Number.isInteger(entry?.seq) ? entry!.seq : walker.walk.lastSeq + 1;
      if (!walker.step({ seq, prevHash: entry?.prevHash ?? '', hash: entry?.hash ?? '', recomputed: entry ? rehash(entry) : 'unparsable' })) break;
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? failed(firstSeq, prevHash, 'segment_missing') : failedAt(walker.walk, 'segment_file_mismatch', walker.walk.lastSeq + 1);
  }
  const walk = walker.walk;
  if (walk.problem) return walk;
  if (walk.count === 0) return failed(firstSeq, prevHash, 'segment_file_mismatch');
  if (walk.lastSeq !== lastSeq) return failedAt(walk, 'missing_entry', walk.lastSeq + 1);
  if (walk.lastHash !== manifest.lastHash) return failedAt(walk, 'checkpoint_mismatch', lastSeq);
  if (walk.firstPrevHash !== manifest.prevHash) return failedAt(walk, 'segment_manifest_mismatch', firstSeq);
  if (sha256() !== manifest.fileSha256) return failedAt(walk, 'segment_file_mismatch', firstSeq);
  if (!payload || payload.seq !== lastSeq || payload.hash !== manifest.lastHash) return failedAt(walk, 'checkpoint_signature', lastSeq);
  if (manifest.timestamp && options.certificates?.length) {
    const ok = await verifyToken(Buffer.from(manifest.timestamp.token, 'base64'), {
      data: stampedBytes(manifest.checkpoint.jws), certificates: options.certificates, notBefore: new Date(payload.time), toleranceSeconds: options.toleranceSeconds ?? 60,
    }).then(() => true, () => false);
    if (!ok) return failedAt(walk, 'segment_timestamp_invalid', lastSeq);
  }
  return walk;
}

/** Online: the segments the store recorded, each against its record, manifest and data file. */
export async function walkRecordedArchive(dir: string, recorded: readonly SealedSegment[], checkpoints: ReadonlyMap<number, string>, jwks: JSONWebKeySet, options: ArchiveCheckOptions = {}): Promise<ArchiveWalk> {
  const out: ArchiveWalk = { walks: [], ranges: [], entries: 0, manifests: [] };
  let prevHash = GENESIS.hash;
  for (const r of recorded) {
    const manifest = await readManifest(dir, `${r.file.replace(/\.ndjson\.gz$/, '')}.manifest.json`).catch(() => null);
    if (manifest) out.manifests.push(manifest);
    out.walks.push(await walkSegment(dir, r.firstSeq, r.lastSeq, manifest, prevHash, checkpoints, jwks, options, r));
    out.ranges.push({ file: r.file, firstSeq: r.firstSeq, lastSeq: r.lastSeq });
    out.entries += r.entries;
    prevHash = r.lastHash;
  }
  return out;
}

/** Offline: every segment whose manifest is in `dir`, in seq order; a segment removed whole shows as the seqs missing there. */
export async function walkArchiveDir(dir: string, checkpoints: ReadonlyMap<number, string>, jwks: JSONWebKeySet, options: ArchiveCheckOptions = {}): Promise<ArchiveWalk> {
  const out: ArchiveWalk = { walks: [], ranges: [], entries: 0, manifests: [] };
  let prevHash = GENESIS.hash;
  for (const f of (await archiveFiles(dir)).filter((x) => x.kind === 'manifest' && !x.tmp)) {
    const manifest = await readManifest(dir, f.name).catch(() => null);
    if (manifest) out.manifests.push(manifest);
    const walk = await walkSegment(dir, f.firstSeq, f.lastSeq, manifest, prevHash, checkpoints, jwks, options);
    out.walks.push(walk);
    out.ranges.push({ file: dataFileName(f.firstSeq, f.lastSeq), firstSeq: f.firstSeq, lastSeq: f.lastSeq });
    out.entries += walk.problem ? 0 : walk.count;
    prevHash = manifest?.lastHash ?? prevHash;
  }
  return out;
}

/** The report with what the archive was: how many segments and entries, and which segment holds the first bad seq. */
export function withArchive(report: VerifyReport, archive: ArchiveWalk): VerifyReport {
  const bad = report.firstBadSeq;
  const holder = bad === null ? null : archive.ranges.find((r) => r.firstSeq <= bad && bad <= r.lastSeq) ?? null;
  return { ...report, archive: { segments: archive.ranges.length, entries: archive.entries, segment: holder?.file ?? null } };
}

/** Every entry of the segments, in order, for the anchoring check (entries of a segment that fails to read are left out). */
export async function* archivedEntries(dir: string, archive: ArchiveWalk): AsyncGenerator<AuditEntry> {
  for (const m of archive.manifests) {
    try {
      for await (const line of segmentLines(join(dir, m.file)).lines) {
        try {
          yield JSON.parse(line) as AuditEntry;
        } catch { /* the chain check reports it */ }
      }
    } catch { /* the chain check reports it */ }
  }
}
