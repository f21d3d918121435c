import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { world } from '../adapters/world/index.ts';
import type { AuditEntry } from '../gateway/audit/index.ts';
import { AUDIT_QUERIES, parseAuditQuery, QueryParameterError } from '../gateway/audit-query.ts';
import { buildOpenApi } from '../gateway/openapi.ts';
import { CONSOLE_PASSWORD, startGateway, type TestGateway } from './support/fixtures.ts';
import { parseExport } from './support/export.ts';

const [an, binh] = world().citizens;
const auditor = { client: 'auditor' };

let gw: TestGateway;
let cookie: string;

beforeAll(async () => {
  gw = await startGateway();
  const ok = async (r: Promise<Response>, status: number) => expect((await r).status).toBe(status);
  await ok(gw.call('population.identity', { personalId: an!.personalId }, { client: 'land-office', caseId: 'HS-Q-1' }), 200);
  await ok(gw.call('population.identity', { personalId: binh!.personalId }, { client: 'portal' }), 200);
  await ok(gw.call('population.identity', { personalId: an!.personalId }, { client: 'portal', purpose: 'LAND_TRANSFER_REGISTRATION' }), 403);
  await ok(gw.call('population.identity', { personalId: '001099000001' }, { client: 'land-office', caseId: 'HS-Q-2' }), 404);
  const login = await fetch(`${gw.url}/console/api/login`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', Origin: gw.url }, body: JSON.stringify({ username: 'auditor', password: CONSOLE_PASSWORD }),
  });
  expect(login.status).toBe(200);
  cookie = login.headers.get('set-cookie')!.split(';')[0]!;
});
afterAll(async () => { await gw?.close(); });

/** The same read through the audit API (client assertion) or the console (session cookie). */
const ENDPOINTS = {
  '/audit/entries': (q: string) => gw.get(`/audit/entries?${q}`, auditor),
  '/audit/export': (q: string) => gw.get(`/audit/export?${q}`, auditor),
  '/console/api/entries': (q: string) => fetch(`${gw.url}/console/api/entries?${q}`, { headers: { Cookie: cookie } }),
  '/console/api/export': (q: string) => fetch(`${gw.url}/console/api/export?${q}`, { headers: { Cookie: cookie } }),
};
type Endpoint = keyof typeof ENDPOINTS;

/** A query every endpoint refuses, and the parameter the refusal must name. */
const REFUSED: [label: string, query: string, parameter: RegExp][] = [
  ['a 201-character caseId', `caseId=${'c'.repeat(201)}`, /\bcaseId\b/],
  ['a 201-character client', `client=${'a'.repeat(201)}`, /\bclient\b/],
  ['limit=0x10', 'limit=0x10', /\blimit\b/],
  ['limit with a leading space', 'limit=%205', /\blimit\b/],
  ['limit=0', 'limit=0', /\blimit\b/],
  ['limit=501', 'limit=501', /\blimit\b/],
  ['client[]=x', 'client[]=x', /client\[\]/],
  ['a repeated client', 'client=land-office&client=portal', /\bclient\b/],
  ['an unknown parameter', 'clinet=portal', /\bclinet\b/],
  ['a bad outcome', 'outcome=maybe', /\boutcome\b/],
  ['a bare year as from', 'from=2026', /\bfrom\b/],
  ['a date without a time as from', 'from=2026-03-01', /\bfrom\b/],
  ['an impossible date as to', 'to=2026-02-30T00:00:00Z', /\bto\b/],
  ['a cursor that is not base64url', 'cursor=%21%21', /\bcursor\b/],
  ['a cursor that reads as no page', 'cursor=bm9wZQ', /\bcursor\b/],
  ['an empty client', 'client=', /\bclient\b/],
  ['a malformed personal id', 'subject=12345', /\bsubject\b/],
];

