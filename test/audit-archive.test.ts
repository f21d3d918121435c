/**
 * Sealed archives and retention (audit/archiver.ts) on every store that keeps a chain: entries past
 * hotDays are sealed into segments ending at signed checkpoints, each a gzip NDJSON file of the
 * exact export lines and a manifest, and only then dropped from the hot store; passes are
 * idempotent and take turns; the verifier checks archives and hot store as one chain, online and
 * offline (`gateway audit verify --archive`), naming the first bad seq and its segment; a search by
 * personal id reads archived entries back.
 */
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportChunks } from '../gateway/audit-api.ts';
import { archiveReader } from '../gateway/audit/archive-search.ts';
import { ANCHORED, SIGNED_ONLY, type SegmentManifest } from '../gateway/audit/archive-files.ts';
import { parseTsaCertificates, stampedBytes, timeStampRequest, tokenOfResponse } from '../gateway/audit/tsp.ts';
import { startOpensslTsa, type OpensslTsa } from './support/openssl-tsa.ts';
import { dropSchemas, POSTGRES_URL } from './support/postgres.ts';
import { archivePass, checkArchiving, type ArchiveSettings } from '../gateway/audit/archiver.ts';
import { GENESIS, sha256Hex, type AuditEntry, type PendingEntry } from '../gateway/audit/entry.ts';
import { createMemoryStore } from '../gateway/audit/memory-store.ts';
import { createPostgresStore } from '../gateway/audit/postgres-store.ts';
import { createSqliteStore } from '../gateway/audit/sqlite-store.ts';
import type { ArchiveIndex, AuditStore } from '../gateway/audit/store.ts';
import { verifyStore } from '../gateway/audit/verify.ts';
import { ConfigError } from '../gateway/config/errors.ts';
import { RECORD_NAMES } from '../gateway/audit/record.ts';
import { generatePrivateJwk, keyPairFromJwk } from '../gateway/keys.ts';
import { createSigner, type Signer } from '../gateway/signing.ts';

const RUN = `${process.pid}_${randomUUID().slice(0, 8)}`;
const ROOT = new URL('../', import.meta.url).pathname;
const run = promisify(execFile);
const DAY = 86_400_000;

const ANH = sha256Hex('subject anh');
const BINH = sha256Hex('subject binh');

let work: string;
let signer: Signer;
const opened: AuditStore[] = [];
const schemas: string[] = [];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'gw-archive-'));
  signer = createSigner(await keyPairFromJwk(await generatePrivateJwk('ES256')));
});
afterAll(async () => {
  await Promise.all(opened.map((s) => s.close()));
  await dropSchemas(schemas);
  rmSync(work, { recursive: true, force: true });
});

let places = 0;
const KINDS: { name: string; open: () => Promise<AuditStore>; file?: () => string }[] = [
  { name: 'memory', open: async () => createMemoryStore() },
  { name: 'sqlite (file)', open: async () => createSqliteStore(join(work, `audit-${++places}.sqlite`)) },
  {
    name: 'postgres', open: async () => {
      const schema = `t_archive_${++places}_${RUN}`;
      schemas.push(schema);
      return createPostgresStore({ url: POSTGRES_URL, schema });
    },
  },
];
const track = async (p: Promise<AuditStore>) => {
  const s = await p;
  opened.push(s);
  return s;
};

/** Entry `i`, written at `time`: every third concerns Anh, every fifth Binh too. */
const pending = (i: number, time: number): PendingEntry => ({
  id: randomUUID(), time: new Date(time).toISOString(), client: i % 2 ? 'portal' : 'land-office', userId: null, purpose: 'PUBLIC_SERVICE_PREFILL',
  caseId: null, service: 'population.identity', version: 1, subjects: [...(i % 3 === 0 ? [ANH] : []), ...(i % 5 === 0 ? [BINH] : [])].sort(),
  fields: ['population.identity:core'], outcome: 'released', status: 200, errorCode: null, upstreams: [], latencyMs: i % 50,
  requestSha256: sha256Hex(`request ${i}`), responseSha256: sha256Hex(`response ${i}`),
});

const OLD = Date.parse('2025-06-01T00:00:00Z');

/**
 * `batches` batches of `size` entries a second apart from `from`, each followed by a checkpoint signed a
 * second after its last entry; then `recent` entries of now, with a checkpoint, and one after it (the head).
 */
