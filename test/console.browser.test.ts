import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { world } from '../adapters/world/index.ts';
import { entryHash, makePseudonymizer, type AuditEntry } from '../gateway/audit/index.ts';
import { CONSOLE_PASSWORD, startGateway, type TestGateway } from './support/fixtures.ts';
import { parseExport } from './support/export.ts';

// The README's screenshots are refreshed on demand (UPDATE_SCREENSHOTS=1 npm test); a plain run leaves the checkout untouched.
const SCREENSHOTS = process.env.UPDATE_SCREENSHOTS ? fileURLToPath(new URL('../docs/screenshots/', import.meta.url)) : mkdtempSync(join(tmpdir(), 'gw-screenshots-'));
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'];
const [an, binh, cuong] = world().citizens;

let gw: TestGateway;
let browser: Browser;
let page: Page;
let pseudonym: (id: string) => string;

const login = (body: unknown, headers: Record<string, string> = {}) => fetch(`${gw.url}/console/api/login`, {
  method: 'POST', headers: { 'Content-Type': 'application/json', Origin: gw.url, ...headers }, body: JSON.stringify(body),
});

beforeAll(async () => {
  gw = await startGateway();
  pseudonym = makePseudonymizer(gw.config.audit.pseudonymKey!);
  const traffic: [string, string, string?][] = [
    ['land-office', an!.personalId, 'HS-2026-000123'], ['portal', binh!.personalId], ['land-office', cuong!.personalId, 'HS-2026-000124'],
    ['portal', an!.personalId], ['land-office', '001099000001', 'HS-2026-000125'],
  ];
  for (const [client, personalId, caseId] of traffic) await gw.call('population.identity', { personalId }, { client, caseId });
  await gw.call('population.identity', { personalId: an!.personalId }, { client: 'portal', purpose: 'LAND_TRANSFER_REGISTRATION' });
  // Once-only calls, so the usage report shows what the province's leaders track.
  await gw.call('portal.prefill', { form: 'permanent-residence-registration' }, { client: 'portal', consent: await gw.consent(binh!.personalId, ['core', 'address', 'family']) });
  for (const certificateSerial of ['CS 100002', 'CS 100003']) await gw.call('land.title-verification', { certificateSerial }, { client: 'land-office', caseId: 'HS-2026-000126' });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  const context = await browser.newContext({ acceptDownloads: true, locale: 'en-GB', viewport: { width: 1360, height: 860 } });
  page = await context.newPage();
  page.setDefaultTimeout(10_000);
  mkdirSync(SCREENSHOTS, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  await gw?.close();
  if (!process.env.UPDATE_SCREENSHOTS) rmSync(SCREENSHOTS, { recursive: true, force: true });
});

describe('console API guards', () => {
  it('sets the session cookie httpOnly, SameSite=Strict, Path=/console', async () => {
    const res = await login({ username: 'auditor', password: CONSOLE_PASSWORD });
    expect(res.status).toBe(200);
    const cookie = res.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^gw_console=[A-Za-z0-9_-]{43}; /);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    expect(cookie).toContain('Path=/console');
    expect(cookie).not.toContain('Secure');
    const session = await fetch(`${gw.url}/console/api/session`, { headers: { Cookie: cookie.split(';')[0]! } });
    expect(await session.json()).toMatchObject({ username: 'auditor' });
  });

  it('refuses the API without a session', async () => {
    const res = await fetch(`${gw.url}/console/api/entries`);
    expect(res.status).toBe(401);
    expect((await res.json()).code).toBe('AUTH_MISSING');
  });

  it('accepts sign-in only as JSON from its own origin (CSRF)', async () => {
    const foreign = await login({ username: 'auditor', password: CONSOLE_PASSWORD }, { Origin: 'https://evil.example' });
    expect(foreign.status).toBe(400);
    expect((await foreign.json()).code).toBe('REQUEST_INVALID');
    const form = await fetch(`${gw.url}/console/api/login`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: gw.url }, body: 'username=auditor' });
    expect(form.status).toBe(415);
    expect((await form.json()).code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('limits failed sign-ins per username and address: the sixth in a minute is refused even with the right password', async () => {
    for (let i = 0; i < 5; i++) {
      const res = await login({ username: 'mallory', password: `guess-${i}` });
      expect(res.status).toBe(401);
      expect((await res.json()).code).toBe('AUTH_INVALID');
    }
    const limited = await login({ username: 'mallory', password: 'guess-6' });
    expect(limited.status).toBe(429);
    expect((await limited.json()).code).toBe('RATE_LIMITED');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another username from the same address is not locked out.
    expect((await login({ username: 'auditor', password: CONSOLE_PASSWORD })).status).toBe(200);
  });

  it('serves the pages with a strict content security policy', async () => {
    const res = await fetch(`${gw.url}/console`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect((await fetch(`${gw.url}/console/router.ts`)).status).toBe(404);
  });
});

describe('auditor console in Chromium', () => {
  it('signs in and shows the verified chain', async () => {
    await page.goto(`${gw.url}/console`);
    await page.fill('#username', 'auditor');
    await page.fill('#password', 'wrong password');
    await page.click('#sign-in');
    await page.waitForSelector('#login-error:not([hidden])');
    await page.fill('#password', CONSOLE_PASSWORD);
    await page.click('#sign-in');
    const ok = await page.waitForSelector('#chain-ok');
    expect(await ok.textContent()).toMatch(/verified up to seq \d+/);
    await page.waitForSelector('#entries tr');
  });

  it("filters by a citizen's personal id", async () => {
    await page.fill('#f-subject', an!.personalId);
    await page.click('#search');
    await page.waitForFunction(() => document.querySelectorAll('#entries tr').length === 3);
    const subjects = await page.$$eval('#entries tr td:nth-child(7)', (tds) => tds.map((td) => td.getAttribute('title')));
    expect(subjects.every((s) => s === pseudonym(an!.personalId))).toBe(true);
    await page.screenshot({ path: join(SCREENSHOTS, 'console-entries.png'), fullPage: true });
  });

  it('opens an entry with its recomputed hash', async () => {
    await page.click('#entries tr:last-child');
    await page.waitForSelector('#view-entry:not([hidden]) [data-field="hash"]');
    expect(await page.textContent('[data-field="caseId"]')).toBe('HS-2026-000123');
    expect(await page.textContent('[data-field="legalBasis"]')).toContain('Luật Đất đai 2024');
    expect(await page.textContent('#entry-hash')).toContain('Hash matches');
    expect(await page.$$('#entry-upstreams tr')).toHaveLength(1);
    await page.screenshot({ path: join(SCREENSHOTS, 'console-entry.png'), fullPage: true });
    await page.click('text=← Back to entries');
    await page.waitForSelector('#view-entries:not([hidden])');
  });

  it('downloads the filtered export as NDJSON and CSV', async () => {
    await page.waitForFunction(() => (document.querySelector('#export-ndjson') as HTMLAnchorElement).href.includes('subject='));
    const [ndjson] = await Promise.all([page.waitForEvent('download'), page.click('#export-ndjson')]);
    expect(ndjson.suggestedFilename()).toMatch(/^audit-export-\d+\.ndjson$/);
    const lines = parseExport(readFileSync((await ndjson.path())!, 'utf8')).entries;
    // The three look-ups, then the console's own reads about this citizen (this export among them).
    expect(lines.filter((e) => e.service === 'population.identity').map((e) => e.caseId)).toEqual(['HS-2026-000123', null, null]);
    expect(lines.at(-1)).toMatchObject({ service: 'audit.console', client: 'console:auditor', fields: ['audit.console:export'] });
    for (const e of lines) {
      expect(e.subjects).toEqual([pseudonym(an!.personalId)]);
      expect(entryHash(e)).toBe(e.hash);
    }
    const [csv] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')]);
    const rows = readFileSync((await csv.path())!, 'utf8').trim().split('\r\n');
    expect(rows[0]!.startsWith('seq,id,time,client')).toBe(true);
    expect(rows).toHaveLength(1 + lines.length + 1);
  });

  it('draws accesses per day as an SVG chart', async () => {
    await page.click('#nav a[data-view="activity"]');
    await page.waitForSelector('#chart svg rect');
    expect(await page.$$eval('#legend li', (lis) => lis.map((li) => li.textContent))).toEqual(expect.arrayContaining([expect.stringMatching(/^Land registration office \(\d+\)$/)]));
    await page.selectOption('#activity-by', 'outcome');
    await page.waitForFunction(() => document.querySelector('#legend li')?.textContent?.startsWith('Released'));
    await page.screenshot({ path: join(SCREENSHOTS, 'console-activity.png') });
  });

  it('reports usage per agency, service and month, downloadable as CSV', async () => {
    await page.click('#nav a[data-view="usage"]');
    await page.waitForSelector('#usage-rows tr td.num');
    const rows = await page.$$eval('#usage-rows tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    const portal = rows.find((r) => r[1] === 'Service portal')!;
    expect(portal.slice(2)).toEqual(['population.identity', '2', 'Bản sao CCCD', '2']);
    await page.screenshot({ path: join(SCREENSHOTS, 'console-usage.png'), fullPage: true });
    const [csv] = await Promise.all([page.waitForEvent('download'), page.click('#usage-csv')]);
    expect(csv.suggestedFilename()).toBe('usage-report.csv');
    const lines = readFileSync((await csv.path())!, 'utf8').trim().split('\r\n');
    expect(lines[0]).toBe('month,client,agency,service,kind,calls,documentsPerCall,documentsReplaced');
    expect(lines.some((l) => l.includes(',portal,Service portal,population.identity,lookup,2,"[""Bản sao CCCD""]",2'))).toBe(true);
  });

  it('audits its own reads as console:<username>', async () => {
    const res = await gw.get('/audit/entries?client=console:auditor&limit=500', { client: 'auditor' });
    const { entries } = await res.json();
    const actions = new Set(entries.flatMap((e: AuditEntry) => e.fields));
    for (const a of ['sign-in', 'verify', 'entries', 'entry', 'export', 'activity', 'usage']) expect(actions).toContain(`audit.console:${a}`);
    const search = entries.find((e: AuditEntry) => e.fields.includes('audit.console:entries') && e.subjects.length);
    expect(search).toMatchObject({ service: 'audit.console', userId: 'auditor', subjects: [pseudonym(an!.personalId)], outcome: 'released' });
  });

  it('shows the remote hop of an entry that crossed another gateway, and the agency it was for', async () => {
    const hop = { agency: 'population', operation: 'population.identity', outcome: 'ok' as const, errorCode: null, latencyMs: 12, reference: null,
      gateway: 'urn:gov:vn:national-gateway', remoteRequestId: '0190f1e2-0000-7000-8000-0000000000aa', answerSha256: 'c'.repeat(64) };
    const entry = await gw.gateway.audit.record({
      id: '0190f1e2-0000-7000-8000-0000000000ab', time: new Date().toISOString(), client: 'portal', actingFor: 'land-office', userId: 'officer-7',
      purpose: 'PUBLIC_SERVICE_PREFILL', caseId: null, service: 'population.identity', version: 1, subjects: [pseudonym(an!.personalId)],
      fields: ['population.identity:core'], outcome: 'released', status: 200, errorCode: null, upstreams: [hop], latencyMs: 20,
      requestSha256: 'a'.repeat(64), responseSha256: 'b'.repeat(64),
    });
    await page.goto(`${gw.url}/console#/entry/${entry.id}`);
    await page.waitForSelector('#view-entry:not([hidden]) tr.remote-hop');
    const row = await page.textContent('tr.remote-hop');
    expect(row).toContain(hop.gateway);
    expect(row).toContain(hop.remoteRequestId);
    expect(row).toContain(hop.answerSha256);
    expect(await page.textContent('[data-field="actingFor"]')).toContain('land-office');
    expect(await page.textContent('#entry-hash')).toContain('Hash matches');
    await page.goto(`${gw.url}/console#/entries`);
    await page.waitForSelector('#view-entries:not([hidden])');
  });

  it('raises an alarm naming the altered seq after a row is changed in the store', async () => {
    const db = new Database(gw.config.audit.sqliteFile ?? join(gw.config.dataDir, 'audit.sqlite'));
    try {
      expect(db.prepare("UPDATE audit_entries SET client = 'intruder' WHERE seq = 2").run().changes).toBe(1);
    } finally {
      db.close();
    }
    await page.click('#nav a[data-view="entries"]');
    await page.waitForSelector('#view-entries:not([hidden])');
    await page.reload();
    const alarm = await page.waitForSelector('#chain-alarm');
    expect(await alarm.textContent()).toContain('altered at seq 2');
    expect(await page.getAttribute('#chain-status', 'role')).toBe('alert');
    await page.screenshot({ path: join(SCREENSHOTS, 'console-alarm.png') });
  });
});
