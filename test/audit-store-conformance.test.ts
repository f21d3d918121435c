/**
 * One contract, every audit store: the memory store, SQLite on a file and in memory, and
 * PostgreSQL (TEST_POSTGRES_URL) each run exactly the same cases of the AuditStore interface
 * (gateway/audit/store.ts): chaining, head, scan, query with every filter and cursor paging, get,
 * checkpoints and their time-stamps, the write probe, entries read back exactly as committed, and a chain that verifies.
 * Stores that keep their data (the SQLite file, PostgreSQL) are also reopened and appended to.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entryHash, GENESIS, sha256Hex, type AuditEntry, type ChainHead, type Outcome, type PendingEntry } from '../gateway/audit/entry.ts';
import { createMemoryStore } from '../gateway/audit/memory-store.ts';
import { createPostgresStore } from '../gateway/audit/postgres-store.ts';
import { createSqliteStore } from '../gateway/audit/sqlite-store.ts';
import type { AuditFilter, AuditPage, AuditStore, Checkpoint, SealedSegment } from '../gateway/audit/store.ts';
import { stampedCheckpoints } from '../gateway/audit/timestamps.ts';
import { verifyChain, verifyStore } from '../gateway/audit/verify.ts';
import { generatePrivateJwk, keyPairFromJwk } from '../gateway/keys.ts';
import { createSigner, type Signer } from '../gateway/signing.ts';
import { dropSchemas, POSTGRES_URL } from './support/postgres.ts';

const RUN = `${process.pid}_${randomUUID().slice(0, 8)}`;

/** Everything opened here, closed and removed after the file. */
const opened: AuditStore[] = [];
const schemas: string[] = [];
let dir: string;
let signer: Signer;

/**
 * A store implementation under test. `place()` makes a fresh, empty place for a chain and gives
 * back how to open a store on it; for a durable store a second open sees the same chain.
 */
interface StoreKind {
  name: string;
  durable: boolean;
  place(): () => Promise<AuditStore>;
}

const track = async (store: AuditStore | Promise<AuditStore>) => {
  const s = await store;
  opened.push(s);
  return s;
};

let places = 0;
const KINDS: StoreKind[] = [
  { name: 'memory', durable: false, place: () => () => track(createMemoryStore()) },
  {
    name: 'sqlite (file)', durable: true,
    place: () => {
      const file = join(dir, `audit-${++places}.sqlite`);
      return () => track(createSqliteStore(file));
    },
  },
  { name: 'sqlite (:memory:)', durable: false, place: () => () => track(createSqliteStore(':memory:')) },
  {
    name: 'postgres', durable: true,
    place: () => {
      const schema = `t_conformance_${++places}_${RUN}`;
      schemas.push(schema);
      return () => track(createPostgresStore({ url: POSTGRES_URL, schema }));
    },
  },
];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gw-store-conformance-'));
  signer = createSigner(await keyPairFromJwk(await generatePrivateJwk('ES256')));
});

afterAll(async () => {
  await Promise.all(opened.map((s) => s.close()));
  await dropSchemas(schemas);
  rmSync(dir, { recursive: true, force: true });
});

// Subject pseudonyms as the gateway stores them (64 hex digits).
const ANH = sha256Hex('subject anh');
const BINH = sha256Hex('subject binh');
const CHI = sha256Hex('subject chi');
const CLIENTS = ['portal', 'land-office', 'tax-office'] as const;

/**
 * Entry `i` of a deterministic mix in which every filter member picks a proper subset: three
 * clients, two services, three purposes and none, case ids on even entries, zero, one or two
 * subjects, every outcome; nulls in every nullable member somewhere, zero and larger numbers,
 * empty and non-empty arrays, one or two upstream calls, Vietnamese text. Times rise a second
 * an entry.
 */
