import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { GatewayConfig } from '../config/types.ts';
import type { Signer } from '../signing.ts';
import { makePseudonymizer, type AuditEntry, type PendingEntry } from './entry.ts';
import { createMemoryStore } from './memory-store.ts';
import { createSqliteStore } from './sqlite-store.ts';
import type { AuditStore } from './store.ts';
import { verifyStore, type VerifyReport } from './verify.ts';
import { AuditWriter } from './writer.ts';

export type { AuditEntry, PendingEntry, UpstreamCall, Outcome } from './entry.ts';
export { canonicalJson, entryHash, sha256Hex, sha256B64u, makePseudonymizer } from './entry.ts';
export type { AuditStore, AuditFilter, Checkpoint } from './store.ts';
export { verifyChain, verifyStore, type VerifyReport } from './verify.ts';
export { createSqliteStore } from './sqlite-store.ts';
export { createMemoryStore } from './memory-store.ts';

export interface AuditHooks {
  onCommit?: (batch: AuditEntry[], durationMs: number) => void;
  onError?: (error: unknown) => void;
}

/** The audit log as the pipeline sees it: record durably, pseudonymise, verify, checkpoint. */
export interface AuditLog {
  readonly store: AuditStore;
  /** Resolves once the entry is committed; rejects when it could not be. */
  record(pending: PendingEntry): Promise<AuditEntry>;
  pseudonymize(subjectId: string): string;
  verify(): Promise<VerifyReport>;
  checkpoint(): Promise<void>;
  close(): Promise<void>;
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
      return createPostgresStore({ url: cfg.audit.postgresUrl!, schema: cfg.audit.postgresSchema });
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
    await store.saveCheckpoint({ seq: head.seq, hash: head.hash, time, jws });
    lastCheckpointSeq = head.seq;
  };
  const checkpointSoon = () => {
    checkpointing ??= checkpoint().catch((e) => hooks.onError?.(e)).finally(() => { checkpointing = null; });
    return checkpointing;
  };

  const writer = new AuditWriter(store, {
    maxBatch: cfg.audit.maxBatch,
    onCommit(batch, ms) {
      hooks.onCommit?.(batch, ms);
      if (batch[batch.length - 1]!.seq - lastCheckpointSeq >= checkpointEveryEntries) void checkpointSoon();
    },
    onError: (e) => hooks.onError?.(e),
  });
  const timer = setInterval(() => void checkpointSoon(), checkpointEverySeconds * 1000);
  timer.unref();

  return {
    store,
    record: (p) => writer.append(p),
    pseudonymize,
    async verify() {
      return verifyStore(store, signer.jwks);
    },
    checkpoint: checkpointSoon,
    async close() {
      clearInterval(timer);
      await writer.flush();
      await checkpointSoon();
      await store.close();
    },
  };
}