async function fill(store: AuditStore, batches: number, size: number, recent = 20): Promise<AuditEntry[]> {
  const chain: AuditEntry[] = [];
  const checkpointAt = async (e: AuditEntry, time: number) => {
    const t = new Date(time).toISOString();
    await store.saveCheckpoint({ seq: e.seq, hash: e.hash, time: t, jws: await signer.signCheckpoint({ seq: e.seq, hash: e.hash, time: t }) });
  };
  for (let b = 0; b < batches; b++) {
    const base = OLD + b * size * 1000;
    chain.push(...(await store.appendBatch(Array.from({ length: size }, (_, i) => pending(b * size + i, base + i * 1000)))));
    await checkpointAt(chain.at(-1)!, base + size * 1000);
  }
  chain.push(...(await store.appendBatch(Array.from({ length: recent }, (_, i) => pending(batches * size + i, Date.now())))));
  await checkpointAt(chain.at(-1)!, Date.now());
  chain.push(...(await store.appendBatch([pending(batches * size + recent, Date.now())])));
  return chain;
}

const all = async <T>(items: AsyncIterable<T>) => {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
};
const manifestOf = (dir: string, first: number, last: number): SegmentManifest =>
  JSON.parse(readFileSync(join(dir, `${String(first).padStart(12, '0')}-${String(last).padStart(12, '0')}.manifest.json`), 'utf8'));
const dataLines = (dir: string, m: SegmentManifest) => gunzipSync(readFileSync(join(dir, m.file))).toString('utf8').trimEnd().split('\n');
const settingsIn = (dir: string, over: Partial<ArchiveSettings> = {}): ArchiveSettings => ({ dir, hotDays: 30, maxSegmentEntries: 250, stamped: false, ...over });

describe.each(KINDS)('archiving: $name', (kind) => {
  let store: AuditStore;
  let chain: AuditEntry[];
  let dir: string;
  let first: Awaited<ReturnType<typeof archivePass>>;
  let hotBefore: AuditEntry[];

  beforeAll(async () => {
    store = await track(kind.open());
    chain = await fill(store, 10, 100);
    dir = mkdtempSync(join(work, 'dir-'));
    hotBefore = await all(store.scan(1));
    first = await archivePass(store, settingsIn(dir));
  }, 60_000);

  it('seals the entries past hotDays into segments that end at checkpoints, at most maxSegmentEntries each, oldest first', () => {
    expect(hotBefore).toHaveLength(chain.length);
    expect(first.ran).toBe(true);
    expect(first.sealed.map((s) => [s.firstSeq, s.lastSeq])).toEqual([[1, 200], [201, 400], [401, 600], [601, 800], [801, 1000]]);
    expect(readdirSync(dir).sort()).toEqual(first.sealed.flatMap((s) => [s.file.replace('.ndjson.gz', '.manifest.json'), s.file]).sort());
  });

  it('writes each manifest: range, entries, the hash it chains from and its last, the file\'s SHA-256, its signed checkpoint', async () => {
    const checkpoints = await store.checkpoints();
    let prevHash = GENESIS.hash;
    for (const s of first.sealed) {
      const m = manifestOf(dir, s.firstSeq, s.lastSeq);
      expect(m).toStrictEqual({
        format: 'gateway-audit-segment/1', firstSeq: s.firstSeq, lastSeq: s.lastSeq, entries: s.lastSeq - s.firstSeq + 1,
        prevHash, lastHash: chain[s.lastSeq - 1]!.hash, file: s.file, fileSha256: createHash('sha256').update(readFileSync(join(dir, s.file))).digest('hex'),
        checkpoint: checkpoints.find((c) => c.seq === s.lastSeq), timestamp: null, anchoring: SIGNED_ONLY, blocks: expect.any(Array), sealedAt: s.sealedAt,
      });
      // Every line is the entry exactly as GET /audit/export writes it from a database store (members in record order).
      expect(dataLines(dir, m)).toEqual(chain.slice(s.firstSeq - 1, s.lastSeq).map((e) => JSON.stringify(Object.fromEntries(RECORD_NAMES.map((n) => [n, e[n]])))));
      expect(dataLines(dir, m).map((l) => JSON.parse(l))).toStrictEqual(chain.slice(s.firstSeq - 1, s.lastSeq));
      prevHash = m.lastHash;
    }
  });

  it('removes the sealed entries from the hot store and records the segments; the head and what is recent stay hot', async () => {
    expect(await all(store.scan(1))).toStrictEqual(chain.slice(1000));
    expect(await store.archive!.segments()).toStrictEqual(first.sealed);
    expect(await store.archive!.oldestHot()).toEqual({ seq: 1001, time: chain[1000]!.time });
    expect(await store.head()).toEqual({ seq: chain.length, hash: chain.at(-1)!.hash });
  });

  it('verifies archives and hot store as one chain', async () => {
    expect(await verifyStore(store, signer.jwks, { archiveDir: dir })).toMatchObject({
      ok: true, entries: chain.length, headSeq: chain.length, verifiedUpTo: chain.length, problem: null,
      archive: { segments: 5, entries: 1000, segment: null },
    });
    // The segments are part of the chain: without the directory the store cannot be verified.
    await expect(verifyStore(store, signer.jwks)).rejects.toThrow(/archive directory/);
  });

  it('does nothing on a second pass with nothing new, and seals again once more entries are old enough', async () => {
    const files = readdirSync(dir).sort();
    expect(await archivePass(store, settingsIn(dir))).toEqual({ ran: true, recovered: [], sealed: [], removed: [] });
    expect(readdirSync(dir).sort()).toEqual(files);
    // Forty days on, the recent entries are old too; the head entry still stays hot.
    const later = await archivePass(store, settingsIn(dir), { now: () => Date.now() + 40 * DAY });
    expect(later.sealed.map((s) => [s.firstSeq, s.lastSeq])).toEqual([[1001, chain.length - 1]]);
    expect((await all(store.scan(1))).map((e) => e.seq)).toEqual([chain.length]);
    expect(await verifyStore(store, signer.jwks, { archiveDir: dir })).toMatchObject({ ok: true, entries: chain.length, archive: { segments: 6 } });
  });

  it('finds a subject\'s archived entries, newest first, paging from the hot store into the segments', async () => {
    const reader = archiveReader(store as AuditStore & { archive: ArchiveIndex }, dir);
    for (const [filter, expected] of [
      [{ subject: ANH }, chain.filter((e) => e.subjects.includes(ANH))],
      [{ subject: BINH, client: 'land-office' }, chain.filter((e) => e.subjects.includes(BINH) && e.client === 'land-office')],
    ] as const) {
      const seen: AuditEntry[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page: Awaited<ReturnType<typeof reader.page>> = await reader.page(filter, 37, cursor);
        seen.push(...page.entries);
        cursor = page.nextCursor;
        expect(++pages).toBeLessThan(100);
      } while (cursor);
      expect(seen).toStrictEqual([...expected].reverse());
    }
    // Without a personal id, a search covers the hot store.
    expect((await reader.page({ client: 'portal' }, 500)).entries.every((e) => e.seq === chain.length)).toBe(true);
    expect(await reader.get(chain[150]!.id)).toStrictEqual(chain[150]);
    expect(await reader.get(randomUUID())).toBeNull();
    const listed = await reader.list();
    expect(listed.map((s) => [s.firstSeq, s.present, s.timestamp, s.checkpoint?.seq])).toEqual((await store.archive!.segments()).map((s) => [s.firstSeq, true, null, s.lastSeq]));
  });
});

