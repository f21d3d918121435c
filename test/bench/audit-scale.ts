/**
 * Audit at scale: builds a chain of N entries in a fresh SQLite store, then measures the
 * verifier's throughput and an auditor's search by subject (p50/p95).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { createSqliteStore, makePseudonymizer, sha256Hex, verifyStore, type PendingEntry } from '../../gateway/audit/index.ts';
import { entryCanonicalJson } from '../../gateway/audit/entry.ts';
import { generatePrivateJwk } from '../../gateway/keys.ts';
import { keyPairFromJwk } from '../../gateway/keys.ts';
import { createSigner } from '../../gateway/signing.ts';
import { archivedSearchLatency, type ArchivedSearchResult } from './archive-search.ts';

export interface AuditScaleResult {
  entries: number; buildSeconds: number; verifySeconds: number; verifiedPerSecond: number; rawSha256PerSecond: number; searchP50Ms: number; searchP95Ms: number; ok: boolean;
  /** The same search once all but the head are sealed into archive segments (archive-search.ts). */
  archived: ArchivedSearchResult;
}

/** How many of the chain's entries the raw SHA-256 rate is measured on (their canonical JSON held in memory). */
const RAW_SAMPLE = 50_000;

/**
 * The machine's own ceiling for the verifier: SHA-256 alone over the canonical JSON of the same
 * entries (read from the store first, so only the hashing is timed), in entries a second.
 */
async function rawSha256Rate(store: ReturnType<typeof createSqliteStore>): Promise<number> {
  const texts: string[] = [];
  for await (const e of store.scan(1)) {
    texts.push(entryCanonicalJson(e));
    if (texts.length === RAW_SAMPLE) break;
  }
  let hashed = 0;
  const t = performance.now();
  // At least a second of hashing, so the figure is not one timer tick.
  while (performance.now() - t < 1000) {
    for (const text of texts) sha256Hex(text);
    hashed += texts.length;
  }
  return hashed / ((performance.now() - t) / 1000);
}

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

export async function auditAtScale(n: number): Promise<AuditScaleResult> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-bench-audit-'));
  try {
    const store = createSqliteStore(join(dir, 'audit.sqlite'));
    const pseudonym = makePseudonymizer('bench-pseudonym-key-0123456789abcdef');
    const people = Array.from({ length: 20_000 }, (_, i) => pseudonym(`0010851${String(i).padStart(5, '0')}`));
    const clients = ['portal', 'land-office', 'auditor'];
    const services = ['population.identity', 'land.parcel', 'tax.obligations', 'justice.secured-transactions', 'land.title-verification', 'portal.prefill'];
    const t0 = performance.now();
    const start = Date.parse('2026-01-01T00:00:00Z');
    const batch = 5000;
    for (let i = 0; i < n; i += batch) {
      const pending: PendingEntry[] = [];
      for (let j = i; j < Math.min(n, i + batch); j++) {
        pending.push({
          id: randomUUID(), time: new Date(start + j * 25).toISOString(), client: clients[j % 3]!, userId: j % 3 === 1 ? 'officer-1' : null,
          purpose: 'LAND_TRANSFER_REGISTRATION', caseId: j % 3 === 1 ? `HS-2026-${j % 9999}` : null, service: services[j % services.length]!, version: 1,
          subjects: [people[(j * 7919) % people.length]!], fields: ['population.identity:core'], outcome: j % 17 === 0 ? 'denied' : 'released',
          status: j % 17 === 0 ? 403 : 200, errorCode: j % 17 === 0 ? 'FORBIDDEN_PURPOSE' : null,
          upstreams: [{ agency: 'population', operation: 'cong-dan/tra-cuu', outcome: 'ok', errorCode: null, latencyMs: 3, reference: `TC${j}` }],
          latencyMs: 4, requestSha256: 'a'.repeat(64), responseSha256: 'b'.repeat(64),
        });
      }
      await store.appendBatch(pending);
    }
    const buildSeconds = (performance.now() - t0) / 1000;
    const signer = createSigner(await keyPairFromJwk(await generatePrivateJwk('ES256')));
    const t1 = performance.now();
    const report = await verifyStore(store, signer.jwks);
    const verifySeconds = (performance.now() - t1) / 1000;
    const rawSha256PerSecond = await rawSha256Rate(store);
    const times: number[] = [];
    for (let k = 0; k < 400; k++) {
      const subject = people[(k * 104729) % people.length]!;
      const s = performance.now();
      await store.query({ subject }, 50);
      times.push(performance.now() - s);
    }
    // Then the same searches once the entries are archived: the subject index gives the seqs, one gzip member per entry is read.
    const archived = await archivedSearchLatency(store, people, { signer, dir: join(dir, 'archive') });
    await store.close();
    return { entries: n, buildSeconds, verifySeconds, verifiedPerSecond: n / verifySeconds, rawSha256PerSecond, searchP50Ms: percentile(times, 50), searchP95Ms: percentile(times, 95), ok: report.ok && report.entries === n, archived };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const n = Number(process.argv[2] ?? 1_000_000);
  console.log(JSON.stringify(await auditAtScale(n), null, 2));
}