function pending(i: number): PendingEntry {
  const outcome: Outcome = i % 5 === 4 ? 'denied' : i % 7 === 6 ? 'failed' : 'released';
  const subjects = i % 4 === 3 ? [] : i % 4 === 2 ? [ANH, CHI].sort() : [[ANH, BINH, CHI][i % 3]!];
  return {
    id: randomUUID(),
    time: new Date(Date.UTC(2026, 0, 1, 8, 0, 0) + i * 1000).toISOString(),
    client: CLIENTS[i % 3]!,
    userId: i % 2 ? null : `cán-bộ-Nguyễn-${i}`,
    purpose: i % 4 === 3 ? null : i % 2 ? 'PUBLIC_SERVICE_PREFILL' : 'LAND_TRANSFER_REGISTRATION',
    caseId: i % 2 ? null : `HS-2026-${String(i).padStart(6, '0')}`,
    service: i % 4 === 1 ? 'land.parcel' : 'population.identity',
    version: i % 6 === 5 ? null : 1 + (i % 2),
    subjects,
    fields: outcome === 'released' ? ['population.identity:address', 'population.identity:core'] : [],
    outcome,
    status: outcome === 'released' ? 200 : outcome === 'denied' ? 403 : 503,
    errorCode: outcome === 'released' ? null : outcome === 'denied' ? 'FORBIDDEN_PURPOSE' : 'UPSTREAM_UNAVAILABLE',
    upstreams: outcome === 'denied' ? [] : [
      { agency: 'population', operation: 'cong-dan/tra-cuu', outcome: outcome === 'failed' ? 'error' : 'ok', errorCode: outcome === 'failed' ? 'UPSTREAM_UNAVAILABLE' : null, latencyMs: i, reference: outcome === 'failed' ? null : `TC${String(i).padStart(10, '0')}` },
      ...(i % 3 === 0 ? [{ agency: 'land', operation: 'thua-dat', outcome: 'not_found' as const, errorCode: 'SUBJECT_NOT_FOUND', latencyMs: 40_000 + i, reference: null }] : []),
    ],
    latencyMs: i === 0 ? 0 : 12 * i,
    requestSha256: sha256Hex(`request ${i}`),
    responseSha256: outcome === 'denied' ? null : sha256Hex(`response ${i}`),
  };
}

const all = async <T>(items: AsyncIterable<T>): Promise<T[]> => {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
};

/** The head, which must be exactly {seq, hash}: nothing of the entry itself. */
const headOf = (store: AuditStore): Promise<ChainHead> => store.head();

const signedCheckpoint = async (head: ChainHead, time = new Date().toISOString()): Promise<Checkpoint> =>
  ({ seq: head.seq, hash: head.hash, time, jws: await signer.signCheckpoint({ seq: head.seq, hash: head.hash, time }) });

/** The chain's invariants over committed entries, starting after `after`. */
function expectChained(entries: AuditEntry[], after: ChainHead) {
  let prev = after;
  for (const e of entries) {
    expect(e.seq, 'seqs are contiguous').toBe(prev.seq + 1);
    expect(e.prevHash, `entry ${e.seq} links to the one before`).toBe(prev.hash);
    expect(e.hash, `entry ${e.seq} hash is the hash of its canonical JSON`).toBe(entryHash(e));
    prev = e;
  }
}

/** The same filter as the stores' (inclusive from, exclusive to), written out independently. */
const matches = (e: PendingEntry, f: AuditFilter) =>
  (f.subject === undefined || e.subjects.includes(f.subject)) && (f.client === undefined || e.client === f.client) &&
  (f.service === undefined || e.service === f.service) && (f.purpose === undefined || e.purpose === f.purpose) &&
  (f.caseId === undefined || e.caseId === f.caseId) && (f.outcome === undefined || e.outcome === f.outcome) &&
  (f.from === undefined || e.time >= f.from) && (f.to === undefined || e.time < f.to);

const BATCHES = [[0, 1, 2], [3], [4, 5, 6, 7, 8, 9, 10, 11], [12, 13]];
const N = BATCHES.flat().length;

