import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { world } from '../adapters/world/index.ts';
import { mintAssertion } from '../gateway/client-assertion.ts';
import { DEMO_PURPOSES } from '../gateway/config/index.ts';
import { makePseudonymizer } from '../gateway/audit/index.ts';
import { startGateway, type CallOptions, type TestGateway } from './support/fixtures.ts';

const DAY_MS = 86_400_000;
const [an, binh] = world().citizens;
const legalBasis = (code: string) => DEMO_PURPOSES.find((p) => p.code === code)!.legalBasis;

/** The gateway's clock: frozen, moved only by the test. */
let clock = Date.now();
const seconds = () => Math.floor(clock / 1000);
let gw: TestGateway;

/** A client assertion issued at the frozen clock's time, so the gateway accepts it whatever the date. */
const token = (client: string, body: string, o: Omit<CallOptions, 'client'> = {}) => mintAssertion({
  privateJwk: gw.keys[client]!, iss: client, aud: gw.config.gatewayId, iat: seconds(), body,
  purpose: o.purpose ?? undefined, caseId: o.caseId, userId: o.userId,
});

async function lookUp(client: string, personalId: string, o: Omit<CallOptions, 'client'>) {
  const body = JSON.stringify({ personalId });
  return gw.call('population.identity', null, { client, raw: body, token: await token(client, body, o) });
}

async function accessLog(sub: string, query = '', o: { client?: string; azp?: string; consent?: boolean; headers?: Record<string, string> } = {}) {
  const client = o.client ?? 'portal';
  const consent = o.consent === false ? undefined : await gw.consent(sub, ['core'], { azp: o.azp ?? client, iat: seconds() });
  return gw.get(`/citizen/access-log${query}`, { client, token: await token(client, ''), consent, headers: o.headers });
}

const listFor = async (sub: string, query = '') => {
  const res = await accessLog(sub, query);
  expect(res.status).toBe(200);
  return res.json();
};

beforeAll(async () => {
  gw = await startGateway(undefined, { now: () => clock });
  const expectStatus = async (r: Promise<Response>, status: number) => expect((await r).status).toBe(status);
  await expectStatus(lookUp('land-office', an!.personalId, { purpose: 'LAND_TRANSFER_REGISTRATION', caseId: 'HS-2026-000123', userId: 'officer-1' }), 200);
  await expectStatus(lookUp('land-office', an!.personalId, { purpose: 'CRIMINAL_INVESTIGATION', caseId: 'VKS-2026-0042' }), 200);
  await expectStatus(lookUp('portal', an!.personalId, { purpose: 'LAND_TRANSFER_REGISTRATION' }), 403);
  await expectStatus(lookUp('portal', binh!.personalId, { purpose: 'PUBLIC_SERVICE_PREFILL' }), 200);
  const search = await gw.get(`/audit/entries?subject=${an!.personalId}`, { client: 'auditor', token: await token('auditor', '') });
  expect(search.status).toBe(200);
});
afterAll(async () => { await gw.close(); });