describe('archivers take turns and recover', () => {
  it('two passes at once seal each segment once: one runs, the other finds it running', async () => {
    const file = join(work, 'turns.sqlite');
    const store = await track(Promise.resolve(createSqliteStore(file)));
    const chain = await fill(store, 6, 100);
    const dir = mkdtempSync(join(work, 'turns-'));
    // Another process on the same file: its own store, the same lock file.
    const other = await track(Promise.resolve(createSqliteStore(file)));
    const results = await Promise.all([archivePass(store, settingsIn(dir)), archivePass(store, settingsIn(dir)), archivePass(other, settingsIn(dir))]);
    expect(results.map((r) => r.ran).sort()).toEqual([false, false, true]);
    expect(results.flatMap((r) => r.sealed).map((s) => s.firstSeq)).toEqual([1, 201, 401]);
    expect(await store.archive!.segments()).toHaveLength(3);
    expect(await verifyStore(other, signer.jwks, { archiveDir: dir })).toMatchObject({ ok: true, entries: chain.length });
    expect(existsSync(`${file}.archiver.lock`)).toBe(false);
  }, 60_000);

  it('takes over the lock of an archiver that died (its pid is gone)', async () => {
    const file = join(work, 'stale.sqlite');
    const store = await track(Promise.resolve(createSqliteStore(file)));
    await fill(store, 3, 100);
    writeFileSync(`${file}.archiver.lock`, JSON.stringify({ pid: 2 ** 22 + 12345, host: (await import('node:os')).hostname() }));
    expect((await archivePass(store, settingsIn(mkdtempSync(join(work, 'stale-'))))).sealed).toHaveLength(2);
  });

  it('refuses to start archiving into a directory it cannot write, naming the key', () => {
    const blocker = join(work, 'a-file');
    writeFileSync(blocker, 'not a directory');
    expect(() => checkArchiving(settingsIn(join(blocker, 'archive')), createMemoryStore())).toThrow(ConfigError);
    expect(() => checkArchiving(settingsIn(join(blocker, 'archive')), createMemoryStore())).toThrow(/^\/audit\/archive\/dir: /);
  });
});