async function expectRefused(res: Response, parameter: RegExp) {
  expect(res.status).toBe(400);
  const problem = await res.json();
  expect(problem.code).toBe('REQUEST_INVALID');
  expect(problem.detail).toMatch(parameter);
  expect(Object.keys(problem).sort()).toEqual(['code', 'detail', 'requestId', 'status', 'title', 'type']);
  return problem as { requestId: string };
}

/** The entries an answer carries, whichever endpoint gave it. */
async function entriesOf(endpoint: Endpoint, res: Response): Promise<AuditEntry[]> {
  expect(res.status).toBe(200);
  if (endpoint.endsWith('/export')) return parseExport(await res.text()).entries;
  return ((await res.json()) as { entries: AuditEntry[] }).entries;
}

describe.each(Object.keys(ENDPOINTS) as Endpoint[])('%s query', (endpoint) => {
  const get = (q: string) => ENDPOINTS[endpoint](q);

  it.each(REFUSED)('refuses %s, naming the parameter', async (_label, query, parameter) => {
    await expectRefused(await get(query), parameter);
  });

  it('still filters with valid values: every entry returned matches', async () => {
    const found = await entriesOf(endpoint, await get('client=land-office&service=population.identity&outcome=released&from=2020-01-01T00:00:00%2B07:00'));
    expect(found.length).toBeGreaterThan(0);
    for (const e of found) expect(e).toMatchObject({ client: 'land-office', service: 'population.identity', outcome: 'released' });
    const byCase = await entriesOf(endpoint, await get('caseId=HS-Q-2'));
    expect(byCase.map((e) => e.errorCode)).toEqual(['SUBJECT_NOT_FOUND']);
  });
});

describe('per-endpoint parameters', () => {
  it('takes a page size on entries and a format on exports, not the other way round', async () => {
    expect((await entriesOf('/audit/entries', await ENDPOINTS['/audit/entries']('limit=1'))).length).toBe(1);
    expect((await entriesOf('/console/api/entries', await ENDPOINTS['/console/api/entries']('limit=1'))).length).toBe(1);
    for (const e of ['/audit/entries', '/console/api/entries'] as const) await expectRefused(await ENDPOINTS[e]('format=csv'), /\bformat\b/);
    for (const e of ['/audit/export', '/console/api/export'] as const) {
      await expectRefused(await ENDPOINTS[e]('format=xml'), /\bformat\b/);
      await expectRefused(await ENDPOINTS[e]('format=csv&format=ndjson'), /\bformat\b/);
    }
  });

  it('checks the checkpoints limit (1 to 10000) and the citizen access log (1 to 100, cursor)', async () => {
    expect((await gw.get('/audit/checkpoints?limit=10000', auditor)).status).toBe(200);
    for (const q of ['limit=10001', 'limit=1e3', 'from=2026-01-01T00:00:00Z']) await expectRefused(await gw.get(`/audit/checkpoints?${q}`, auditor), /\b(limit|from)\b/);
    const consent = await gw.consent(an!.personalId, ['core']);
    const log = (q: string) => gw.get(`/citizen/access-log?${q}`, { client: 'portal', consent });
    expect((await log('limit=100')).status).toBe(200);
    for (const [q, name] of [['limit=0x10', /\blimit\b/], ['limit=101', /\blimit\b/], ['cursor=', /\bcursor\b/], ['subject=001085123456', /\bsubject\b/]] as const) {
      await expectRefused(await log(q), name);
    }
  });

  it('checks the console activity, usage, chain and entry reads', async () => {
    const consoleGet = (path: string) => fetch(`${gw.url}/console/api/${path}`, { headers: { Cookie: cookie } });
    expect((await consoleGet('activity?days=366')).status).toBe(200);
    expect((await consoleGet('usage?format=csv&from=2020-01-01T00:00:00Z')).status).toBe(200);
    const refused: [string, RegExp][] = [
      ['activity?days=0', /\bdays\b/], ['activity?days=367', /\bdays\b/], ['activity?days=%2B7', /\bdays\b/],
      ['usage?format=xml', /\bformat\b/], ['usage?to=yesterday', /\bto\b/], ['usage?client=portal', /\bclient\b/],
      ['chain?verbose=1', /\bverbose\b/], ['entries/00000000-0000-4000-8000-000000000000?x=1', /\bx\b/],
    ];
    for (const [path, name] of refused) await expectRefused(await consoleGet(path), name);
  });
});

