/**
 * Retention of the audit log (docs/architecture.md, retention): entries older than
 * `audit.retention.hotDays` are sealed into archive segments (archive-files.ts) and only then
 * dropped from the hot store. A segment ends at a signed checkpoint (time-stamped too, when an
 * authority is configured) signed before the cutoff, so every entry it holds was written before
 * that checkpoint was; it never holds the chain's head entry, which stays hot.
 *
 * The order makes a SIGKILL at any point harmless: the data file (`.tmp`, fsync, rename, fsync
 * of the directory), then its manifest the same way, then one store transaction that records the
 * segment and deletes its entries. A pass first recovers what a killed one left: `.tmp` files are
 * removed, a data file without its manifest is removed (its entries are still hot and are sealed
 * again), and a manifest whose segment the store has not recorded is checked (its data file's
 * hash; the store checks the hot rows' first and last hashes) and its drop completed. One
 * archiver runs at a time per chain (ArchiveIndex.exclusive); a pass with nothing old enough does
 * nothing. Nothing here is in a request's path.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Gauge } from 'prom-client';
import type { GatewayConfig } from '../config/types.ts';
import { ConfigError } from '../config/errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { entryHash, GENESIS, type AuditEntry } from './entry.ts';
import {
  ANCHORED, archiveFiles, dataFileName, fileSha256, readManifest, SEGMENT_FORMAT, sealedSegment, SIGNED_ONLY, syncDir,
  writeManifest, writeSegmentData, type SealPoint, type SegmentManifest,
} from './archive-files.ts';
import type { ArchiveIndex, AuditStore, Checkpoint, SealedSegment } from './store.ts';
import type { CheckpointTimestamp } from './timestamps.ts';

const DAY_MS = 86_400_000;

export interface ArchiveSettings {
  dir: string;
  hotDays: number;
  maxSegmentEntries: number;
  /** A segment may end only at a checkpoint that has its time-stamp (an authority is configured). */
  stamped: boolean;
}

/** The archive directory: `audit.archive.dir`, else `<dataDir>/archive`. */
export const archiveDir = (cfg: GatewayConfig): string => cfg.audit.archive.dir ?? join(cfg.dataDir, 'archive');

/** The archiving settings, or null while retention is off (`audit.retention.hotDays` absent). */
export function archiveSettings(cfg: GatewayConfig): ArchiveSettings | null {
  const hotDays = cfg.audit.retention.hotDays;
  if (hotDays === undefined) return null;
  return { dir: archiveDir(cfg), hotDays, maxSegmentEntries: cfg.audit.archive.maxSegmentEntries, stamped: cfg.audit.timestamping.authorities.length > 0 };
}

/** Retention on needs a store that can archive and a directory it can write: checked at start, naming the key. */
export function checkArchiving(settings: ArchiveSettings, store: AuditStore): ArchiveIndex {
  if (!store.archive) throw new ConfigError(`/audit/retention/hotDays: the ${store.kind} audit store cannot archive`);
  if (settings.stamped && !store.timestamps) throw new ConfigError(`/audit/retention/hotDays: the ${store.kind} audit store cannot keep the time-stamps segments end at`);
  const probe = join(settings.dir, `.write-probe-${process.pid}`);
  try {
    mkdirSync(settings.dir, { recursive: true, mode: 0o750 });
    writeFileSync(probe, 'probe');
    rmSync(probe, { force: true });
  } catch (e) {
    throw new ConfigError(`/audit/archive/dir: ${settings.dir} is not a writable directory (${(e as NodeJS.ErrnoException).code ?? 'error'}); archiving (audit.retention.hotDays) needs one`);
  }
  return store.archive;
}

/** Stops the process at a named point of the sealing, for the crash tests only (GATEWAY_ARCHIVE_TEST_PAUSE=<point>). */
function testPause(dir: string): (point: SealPoint) => Promise<void> {
  const at = process.env.GATEWAY_ARCHIVE_TEST_PAUSE;
  if (!at) return async () => {};
  return async (point) => {
    if (point !== at) return;
    writeFileSync(join(dir, `.paused-${point}`), String(process.pid));
    await new Promise(() => setInterval(() => {}, 60_000));
  };
}

export class ArchiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArchiveError';
  }
}

/** What one pass did. `ran: false`: another archiver of this chain was running, so this one did nothing. */
export interface PassResult {
  ran: boolean;
  /** Segments whose manifest a killed pass had made durable, their drop completed now. */
  recovered: SealedSegment[];
  sealed: SealedSegment[];
  /** Files a killed pass left unfinished, removed (their entries are still in the hot store). */
  removed: string[];
}