describe('the verifier names what was done to an archive', () => {
  let store: AuditStore;
  let chain: AuditEntry[];
  let dir: string;
  let exportFile: string;
  let jwksFile: string;

  /** `gateway audit verify` offline, with the archive directory. */
  async function offline(archive: string): Promise<{ code: number; stdout: string }> {
    try {
      const { stdout } = await run(process.execPath, ['bin/gateway.mjs', 'audit', 'verify', '--export', exportFile, '--jwks', jwksFile, '--archive', archive], { cwd: ROOT, timeout: 60_000 });
      return { code: 0, stdout };
    } catch (e) {
      const err = e as { code?: number; stdout?: string };
      return { code: typeof err.code === 'number' ? err.code : 1, stdout: err.stdout ?? '' };
    }
  }
  const copy = () => {
    const to = mkdtempSync(join(work, 'copy-'));
    cpSync(dir, to, { recursive: true });
    return to;
  };
  const name = (first: number, last: number) => `${String(first).padStart(12, '0')}-${String(last).padStart(12, '0')}`;
  const online = (archiveDir: string) => verifyStore(store, signer.jwks, { archiveDir });

  beforeAll(async () => {
    store = await track(Promise.resolve(createSqliteStore(join(work, 'tamper.sqlite'))));
    chain = await fill(store, 6, 100);
    dir = mkdtempSync(join(work, 'tamper-'));
    await archivePass(store, settingsIn(dir, { maxSegmentEntries: 200 }));
    // An export of the hot store, as GET /audit/export writes it, and the gateway's keys.
    const head = await store.head();
    const time = new Date().toISOString();
    const signedHead = { ...head, time, jws: await signer.signCheckpoint({ ...head, time }) };
    exportFile = join(work, 'hot.ndjson');
    writeFileSync(exportFile, (await all(exportChunks(store.scan(1), 'ndjson', signedHead))).join(''));
    jwksFile = join(work, 'jwks.json');
    writeFileSync(jwksFile, JSON.stringify(signer.jwks));
  }, 60_000);

  it('intact: online, and offline from the archive and an export of the hot store', async () => {
    expect((await store.archive!.segments()).map((s) => s.lastSeq)).toEqual([200, 400, 600]);
    expect(await online(dir)).toMatchObject({ ok: true, entries: chain.length, archive: { segments: 3, entries: 600 } });
    const r = await offline(dir);
    expect(r.stdout).toContain(`chain intact: ${chain.length} entries, head seq ${chain.length}`);
    expect(r.code).toBe(0);
    // The export alone starts after the archive: its first entries are missing.
    const { stdout } = await run(process.execPath, ['bin/gateway.mjs', 'audit', 'verify', '--export', exportFile, '--jwks', jwksFile], { cwd: ROOT }).catch((e) => e);
    expect(stdout).toContain('CHAIN BROKEN at seq 1: missing_entry');
  }, 60_000);

  it('a changed line of an archive: the seq and its segment', async () => {
    const tampered = copy();
    const file = join(tampered, `${name(201, 400)}.ndjson.gz`);
    const lines = gunzipSync(readFileSync(file)).toString('utf8').split('\n');
    lines[49] = lines[49]!.replace('"outcome":"released"', '"outcome":"denied"');
    writeFileSync(file, gzipSync(lines.join('\n')));
    expect(await online(tampered)).toMatchObject({ ok: false, problem: 'hash_mismatch', firstBadSeq: 250, verifiedUpTo: 249, archive: { segment: `${name(201, 400)}.ndjson.gz` } });
    const r = await offline(tampered);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain(`CHAIN BROKEN at seq 250: hash_mismatch (intact up to seq 249) in archive segment ${name(201, 400)}.ndjson.gz`);
  }, 60_000);

  it('a segment removed: where its seqs begin', async () => {
    const removed = copy();
    for (const ext of ['ndjson.gz', 'manifest.json']) rmSync(join(removed, `${name(201, 400)}.${ext}`));
    expect(await online(removed)).toMatchObject({ ok: false, problem: 'segment_missing', firstBadSeq: 201, archive: { segment: `${name(201, 400)}.ndjson.gz` } });
    const r = await offline(removed);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('CHAIN BROKEN at seq 201: missing_entry (intact up to seq 200) (no archive segment holds it)');
  }, 60_000);

  it('a manifest swapped for another segment\'s, or edited: that segment\'s manifest', async () => {
    const swapped = copy();
    writeFileSync(join(swapped, `${name(201, 400)}.manifest.json`), readFileSync(join(swapped, `${name(401, 600)}.manifest.json`)));
    expect(await online(swapped)).toMatchObject({ ok: false, problem: 'segment_manifest_mismatch', firstBadSeq: 201, archive: { segment: `${name(201, 400)}.ndjson.gz` } });
    const r = await offline(swapped);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain(`CHAIN BROKEN at seq 201: segment_manifest_mismatch (intact up to seq 200) in archive segment ${name(201, 400)}.ndjson.gz`);
    // A manifest whose file hash was edited to fit a recompressed file still differs from the store's record of it.
    const edited = copy();
    const m = manifestOf(edited, 401, 600);
    const recompressed = gzipSync(gunzipSync(readFileSync(join(edited, m.file))), { level: 1 });
    writeFileSync(join(edited, m.file), recompressed);
    writeFileSync(join(edited, `${name(401, 600)}.manifest.json`), JSON.stringify({ ...m, fileSha256: createHash('sha256').update(recompressed).digest('hex') }));
    expect(await online(edited)).toMatchObject({ ok: false, problem: 'segment_manifest_mismatch', firstBadSeq: 401 });
    // Recompressed under the old manifest: the file is not the one sealed.
    const recompressedOnly = copy();
    writeFileSync(join(recompressedOnly, m.file), recompressed);
    expect(await online(recompressedOnly)).toMatchObject({ ok: false, problem: 'segment_file_mismatch', firstBadSeq: 401 });
  }, 60_000);
});

