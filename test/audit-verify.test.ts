/**
 * The SQLite store verifies its chain in parallel segments with a shortcut (canonical JSON built
 * by SQLite, arrays spliced as stored). Its verdict must be exactly the one the plain verifier
 * (every row rebuilt into an entry and re-hashed) gives, on an intact chain and on every kind of
 * tampering, including rows the shortcut cannot take and tampering at segment boundaries.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqliteStore, entryHash, verifyChain, verifyStore, type PendingEntry } from '../gateway/audit/index.ts';
import { generatePrivateJwk, keyPairFromJwk } from '../gateway/keys.ts';
import { createSigner, type Signer } from '../gateway/signing.ts';

/** Enough entries for the parallel path (it starts at 50,000). */
const N = 60_000;
const ODD_TEXT = ['quote " inside', 'back\\slash', 'tab\tand\nnewline', 'lone \ud800 surrogate', 'NUL \u0000 byte', 'Nguyễn Thị Ánh', '𝕏 astral'];

function pendingEntry(j: number): PendingEntry {
  const odd = j % 997 === 0 ? ODD_TEXT[(j / 997) % ODD_TEXT.length]! : null;
  return {
    id: `00000000-0000-4000-8000-${String(j).padStart(12, '0')}`, time: new Date(Date.UTC(2026, 0, 1) + j * 1000).toISOString(),
    client: j % 2 ? 'portal' : 'land-office', userId: odd ?? (j % 3 ? null : `officer-${j % 7}`), purpose: 'LAND_TRANSFER_REGISTRATION',
    caseId: j % 2 ? null : `HS-2026-${j}`, service: 'population.identity', version: j % 5 ? 1 : null,
    subjects: j % 4 ? [`${j}`.padStart(64, 'a')] : [], fields: ['population.identity:core'], outcome: j % 11 ? 'released' : 'denied',
    status: j % 11 ? 200 : 403, errorCode: j % 11 ? null : 'FORBIDDEN_PURPOSE',
    upstreams: j % 6 ? [{ agency: 'population', operation: 'cong-dan/tra-cuu', outcome: 'ok', errorCode: null, latencyMs: j % 40, reference: odd ?? `TC${j}` }] : [],
    latencyMs: j % 50, requestSha256: 'a'.repeat(64), responseSha256: j % 11 ? 'b'.repeat(64) : null,
  };
}

let dir: string;
let original: string;
let signer: Signer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gw-verify-'));
  original = join(dir, 'audit.sqlite');
  signer = createSigner(await keyPairFromJwk(await generatePrivateJwk('ES256')));
  const store = createSqliteStore(original);
  for (let i = 0; i < N; i += 5000) await store.appendBatch(Array.from({ length: 5000 }, (_, k) => pendingEntry(i + k)));
  const head = await store.head();
  const time = new Date().toISOString();
  await store.saveCheckpoint({ seq: head.seq, hash: head.hash, time, jws: await signer.signCheckpoint({ seq: head.seq, hash: head.hash, time }) });
  await store.close();
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Both verdicts on a tampered copy of the store. */
async function verdicts(tamper: (db: Database.Database) => void) {
  const copy = join(dir, `copy-${Math.random().toString(36).slice(2)}.sqlite`);
  copyFileSync(original, copy);
  const db = new Database(copy);
  tamper(db);
  db.close();
  const store = createSqliteStore(copy);
  try {
    const fast = await verifyStore(store, signer.jwks);
    const plain = await verifyChain(store.scan(1), await store.checkpoints(), signer.jwks);
    return { fast, plain };
  } finally {
    await store.close();
  }
}

const rowOf = (db: Database.Database, seq: number) => db.prepare('SELECT * FROM audit_entries WHERE seq = ?').get(seq) as Record<string, unknown>;

