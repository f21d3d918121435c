import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agencyNamed, listenOnLoopback } from '../adapters/index.ts';
import { world } from '../adapters/world/index.ts';
import type { AgencyName } from '../gateway/config/types.ts';
import { startGateway, testConfig, type TestGateway } from './support/fixtures.ts';

const AN = '001085123456';
const BINH = '001188654321';
const DEAD = 'http://127.0.0.1:9';
const SERVICE = 'land.title-verification';

interface Upstream { agency: string; operation: string; outcome: string; errorCode: string | null; latencyMs: number; reference: string | null }

let gw: TestGateway;
beforeAll(async () => { gw = await startGateway(); });
afterAll(async () => { await gw.close(); });

async function verify(g: TestGateway, body: unknown, o: { client?: string; userId?: string } = {}) {
  const res = await g.call(SERVICE, body, { client: o.client ?? 'land-office', userId: o.userId });
  return { res, body: await res.json() };
}

async function auditEntry(g: TestGateway, requestId: string | null) {
  const res = await g.get(`/audit/entries?service=${SERVICE}&limit=500`, { client: 'auditor' });
  expect(res.status).toBe(200);
  const entry = (await res.json()).entries.find((e: { id: string }) => e.id === requestId);
  expect(entry).toBeDefined();
  return entry;
}

/** A gateway whose upstreams for `agencies` point at a port where nothing listens. */
async function withDeadUpstream(agencies: AgencyName[], run: (g: TestGateway) => Promise<void>) {
  const g = await startGateway(await testConfig((raw) => { for (const a of agencies) raw.upstreams[a].url = DEAD; }));
  try {
    await run(g);
  } finally {
    await g.close();
  }
}

/**
 * An agency's own simulator behind a loopback proxy that rewrites its JSON answers, to stage an
 * upstream that answers "successfully" with something the gateway must not rely on.
 */
async function tamperedUpstream(agency: AgencyName, tamper: (path: string, status: number, body: any) => { status: number; body: unknown }) {
  const simulator = await listenOnLoopback(agencyNamed(agency)!.createSimulator({}));
  const proxy = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => !['host', 'connection', 'content-length'].includes(k))) as Record<string, string>;
    const answer = await fetch(`${simulator.url}${req.url}`, { method: req.method, headers, body: chunks.length ? Buffer.concat(chunks) : undefined });
    const type = answer.headers.get('content-type') ?? 'application/octet-stream';
    let status = answer.status;
    let body = Buffer.from(await answer.arrayBuffer());
    if (type.includes('json')) {
      const changed = tamper(req.url ?? '', status, JSON.parse(body.toString('utf8')));
      status = changed.status;
      body = Buffer.from(JSON.stringify(changed.body));
    }
    res.writeHead(status, { 'Content-Type': type }).end(body);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    close: async () => {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
      await simulator.close();
    },
  };
}

async function withTamperedUpstream(agency: AgencyName, tamper: Parameters<typeof tamperedUpstream>[1], run: (g: TestGateway) => Promise<void>) {
  const upstream = await tamperedUpstream(agency, tamper);
  const g = await startGateway(await testConfig((raw) => { raw.upstreams[agency].url = upstream.url; }));
  try {
    await run(g);
  } finally {
    await g.close();
    await upstream.close();
  }
}