describe('with time-stamping: segments end only at stamped checkpoints', () => {
  let tsa: OpensslTsa;
  beforeAll(async () => { tsa = await startOpensslTsa('archive'); }, 60_000);
  afterAll(async () => { await tsa?.close(); });

  it('seals up to the last stamped checkpoint, each manifest carrying the token; the token is verified, a forged one named', async () => {
    const store = await track(Promise.resolve(createSqliteStore(join(work, 'stamped.sqlite'))));
    const chain = await fill(store, 4, 100);
    const checkpoints = await store.checkpoints();
    // The checkpoints at 100 and 200 are stamped by the authority; 300 and 400 wait for theirs.
    for (const cp of checkpoints.filter((c) => c.seq <= 200)) {
      const query = timeStampRequest(stampedBytes(cp.jws));
      const res = await fetch(tsa.url, { method: 'POST', headers: { 'Content-Type': 'application/timestamp-query' }, body: query.der });
      const token = tokenOfResponse(new Uint8Array(await res.arrayBuffer()));
      await store.timestamps!.save(cp.seq, { tsa: tsa.url, token: Buffer.from(token).toString('base64'), time: new Date().toISOString() });
    }
    const dir = mkdtempSync(join(work, 'stamped-'));
    const pass = await archivePass(store, settingsIn(dir, { stamped: true, maxSegmentEntries: 100 }));
    expect(pass.sealed.map((s) => [s.firstSeq, s.lastSeq])).toEqual([[1, 100], [101, 200]]);
    const stamps = await store.timestamps!.all();
    for (const s of pass.sealed) {
      const m = manifestOf(dir, s.firstSeq, s.lastSeq);
      expect(m.anchoring).toBe(ANCHORED);
      expect(m.timestamp).toEqual({ tsa: tsa.url, token: stamps.get(s.lastSeq)!.token, genTime: stamps.get(s.lastSeq)!.time });
    }
    const certificates = parseTsaCertificates(readFileSync(tsa.certFile, 'utf8'), tsa.certFile);
    expect(await verifyStore(store, signer.jwks, { archiveDir: dir, certificates })).toMatchObject({ ok: true, entries: chain.length, archive: { segments: 2 } });
    // A token over another checkpoint put in a manifest: the segment's time-stamp does not verify.
    const forged = mkdtempSync(join(work, 'forged-'));
    cpSync(dir, forged, { recursive: true });
    const second = manifestOf(forged, 101, 200);
    writeFileSync(join(forged, `${String(101).padStart(12, '0')}-${String(200).padStart(12, '0')}.manifest.json`), JSON.stringify({ ...second, timestamp: manifestOf(forged, 1, 100).timestamp }));
    expect(await verifyStore(store, signer.jwks, { archiveDir: forged, certificates })).toMatchObject({ ok: false, problem: 'segment_timestamp_invalid', firstBadSeq: 200 });
  }, 60_000);
});
