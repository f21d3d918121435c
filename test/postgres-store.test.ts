/**
 * The PostgreSQL audit store against a real server (TEST_POSTGRES_URL): the store contract, one
 * chain across concurrent writers, tamper detection, and migrations that run once.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresStore, migrate } from '../gateway/audit/postgres-store.ts';
import { sha256Hex, verifyChain, type AuditStore, type PendingEntry } from '../gateway/audit/index.ts';
import { generatePrivateJwk, keyPairFromJwk } from '../gateway/keys.ts';
import { createSigner, type Signer } from '../gateway/signing.ts';

const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const RUN = `${process.pid}_${randomUUID().slice(0, 8)}`;

const admin = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 });
const schemas: string[] = [];
const stores: AuditStore[] = [];
let signer: Signer;

/** A schema name no other test file or run uses; dropped after the file. */
function freshSchema(tag: string): string {
  const name = `t_pgstore_${tag}_${RUN}`;
  schemas.push(name);
  return name;
}

async function open(schema: string): Promise<AuditStore> {
  const store = await createPostgresStore({ url: POSTGRES_URL, schema });
  stores.push(store);
  return store;
}

const all = async (it: AsyncIterable<unknown>) => {
  const out = [];
  for await (const x of it) out.push(x);
  return out;
};

const PEOPLE = ['a'.repeat(64), 'b'.repeat(64), 'c'.repeat(64)];

/** Entry `i` of a deterministic mix: two clients, two services, three subjects, all outcomes, Vietnamese text. */
function pending(i: number): PendingEntry {
  const denied = i % 5 === 4;
  return {
    id: randomUUID(),
    time: new Date(Date.UTC(2026, 0, 1, 8, 0, i)).toISOString(),
    client: i % 2 ? 'portal' : 'land-office',
    userId: i % 2 ? null : 'cán-bộ-Nguyễn',
    purpose: i % 2 ? 'PUBLIC_SERVICE_PREFILL' : 'LAND_TRANSFER_REGISTRATION',
    caseId: i % 2 ? null : `HS-2026-${String(i).padStart(6, '0')}`,
    service: i % 3 ? 'population.identity' : 'land.parcel',
    version: 1,
    subjects: i % 4 === 3 ? [] : [PEOPLE[i % 3]!],
    fields: denied ? [] : ['population.identity:core'],
    outcome: denied ? 'denied' : i % 7 === 6 ? 'failed' : 'released',
    status: denied ? 403 : i % 7 === 6 ? 503 : 200,
    errorCode: denied ? 'FORBIDDEN_PURPOSE' : i % 7 === 6 ? 'UPSTREAM_UNAVAILABLE' : null,
    upstreams: denied ? [] : [{ agency: 'population', operation: 'identity', outcome: 'ok', errorCode: null, latencyMs: 3 + i, reference: `TC-${i}` }],
    latencyMs: 10 + i,
    requestSha256: sha256Hex(`request ${i}`),
    responseSha256: sha256Hex(`response ${i}`),
  };
}

beforeAll(async () => {
  signer = createSigner(await keyPairFromJwk(await generatePrivateJwk('ES256')));
});

afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
  for (const s of schemas) await admin.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  await admin.end();
});

