/**
 * Offline verification of an NDJSON export (GET /audit/export), from files alone: every hash and
 * link, the checkpoints' signatures under the gateway's JWKS, and the export's own signed head,
 * its last line. A tail cut off takes the head line with it, or leaves entries short of it: either
 * way the export is reported truncated, with no flag to remember.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { JSONWebKeySet } from 'jose';
import type { AuditEntry } from './entry.ts';
import type { Checkpoint } from './store.ts';
import { verifyChain, type ArchiveSource, type VerifyReport } from './verify.ts';

/** A line that is neither an entry nor the head, or anything after the head. */
export class ExportLineError extends Error {
  constructor(readonly line: number, readonly afterSeq: number, why = 'is not a JSON audit entry') { super(`line ${line} ${why}`); }
}

const isCheckpoint = (h: unknown): h is Checkpoint => {
  const c = h as Checkpoint;
  return !!c && Number.isInteger(c.seq) && typeof c.hash === 'string' && typeof c.time === 'string' && typeof c.jws === 'string';
};

/** The last non-empty line of a file, read from its end (an export can be larger than memory). */
async function lastLine(file: string): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, 1 << 16);
    const { buffer } = await handle.read(Buffer.alloc(length), 0, length, size - length);
    return buffer.toString('utf8').trimEnd().split('\n').at(-1) ?? '';
  } finally {
    await handle.close();
  }
}

/** The export's signed head, when its last line is one. */
async function signedHeadOf(file: string): Promise<Checkpoint | null> {
  try {
    const value = JSON.parse(await lastLine(file)) as { head?: unknown };
    return value && typeof value === 'object' && isCheckpoint(value.head) ? value.head : null;
  } catch {
    return null;
  }
}

/** The entries of an export, read line by line; the head line must be the last. */
export async function* readExport(file: string): AsyncGenerator<AuditEntry> {
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  let line = 0;
  let lastSeq = 0;
  let headLine = false;
  for await (const text of lines) {
    line++;
    if (!text.trim()) continue;
    let value: any;
    try {
      value = JSON.parse(text);
    } catch {
      throw new ExportLineError(line, lastSeq);
    }
    if (headLine) throw new ExportLineError(line, lastSeq, 'follows the export\'s signed head');
    if (value && typeof value === 'object' && 'head' in value) {
      headLine = true;
      continue;
    }
    if (!value || typeof value !== 'object' || !Number.isInteger(value.seq)) throw new ExportLineError(line, lastSeq);
    lastSeq = value.seq;
    yield value as AuditEntry;
  }
}

/**
 * Verifies an export against `checkpoints` and its own signed head, checked like a checkpoint
 * (signature, and the entry at its seq has its hash). An export without its head line is
 * `truncated` after its last entry. `headSeq` (the X-Audit-Head-Seq it came with) is an extra check.
 */
export async function verifyExportFile(file: string, checkpoints: readonly Checkpoint[], jwks: JSONWebKeySet, headSeq: number | null = null, archive?: ArchiveSource): Promise<VerifyReport & { signedHead: { seq: number; time: string } | null }> {
  const head = await signedHeadOf(file);
  const all = head ? [...checkpoints.filter((c) => c.seq !== head.seq || c.jws !== head.jws), head].sort((a, b) => a.seq - b.seq) : checkpoints;
  // With an archive (`--archive DIR`), its segments come first and the export continues the chain after them.
  const report = await verifyChain(readExport(file), all, jwks, archive);
  const signedHead = head ? { seq: head.seq, time: head.time } : null;
  const cut = (r: VerifyReport) => ({ ...r, ok: false, problem: 'truncated' as const, firstBadSeq: r.headSeq + 1, signedHead });
  if (report.ok && !head) return cut(report);
  if (report.ok && headSeq !== null && report.headSeq < headSeq) return cut(report);
  return { ...report, signedHead };
}
