import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { GatewayConfig } from '../config/types.ts';
import type { Signer } from '../signing.ts';
import { makePseudonymizer, type AuditEntry, type PendingEntry } from './entry.ts';
import { createMemoryStore } from './memory-store.ts';
import { createSqliteStore } from './sqlite-store.ts';
import type { AuditStore, Checkpoint } from './store.ts';
import { verifyStore, type VerifyReport } from './verify.ts';
import { AuditWriter } from './writer.ts';
import { archiveReader, type ArchiveReader } from './archive-search.ts';
import { archiveDir } from './archiver.ts';
import { loadAuthorities } from './anchoring.ts';
import { verifyHotAnchors, type AnchoredReport } from './anchor-verify.ts';

export type { AuditEntry, PendingEntry, UpstreamCall, Outcome } from './entry.ts';
export { canonicalJson, entryHash, sha256Hex, sha256B64u, makePseudonymizer } from './entry.ts';
export type { AuditStore, AuditFilter, Checkpoint } from './store.ts';
export { verifyChain, verifyStore, type VerifyReport } from './verify.ts';
export { createSqliteStore } from './sqlite-store.ts';
export { createMemoryStore } from './memory-store.ts';

export interface AuditHooks {
  onCommit?: (batch: AuditEntry[], durationMs: number) => void;
  onError?: (error: unknown) => void;
  /** A checkpoint was signed and saved (the time-stamper takes it from here). */
  onCheckpoint?: (cp: Checkpoint) => void;
}

/** The audit log as the pipeline sees it: record durably, pseudonymise, verify, checkpoint. */
export interface AuditLog {
  readonly store: AuditStore;
  /** The archived segments' reader: searches by personal id reach into them (absent: a store that cannot archive). */
  readonly archive?: ArchiveReader;
  /** Resolves once the entry is committed; rejects when it could not be. */
  record(pending: PendingEntry): Promise<AuditEntry>;
  pseudonymize(subjectId: string): string;
  /** The chain, its archives and (with an authority configured) its checkpoints' time-stamps. */
  verify(): Promise<VerifyReport | AnchoredReport>;
  checkpoint(): Promise<void>;
  /** The chain's head now, signed like a checkpoint (not stored): what an export ends with. */
  signedHead(): Promise<Checkpoint>;
  /** Whether the store can commit now (readiness); answers within a few seconds whatever the store does. */
  canCommit(): Promise<boolean>;
  close(): Promise<void>;
}

/** A recent commit vouches for the store this long; after that, or after a failure, a probe decides. */
const QUIET_MS = 5000;
/** A probe's verdict stands this long, so a load balancer polling often costs one probe a second. */
const PROBE_CACHE_MS = 1000;
/** A probe that has not answered by then counts as a failure (a stalled store). */
const PROBE_TIMEOUT_MS = 2000;

/**
 * What readiness reports: commits as they succeed or fail, and when none succeeded lately (an
 * idle gateway, or one whose last commit failed), a probe that commits a write of a batch's size
 * outside the chain. A full disk, a database that is down or stalled turns it false within a few
 * seconds, and true again once a write goes through. One probe runs at a time: a stalled store is
 * not sent a pile of them.
 */
function commitHealth(store: AuditStore, now = () => Date.now()) {
  let lastOk = 0;
  let lastFailure = 0;
  let probed: { at: number; verdict: Promise<boolean> } | null = null;
  let running: Promise<void> | null = null;
  const probe = (): Promise<boolean> => {
    running ??= store.probe().then(() => { lastOk = now(); }, () => { lastFailure = now(); }).finally(() => { running = null; });
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, PROBE_TIMEOUT_MS).unref());
    return Promise.race([running.then(() => lastOk >= lastFailure), timeout.then(() => false)]);
  };
  return {
    committed() { lastOk = now(); },
    failed() { lastFailure = now(); },
    canCommit(): Promise<boolean> {
      const t = now();
      if (lastOk > lastFailure && t - lastOk < QUIET_MS) return Promise.resolve(true);
      if (!probed || t - probed.at >= PROBE_CACHE_MS) probed = { at: t, verdict: probe() };
      return probed.verdict;
    },
  };
}