describe.each(KINDS)('AuditStore conformance: $name', (kind) => {
  let store: AuditStore;
  let committed: AuditEntry[];
  /** What the store said before anything was appended. */
  let empty: { head: ChainHead; scanned: AuditEntry[]; page: AuditPage; checkpoints: Checkpoint[]; verified: Awaited<ReturnType<typeof verifyStore>> };
  /** The pending entries as handed to appendBatch, and the head before each batch. */
  const handed: PendingEntry[] = [];
  const headsBefore: ChainHead[] = [];

  beforeAll(async () => {
    store = await kind.place()();
    empty = {
      head: await headOf(store), scanned: await all(store.scan()), page: await store.query({}, 10),
      checkpoints: await store.checkpoints(), verified: await verifyStore(store, signer.jwks),
    };
    committed = [];
    for (const batch of BATCHES) {
      headsBefore.push(await headOf(store));
      const entries = batch.map(pending);
      handed.push(...entries);
      committed.push(...(await store.appendBatch(entries)));
    }
  });

  it('starts empty: the genesis head, nothing to scan, query or verify', () => {
    expect(empty.head).toEqual(GENESIS);
    expect(empty.scanned).toEqual([]);
    expect(empty.page).toEqual({ entries: [], nextCursor: null });
    expect(empty.checkpoints).toEqual([]);
    expect(empty.verified).toMatchObject({ ok: true, entries: 0, headSeq: 0, problem: null });
  });

  it('appendBatch chains each batch after the head: seqs 1..n, each prevHash the previous hash, hash = entryHash', () => {
    expect(committed.map((e) => e.seq)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    expectChained(committed, GENESIS);
    // Each batch started at the head the previous one left.
    let seq = 0;
    BATCHES.forEach((batch, b) => {
      expect(headsBefore[b]).toEqual(seq === 0 ? GENESIS : { seq, hash: committed[seq - 1]!.hash });
      expect(committed[seq]!.prevHash).toBe(headsBefore[b]!.hash);
      seq += batch.length;
    });
    // What was handed in is committed unchanged, with its place in the chain added.
    committed.forEach((e, i) => expect(e).toStrictEqual({ ...handed[i]!, seq: i + 1, prevHash: e.prevHash, hash: e.hash }));
  });

  it('head() is the last committed entry, and an empty batch changes nothing', async () => {
    const last = committed.at(-1)!;
    expect(await headOf(store)).toEqual({ seq: last.seq, hash: last.hash });
    expect(await store.appendBatch([])).toEqual([]);
    expect(await headOf(store)).toEqual({ seq: last.seq, hash: last.hash });
  });

  it('reads entries back exactly as appendBatch returned them (arrays, nulls, numbers)', async () => {
    expect(await all(store.scan())).toStrictEqual(committed);
    // The mix holds what a store could get wrong: nulls, empty and two-element arrays, zero.
    expect(committed.some((e) => e.userId === null && e.caseId === null && e.purpose === null && e.version === null)).toBe(true);
    expect(committed.some((e) => e.responseSha256 === null && e.errorCode !== null && e.upstreams.length === 0 && e.fields.length === 0)).toBe(true);
    expect(committed.some((e) => e.subjects.length === 0)).toBe(true);
    expect(committed.some((e) => e.upstreams.length === 2 && e.upstreams[1]!.reference === null && e.subjects.length === 2)).toBe(true);
    expect(committed[0]!.latencyMs).toBe(0);
  });

  it('scans in ascending seq order from a seq, with and without a filter', async () => {
    expect(await all(store.scan(5))).toStrictEqual(committed.slice(4));
    expect(await all(store.scan(N))).toStrictEqual([committed.at(-1)]);
    expect(await all(store.scan(N + 1))).toEqual([]);
    const portal = committed.filter((e) => e.client === 'portal');
    expect(await all(store.scan(1, { client: 'portal' }))).toStrictEqual(portal);
    expect(await all(store.scan(6, { client: 'portal', outcome: 'released' }))).toStrictEqual(portal.filter((e) => e.seq >= 6 && e.outcome === 'released'));
    expect(await all(store.scan(1, { subject: CHI }))).toStrictEqual(committed.filter((e) => e.subjects.includes(CHI)));
  });

  it('queries by every filter member, newest first', async () => {
    const from = committed[3]!.time;
    const to = committed[9]!.time;
    const filters: [string, AuditFilter][] = [
      ['subject', { subject: ANH }], ['subject in a two-subject entry', { subject: CHI }],
      ['client', { client: 'land-office' }], ['service', { service: 'land.parcel' }],
      ['purpose', { purpose: 'PUBLIC_SERVICE_PREFILL' }], ['caseId', { caseId: committed[4]!.caseId! }],
      ['outcome released', { outcome: 'released' }], ['outcome denied', { outcome: 'denied' }], ['outcome failed', { outcome: 'failed' }],
      ['from (inclusive)', { from }], ['to (exclusive)', { to }], ['from and to', { from, to }],
      ['several members at once', { client: 'land-office', subject: BINH, from }],
    ];
    for (const [what, filter] of filters) {
      const expected = committed.filter((e) => matches(e, filter)).reverse();
      // Each filter keeps some entries and drops others, so one that is ignored is caught.
      expect(expected.length, `${what} keeps some`).toBeGreaterThan(0);
      expect(expected.length, `${what} drops some`).toBeLessThan(N);
      expect(await store.query(filter, 100), what).toStrictEqual({ entries: expected, nextCursor: null });
    }
    expect((await store.query({ from, to }, 100)).entries.map((e) => e.seq)).toEqual([9, 8, 7, 6, 5, 4]);
    expect(await store.query({ caseId: 'HS-2026-999999' }, 10)).toEqual({ entries: [], nextCursor: null });
    expect(await store.query({ subject: sha256Hex('nobody') }, 10)).toEqual({ entries: [], nextCursor: null });
  });

  it('pages with limit and cursor, newest first, without duplicates or gaps', async () => {
    const pages = async (filter: AuditFilter, limit: number) => {
      const sizes: number[] = [];
      const seen: AuditEntry[] = [];
      let cursor: string | null = null;
      do {
        const page: AuditPage = await store.query(filter, limit, cursor);
        sizes.push(page.entries.length);
        seen.push(...page.entries);
        cursor = page.nextCursor;
        expect(sizes.length, 'paging ends').toBeLessThanOrEqual(N + 1);
      } while (cursor);
      return { sizes, seen };
    };
    const newestFirst = [...committed].reverse();
    expect(await pages({}, 5)).toStrictEqual({ sizes: [5, 5, 4], seen: newestFirst });
    expect(await pages({}, 1)).toStrictEqual({ sizes: Array(N).fill(1), seen: newestFirst });
    const portal = newestFirst.filter((e) => e.client === 'portal');
    expect(await pages({ client: 'portal' }, 2)).toStrictEqual({ sizes: [2, 2, 1], seen: portal });
    // A page that ends exactly at the last entry says there is no more.
    expect((await store.query({}, N)).nextCursor).toBeNull();
    const short = await store.query({}, N - 1);
    expect(short.nextCursor).not.toBeNull();
    expect(await store.query({}, N - 1, short.nextCursor)).toStrictEqual({ entries: [committed[0]], nextCursor: null });
    await expect(store.query({}, 5, 'not-a-cursor')).rejects.toThrow(RangeError);
  });

  it('gets an entry by id, and null for an unknown id', async () => {
    for (const e of [committed[0]!, committed[7]!, committed.at(-1)!]) expect(await store.get(e.id)).toStrictEqual(e);
    expect(await store.get(randomUUID())).toBeNull();
  });

  it('saves signed checkpoints and gives them back by seq, the first kept when a seq repeats', async () => {
    const late = await signedCheckpoint(await headOf(store));
    const early = await signedCheckpoint(committed[3]!, '2026-01-01T09:00:00.000Z');
    await store.saveCheckpoint(late);
    await store.saveCheckpoint(early);
    await store.saveCheckpoint({ ...late, time: '2030-01-01T00:00:00.000Z' });
    expect(await store.checkpoints()).toStrictEqual([early, late]);
    expect(await verifyStore(store, signer.jwks)).toMatchObject({ ok: true, entries: N, headSeq: N, lastCheckpoint: { seq: N, time: late.time } });
  });

  it('keeps checkpoint time-stamps: the first per seq, by seq, and which checkpoints still wait for one', async () => {
    const open = kind.place();
    const other = await open();
    const entries = await other.appendBatch([0, 1, 2].map(pending));
    const first = await signedCheckpoint(entries[0]!);
    const last = await signedCheckpoint(entries[2]!);
    await other.saveCheckpoint(first);
    await other.saveCheckpoint(last);
    const stamps = other.timestamps!;
    expect(await stamps.all()).toEqual(new Map());
    expect(await stamps.pending(10)).toStrictEqual({ count: 2, checkpoints: [first, last] });
    expect(await stamps.pending(1)).toStrictEqual({ count: 2, checkpoints: [first] });
    // A token is binary DER: every byte value must come back as it went in.
    const stamp = { tsa: 'http://127.0.0.1:3180/tsa', token: Buffer.from([0x30, 0x00, 0xff, 0x80, 0x0a]).toString('base64'), time: '2026-01-01T08:00:05.000Z' };
    await stamps.save(1, stamp);
    await stamps.save(1, { ...stamp, time: '2030-01-01T00:00:00.000Z' });
    expect([...(await stamps.all())]).toStrictEqual([[1, stamp]]);
    expect(await stamps.pending(10)).toStrictEqual({ count: 1, checkpoints: [last] });
    expect(await stampedCheckpoints(other)).toStrictEqual([{ ...first, timestamp: stamp }, { ...last, timestamp: null }]);
    if (kind.durable) {
      await other.close();
      const again = await open();
      expect(await stampedCheckpoints(again)).toStrictEqual([{ ...first, timestamp: stamp }, { ...last, timestamp: null }]);
    }
  });

  it('drops a sealed range from the hot store only as the archive index allows, and keeps finding its subjects', async () => {
    const open = kind.place();
    const other = await open();
    const index = other.archive!;
    const chain = await other.appendBatch(Array.from({ length: 10 }, (_, i) => pending(i)));
    const segment = (first: number, last: number, over: Partial<SealedSegment> = {}): SealedSegment => ({
      firstSeq: first, lastSeq: last, prevHash: first === 1 ? GENESIS.hash : chain[first - 2]!.hash, lastHash: chain[last - 1]!.hash,
      file: `${first}-${last}.ndjson.gz`, fileSha256: sha256Hex(`file ${first}-${last}`), entries: last - first + 1, sealedAt: '2026-02-01T00:00:00.000Z', ...over,
    });
    expect(await index.segments()).toEqual([]);
    expect(await index.oldestHot()).toEqual({ seq: 1, time: chain[0]!.time });
    const refused = (s: SealedSegment) => expect(index.dropThrough(s)).rejects.toMatchObject({ code: 'ARCHIVE_REFUSED' });
    await refused(segment(2, 4)); // does not start the chain
    await refused(segment(1, 4, { lastHash: chain[2]!.hash })); // a last hash that is not the hot store's
    await refused(segment(1, 4, { prevHash: sha256Hex('elsewhere') }));
    await refused(segment(1, 4, { entries: 3 }));
    await refused(segment(1, 10)); // the head entry stays hot
    expect(await all(other.scan())).toStrictEqual(chain);

    expect(await index.dropThrough(segment(1, 4))).toBe('dropped');
    expect(await index.dropThrough(segment(1, 4))).toBe('already');
    await refused(segment(1, 5));
    await refused(segment(6, 8)); // leaves a gap
    expect(await index.dropThrough(segment(5, 6))).toBe('dropped');
    expect(await index.segments()).toStrictEqual([segment(1, 4), segment(5, 6)]);
    expect(await all(other.scan())).toStrictEqual(chain.slice(6));
    expect(await index.oldestHot()).toEqual({ seq: 7, time: chain[6]!.time });
    expect(await headOf(other)).toEqual({ seq: 10, hash: chain[9]!.hash });
    // The subject index keeps archived seqs, newest first, below a bound; hot queries see only hot entries.
    const archivedAnh = chain.filter((e) => e.seq <= 6 && e.subjects.includes(ANH)).map((e) => e.seq).reverse();
    expect(archivedAnh.length).toBeGreaterThan(1);
    expect(await index.subjectSeqs(ANH, 7, 100)).toEqual(archivedAnh);
    expect(await index.subjectSeqs(ANH, archivedAnh[0]!, 1)).toEqual(archivedAnh.slice(1, 2));
    expect((await other.query({ subject: ANH }, 100)).entries.map((e) => e.seq)).toEqual(chain.filter((e) => e.seq > 6 && e.subjects.includes(ANH)).map((e) => e.seq).reverse());
    // Appends go on after the head, whatever was archived.
    const [next] = await other.appendBatch([pending(10)]);
    expect(next).toMatchObject({ seq: 11, prevHash: chain[9]!.hash });
    // One archiver at a time: a second one asked while the first runs does not run.
    const inner = await index.exclusive(async () => index.exclusive(async () => 'second'));
    expect(inner).toEqual({ ran: true, value: { ran: false } });
    expect(await index.exclusive(async () => 'again')).toEqual({ ran: true, value: 'again' });
    if (kind.durable) {
      await other.close();
      const again = await open();
      expect(await again.archive!.segments()).toStrictEqual([segment(1, 4), segment(5, 6)]);
      expect(await again.archive!.subjectSeqs(ANH, 7, 100)).toEqual(archivedAnh);
    }
  });

  it('probes writable', async () => {
    await expect(store.probe()).resolves.toBeUndefined();
  });

  it('verifies intact: verifyStore and verifyChain over a scan agree', async () => {
    const checkpoints = await store.checkpoints();
    const plain = await verifyChain(store.scan(1), checkpoints, signer.jwks);
    expect(plain).toMatchObject({ ok: true, entries: N, headSeq: N, verifiedUpTo: N, problem: null, firstBadSeq: null });
    expect(await verifyStore(store, signer.jwks)).toEqual(plain);
  });

  it('chains batches appended together without a fork', async () => {
    const other = await kind.place()();
    const results = await Promise.all(Array.from({ length: 8 }, (_, b) => other.appendBatch([pending(100 + 2 * b), pending(101 + 2 * b)])));
    for (const r of results) expect(r[1]!.seq).toBe(r[0]!.seq + 1);
    const chain = await all(other.scan());
    expect(chain.map((e) => e.seq)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expectChained(chain, GENESIS);
    expect(chain).toStrictEqual(results.flat().sort((a, b) => a.seq - b.seq));
  });

  it('stores text no store can hold byte for byte (NUL, lone surrogates) as U+FFFD, as hashed', async () => {
    const other = await kind.place()();
    const [odd] = await other.appendBatch([{ ...pending(0), caseId: 'HS\u0000-1', userId: 'officer-\ud800', fields: ['x:\udfff'] }]);
    expect(odd).toMatchObject({ caseId: 'HS\ufffd-1', userId: 'officer-\ufffd', fields: ['x:\ufffd'] });
    expect(await other.get(odd!.id)).toStrictEqual(odd);
    expect(await verifyStore(other, signer.jwks)).toMatchObject({ ok: true, entries: 1 });
  });

  it('scans past its page size', async () => {
    const other = await kind.place()();
    const many = Array.from({ length: 5003 }, (_, i) => pending(i));
    await other.appendBatch(many);
    const scanned = await all(other.scan());
    expect(scanned.map((e) => e.seq)).toEqual(Array.from({ length: 5003 }, (_, i) => i + 1));
    expect((await all(other.scan(4999))).map((e) => e.seq)).toEqual([4999, 5000, 5001, 5002, 5003]);
    expect(await verifyStore(other, signer.jwks)).toMatchObject({ ok: true, entries: 5003 });
  }, 60_000);

  if (kind.durable) {
    it('keeps the chain across a reopen and continues it after the head', async () => {
      const open = kind.place();
      const first = await open();
      const before = await first.appendBatch([0, 1, 2].map(pending));
      await first.close();
      const again = await open();
      expect(await headOf(again)).toEqual({ seq: 3, hash: before[2]!.hash });
      expect(await all(again.scan())).toStrictEqual(before);
      const after = await again.appendBatch([3, 4].map(pending));
      expect(after.map((e) => e.seq)).toEqual([4, 5]);
      expectChained([...before, ...after], GENESIS);
      expect(await all(again.scan())).toStrictEqual([...before, ...after]);
      expect(await verifyStore(again, signer.jwks)).toMatchObject({ ok: true, entries: 5, headSeq: 5 });
    });
  }
});