describe('land.title-verification v1: verdicts', () => {
  it('clear (CS 100001): every source answered, nothing wrong, with the evidence of each', async () => {
    const { res, body } = await verify(gw, { certificateSerial: 'CS 100001' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-gateway-signature')).toBeTruthy();
    expect(body).toMatchObject({ verdict: 'clear', reasons: ['clear'], failedSources: [] });
    expect(body.parcel).toMatchObject({ communeCode: '00004', mapSheet: 12, parcelNumber: 345, certificate: { serial: 'CS 100001' }, source: { agency: 'land', reference: expect.stringMatching(/^DD/) } });
    expect(body.owners).toEqual([
      expect.objectContaining({ personalId: AN, name: 'Nguyễn Văn An', issues: [], identity: expect.objectContaining({ found: true, nameMatch: 'exact', lifeStatus: 'alive', source: expect.objectContaining({ agency: 'population', reference: expect.stringMatching(/^TC/) }) }) }),
      expect.objectContaining({ personalId: BINH, issues: [], identity: expect.objectContaining({ found: true, nameMatch: 'exact' }) }),
    ]);
    // A released mortgage and paid obligations are evidence, not encumbrances.
    expect(body.registrations.items).toEqual([expect.objectContaining({ status: 'released', releasedAt: expect.any(String) })]);
    expect(body.registrations.source).toMatchObject({ agency: 'justice', retrievedAt: expect.any(String), reference: expect.any(String) });
    expect(body.obligations.items.every((o: { paid: boolean }) => o.paid)).toBe(true);
    expect(body.obligations.source).toMatchObject({ agency: 'tax', retrievedAt: expect.any(String), reference: expect.any(String) });
    expect(body.fieldGroups).toEqual({ parcel: 'released', certificate: 'released', owners: 'released', registrations: 'released', obligations: 'released' });
  });

  it('encumbered (CS 100002): a registered mortgage, found by parcel as well as by certificate', async () => {
    const { body } = await verify(gw, { certificateSerial: 'CS 100002' });
    expect(body).toMatchObject({ verdict: 'encumbered', reasons: ['encumbered'], failedSources: [] });
    expect(body.registrations.items).toEqual([expect.objectContaining({ status: 'registered', securedParty: expect.objectContaining({ taxCode: expect.any(String) }) })]);
    const byParcel = await verify(gw, { parcel: { communeCode: body.parcel.communeCode, mapSheet: body.parcel.mapSheet, parcelNumber: body.parcel.parcelNumber } });
    expect(byParcel.body).toMatchObject({ verdict: 'encumbered', parcel: { certificate: { serial: 'CS 100002' } } });
  });

  it('obligations_outstanding (CS 100003): unpaid land financial obligations', async () => {
    const { body } = await verify(gw, { certificateSerial: 'CS 100003' });
    expect(body).toMatchObject({ verdict: 'obligations_outstanding', reasons: ['obligations_outstanding'] });
    expect(body.obligations.summary).toEqual({ outstandingAmount: 248_500_000, outstandingCount: 2 });
    expect(body.obligations.items.filter((o: { paid: boolean }) => !o.paid)).toHaveLength(2);
  });

  it('owner_mismatch (CS 100004): the owner is deceased', async () => {
    const { body } = await verify(gw, { certificateSerial: 'CS 100004' });
    expect(body).toMatchObject({ verdict: 'owner_mismatch', reasons: ['owner_mismatch'] });
    expect(body.owners[0]).toMatchObject({ issues: ['deceased'], identity: { found: true, lifeStatus: 'deceased', dateOfDeath: '2024-03-15' } });
  });

  it('CS 100005: a name written without diacritics is reported as such and is not a mismatch', async () => {
    const { body } = await verify(gw, { certificateSerial: 'CS 100005' });
    expect(body.owners[0]).toMatchObject({ name: 'Dang Thi Huong', issues: [], identity: { fullName: 'Đặng Thị Hương', nameMatch: 'without_diacritics' } });
    expect(body.reasons).not.toContain('owner_mismatch');
    expect(body).toMatchObject({ verdict: 'encumbered', reasons: ['encumbered'] });
  });

  it('owner_mismatch when the population database does not know an owner', async () => {
    await withTamperedUpstream('population', () => ({ status: 404, body: { maKetQua: '01' } }), async (g) => {
      const { body } = await verify(g, { certificateSerial: 'CS 100002' });
      expect(body).toMatchObject({ verdict: 'owner_mismatch', reasons: ['owner_mismatch', 'encumbered'], failedSources: [] });
      expect(body.owners[0]).toMatchObject({ issues: ['not_found'], identity: { found: false, source: { agency: 'population' } } });
    });
  });

  it('owner_mismatch when an owner\'s name differs beyond diacritics', async () => {
    await withTamperedUpstream('population', (_path, status, answer) => ({ status, body: { ...answer, duLieu: { ...answer.duLieu, hoVaTen: 'Lê Văn Cương Khác' } } }), async (g) => {
      const { body } = await verify(g, { certificateSerial: 'CS 100002' });
      expect(body).toMatchObject({ verdict: 'owner_mismatch', reasons: ['owner_mismatch', 'encumbered'] });
      expect(body.owners[0]).toMatchObject({ issues: ['name_different'], identity: { nameMatch: 'different' } });
    });
  });

  it('SUBJECT_NOT_FOUND when the land registry has no such parcel; REQUEST_INVALID for a bad key', async () => {
    const missing = await verify(gw, { certificateSerial: 'CS 999999' });
    expect(missing.res.status).toBe(404);
    expect(missing.body.code).toBe('SUBJECT_NOT_FOUND');
    for (const request of [{}, { certificateSerial: 'CS 100001', parcel: { communeCode: '00004', mapSheet: 12, parcelNumber: 345 } }, { ownerPersonalId: AN }]) {
      const { res, body } = await verify(gw, request);
      expect(res.status).toBe(400);
      expect(body.code).toBe('REQUEST_INVALID');
    }
  });
});

describe('land.title-verification v1: never clear unless every source answered', () => {
  it('incomplete when the land registry fails: nothing else is asked', async () => {
    await withDeadUpstream(['land'], async (g) => {
      const { res, body } = await verify(g, { certificateSerial: 'CS 100001' });
      expect(res.status).toBe(200);
      expect(body).toMatchObject({ verdict: 'incomplete', reasons: ['incomplete'], failedSources: [{ agency: 'land', code: 'UPSTREAM_UNAVAILABLE' }] });
      expect(body).not.toHaveProperty('parcel');
      expect(Object.values(body.fieldGroups)).toEqual(Array(5).fill('unavailable'));
      const entry = await auditEntry(g, res.headers.get('x-request-id'));
      expect(new Set(entry.upstreams.map((u: Upstream) => u.agency))).toEqual(new Set(['land']));
    });
  });

  it('incomplete when the population database fails, still listing what else holds', async () => {
    await withDeadUpstream(['population'], async (g) => {
      const { body } = await verify(g, { certificateSerial: 'CS 100002' });
      expect(body).toMatchObject({ verdict: 'incomplete', reasons: ['incomplete', 'encumbered'], failedSources: [{ agency: 'population', code: 'UPSTREAM_UNAVAILABLE' }] });
      expect(body.owners[0]).not.toHaveProperty('identity');
      expect(body.owners[0].issues).toEqual([]);
    });
  });

  it('incomplete when the secured-transactions registry fails', async () => {
    await withDeadUpstream(['justice'], async (g) => {
      const { body } = await verify(g, { certificateSerial: 'CS 100003' });
      expect(body).toMatchObject({ verdict: 'incomplete', reasons: ['incomplete', 'obligations_outstanding'], failedSources: [{ agency: 'justice', code: 'UPSTREAM_UNAVAILABLE' }] });
      expect(body).not.toHaveProperty('registrations');
      expect(body.fieldGroups.registrations).toBe('unavailable');
    });
  });

  it('incomplete, not clear, when the tax authority fails on an otherwise clear title', async () => {
    await withDeadUpstream(['tax'], async (g) => {
      const { body } = await verify(g, { certificateSerial: 'CS 100001' });
      expect(body).toMatchObject({ verdict: 'incomplete', reasons: ['incomplete'], failedSources: [{ agency: 'tax', code: 'UPSTREAM_UNAVAILABLE' }] });
      expect(body).not.toHaveProperty('obligations');
      expect(body.fieldGroups.obligations).toBe('unavailable');
    });
  });

  it('incomplete when a source answers outside its contract (a tax code with a wrong check digit)', async () => {
    const tamper = (path: string, status: number, answer: any) => (path.startsWith('/tct/api/nghia-vu-tai-chinh') && Array.isArray(answer.danh_sach)
      ? { status, body: { ...answer, danh_sach: answer.danh_sach.map((o: object) => ({ ...o, mst: '0100233489' })) } }
      : { status, body: answer });
    await withTamperedUpstream('tax', tamper, async (g) => {
      const { res, body } = await verify(g, { certificateSerial: 'CS 100001' });
      expect(body).toMatchObject({ verdict: 'incomplete', reasons: ['incomplete'], failedSources: [{ agency: 'tax', code: 'UPSTREAM_BAD_RESPONSE' }] });
      expect(body).not.toHaveProperty('obligations');
      // The adapter saw a well-formed answer; the composite refused it against tax.obligations v1.
      const entry = await auditEntry(g, res.headers.get('x-request-id'));
      expect(entry.upstreams.find((u: Upstream) => u.agency === 'tax')).toMatchObject({ outcome: 'ok' });
    });
  });
});

describe('land.title-verification v1: audit and minimisation', () => {
  it('is one audit entry naming every upstream, all owners, the officer and the case', async () => {
    const { res } = await verify(gw, { certificateSerial: 'CS 100001' }, { userId: 'officer-17' });
    const entry = await auditEntry(gw, res.headers.get('x-request-id'));
    expect(entry).toMatchObject({ outcome: 'released', client: 'land-office', userId: 'officer-17', purpose: 'LAND_TRANSFER_REGISTRATION', caseId: 'HS-2026-000123' });
    expect(entry.subjects).toEqual([AN, BINH].map(gw.gateway.audit.pseudonymize).sort());
    const calls = entry.upstreams.map((u: Upstream) => u.agency).sort();
    expect(calls).toEqual(['justice', 'land', 'population', 'population', 'tax']);
    expect(entry.upstreams.every((u: Upstream) => u.outcome === 'ok' && u.reference)).toBe(true);
    expect(entry.fields).toEqual(expect.arrayContaining(['land.parcel:owners', 'population.identity:vital', 'justice.secured-transactions:registrations', 'tax.obligations:obligations']));
    const byOwner = await gw.get(`/audit/entries?service=${SERVICE}&subject=${BINH}&limit=500`, { client: 'auditor' });
    expect((await byOwner.json()).entries.map((e: { id: string }) => e.id)).toContain(entry.id);
  });

  it('gives a client granted no evidence group the verdict only, and still audits the owners', async () => {
    const { res, body } = await verify(gw, { certificateSerial: 'CS 100002' }, { client: 'narrow' });
    expect(res.status).toBe(200);
    expect(body).toMatchObject({ verdict: 'encumbered', reasons: ['encumbered'] });
    expect(body.parcel).toEqual({ communeCode: '26734', mapSheet: 8, parcelNumber: 112, source: expect.objectContaining({ agency: 'land' }) });
    for (const member of ['owners', 'registrations', 'obligations']) expect(body).not.toHaveProperty(member);
    expect(Object.values(body.fieldGroups)).toEqual(Array(5).fill('withheld'));
    const entry = await auditEntry(gw, res.headers.get('x-request-id'));
    const cuong = world().parcels.find((p) => p.certificate.serial === 'CS 100002')!.owners[0]!.personalId;
    expect(entry).toMatchObject({ client: 'narrow', fields: [], subjects: [gw.gateway.audit.pseudonymize(cuong)] });
  });
});

describe('land.title-verification v1: fan-out', () => {
  it('asks owners, registrations and obligations concurrently', async () => {
    const latency = { population: 50, justice: 150, tax: 100 };
    const g = await startGateway(await testConfig((raw) => {
      raw.simulators = Object.fromEntries(Object.entries(latency).map(([a, latencyMs]) => [a, { latencyMs }]));
    }));
    try {
      await verify(g, { certificateSerial: 'CS 100001' }); // warms connections and the tax access token
      const started = performance.now();
      const { res, body } = await verify(g, { certificateSerial: 'CS 100001' });
      const measured = Math.round(performance.now() - started);
      expect(body.verdict).toBe('clear');
      const entry = await auditEntry(g, res.headers.get('x-request-id'));
      const parallel = (entry.upstreams as Upstream[]).filter((u) => u.agency !== 'land');
      const land = (entry.upstreams as Upstream[]).filter((u) => u.agency === 'land').reduce((n, u) => n + u.latencyMs, 0);
      const sum = parallel.reduce((n, u) => n + u.latencyMs, 0);
      const slowest = Math.max(...parallel.map((u) => u.latencyMs));
      console.log(`title verification: ${entry.latencyMs} ms in the gateway (${measured} ms at the client); land first ${land} ms, then ${parallel.length} parallel calls: slowest ${slowest} ms, sum ${sum} ms`);
      expect(parallel).toHaveLength(4);
      // Sequential calls would take at least land + the sum; concurrent ones about land + the slowest.
      expect(entry.latencyMs).toBeLessThan(land + sum);
    } finally {
      await g.close();
    }
  });
});