/** Yields entries `first`..`last` of the hot chain, refusing any that is out of place or does not hash to its hash. */
async function* intactRange(entries: AsyncIterable<AuditEntry>, first: number, last: number, prevHash: string, end: { hash: string }) {
  let seq = first;
  let prev = prevHash;
  for await (const e of entries) {
    if (e.seq > last) break;
    if (e.seq !== seq || e.prevHash !== prev || entryHash(e) !== e.hash) throw new ArchiveError(`the hot chain is not intact at seq ${seq}: nothing sealed (run gateway audit verify)`);
    prev = e.hash;
    seq++;
    yield e;
  }
  if (seq !== last + 1) throw new ArchiveError(`the hot store lacks seq ${seq}: nothing sealed`);
  end.hash = prev;
}

/** Finishes what a killed pass left (see the module's comment). */
async function recover(index: ArchiveIndex, dir: string, result: PassResult): Promise<void> {
  const files = await archiveFiles(dir);
  for (const f of files.filter((x) => x.tmp)) {
    await rm(join(dir, f.name), { force: true });
    result.removed.push(f.name);
  }
  const recorded = new Set((await index.segments()).map((s) => s.file));
  const manifests = files.filter((f) => !f.tmp && f.kind === 'manifest' && !recorded.has(dataFileName(f.firstSeq, f.lastSeq)));
  const kept = new Set<string>();
  for (const f of manifests) {
    const manifest = await readManifest(dir, f.name).catch(() => null);
    const data = dataFileName(f.firstSeq, f.lastSeq);
    const complete = manifest?.format === SEGMENT_FORMAT && manifest.file === data && manifest.firstSeq === f.firstSeq && manifest.lastSeq === f.lastSeq
      && (await fileSha256(join(dir, data)).catch(() => null)) === manifest.fileSha256;
    if (!complete) {
      // Not a segment this archiver finished: its entries are still hot and are sealed again.
      await rm(join(dir, f.name), { force: true });
      result.removed.push(f.name);
      continue;
    }
    // The store checks the hot rows against it (range, first prevHash, last hash) before dropping them.
    await index.dropThrough(sealedSegment(manifest));
    result.recovered.push(sealedSegment(manifest));
    kept.add(data);
  }
  for (const f of files.filter((x) => !x.tmp && x.kind === 'data' && !recorded.has(x.name) && !kept.has(x.name))) {
    await rm(join(dir, f.name), { force: true });
    result.removed.push(f.name);
  }
  if (result.removed.length) await syncDir(dir);
}

/** The checkpoint the next segment ends at, if any is old enough: the furthest within maxSegmentEntries, else the nearest. */
function nextEnd(checkpoints: readonly Checkpoint[], after: number, headSeq: number, cutoff: number, max: number, stamps: Map<number, CheckpointTimestamp> | null): Checkpoint | null {
  const candidates = checkpoints.filter((c) => c.seq > after && c.seq < headSeq && Date.parse(c.time) < cutoff && (!stamps || stamps.has(c.seq)));
  return candidates.filter((c) => c.seq - after <= max).at(-1) ?? candidates[0] ?? null;
}

/** Seals one segment: data file, manifest, then the store's drop. */
async function seal(store: AuditStore, index: ArchiveIndex, dir: string, after: { seq: number; hash: string }, end: Checkpoint, stamp: CheckpointTimestamp | null, pause: (p: SealPoint) => Promise<void>): Promise<SealedSegment> {
  const first = after.seq + 1;
  const last = { hash: '' };
  const data = await writeSegmentData(dir, first, end.seq, intactRange(store.scan(first), first, end.seq, after.hash, last), pause);
  if (last.hash !== end.hash) throw new ArchiveError(`the checkpoint at seq ${end.seq} does not hold the chain's hash there: nothing sealed (run gateway audit verify)`);
  await pause('data-written');
  const manifest: SegmentManifest = {
    format: SEGMENT_FORMAT, firstSeq: first, lastSeq: end.seq, entries: data.entries, prevHash: after.hash, lastHash: end.hash,
    file: data.file, fileSha256: data.fileSha256, checkpoint: { seq: end.seq, hash: end.hash, time: end.time, jws: end.jws },
    timestamp: stamp ? { tsa: stamp.tsa, token: stamp.token, genTime: stamp.time } : null, anchoring: stamp ? ANCHORED : SIGNED_ONLY,
    blocks: data.blocks, sealedAt: new Date().toISOString(),
  };
  await writeManifest(dir, manifest);
  await pause('manifest-written');
  await index.dropThrough(sealedSegment(manifest));
  return sealedSegment(manifest);
}

/**
 * One archiving pass now: recovers what a killed pass left, then seals every segment that is old
 * enough, oldest first. `ran: false` when another archiver of this chain is running.
 */