/** The pseudonym key: from config (or its environment), else generated once under dataDir. */
function pseudonymKey(cfg: GatewayConfig): string {
  if (cfg.audit.pseudonymKey) return cfg.audit.pseudonymKey;
  const file = join(cfg.dataDir, 'keys', 'pseudonym.key');
  if (!existsSync(file)) {
    mkdirSync(join(cfg.dataDir, 'keys'), { recursive: true, mode: 0o700 });
    writeFileSync(file, randomBytes(32).toString('base64url'), { mode: 0o600, flag: 'wx' });
  }
  return readFileSync(file, 'utf8').trim();
}

export async function openStore(cfg: GatewayConfig): Promise<AuditStore> {
  switch (cfg.audit.store) {
    case 'memory':
      return createMemoryStore();
    case 'postgres': {
      const { createPostgresStore } = await import('./postgres-store.ts');
      const { postgresUrl: url, postgresSchema: schema, postgresConnectTimeoutMs: connectTimeoutMs, postgresQueryTimeoutMs: queryTimeoutMs } = cfg.audit;
      return createPostgresStore({ url: url!, schema, connectTimeoutMs, queryTimeoutMs });
    }
    default:
      return createSqliteStore(cfg.audit.sqliteFile ?? join(cfg.dataDir, 'audit.sqlite'));
  }
}

export async function createAuditLog(cfg: GatewayConfig, signer: Signer, store: AuditStore, hooks: AuditHooks = {}): Promise<AuditLog> {
  const pseudonymize = makePseudonymizer(pseudonymKey(cfg));
  const { checkpointEveryEntries, checkpointEverySeconds } = cfg.audit;
  let lastCheckpointSeq = (await store.checkpoints()).at(-1)?.seq ?? 0;
  let checkpointing: Promise<void> | null = null;

  const checkpoint = async () => {
    const head = await store.head();
    if (head.seq <= lastCheckpointSeq) return;
    const time = new Date().toISOString();
    const jws = await signer.signCheckpoint({ seq: head.seq, hash: head.hash, time });
    const cp = { seq: head.seq, hash: head.hash, time, jws };
    await store.saveCheckpoint(cp);
    lastCheckpointSeq = head.seq;
    hooks.onCheckpoint?.(cp);
  };
  const checkpointSoon = () => {
    checkpointing ??= checkpoint().catch((e) => hooks.onError?.(e)).finally(() => { checkpointing = null; });
    return checkpointing;
  };

  const health = commitHealth(store);
  const writer = new AuditWriter(store, {
    maxBatch: cfg.audit.maxBatch,
    onCommit(batch, ms) {
      health.committed();
      hooks.onCommit?.(batch, ms);
      if (batch[batch.length - 1]!.seq - lastCheckpointSeq >= checkpointEveryEntries) void checkpointSoon();
    },
    onError(e) {
      health.failed();
      hooks.onError?.(e);
    },
  });
  const timer = setInterval(() => void checkpointSoon(), checkpointEverySeconds * 1000);
  timer.unref();

  const archiveOptions = () => {
    const { authorities, toleranceSeconds } = cfg.audit.timestamping;
    // The configured authorities' certificates check the time-stamps the segments' manifests carry.
    const certificates = authorities.length ? loadAuthorities(cfg.audit.timestamping).flatMap((a) => a.certificates) : undefined;
    return { archiveDir: archiveDir(cfg), certificates, toleranceSeconds };
  };

  return {
    store,
    archive: store.archive ? archiveReader(store as AuditStore & { archive: NonNullable<AuditStore['archive']> }, archiveDir(cfg)) : undefined,
    record: (p) => writer.append(p),
    pseudonymize,
    async verify() {
      const options = archiveOptions();
      const chain = await verifyStore(store, signer.jwks, options);
      return options.certificates ? verifyHotAnchors(store, chain, signer.jwks, options.certificates, options.toleranceSeconds) : chain;
    },
    checkpoint: checkpointSoon,
    async signedHead() {
      const head = await store.head();
      const time = new Date().toISOString();
      return { seq: head.seq, hash: head.hash, time, jws: await signer.signCheckpoint({ seq: head.seq, hash: head.hash, time }) };
    },
    canCommit: health.canCommit,
    async close() {
      clearInterval(timer);
      await writer.flush();
      // A checkpoint already running may have read the head before the last batch: wait for it, then sign the head as it is now.
      await checkpointing;
      await checkpoint().catch((e) => hooks.onError?.(e));
      await store.close();
    },
  };
}