describe('a refused query is itself audited', () => {
  it('as denied with REQUEST_INVALID, on the audit API', async () => {
    const { requestId } = await expectRefused(await ENDPOINTS['/audit/entries'](`caseId=${'c'.repeat(201)}`), /\bcaseId\b/);
    const denied = await entriesOf('/audit/entries', await gw.get('/audit/entries?service=audit.entries&outcome=denied&limit=500', auditor));
    expect(denied.find((e) => e.id === requestId)).toMatchObject({ client: 'auditor', outcome: 'denied', status: 400, errorCode: 'REQUEST_INVALID' });
  });

  it('as denied with REQUEST_INVALID, on the console', async () => {
    const { requestId } = await expectRefused(await ENDPOINTS['/console/api/export']('client[]=x'), /client\[\]/);
    const denied = await entriesOf('/audit/entries', await gw.get('/audit/entries?client=console:auditor&outcome=denied&limit=500', auditor));
    expect(denied.find((e) => e.id === requestId)).toMatchObject({ service: 'audit.console', fields: ['audit.console:export'], outcome: 'denied', errorCode: 'REQUEST_INVALID' });
  });
});

describe('parseAuditQuery', () => {
  it('names the refused parameter in a machine-readable member too', () => {
    const refusal = (q: Record<string, unknown>) => {
      try {
        parseAuditQuery(q, 'entries');
      } catch (e) {
        return e;
      }
      throw new Error('not refused');
    };
    for (const [q, name] of [[{ 'client[]': 'x' }, 'client[]'], [{ limit: '0x10' }, 'limit'], [{ client: ['a', 'b'] }, 'client'], [{ outcome: '' }, 'outcome']] as const) {
      const e = refusal(q);
      expect(e).toBeInstanceOf(QueryParameterError);
      expect(e).toMatchObject({ code: 'REQUEST_INVALID', status: 400, parameter: name });
    }
  });

  it('fills defaults and reads counts as numbers', () => {
    expect(parseAuditQuery({}, 'entries')).toEqual({ limit: 50 });
    expect(parseAuditQuery({}, 'export')).toEqual({ format: 'ndjson' });
    expect(parseAuditQuery({ limit: '7', client: 'console:auditor' }, 'entries')).toEqual({ limit: 7, client: 'console:auditor' });
  });

  it('is what the OpenAPI document describes, parameter for parameter', () => {
    const doc = buildOpenApi(new Map()) as { paths: Record<string, { get: { parameters: { name?: string; schema?: Record<string, unknown> }[] } }> };
    const named = (path: string) => doc.paths[path]!.get.parameters.filter((p) => p.name);
    for (const [path, endpoint] of [['/audit/entries', 'entries'], ['/audit/export', 'export'], ['/audit/checkpoints', 'checkpoints'], ['/citizen/access-log', 'accessLog']] as const) {
      expect(named(path).map((p) => p.name), path).toEqual(Object.keys(AUDIT_QUERIES[endpoint]));
    }
    expect(named('/audit/entries').find((p) => p.name === 'limit')!.schema).toEqual({ type: 'integer', minimum: 1, maximum: 500, default: 50 });
    expect(named('/citizen/access-log').find((p) => p.name === 'limit')!.schema).toMatchObject({ maximum: 100, default: 20 });
    expect(named('/audit/export').find((p) => p.name === 'format')!.schema).toMatchObject({ enum: ['ndjson', 'csv'], default: 'ndjson' });
  });
});
