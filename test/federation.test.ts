/**
 * Federation's parts on their own: the delegation claims (RFC 8693 act) and who may use them, the
 * pinned contract's hash, and the audit record's optional `actingFor` in every store: an entry
 * with it reads back as written and verifies; an entry without it has no member at all; a SQLite
 * file written before the member existed gets its column and still verifies.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { entryHash, sha256Hex, type PendingEntry } from '../gateway/audit/entry.ts';
import { createMemoryStore } from '../gateway/audit/memory-store.ts';
import { createPostgresStore } from '../gateway/audit/postgres-store.ts';
import { createSqliteStore } from '../gateway/audit/sqlite-store.ts';
import type { AuditStore } from '../gateway/audit/store.ts';
import { verifyStore } from '../gateway/audit/verify.ts';
import { RECORD_MEMBERS } from '../gateway/audit/record.ts';
import { actingPartyOf, checkActingParty } from '../gateway/federation/acting.ts';
import { contractSha256 } from '../gateway/federation/contracts.ts';
import { contractKey, loadContracts } from '../gateway/contracts.ts';
import { GatewayError } from '../gateway/errors.ts';
import type { ClientConfig } from '../gateway/config/types.ts';
import { dropSchemas, POSTGRES_URL } from './support/postgres.ts';

const codeOf = (fn: () => unknown) => {
  try {
    fn();
    return null;
  } catch (e) {
    return (e as GatewayError).code;
  }
};

describe('the delegation claims', () => {
  it('names the party acted for only with act, whose sub is the signer', () => {
    expect(actingPartyOf({ iss: 'province-gateway' })).toBeUndefined();
    expect(actingPartyOf({ iss: 'portal', sub: 'portal' })).toBeUndefined();
    expect(actingPartyOf({ iss: 'province-gateway', sub: 'portal', act: { sub: 'province-gateway' } })).toBe('portal');
    expect(actingPartyOf({ iss: 'province-gateway', sub: 'portal', act: { sub: 'province-gateway', act: { sub: 'district-gateway' } } })).toBe('portal');
  });

  it('refuses a malformed delegation with AUTH_INVALID', () => {
    for (const claims of [
      { iss: 'g', sub: 'portal', act: { sub: 'someone-else' } },
      { iss: 'g', act: { sub: 'g' } },
      { iss: 'g', sub: 'g', act: { sub: 'g' } },
      { iss: 'g', sub: 'portal', act: 'g' },
      { iss: 'g', sub: 'por\u202etal', act: { sub: 'g' } },
      { iss: 'g', sub: 'portal', act: { sub: 'g', act: { sub: 'a', act: { sub: 'b', act: { sub: 'c', act: { sub: 'd' } } } } } },
    ]) expect(codeOf(() => actingPartyOf(claims))).toBe('AUTH_INVALID');
  });

  it('lets only a client configured for it act, and only for the agencies it names', () => {
    const ordinary = { id: 'land-office' } as ClientConfig;
    const gateway = { id: 'province-gateway', federation: { mayActFor: ['portal'] } } as ClientConfig;
    const any = { id: 'province-gateway', federation: { mayActFor: ['*'] } } as ClientConfig;
    expect(codeOf(() => checkActingParty(ordinary, undefined))).toBeNull();
    expect(codeOf(() => checkActingParty(ordinary, 'portal'))).toBe('FORBIDDEN_ACTING_PARTY');
    expect(codeOf(() => checkActingParty(gateway, 'portal'))).toBeNull();
    expect(codeOf(() => checkActingParty(gateway, 'land-office'))).toBe('FORBIDDEN_ACTING_PARTY');
    expect(codeOf(() => checkActingParty(any, 'land-office'))).toBeNull();
  });
});

describe('the pinned contract hash', () => {
  it('is the same for the compiled contract and its published document, with or without where it is served', () => {
    const c = loadContracts().get(contractKey('population.identity', 1))!;
    const doc = { ...c.meta, requestSchema: c.requestSchema, responseSchema: c.responseSchema };
    expect(contractSha256(c)).toMatch(/^[0-9a-f]{64}$/);
    expect(contractSha256({ ...doc, path: '/services/population.identity/v1', contractSha256: 'x', gateway: 'urn:x' } as never)).toBe(contractSha256(c));
    expect(contractSha256({ ...doc, title: 'changed' })).not.toBe(contractSha256(c));
  });
});

const pending = (actingFor?: string): PendingEntry => ({
  id: randomUUID(), time: new Date().toISOString(), client: actingFor ? 'province-gateway' : 'portal', ...(actingFor ? { actingFor } : {}),
  userId: null, purpose: 'PUBLIC_SERVICE_PREFILL', caseId: null, service: 'population.identity', version: 1, subjects: [], fields: [], outcome: 'released', status: 200,
  errorCode: null, latencyMs: 1, requestSha256: sha256Hex('req'), responseSha256: sha256Hex('res'),
  upstreams: [{ agency: 'population', operation: 'population.identity/v1', outcome: 'ok', errorCode: null, latencyMs: 1, reference: 'TC1', gateway: 'urn:n', remoteRequestId: randomUUID(), answerSha256: sha256Hex('a') }],
});

const schema = `t_federation_${process.pid}_${randomUUID().slice(0, 8)}`;
const opened: AuditStore[] = [];
afterAll(async () => {
  for (const s of opened) await s.close().catch(() => {});
  await dropSchemas([schema]);
});

describe('the audit record\'s optional actingFor', () => {
  const stores: [string, () => Promise<AuditStore>][] = [
    ['memory', async () => createMemoryStore()],
    ['sqlite', async () => createSqliteStore(join(mkdtempSync(join(tmpdir(), 'gw-fed-')), 'audit.sqlite'))],
    ['postgres', () => createPostgresStore({ url: POSTGRES_URL, schema })],
  ];
  for (const [name, open] of stores) {
    it(`${name}: reads back an entry with it and one without it exactly, and the chain verifies`, async () => {
      const store = await open();
      opened.push(store);
      const [withIt, without] = await store.appendBatch([pending('portal'), pending()]);
      const a = (await store.get(withIt!.id))!;
      const b = (await store.get(without!.id))!;
      expect(a).toEqual(withIt);
      expect(a.actingFor).toBe('portal');
      expect(a.upstreams[0]).toMatchObject({ gateway: 'urn:n', answerSha256: sha256Hex('a') });
      expect(b).toEqual(without);
      expect('actingFor' in b).toBe(false);
      expect(entryHash(a)).toBe(a.hash);
      expect(entryHash(b)).toBe(b.hash);
      const report = await verifyStore(store, { keys: [] });
      expect(report.ok).toBe(true);
    });
  }

  it('sqlite: a file written before the member existed gets its column, and old and new entries verify', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'gw-fed-old-')), 'audit.sqlite');
    const first = createSqliteStore(file);
    const [old] = await first.appendBatch([pending()]);
    await first.close();
    // As the file was before: no acting_for column.
    const db = new Database(file);
    db.exec('ALTER TABLE audit_entries DROP COLUMN acting_for');
    db.close();
    const store = createSqliteStore(file);
    opened.push(store);
    expect((await store.get(old!.id))).toEqual(old);
    await store.appendBatch([pending('land-office'), pending()]);
    expect((await verifyStore(store, { keys: [] })).ok).toBe(true);
    expect(RECORD_MEMBERS.find((m) => m.name === 'actingFor')!.optional).toBe(true);
  });
});