describe('PostgreSQL audit store', () => {
  let store: AuditStore;
  const ids: string[] = [];
  beforeAll(async () => {
    store = await open(freshSchema('contract'));
    for (const batch of [[0, 1, 2], [3], [4, 5, 6, 7, 8, 9, 10, 11]]) {
      const committed = await store.appendBatch(batch.map(pending));
      ids.push(...committed.map((e) => e.id));
    }
  });

  it('numbers entries from 1 and links each batch after the previous one', async () => {
    const entries = await all(store.scan());
    expect(entries.map((e: any) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect((entries[3] as any).prevHash).toBe((entries[2] as any).hash);
    expect(await store.head()).toEqual({ seq: 12, hash: (entries[11] as any).hash });
    expect(await store.appendBatch([])).toEqual([]);
  });

  it('reads an entry back exactly as it was chained', async () => {
    const e = await store.get(ids[0]!);
    expect(e).toMatchObject({ ...pending(0), id: ids[0], seq: 1 });
    expect(await store.get(randomUUID())).toBeNull();
    const report = await verifyChain(store.scan(), [], signer.jwks);
    expect(report).toMatchObject({ ok: true, entries: 12, headSeq: 12 });
  });

  it('scans from a seq with filters, in ascending order', async () => {
    const fromFive = await all(store.scan(5));
    expect(fromFive.map((e: any) => e.seq)).toEqual([5, 6, 7, 8, 9, 10, 11, 12]);
    const portal = await all(store.scan(1, { client: 'portal' }));
    expect(portal.map((e: any) => e.seq)).toEqual([2, 4, 6, 8, 10, 12]);
  });

  it('queries by every filter, newest first', async () => {
    const seqs = async (filter: Parameters<AuditStore['query']>[0]) => (await store.query(filter, 100)).entries.map((e) => e.seq);
    const expected = (pred: (p: PendingEntry) => boolean) =>
      Array.from({ length: 12 }, (_, i) => i).filter((i) => pred(pending(i))).map((i) => i + 1).reverse();
    expect(await seqs({ subject: PEOPLE[1] })).toEqual(expected((p) => p.subjects.includes(PEOPLE[1]!)));
    expect(await seqs({ client: 'land-office' })).toEqual(expected((p) => p.client === 'land-office'));
    expect(await seqs({ service: 'land.parcel' })).toEqual(expected((p) => p.service === 'land.parcel'));
    expect(await seqs({ purpose: 'PUBLIC_SERVICE_PREFILL' })).toEqual(expected((p) => p.purpose === 'PUBLIC_SERVICE_PREFILL'));
    expect(await seqs({ caseId: 'HS-2026-000004' })).toEqual([5]);
    expect(await seqs({ outcome: 'denied' })).toEqual(expected((p) => p.outcome === 'denied'));
    expect(await seqs({ outcome: 'failed' })).toEqual(expected((p) => p.outcome === 'failed'));
    const from = pending(3).time;
    const to = pending(6).time;
    expect(await seqs({ from, to })).toEqual([6, 5, 4]);
    expect(await seqs({ client: 'portal', subject: PEOPLE[0], from })).toEqual(expected((p) => p.client === 'portal' && p.subjects.includes(PEOPLE[0]!) && p.time >= from));
  });

  it('pages with a cursor without gaps or repeats', async () => {
    const seen: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await store.query({}, 5, cursor);
      seen.push(...page.entries.map((e) => e.seq));
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual([12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
    await expect(store.query({}, 5, 'not-a-cursor')).rejects.toThrow(RangeError);
  });

  it('keeps signed checkpoints once per seq and verifies the chain against them', async () => {
    const head = await store.head();
    const time = new Date().toISOString();
    const cp = { seq: head.seq, hash: head.hash, time, jws: await signer.signCheckpoint({ seq: head.seq, hash: head.hash, time }) };
    await store.saveCheckpoint(cp);
    await store.saveCheckpoint({ ...cp, time: 'later' });
    expect(await store.checkpoints()).toEqual([cp]);
    const report = await verifyChain(store.scan(), await store.checkpoints(), signer.jwks);
    expect(report).toMatchObject({ ok: true, entries: 12, lastCheckpoint: { seq: 12 } });
  });

  it('probes writable and refuses once closed', async () => {
    const other = await open(freshSchema('probe'));
    await expect(other.probe()).resolves.toBeUndefined();
    await other.close();
    await expect(other.probe()).rejects.toThrow();
  });

  it('stores text PostgreSQL cannot hold (U+0000, lone surrogates) as U+FFFD without failing the batch or the chain', async () => {
    const other = await open(freshSchema('text'));
    const odd = { ...pending(0), caseId: 'HS\u0000-1', userId: 'officer-\ud800' };
    const [stored] = await other.appendBatch([odd, pending(1)]);
    expect(await other.get(stored!.id)).toMatchObject({ caseId: 'HS\ufffd-1', userId: 'officer-\ufffd' });
    expect(await verifyChain(other.scan(), [], signer.jwks)).toMatchObject({ ok: true, entries: 2 });
  });

  it('refuses a schema name that could not be quoted safely', async () => {
    await expect(createPostgresStore({ url: POSTGRES_URL, schema: 'x"; DROP TABLE y; --' })).rejects.toThrow(/postgresSchema/);
  });
});

describe('one chain across writers', () => {
  it('interleaves concurrent batches of two stores into one chain with no fork', async () => {
    const schema = freshSchema('concurrent');
    // Both start together: the advisory lock makes one apply the migrations and the other wait.
    const [a, b] = await Promise.all([open(schema), open(schema)]);
    const writer = (s: AuditStore, base: number) => Promise.all(Array.from({ length: 20 }, (_, i) => s.appendBatch([pending(base + i), pending(base + i + 100)])));
    await Promise.all([writer(a!, 0), writer(b!, 1000)]);
    const report = await verifyChain(a!.scan(), [], signer.jwks);
    expect(report).toMatchObject({ ok: true, entries: 80, headSeq: 80 });
    expect(await b!.head()).toEqual(await a!.head());
  });
});

describe('tampering', () => {
  let store: AuditStore;
  let schema: string;
  beforeAll(async () => {
    schema = freshSchema('tamper');
    store = await open(schema);
    await store.appendBatch(Array.from({ length: 6 }, (_, i) => pending(i)));
  });

  it('detects an edited row', async () => {
    await admin.query(`UPDATE "${schema}".audit_entries SET client = 'someone-else' WHERE seq = 3`);
    const report = await verifyChain(store.scan(), [], signer.jwks);
    expect(report).toMatchObject({ ok: false, problem: 'hash_mismatch', firstBadSeq: 3, verifiedUpTo: 2 });
  });

  it('detects a deleted row', async () => {
    await admin.query(`DELETE FROM "${schema}".audit_entries WHERE seq = 2`);
    const report = await verifyChain(store.scan(), [], signer.jwks);
    expect(report).toMatchObject({ ok: false, problem: 'missing_entry', firstBadSeq: 2 });
  });
});

describe('migrations', () => {
  it('apply once: a second start finds nothing to do and keeps the data', async () => {
    const schema = freshSchema('migrate');
    const first = await open(schema);
    await first.appendBatch([pending(0), pending(1)]);
    const second = await open(schema);
    expect(await second.head()).toEqual(await first.head());
    const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 1 });
    try {
      expect(await migrate(pool, schema)).toEqual([]);
    } finally {
      await pool.end();
    }
    const { rows } = await admin.query(`SELECT version FROM "${schema}".schema_migrations ORDER BY version`);
    expect(rows.map((r) => r.version)).toEqual([1, 2, 3, 4, 5]);
  });

  it('upgrade a store made before the write probe: only the new migration runs, and the probe then commits', async () => {
    const schema = freshSchema('upgrade');
    const first = await open(schema);
    await first.appendBatch([pending(0)]);
    await admin.query(`DROP TABLE "${schema}".audit_write_probe; DELETE FROM "${schema}".schema_migrations WHERE version = 2`);
    await expect(first.probe()).rejects.toThrow();
    const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 1 });
    try {
      expect(await migrate(pool, schema)).toEqual([2]);
    } finally {
      await pool.end();
    }
    await first.probe();
    expect((await first.head()).seq).toBe(1);
  });
});
