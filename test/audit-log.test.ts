import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHmac } from 'node:crypto';
import canonicalize from 'canonicalize';
import Database from 'better-sqlite3';
import { canonicalJson, createMemoryStore, entryHash, type AuditStore } from '../gateway/audit/index.ts';
import { entryCanonicalJson } from '../gateway/audit/entry.ts';
import { startGateway, testConfig, type TestGateway } from './support/fixtures.ts';

const run = promisify(execFile);
const AN = '001085123456';
const BINH = '001188654321';

describe('the audit log', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
    await gw.call('population.identity', { personalId: AN }, { client: 'land-office', userId: 'officer-7' });
    await gw.call('population.identity', { personalId: BINH }, { client: 'portal' });
    await gw.call('population.identity', { personalId: BINH }, { client: 'auditor', purpose: 'AUDIT_REVIEW' });
    await gw.call('population.identity', { personalId: '001099000001' }, { client: 'land-office' });
    await gw.call('population.identity', { personalId: AN }, { client: 'portal', raw: '{"personalId": ' });
    await fetch(`${gw.url}/services/population.identity/v1`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    await gw.gateway.audit.checkpoint();
  });
  afterAll(async () => { await gw.close(); });

  it('holds one entry per request of an authenticated client, released, denied or failed, in order', async () => {
    const entries = [];
    for await (const e of gw.gateway.audit.store.scan()) entries.push(e);
    expect(entries.map((e) => [e.seq, e.client, e.outcome, e.errorCode])).toEqual([
      [1, 'land-office', 'released', null],
      [2, 'portal', 'released', null],
      [3, 'auditor', 'denied', 'FORBIDDEN_SERVICE'],
      [4, 'land-office', 'failed', 'SUBJECT_NOT_FOUND'],
      [5, 'portal', 'denied', 'REQUEST_INVALID'],
    ]);
    expect(entries[0]).toMatchObject({
      userId: 'officer-7', purpose: 'LAND_TRANSFER_REGISTRATION', caseId: 'HS-2026-000123', service: 'population.identity', version: 1, status: 200,
      fields: ['population.identity:core', 'population.identity:address', 'population.identity:family', 'population.identity:vital'],
      upstreams: [expect.objectContaining({ agency: 'population', outcome: 'ok', reference: expect.stringMatching(/^TC/) })],
    });
    expect(entries[0]!.requestSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(entries[0]!.responseSha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('stores subjects as HMAC-SHA-256 pseudonyms under the configured key, never in clear', async () => {
    const { entries: [first] } = await gw.gateway.audit.store.query({ client: 'land-office', outcome: 'released' }, 1);
    const expected = createHmac('sha256', gw.config.audit.pseudonymKey!).update(AN).digest('hex');
    expect(first!.subjects).toEqual([expected]);
    expect(JSON.stringify(first)).not.toContain(AN);
    const { entries } = await gw.gateway.audit.store.query({ subject: gw.gateway.audit.pseudonymize(BINH) }, 10);
    expect(entries.map((e) => e.seq).sort()).toEqual([2, 3]);
  });

  it('hashes RFC 8785 canonical JSON, identical to an independent JCS implementation', async () => {
    for await (const e of gw.gateway.audit.store.scan()) {
      const { hash, ...rest } = e;
      expect(canonicalJson(rest)).toBe((canonicalize as unknown as (v: unknown) => string)(rest));
      expect(entryHash(e)).toBe(hash);
    }
  });

  it('writes an entry member by member exactly as the JCS library writes it, tricky text and all', () => {
    const texts = ['', 'Nguyễn Văn An', 'quote " backslash \\ slash / tab \t nl \n', '\u0001\u001f\u007f\u2028\u2029', '😀 \uD83D\uDE00', 'é (NFD) é'];
    let n = 0;
    for (const t of texts) {
      for (const nullable of [null, t]) {
        const entry = {
          seq: 9_007_199_254_740_991 - n, id: `0190f1e2-0000-7000-8000-${String(n++).padStart(12, '0')}`, time: '2026-12-03T10:00:00.000Z', client: t || 'c',
          userId: nullable, purpose: nullable, caseId: nullable, service: 'population.identity', version: nullable === null ? null : 1,
          subjects: [t, 'b'], fields: [], outcome: 'released' as const, status: 200, errorCode: nullable,
          upstreams: [{ reference: nullable, agency: 'population', operation: t, outcome: 'ok' as const, errorCode: null, latencyMs: 3 }],
          latencyMs: 0, requestSha256: 'a'.repeat(64), responseSha256: nullable, prevHash: '0'.repeat(64),
        };
        expect(entryCanonicalJson(entry)).toBe((canonicalize as unknown as (v: unknown) => string)(entry));
        // A member the record does not have (an object from elsewhere) is hashed whole, as the library writes it.
        const extra = { ...entry, zeta: t, alpha: [1, { b: 2, a: 1 }] };
        expect(entryCanonicalJson(extra as never)).toBe((canonicalize as unknown as (v: unknown) => string)(extra));
        // The optional members, present: the agency a federated gateway called for, a hop to another gateway.
        const federated = { ...entry, actingFor: t || 'land-office', upstreams: [{ ...entry.upstreams[0]!, gateway: 'urn:national', remoteRequestId: entry.id, answerSha256: 'c'.repeat(64) }] };
        expect(entryCanonicalJson(federated)).toBe((canonicalize as unknown as (v: unknown) => string)(federated));
        // So is an upstream call with a member or a value its writer does not know.
        for (const call of [{ ...entry.upstreams[0]!, latencyMs: 2.5 }, { ...entry.upstreams[0]!, hop: t }]) {
          const odd = { ...entry, upstreams: [entry.upstreams[0]!, call] };
          expect(entryCanonicalJson(odd as never)).toBe((canonicalize as unknown as (v: unknown) => string)(odd));
        }
      }
    }
  });

  it('verifies intact with a signed checkpoint', async () => {
    const report = await gw.gateway.audit.verify();
    expect(report).toMatchObject({ ok: true, entries: 5, headSeq: 5, lastCheckpoint: { seq: 5 } });
  });
});

describe('durable before release', () => {
  it('answers AUDIT_UNAVAILABLE and releases no data when the store cannot commit', async () => {
    const memory = createMemoryStore();
    let broken = false;
    const store: AuditStore = { ...memory, appendBatch: (p) => (broken ? Promise.reject(new Error('disk full')) : memory.appendBatch(p)) };
    const gw = await startGateway(undefined, { auditStore: store });
    try {
      expect((await gw.call('population.identity', { personalId: AN })).status).toBe(200);
      broken = true;
      const res = await gw.call('population.identity', { personalId: AN });
      expect(res.status).toBe(503);
      const text = await res.text();
      expect(JSON.parse(text).code).toBe('AUDIT_UNAVAILABLE');
      expect(text).not.toContain('Nguyễn');
      expect(text).not.toContain('disk full');
      expect(res.headers.get('x-gateway-signature')).toBeNull();
      const denied = await gw.call('population.identity', { personalId: AN }, { client: 'auditor', purpose: 'AUDIT_REVIEW' });
      expect((await denied.json()).code).toBe('AUDIT_UNAVAILABLE');
      broken = false;
      expect((await gw.call('population.identity', { personalId: AN })).status).toBe(200);
    } finally {
      await gw.close();
    }
  });
});

describe('gateway audit verify on a copy of a real store', () => {
  let dir: string;
  let configFile: string;
  let storeFile: string;
  beforeAll(async () => {
    const cfg = await testConfig();
    const gw = await startGateway(cfg);
    for (let i = 0; i < 6; i++) await gw.call('population.identity', { personalId: i % 2 ? AN : BINH });
    await gw.gateway.close();
    dir = cfg.dataDir;
    storeFile = join(dir, 'audit.sqlite');
    configFile = join(dir, 'config.json');
  });

  async function verifyCopy(tamper: (db: Database.Database) => void) {
    const copy = join(dir, `copy-${Math.random().toString(36).slice(2)}.sqlite`);
    copyFileSync(storeFile, copy);
    const db = new Database(copy);
    tamper(db);
    db.close();
    const cfg = JSON.parse(JSON.stringify(await testConfig()));
    writeFileSync(configFile, JSON.stringify({ ...cfg, dataDir: dir, audit: { ...cfg.audit, sqliteFile: copy } }));
    try {
      const { stdout } = await run('node', ['bin/gateway.mjs', 'audit', 'verify', '--config', configFile]);
      return { exitCode: 0, report: JSON.parse(stdout.slice(0, stdout.lastIndexOf('}') + 1)) };
    } catch (e) {
      const err = e as { code: number; stdout: string };
      return { exitCode: err.code, report: JSON.parse(err.stdout.slice(0, err.stdout.lastIndexOf('}') + 1)) };
    }
  }

  it('reports the chain intact', async () => {
    const { exitCode, report } = await verifyCopy(() => {});
    expect(exitCode).toBe(0);
    expect(report).toMatchObject({ ok: true, entries: 6, headSeq: 6 });
  });

  it('names the first bad seq when a row was edited', async () => {
    const { exitCode, report } = await verifyCopy((db) => db.prepare("UPDATE audit_entries SET client = 'someone-else' WHERE seq = 3").run());
    expect(exitCode).toBe(2);
    expect(report).toMatchObject({ ok: false, firstBadSeq: 3, problem: 'hash_mismatch' });
  });

  it('names the first bad seq when a row was edited and its hash recomputed', async () => {
    const { report } = await verifyCopy((db) => {
      const row = db.prepare('SELECT * FROM audit_entries WHERE seq = 4').get() as Record<string, unknown>;
      const forged = { seq: 4, id: row.id, time: row.time, client: 'forged', userId: row.user_id, purpose: row.purpose, caseId: row.case_id, service: row.service, version: row.version, subjects: JSON.parse(row.subjects as string), fields: JSON.parse(row.fields as string), outcome: row.outcome, status: row.status, errorCode: row.error_code, upstreams: JSON.parse(row.upstreams as string), latencyMs: row.latency_ms, requestSha256: row.request_sha256, responseSha256: row.response_sha256, prevHash: row.prev_hash };
      db.prepare('UPDATE audit_entries SET client = ?, hash = ? WHERE seq = 4').run('forged', entryHash(forged as never));
    });
    expect(report).toMatchObject({ ok: false, firstBadSeq: 5, problem: 'broken_link' });
  });

  it('names the first bad seq when a row was deleted', async () => {
    const { exitCode, report } = await verifyCopy((db) => db.prepare('DELETE FROM audit_entries WHERE seq = 2').run());
    expect(exitCode).toBe(2);
    expect(report).toMatchObject({ ok: false, firstBadSeq: 2, problem: 'missing_entry' });
  });

  it('names the first bad seq when two rows were swapped', async () => {
    const { report } = await verifyCopy((db) => {
      const cols = 'id, time, client, user_id, purpose, case_id, service, version, subjects, fields, outcome, status, error_code, upstreams, latency_ms, request_sha256, response_sha256, prev_hash, hash';
      const a = db.prepare(`SELECT ${cols} FROM audit_entries WHERE seq = 4`).get() as Record<string, unknown>;
      const b = db.prepare(`SELECT ${cols} FROM audit_entries WHERE seq = 5`).get() as Record<string, unknown>;
      db.prepare('DELETE FROM audit_entries WHERE seq IN (4, 5)').run();
      const insert = db.prepare(`INSERT INTO audit_entries (seq, ${cols}) VALUES (@seq, ${cols.split(', ').map((c) => '@' + c).join(', ')})`);
      insert.run({ ...b, seq: 4 });
      insert.run({ ...a, seq: 5 });
    });
    expect(report).toMatchObject({ ok: false, firstBadSeq: 4 });
  });

  it('detects a truncated tail against the signed checkpoint', async () => {
    const { report } = await verifyCopy((db) => db.prepare('DELETE FROM audit_entries WHERE seq >= 5').run());
    expect(report).toMatchObject({ ok: false, problem: 'truncated', firstBadSeq: 5, headSeq: 4 });
  });
});
