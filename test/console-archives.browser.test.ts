/**
 * The console's Archives page in headless Chromium: after entries are sealed into a segment, the
 * page lists it (range, entries, sealed time, file, time-stamp or not), the chain status still
 * says intact (archives and hot store checked as one chain), and a search by a citizen's personal
 * id lists the archived entries with the hot ones and opens one.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { world } from '../adapters/world/index.ts';
import { archivePass, archiveSettings } from '../gateway/audit/archiver.ts';
import { CONSOLE_PASSWORD, startGateway, testConfig, type TestGateway } from './support/fixtures.ts';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'];
const SCREENSHOTS = process.env.UPDATE_SCREENSHOTS ? new URL('../docs/screenshots/', import.meta.url).pathname : mkdtempSync(join(tmpdir(), 'gw-screenshots-'));
const [an] = world().citizens;

let gw: TestGateway;
let browser: Browser;
let page: Page;
let lastSeq: number;

beforeAll(async () => {
  gw = await startGateway(await testConfig((raw) => { raw.audit.retention = { hotDays: 30 }; }));
  for (let i = 0; i < 3; i++) await gw.call('population.identity', { personalId: an!.personalId });
  await gw.gateway.audit.checkpoint();
  await gw.call('population.identity', { personalId: an!.personalId });
  const pass = await archivePass(gw.gateway.audit.store, archiveSettings(gw.config)!, { now: () => Date.now() + 40 * 86_400_000 });
  lastSeq = pass.sealed[0]!.lastSeq;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  page = await (await browser.newContext({ locale: 'en-GB', viewport: { width: 1360, height: 700 } })).newPage();
  page.setDefaultTimeout(10_000);
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await gw?.close();
  if (!process.env.UPDATE_SCREENSHOTS) rmSync(SCREENSHOTS, { recursive: true, force: true });
});

describe('the console with archived entries', () => {
  it('signs in; the chain, archives included, is intact', async () => {
    await page.goto(`${gw.url}/console`);
    await page.fill('#username', 'auditor');
    await page.fill('#password', CONSOLE_PASSWORD);
    await page.click('#sign-in');
    expect(await (await page.waitForSelector('#chain-ok')).textContent()).toMatch(/verified up to seq \d+/);
  });

  it('lists the sealed segments on the Archives page', async () => {
    await page.click('#nav a[data-view="archives"]');
    const row = await page.waitForSelector('#archives-rows tr[data-first-seq="1"]');
    const cells = await row.$$eval('td', (tds) => tds.map((td) => td.textContent));
    expect(cells[0]).toBe(`1–${lastSeq}`);
    expect(cells[1]).toBe(String(lastSeq));
    expect(cells[3]).toBe(`000000000001-${String(lastSeq).padStart(12, '0')}.ndjson.gz`);
    expect(cells[4]).toBe('gateway signature only');
    expect(await page.textContent('#archives-summary')).toContain(`Entries older than 30 days are sealed into archive segments. The hot store starts at seq ${lastSeq + 1}.`);
    await page.screenshot({ path: join(SCREENSHOTS, 'console-archives.png') });
  });

  it('finds archived entries by personal id and opens one', async () => {
    await page.click('#nav a[data-view="entries"]');
    await page.fill('#f-subject', an!.personalId);
    await page.click('#search');
    await page.waitForFunction((seq) => [...document.querySelectorAll('#entries tr')].some((tr) => Number(tr.getAttribute('data-seq')) <= seq), lastSeq);
    const seqs = await page.$$eval('#entries tr', (trs) => trs.map((tr) => Number(tr.getAttribute('data-seq'))));
    expect(seqs.filter((s) => s <= lastSeq).length).toBeGreaterThanOrEqual(3);
    await page.click(`#entries tr[data-seq="${seqs.find((s) => s <= lastSeq)}"]`);
    expect(await (await page.waitForSelector('#entry-hash.ok')).textContent()).toContain('Hash matches');
  });
});
