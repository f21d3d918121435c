/**
 * An audit log two days old, for a gateway the bench starts on it: `n` entries in the SQLite store
 * of `dataDir`, with a checkpoint every `every` entries signed two days ago by the gateway's own
 * key (written where the gateway reads it at start). With `audit.retention.hotDays: 1`, its
 * archiver has them to seal from its first pass, while the bench measures the request path.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { createSqliteStore, makePseudonymizer, type PendingEntry } from '../../gateway/audit/index.ts';
import { generatePrivateJwk, keyPairFromJwk } from '../../gateway/keys.ts';
import { createSigner } from '../../gateway/signing.ts';

export async function seedAgedLog(dataDir: string, n: number, every: number): Promise<void> {
  const jwk = await generatePrivateJwk('ES256');
  mkdirSync(join(dataDir, 'keys'), { recursive: true, mode: 0o700 });
  writeFileSync(join(dataDir, 'keys', 'gateway.private.jwk.json'), JSON.stringify(jwk), { mode: 0o600 });
  const signer = createSigner(await keyPairFromJwk(jwk));
  const store = createSqliteStore(join(dataDir, 'audit.sqlite'));
  const pseudonym = makePseudonymizer('bench-pseudonym-key-0123456789abcdef');
  const start = Date.now() - 2 * 86_400_000 - n * 10;
  const old = new Date(Date.now() - 2 * 86_400_000).toISOString();
  try {
    for (let i = 0; i < n; i += every) {
      const pending: PendingEntry[] = [];
      for (let j = i; j < Math.min(n, i + every); j++) {
        pending.push({
          id: randomUUID(), time: new Date(start + j * 10).toISOString(), client: 'portal', userId: null, purpose: 'PUBLIC_SERVICE_PREFILL', caseId: null,
          service: 'population.identity', version: 1, subjects: [pseudonym(`0010851${String(j % 20_000).padStart(5, '0')}`)], fields: ['population.identity:core'], outcome: 'released',
          status: 200, errorCode: null, upstreams: [{ agency: 'population', operation: 'cong-dan/tra-cuu', outcome: 'ok', errorCode: null, latencyMs: 3, reference: `TC${j}` }],
          latencyMs: 4, requestSha256: 'a'.repeat(64), responseSha256: 'b'.repeat(64),
        });
      }
      const committed = await store.appendBatch(pending);
      const last = committed.at(-1)!;
      await store.saveCheckpoint({ seq: last.seq, hash: last.hash, time: old, jws: await signer.signCheckpoint({ seq: last.seq, hash: last.hash, time: old }) });
    }
  } finally {
    await store.close();
  }
}