export async function archivePass(store: AuditStore, settings: ArchiveSettings, options: { logger?: Pick<Logger, 'info'>; now?: () => number } = {}): Promise<PassResult> {
  const index = checkArchiving(settings, store);
  const now = options.now ?? Date.now;
  const pause = testPause(settings.dir);
  const result: PassResult = { ran: true, recovered: [], sealed: [], removed: [] };
  const outcome = await index.exclusive(async () => {
    await recover(index, settings.dir, result);
    for (const s of result.recovered) options.logger?.info({ firstSeq: s.firstSeq, lastSeq: s.lastSeq, entries: s.entries, file: s.file, recovered: true }, 'audit segment sealed (its drop from the hot store completed after an interrupted pass)');
    for (;;) {
      const previous = (await index.segments()).at(-1);
      const after = previous ? { seq: previous.lastSeq, hash: previous.lastHash } : GENESIS;
      const stamps = settings.stamped ? await store.timestamps!.all() : null;
      const end = nextEnd(await store.checkpoints(), after.seq, (await store.head()).seq, now() - settings.hotDays * DAY_MS, settings.maxSegmentEntries, stamps);
      if (!end) return;
      const segment = await seal(store, index, settings.dir, after, end, stamps?.get(end.seq) ?? null, pause);
      result.sealed.push(segment);
      options.logger?.info({ firstSeq: segment.firstSeq, lastSeq: segment.lastSeq, entries: segment.entries, file: segment.file, stamped: Boolean(stamps) }, 'audit segment sealed');
    }
  });
  return outcome.ran ? result : { ...result, ran: false };
}

/** What the metrics and the archive listing say about retention. */
export interface ArchiveStatus { segments: number; archivedEntries: number; lastSealedAt: string | null; oldestHot: { seq: number; time: string } | null }

export interface Archiver {
  readonly enabled: boolean;
  /** One pass now (the background timer's, joined when one runs); null when off. */
  runOnce(): Promise<PassResult | null>;
  close(): Promise<void>;
}

const OFF: Archiver = { enabled: false, runOnce: async () => null, close: async () => {} };

/**
 * The background archiver of a running gateway: a pass every `audit.archive.everySeconds` (the
 * first soon after start), never in a request's path; a failure is logged and retried at the
 * next look. Off, and nothing checked, while retention is off.
 */
export function createArchiver(cfg: GatewayConfig, store: AuditStore, { logger, metrics, now = Date.now }: { logger: Logger; metrics: Metrics; now?: () => number }): Archiver {
  const settings = archiveSettings(cfg);
  if (!settings) return OFF;
  const index = checkArchiving(settings, store);
  logger.info({ archiving: 'on', hotDays: settings.hotDays, dir: settings.dir, everySeconds: cfg.audit.archive.everySeconds }, 'audit retention on: entries past audit.retention.hotDays are sealed into archive segments');
  let status: ArchiveStatus = { segments: 0, archivedEntries: 0, lastSealedAt: null, oldestHot: null };
  const refresh = async () => {
    const [segments, oldestHot] = await Promise.all([index.segments(), index.oldestHot()]);
    status = { segments: segments.length, archivedEntries: segments.reduce((n, s) => n + s.entries, 0), lastSealedAt: segments.at(-1)?.sealedAt ?? null, oldestHot };
  };
  new Gauge({ name: 'gateway_audit_archived_entries', help: 'Entries sealed into archive segments (and dropped from the hot store), all segments together', registers: [metrics.registry], collect() { this.set(status.archivedEntries); } });
  new Gauge({ name: 'gateway_audit_archive_segments', help: 'Sealed archive segments', registers: [metrics.registry], collect() { this.set(status.segments); } });
  new Gauge({ name: 'gateway_audit_last_archive_timestamp_seconds', help: 'When the last archive segment was sealed (Unix seconds; 0: none yet)', registers: [metrics.registry], collect() { this.set(status.lastSealedAt ? Date.parse(status.lastSealedAt) / 1000 : 0); } });
  new Gauge({ name: 'gateway_audit_hot_oldest_entry_age_seconds', help: 'Age of the oldest entry still in the hot store (0: none)', registers: [metrics.registry], collect() { this.set(status.oldestHot ? Math.max(0, (now() - Date.parse(status.oldestHot.time)) / 1000) : 0); } });

  let running: Promise<PassResult | null> | null = null;
  let closed = false;
  let failing = false;
  const run = (): Promise<PassResult | null> => {
    if (closed) return Promise.resolve(null);
    running ??= (async () => {
      try {
        const result = await archivePass(store, settings, { logger, now });
        if (failing) logger.info('audit archiving works again');
        failing = false;
        return result;
      } catch (e) {
        if (!failing) logger.error({ err: e }, 'audit archiving failed; the entries stay in the hot store, retried at the next look');
        failing = true;
        return null;
      } finally {
        await refresh().catch(() => {});
      }
    })().finally(() => { running = null; });
    return running;
  };
  void refresh().catch(() => {});
  const first = setTimeout(() => void run(), 1000);
  first.unref();
  const timer = setInterval(() => void run(), cfg.audit.archive.everySeconds * 1000);
  timer.unref();
  return {
    enabled: true,
    runOnce: run,
    async close() {
      closed = true;
      clearTimeout(first);
      clearInterval(timer);
      await running;
    },
  };
}
