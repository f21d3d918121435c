/**
 * Retention in a running gateway: entries past audit.retention.hotDays, once sealed, are still
 * found by a search by personal id (GET /audit/entries, the console, the citizen's access log),
 * GET /audit/archives and the console list the segments, /audit/verify checks them with the hot
 * store as one chain, the metrics say what was archived, and a start with an archive directory
 * that cannot be written is refused, naming the key.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { world } from '../adapters/world/index.ts';
import { archivePass, archiveSettings } from '../gateway/audit/archiver.ts';
import { ConfigError } from '../gateway/config/errors.ts';
import { createGateway } from '../gateway/server.ts';
import { CONSOLE_PASSWORD, startGateway, testConfig, type TestGateway } from './support/fixtures.ts';

const [an, binh] = world().citizens;
const auditor = { client: 'auditor' };
const DAY = 86_400_000;

let gw: TestGateway;
let cookie: string;
/** What the audit API listed for An before anything was archived, newest first. */
let before: { seq: number; id: string }[];
let sealedThrough: number;

/** Every page of a search, as {seq, id}. */
async function everyPage(get: (cursor: string | null) => Promise<Response>) {
  const seen: { seq: number; id: string; [k: string]: unknown }[] = [];
  let cursor: string | null = null;
  do {
    const res = await get(cursor);
    expect(res.status).toBe(200);
    const page = (await res.json()) as { entries: { seq: number; id: string }[]; nextCursor: string | null };
    seen.push(...page.entries);
    cursor = page.nextCursor;
  } while (cursor);
  return seen;
}
const entriesOf = (personalId: string) => everyPage((cursor) => gw.get(`/audit/entries?subject=${personalId}&limit=3${cursor ? `&cursor=${cursor}` : ''}`, auditor));

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

beforeAll(async () => {
  gw = await startGateway(await testConfig((raw) => { raw.audit.retention = { hotDays: 30 }; raw.audit.archive = { maxSegmentEntries: 1000 }; }));
  for (let i = 0; i < 4; i++) expect((await gw.call('population.identity', { personalId: an!.personalId })).status).toBe(200);
  expect((await gw.call('population.identity', { personalId: binh!.personalId }, { client: 'land-office' })).status).toBe(200);
  await gw.gateway.audit.checkpoint();
  // After the checkpoint: stays hot whatever the clock says.
  expect((await gw.call('population.identity', { personalId: an!.personalId })).status).toBe(200);
  before = (await entriesOf(an!.personalId)).map(({ seq, id }) => ({ seq, id }));
  // Forty days on: everything up to the checkpoint is past hotDays.
  const pass = await archivePass(gw.gateway.audit.store, archiveSettings(gw.config)!, { now: () => Date.now() + 40 * DAY });
  expect(pass.sealed).toHaveLength(1);
  sealedThrough = pass.sealed[0]!.lastSeq;
  await gw.gateway.archiver.runOnce();
  const login = await fetch(`${gw.url}/console/api/login`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', Origin: gw.url }, body: JSON.stringify({ username: 'auditor', password: CONSOLE_PASSWORD }),
  });
  cookie = login.headers.get('set-cookie')!.split(';')[0]!;
}, 60_000);
afterAll(async () => { await gw?.close(); });