describe('parallel chain verification of the SQLite store', () => {
  it('verifies an intact chain of odd entries, as the plain verifier does', async () => {
    const { fast, plain } = await verdicts(() => {});
    expect(fast).toEqual(plain);
    expect(fast).toMatchObject({ ok: true, entries: N, headSeq: N, lastCheckpoint: { seq: N } });
  });

  it('agrees with the plain verifier on an integer stored as text (which reads back as the same number)', async () => {
    const { fast, plain } = await verdicts((db) => db.prepare("UPDATE audit_entries SET version = '1' WHERE seq = 33333").run());
    expect(fast).toEqual(plain);
    expect(fast.ok).toBe(true);
  });

  it('agrees with the plain verifier on an array stored with escapes that decode to the same value', async () => {
    const { fast, plain } = await verdicts((db) => db.prepare(`UPDATE audit_entries SET fields = '["population.identity:co\\u0072e"]' WHERE seq = 31000`).run());
    expect(fast).toEqual(plain);
    expect(fast.ok).toBe(true);
  });

  it('still verifies rows written before arrays were stored canonically', async () => {
    const { fast, plain } = await verdicts((db) => {
      // Member order as JSON.stringify wrote it: the same JSON value, not the hashed text.
      for (const seq of [2, 25_001, 59_999]) {
        const row = rowOf(db, seq);
        const ups = JSON.parse(row.upstreams as string) as Record<string, unknown>[];
        db.prepare('UPDATE audit_entries SET upstreams = ? WHERE seq = ?').run(JSON.stringify(ups.map((u) => ({ operation: u.operation, agency: u.agency, ...u }))), seq);
      }
    });
    expect(fast).toEqual(plain);
    expect(fast.ok).toBe(true);
  });

  const tampering: [string, (db: Database.Database) => void, Partial<{ problem: string; firstBadSeq: number }>][] = [
    ['an edited row', (db) => db.prepare("UPDATE audit_entries SET client = 'someone-else' WHERE seq = 40000").run(), { problem: 'hash_mismatch', firstBadSeq: 40000 }],
    ['text in an integer column', (db) => db.prepare("UPDATE audit_entries SET latency_ms = 'x' || latency_ms WHERE seq = 46203").run(), { problem: 'hash_mismatch', firstBadSeq: 46203 }],
    ['an array column with a value changed behind an escape', (db) => db.prepare(`UPDATE audit_entries SET fields = '["population.identity:co\\u0052e"]' WHERE seq = 31000`).run(), { problem: 'hash_mismatch', firstBadSeq: 31000 }],
    ['a row deleted at a segment boundary', (db) => db.prepare('DELETE FROM audit_entries WHERE seq = 30001').run(), { problem: 'missing_entry', firstBadSeq: 30001 }],
    ['the last row of a segment deleted', (db) => db.prepare('DELETE FROM audit_entries WHERE seq = 15000').run(), { problem: 'missing_entry', firstBadSeq: 15000 }],
    ['a row re-hashed after an edit (link breaks after it)', (db) => {
      const row = rowOf(db, 45000);
      const forged = { seq: 45000, id: row.id, time: row.time, client: 'forged', userId: row.user_id, purpose: row.purpose, caseId: row.case_id, service: row.service, version: row.version, subjects: JSON.parse(row.subjects as string), fields: JSON.parse(row.fields as string), outcome: row.outcome, status: row.status, errorCode: row.error_code, upstreams: JSON.parse(row.upstreams as string), latencyMs: row.latency_ms, requestSha256: row.request_sha256, responseSha256: row.response_sha256, prevHash: row.prev_hash };
      db.prepare("UPDATE audit_entries SET client = 'forged', hash = ? WHERE seq = 45000").run(entryHash(forged as never));
    }, { problem: 'broken_link', firstBadSeq: 45001 }],
    ['the first row of a segment re-hashed (the break is at the boundary)', (db) => {
      const row = rowOf(db, 15001);
      db.prepare('UPDATE audit_entries SET prev_hash = ? WHERE seq = 15001').run('f'.repeat(64));
      const fixed = { ...Object.fromEntries(Object.entries({ seq: 15001, id: row.id, time: row.time, client: row.client, userId: row.user_id, purpose: row.purpose, caseId: row.case_id, service: row.service, version: row.version, subjects: JSON.parse(row.subjects as string), fields: JSON.parse(row.fields as string), outcome: row.outcome, status: row.status, errorCode: row.error_code, upstreams: JSON.parse(row.upstreams as string), latencyMs: row.latency_ms, requestSha256: row.request_sha256, responseSha256: row.response_sha256 })), prevHash: 'f'.repeat(64) };
      db.prepare('UPDATE audit_entries SET hash = ? WHERE seq = 15001').run(entryHash(fixed as never));
    }, { problem: 'broken_link', firstBadSeq: 15001 }],
    ['the tail cut off below the signed checkpoint', (db) => db.prepare('DELETE FROM audit_entries WHERE seq > 52000').run(), { problem: 'truncated', firstBadSeq: 52001 }],
  ];
  for (const [what, tamper, expected] of tampering) {
    it(`finds ${what} where the plain verifier does`, async () => {
      const { fast, plain } = await verdicts(tamper);
      expect(fast).toEqual(plain);
      expect(fast).toMatchObject({ ok: false, ...expected });
    });
  }
});

describe('two writers on one SQLite file', () => {
  it('interleaves concurrent batches of two stores (two writer threads) into one chain with no fork', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'audit-two-writers-'));
    const file = join(dir, 'audit.sqlite');
    const a = createSqliteStore(file);
    const b = createSqliteStore(file);
    try {
      // Each store chains after the head it committed last; the other's commits move the head
      // under it, which the writer must notice inside its transaction and send back to re-chain.
      const writer = (s: typeof a, base: number) => Promise.all(Array.from({ length: 25 }, (_, i) => s.appendBatch([pendingEntry(base + i), pendingEntry(base + i + 500)])));
      await Promise.all([writer(a, 1), writer(b, 1001)]);
      await a.appendBatch([pendingEntry(2001)]);
      await b.appendBatch([pendingEntry(2002)]);
      const report = await verifyChain(a.scan(1), [], signer.jwks);
      expect(report).toMatchObject({ ok: true, entries: 102, headSeq: 102 });
      expect(await b.head()).toEqual(await a.head());
    } finally {
      await a.close();
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
