/**
 * Sealed archive segments on disk (docs/architecture.md, retention). A segment is two files in
 * the archive directory, named by the seqs they hold, padded so they sort:
 *
 *   000000000001-000000050000.ndjson.gz      the entries, one line each exactly as GET /audit/export
 *                                             writes it, gzip (several members, one per block of lines)
 *   000000000001-000000050000.manifest.json  what the segment is: its range, the hash it chains
 *                                             from and its last hash, the data file's SHA-256, the
 *                                             signed (and time-stamped) checkpoint it ends at
 *
 * Each file is written as `<name>.tmp`, fsync'd, renamed and its directory fsync'd, the data file
 * before the manifest: a manifest on disk means its data file is complete. A data file is a plain
 * gzip file (`zcat` reads it whole); the manifest's `blocks` say where each member starts, so a
 * search decompresses the one member that holds an entry, not the whole segment.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { createGunzip, gunzip, gzip } from 'node:zlib';
import type { AuditEntry } from './entry.ts';
import { RECORD_NAMES } from './record.ts';
import type { Checkpoint, SealedSegment } from './store.ts';

export const SEGMENT_FORMAT = 'gateway-audit-segment/1';
/** Lines per gzip member: what a search decompresses to read one entry (a few hundred KiB). */
const BLOCK_LINES = 500;
const SEQ_DIGITS = 12;

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

export interface SegmentManifest {
  format: typeof SEGMENT_FORMAT;
  firstSeq: number;
  lastSeq: number;
  entries: number;
  prevHash: string;
  lastHash: string;
  file: string;
  fileSha256: string;
  /** The signed checkpoint at `lastSeq`, as the store keeps it. */
  checkpoint: Checkpoint;
  /** Its RFC 3161 time-stamp (base64 DER token), or null when no authority is configured. */
  timestamp: { tsa: string; token: string; genTime: string } | null;
  /** In words, what the segment's end is proven by. */
  anchoring: string;
  /** Where each gzip member starts: [its first seq, its byte offset in the data file]. */
  blocks: [number, number][];
  sealedAt: string;
}

export const ANCHORED = 'the checkpoint at lastSeq, signed by the gateway and time-stamped (RFC 3161)';
export const SIGNED_ONLY = 'the checkpoint at lastSeq, signed by the gateway only (no time-stamping authority configured)';

export const segmentName = (firstSeq: number, lastSeq: number) => `${String(firstSeq).padStart(SEQ_DIGITS, '0')}-${String(lastSeq).padStart(SEQ_DIGITS, '0')}`;
export const dataFileName = (firstSeq: number, lastSeq: number) => `${segmentName(firstSeq, lastSeq)}.ndjson.gz`;
export const manifestFileName = (firstSeq: number, lastSeq: number) => `${segmentName(firstSeq, lastSeq)}.manifest.json`;

const FILE_NAME = /^(\d{12})-(\d{12})\.(ndjson\.gz|manifest\.json)(\.tmp)?$/;

/** A file of the archive directory, by its name; null for anything else. */
export function archiveFile(name: string): { firstSeq: number; lastSeq: number; kind: 'data' | 'manifest'; tmp: boolean } | null {
  const m = FILE_NAME.exec(name);
  if (!m) return null;
  return { firstSeq: Number(m[1]), lastSeq: Number(m[2]), kind: m[3] === 'ndjson.gz' ? 'data' : 'manifest', tmp: Boolean(m[4]) };
}

/** The archive directory's files of ours, with what their names say. */
export async function archiveFiles(dir: string) {
  const names = await readdir(dir).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? [] : Promise.reject(e)));
  return names.flatMap((name) => {
    const f = archiveFile(name);
    return f ? [{ name, ...f }] : [];
  }).sort((a, b) => a.firstSeq - b.firstSeq || a.name.localeCompare(b.name));
}

/** Makes a rename (or a removal) in `dir` durable. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** A named point of the sealing, where a test may stop the process (GATEWAY_ARCHIVE_TEST_PAUSE). */
export type SealPoint = 'data-partly-written' | 'data-written' | 'manifest-written';

export interface WrittenData { file: string; fileSha256: string; blocks: [number, number][]; entries: number }

/**
 * Writes the entries into the data file of seqs `firstSeq`..`lastSeq`: blocks compressed off the
 * event loop, `.tmp` fsync'd, renamed, directory fsync'd. The caller's iterable yields exactly
 * the range (it checks the chain as it goes).
 */
export async function writeSegmentData(dir: string, firstSeq: number, lastSeq: number, entries: AsyncIterable<AuditEntry>, pause: (point: SealPoint) => Promise<void>): Promise<WrittenData> {
  const file = dataFileName(firstSeq, lastSeq);
  const tmp = join(dir, `${file}.tmp`);
  const handle = await open(tmp, 'w', 0o640);
  const sha = createHash('sha256');
  const blocks: [number, number][] = [];
  let offset = 0;
  let count = 0;
  let lines: string[] = [];
  let blockFirst = firstSeq;
  const flush = async () => {
    if (!lines.length) return;
    const member = await gzipAsync(Buffer.from(`${lines.join('\n')}\n`));
    await handle.write(member);
    sha.update(member);
    blocks.push([blockFirst, offset]);
    offset += member.length;
    lines = [];
  };
  try {
    for await (const e of entries) {
      if (!lines.length) blockFirst = e.seq;
      lines.push(exportLine(e));
      count++;
      if (lines.length === BLOCK_LINES) {
        await flush();
        if (blocks.length === 1 && e.seq < lastSeq) await pause('data-partly-written');
      }
    }
    await flush();
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, join(dir, file));
  await syncDir(dir);
  return { file, fileSha256: sha.digest('hex'), blocks, entries: count };
}