describe('a gateway with retention', () => {
  it('archived the entries up to the checkpoint; the hot store starts after it', async () => {
    const hot = await gw.gateway.audit.store.archive!.oldestHot();
    expect(hot!.seq).toBe(sealedThrough + 1);
    expect(before.some((e) => e.seq <= sealedThrough)).toBe(true);
  });

  it('GET /audit/entries by personal id still finds the archived entries, newest first, paging across the boundary', async () => {
    const after = (await entriesOf(an!.personalId)).map(({ seq, id }) => ({ seq, id }));
    // The searches themselves concern An too: what was listed before is listed still, in the same order, after the newer ones.
    expect(after.slice(-before.length)).toEqual(before);
    expect(after.filter((e) => e.seq <= sealedThrough).length).toBeGreaterThanOrEqual(4);
    // Other filters cover the hot store: the land office's archived lookup of Binh is found by Binh's id only.
    const byClient = await everyPage((cursor) => gw.get(`/audit/entries?client=land-office${cursor ? `&cursor=${cursor}` : ''}`, auditor));
    expect(byClient.filter((e) => e.seq <= sealedThrough)).toEqual([]);
    expect((await entriesOf(binh!.personalId)).some((e) => e.seq <= sealedThrough && e.client === 'land-office')).toBe(true);
  });

  it('the citizen\'s access log shows archived accesses', async () => {
    const consent = await gw.consent(an!.personalId, ['core']);
    const res = await gw.get('/citizen/access-log?limit=100', { client: 'portal', consent });
    expect(res.status).toBe(200);
    const { entries } = await res.json();
    const archivedIds = new Set(before.filter((e) => e.seq <= sealedThrough).map((e) => e.id));
    const shown = entries.filter((e: { reference: string }) => archivedIds.has(e.reference));
    expect(shown.length).toBeGreaterThanOrEqual(4);
    expect(shown[0]).toMatchObject({ agency: { id: 'portal' }, service: 'population.identity', outcome: 'released' });
  });

  it('GET /audit/archives lists the segments; /audit/verify checks them with the hot store as one chain', async () => {
    const res = await gw.get('/audit/archives', auditor);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({
      retention: { hotDays: 30 },
      hot: { firstSeq: sealedThrough + 1 },
      segments: [{ firstSeq: 1, lastSeq: sealedThrough, entries: sealedThrough, file: `000000000001-${String(sealedThrough).padStart(12, '0')}.ndjson.gz`, present: true, timestamp: null, checkpoint: { seq: sealedThrough } }],
    });
    expect((await gw.get('/audit/archives?limit=1', auditor)).status).toBe(400);
    expect((await gw.get('/audit/archives', { client: 'portal' })).status).toBe(403);
    const verify = await (await gw.get('/audit/verify', auditor)).json();
    expect(verify).toMatchObject({ ok: true, problem: null, archive: { segments: 1, entries: sealedThrough, segment: null } });
  });

  it('the console lists the archives, opens an archived entry, and searches archived entries by personal id', async () => {
    const list = await fetch(`${gw.url}/console/api/archives`, { headers: { Cookie: cookie } });
    expect(list.status).toBe(200);
    expect((await list.json()).segments).toHaveLength(1);
    const archived = before.find((e) => e.seq <= sealedThrough)!;
    const one = await fetch(`${gw.url}/console/api/entries/${archived.id}`, { headers: { Cookie: cookie } });
    expect(one.status).toBe(200);
    expect(await one.json()).toMatchObject({ entry: { seq: archived.seq, id: archived.id }, hashOk: true });
    const search = await fetch(`${gw.url}/console/api/entries?subject=${an!.personalId}&limit=500`, { headers: { Cookie: cookie } });
    expect((await search.json()).entries.map((e: { id: string }) => e.id)).toEqual(expect.arrayContaining(before.map((e) => e.id)));
  });

  it('says in its metrics how much is archived, when, and how old the hot store\'s oldest entry is', async () => {
    expect(await metric('gateway_audit_archived_entries')).toBe(sealedThrough);
    expect(await metric('gateway_audit_archive_segments')).toBe(1);
    expect(await metric('gateway_audit_last_archive_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 600);
    expect(await metric('gateway_audit_hot_oldest_entry_age_seconds')).toBeGreaterThanOrEqual(0);
  });
});

describe('retention config', () => {
  it('refuses to start when the archive directory cannot be written, naming the key', async () => {
    const cfg = await testConfig((raw) => {
      raw.audit.retention = { hotDays: 30 };
      raw.audit.archive = { dir: join(raw.dataDir, 'not-a-dir', 'archive') };
      writeFileSync(join(raw.dataDir, 'not-a-dir'), 'a file');
    });
    await expect(createGateway(cfg)).rejects.toThrow(ConfigError);
    await expect(createGateway(cfg)).rejects.toThrow(/^\/audit\/archive\/dir: .* is not a writable directory/);
  });

  it('retention is off without hotDays, and the archive directory defaults to <dataDir>/archive', async () => {
    const cfg = await testConfig();
    expect(cfg.audit.retention.hotDays).toBeUndefined();
    expect(archiveSettings(cfg)).toBeNull();
    const on = await testConfig((raw) => { raw.audit.retention = { hotDays: 7 }; });
    expect(archiveSettings(on)).toEqual({ dir: join(on.dataDir, 'archive'), hotDays: 7, maxSegmentEntries: 10000, stamped: false });
    expect(on.audit.archive.everySeconds).toBe(3600);
  });
});