describe('GET /citizen/access-log', () => {
  it("lists accesses to the consenting citizen's data, newest first, with agency name, purpose and legal basis", async () => {
    const { entries, nextCursor } = await listFor(an!.personalId);
    expect(nextCursor).toBeNull();
    expect(entries.map((e: { agency: { id: string } }) => e.agency.id)).toEqual(['auditor', 'portal', 'land-office']);
    const [audit, denied, released] = entries;
    expect(audit).toMatchObject({ agency: { name: 'Provincial inspectorate' }, service: 'audit.entries', purpose: null, outcome: 'released' });
    expect(denied).toMatchObject({ agency: { name: 'Service portal' }, outcome: 'denied', fields: [] });
    expect(released).toEqual({
      reference: expect.stringMatching(/^[0-9a-f-]{36}$/), time: expect.any(String),
      agency: { id: 'land-office', name: 'Land registration office' }, service: 'population.identity',
      purpose: { code: 'LAND_TRANSFER_REGISTRATION', legalBasis: legalBasis('LAND_TRANSFER_REGISTRATION') },
      caseId: 'HS-2026-000123', fields: expect.arrayContaining(['population.identity:core', 'population.identity:address']), outcome: 'released',
    });
    expect(Date.parse(audit.time)).toBeGreaterThanOrEqual(Date.parse(released.time));
  });

  it("shows only the citizen's own data, and not the citizen's own looks at this log", async () => {
    const { entries } = await listFor(binh!.personalId);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ agency: { id: 'portal' }, purpose: { code: 'PUBLIC_SERVICE_PREFILL' } });
    expect(entries.some((e: { service: string }) => e.service === 'citizen.access-log')).toBe(false);
  });

  it('records each look at the log as an access by the portal, about that citizen', async () => {
    const res = await gw.get('/audit/entries?service=citizen.access-log', { client: 'auditor', token: await token('auditor', '') });
    const { entries } = await res.json();
    expect(entries.length).toBeGreaterThan(0);
    expect(entries[0]).toMatchObject({ client: 'portal', outcome: 'released', subjects: [makePseudonymizer(gw.config.audit.pseudonymKey!)(binh!.personalId)] });
  });

  it('pages with a cursor past hidden entries, without repeats', async () => {
    const { entries: all } = await listFor(an!.personalId);
    const paged = [];
    let cursor: string | null = null;
    do {
      const page: { entries: unknown[]; nextCursor: string | null } = await listFor(an!.personalId, `?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.entries.length).toBeLessThanOrEqual(1);
      paged.push(...page.entries);
      cursor = page.nextCursor;
    } while (cursor);
    expect(paged).toEqual(all);
  });

  it('hides an access for a confidential purpose until its confidentialDays have passed', async () => {
    const started = clock;
    try {
      clock = started + 179 * DAY_MS;
      const before = await listFor(an!.personalId);
      expect(before.entries.some((e: { purpose: { code: string } | null }) => e.purpose?.code === 'CRIMINAL_INVESTIGATION')).toBe(false);
      clock = started + 181 * DAY_MS;
      const after = await listFor(an!.personalId);
      const investigation = after.entries.find((e: { purpose: { code: string } | null }) => e.purpose?.code === 'CRIMINAL_INVESTIGATION');
      expect(investigation).toMatchObject({ agency: { id: 'land-office' }, caseId: 'VKS-2026-0042', outcome: 'released', purpose: { legalBasis: legalBasis('CRIMINAL_INVESTIGATION') } });
      expect(after.entries.map((e: { agency: { id: string } }) => e.agency.id)).toEqual(['auditor', 'portal', 'land-office', 'land-office']);
    } finally {
      clock = started;
    }
  });

  it('needs the citizen consent, given to the calling client', async () => {
    const missing = await accessLog(an!.personalId, '', { consent: false });
    expect(missing.status).toBe(401);
    expect((await missing.json()).code).toBe('CONSENT_REQUIRED');
    const elsewhere = await accessLog(an!.personalId, '', { azp: 'land-office' });
    expect(elsewhere.status).toBe(403);
    expect((await elsewhere.json()).code).toBe('CONSENT_INVALID');
  });

  it('is refused to a client without the citizen.access-log grant', async () => {
    const res = await accessLog(an!.personalId, '', { client: 'auditor' });
    expect(res.status).toBe(403);
    expect((await res.json()).code).toBe('FORBIDDEN_SERVICE');
  });

  it('answers problems in Vietnamese on request, and refuses a bad limit or cursor', async () => {
    const vi = await accessLog(an!.personalId, '', { consent: false, headers: { 'Accept-Language': 'vi-VN,vi;q=0.9' } });
    expect(await vi.json()).toMatchObject({ code: 'CONSENT_REQUIRED', title: 'Cần sự đồng ý của công dân' });
    for (const q of ['?limit=0', '?limit=101', '?cursor=bm9wZQ']) {
      const res = await accessLog(an!.personalId, q);
      expect(res.status).toBe(400);
      expect((await res.json()).code).toBe('REQUEST_INVALID');
    }
  });
});