/** Writes the manifest durably; once it is on disk the segment is sealed (the hot store may drop it). */
export async function writeManifest(dir: string, manifest: SegmentManifest): Promise<void> {
  const name = manifestFileName(manifest.firstSeq, manifest.lastSeq);
  const tmp = join(dir, `${name}.tmp`);
  const handle = await open(tmp, 'w', 0o640);
  try {
    await handle.writeFile(`${JSON.stringify(manifest, null, 2)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, join(dir, name));
  await syncDir(dir);
}

/** A manifest as it is on disk (unchecked: the verifier checks it); null when it is not there. */
export async function readManifest(dir: string, name: string): Promise<SegmentManifest | null> {
  let text: string;
  try {
    text = await readFile(join(dir, name), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  return JSON.parse(text) as SegmentManifest;
}

/** The record the store keeps of a sealed segment, from its manifest. */
export const sealedSegment = (m: SegmentManifest): SealedSegment => ({
  firstSeq: m.firstSeq, lastSeq: m.lastSeq, prevHash: m.prevHash, lastHash: m.lastHash, file: m.file, fileSha256: m.fileSha256, entries: m.entries, sealedAt: m.sealedAt,
});

/** SHA-256 (hex) of a file's bytes, streamed. */
export async function fileSha256(path: string): Promise<string> {
  const sha = createHash('sha256');
  for await (const chunk of createReadStream(path)) sha.update(chunk as Buffer);
  return sha.digest('hex');
}

/**
 * The lines of a data file, decompressed as they are read, and the SHA-256 of its bytes once the
 * lines are all read. A file that is not gzip throws while reading.
 */
export function segmentLines(path: string): { lines: AsyncIterable<string>; sha256: () => string } {
  const sha = createHash('sha256');
  const raw = createReadStream(path);
  raw.on('data', (chunk) => sha.update(chunk as Buffer));
  const gunzipped = raw.pipe(createGunzip());
  raw.on('error', (e) => gunzipped.destroy(e));
  return { lines: createInterface({ input: gunzipped, crlfDelay: Infinity }), sha256: () => sha.digest('hex') };
}

/** An entry as GET /audit/export writes it from a database store: its members in record order (record.ts), seq first. */
export const exportLine = (e: AuditEntry): string => JSON.stringify(Object.fromEntries(RECORD_NAMES.map((name) => [name, e[name]])));

/** The seq an export line starts with (`{"seq":N,…`), read without parsing the rest when it is there. */
function seqOfLine(line: string): number {
  if (line.startsWith('{"seq":')) return Number(line.slice(7, line.indexOf(',', 7)));
  try {
    return (JSON.parse(line) as { seq?: number }).seq ?? NaN;
  } catch {
    return NaN;
  }
}

/**
 * The entries of `seqs` from one segment: only the gzip members that hold them are read and
 * decompressed (the manifest's blocks); a segment whose blocks do not lead to them is read whole.
 */
export async function readSegmentEntries(dir: string, manifest: SegmentManifest, seqs: readonly number[]): Promise<Map<number, AuditEntry>> {
  const wanted = new Set(seqs);
  const found = new Map<number, AuditEntry>();
  const path = join(dir, manifest.file);
  const pick = (text: string) => {
    for (const line of text.split('\n')) {
      const seq = seqOfLine(line);
      if (wanted.has(seq) && !found.has(seq)) found.set(seq, JSON.parse(line) as AuditEntry);
    }
  };
  const blocks = Array.isArray(manifest.blocks) ? manifest.blocks : [];
  if (blocks.length) {
    const { size } = await stat(path);
    const members = new Set<number>();
    for (const seq of wanted) {
      // The last member starting at or before seq (blocks are in seq order).
      let lo = 0;
      let hi = blocks.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (blocks[mid]![0] <= seq) lo = mid;
        else hi = mid - 1;
      }
      if (blocks[lo]![0] <= seq) members.add(lo);
    }
    const handle = await open(path, 'r');
    try {
      for (const i of [...members].sort((a, b) => a - b)) {
        const start = blocks[i]![1];
        const end = blocks[i + 1]?.[1] ?? size;
        const { buffer } = await handle.read(Buffer.alloc(end - start), 0, end - start, start);
        pick((await gunzipAsync(buffer)).toString('utf8'));
      }
    } catch {
      // A block that is not where the manifest says: the whole file below.
    } finally {
      await handle.close();
    }
  }
  if (found.size < wanted.size) {
    for await (const line of segmentLines(path).lines) {
      if (wanted.has(seqOfLine(line)) && !found.has(seqOfLine(line))) found.set(seqOfLine(line), JSON.parse(line) as AuditEntry);
      if (found.size === wanted.size) break;
    }
  }
  return found;
}
