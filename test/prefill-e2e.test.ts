import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { world } from '../adapters/world/index.ts';
import { mintConsent } from '../gateway/client-assertion.ts';
import { IDP_ISSUER, startGateway, testConfig, type TestGateway } from './support/fixtures.ts';

const AN = '001085123456';
const BINH = '001188654321';
const LAND_TRANSFER = 'land-transfer-registration';

interface Field { name: string; status: string; value?: any; reason?: string; fieldGroup: string; source: { agency: string; service: string; retrievedAt?: string; reference?: string } }

let gw: TestGateway;
beforeAll(async () => { gw = await startGateway(); });
afterAll(async () => { await gw.close(); });

async function prefill(g: TestGateway, body: unknown, consent?: string) {
  const res = await g.call('portal.prefill', body, consent ? { consent } : {});
  return { res, body: await res.json() };
}

const byName = (fields: Field[]) => Object.fromEntries(fields.map((f) => [f.name, f]));

async function auditEntry(g: TestGateway, requestId: string | null) {
  const res = await g.get('/audit/entries?service=portal.prefill&limit=500', { client: 'auditor' });
  expect(res.status).toBe(200);
  const entry = (await res.json()).entries.find((e: { id: string }) => e.id === requestId);
  expect(entry).toBeDefined();
  return entry;
}

describe('portal.prefill v1: field statuses', () => {
  it('fills every consented and granted field, each with its source, retrieval time and reference', async () => {
    const consent = await gw.consent(AN, ['core', 'address', 'parcel', 'certificate']);
    const { res, body } = await prefill(gw, { form: LAND_TRANSFER }, consent);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-gateway-signature')).toBeTruthy();
    expect(body.personalId).toBe(AN);
    expect(body.form).toMatchObject({ id: LAND_TRANSFER, procedureCode: '1.012761', documentsReplaced: expect.arrayContaining(['Bản sao CCCD']) });
    expect(body.fields.map((f: Field) => f.name)).toEqual(['fullName', 'dateOfBirth', 'permanentAddress', 'parcels', 'certificates']);
    const f = byName(body.fields);
    const an = world().citizens.find((c) => c.personalId === AN)!;
    expect(f.fullName).toMatchObject({ status: 'available', value: 'Nguyễn Văn An', label: 'Họ và tên', fieldGroup: 'core' });
    expect(f.fullName!.source).toEqual({ agency: 'population', service: 'population.identity', retrievedAt: expect.any(String), reference: expect.stringMatching(/^TC/) });
    expect(f.dateOfBirth!.value).toBe(an.dateOfBirth);
    expect(f.permanentAddress).toMatchObject({ status: 'available', value: an.permanentAddress });
    expect(f.parcels!.source).toMatchObject({ agency: 'land', service: 'land.parcel', reference: expect.stringMatching(/^DD/) });
    for (const field of Object.values(f)) expect(field).not.toHaveProperty('reason');
  });

  it('reduces a land field to its own group: parcels carry no certificates or co-owners, certificates no areas', async () => {
    const consent = await gw.consent(AN, ['parcel', 'certificate']);
    const f = byName((await prefill(gw, { form: LAND_TRANSFER }, consent)).body.fields);
    const owned = world().parcels.filter((p) => p.owners.some((o) => o.personalId === AN));
    expect(f.parcels!.value).toHaveLength(owned.length);
    const [parcel] = f.parcels!.value;
    expect(parcel).toMatchObject({ communeCode: '00004', mapSheet: 12, parcelNumber: 345, area: owned[0]!.area, landUse: owned[0]!.landUse });
    expect(parcel).not.toHaveProperty('owners');
    expect(parcel).not.toHaveProperty('certificate');
    expect(f.certificates!.value).toEqual([{ communeCode: '00004', mapSheet: 12, parcelNumber: 345, certificate: owned[0]!.certificate }]);
    expect(JSON.stringify(f)).not.toContain(BINH);
  });

  it('withholds what the citizen did not consent to, and asks only the consented sources', async () => {
    const consent = await gw.consent(AN, ['core']);
    const { res, body } = await prefill(gw, { form: LAND_TRANSFER }, consent);
    expect(res.status).toBe(200);
    const f = byName(body.fields);
    expect(f.fullName!.status).toBe('available');
    for (const name of ['permanentAddress', 'parcels', 'certificates']) {
      expect(f[name]).toMatchObject({ status: 'withheld', reason: 'not_consented' });
      expect(f[name]).not.toHaveProperty('value');
      expect(f[name]!.source).not.toHaveProperty('retrievedAt');
    }
    expect(f.parcels!.source).toEqual({ agency: 'land', service: 'land.parcel' });
    const entry = await auditEntry(gw, res.headers.get('x-request-id'));
    expect(entry.upstreams.map((u: { agency: string }) => u.agency)).toEqual(['population']);
    expect(entry.fields).toEqual(['population.identity:core']);
  });

  it('calls no upstream at all when nothing on the form is consented', async () => {
    const consent = await gw.consent(AN, ['family']);
    const { res, body } = await prefill(gw, { form: 'driving-licence-renewal' }, consent);
    expect(res.status).toBe(200);
    expect(body.fields.every((f: Field) => f.status === 'withheld' && f.reason === 'not_consented')).toBe(true);
    const entry = await auditEntry(gw, res.headers.get('x-request-id'));
    expect(entry).toMatchObject({ outcome: 'released', upstreams: [], fields: [] });
  });

  it('says unavailable (no_data) for a consented field the source has nothing for', async () => {
    const loner = world().citizens.find((c) => !c.fatherId && !c.motherId && !c.spouseId && c.lifeStatus === 'alive')!;
    const consent = await gw.consent(loner.personalId, ['core', 'address', 'family']);
    const f = byName((await prefill(gw, { form: 'permanent-residence-registration' }, consent)).body.fields);
    expect(f.fullName).toMatchObject({ status: 'available', value: loner.fullName });
    for (const name of ['father', 'mother', 'spouse']) {
      expect(f[name]).toMatchObject({ status: 'unavailable', reason: 'no_data', source: { agency: 'population', reference: expect.stringMatching(/^TC/) } });
    }
    const mai = world().citizens.find((c) => c.fullName === 'Nguyễn Ngọc Mai')!;
    const family = byName((await prefill(gw, { form: 'permanent-residence-registration' }, await gw.consent(mai.personalId, ['family']))).body.fields);
    expect(family.father).toMatchObject({ status: 'available', value: { personalId: AN, fullName: 'Nguyễn Văn An' } });
    expect(family.mother!.value.personalId).toBe(BINH);
  });

  it('withholds a consented group not granted to the portal (not_granted), without asking its source', async () => {
    const g = await startGateway(await testConfig((raw) => {
      raw.grants = raw.grants.map((x: { client: string; service: string }) => (x.client === 'portal' && x.service === 'portal.prefill' ? { ...x, fieldGroups: ['core'] } : x));
    }));
    try {
      const consent = await g.consent(AN, ['core', 'address', 'parcel', 'certificate']);
      const { res, body } = await prefill(g, { form: LAND_TRANSFER }, consent);
      expect(res.status).toBe(200);
      const f = byName(body.fields);
      expect(f.fullName!.status).toBe('available');
      for (const name of ['permanentAddress', 'parcels', 'certificates']) expect(f[name]).toMatchObject({ status: 'withheld', reason: 'not_granted' });
      const entry = await auditEntry(g, res.headers.get('x-request-id'));
      expect(entry.upstreams.map((u: { agency: string }) => u.agency)).toEqual(['population']);

      // Policy is reported first: neither granted nor consented is not_granted.
      const narrow = byName((await prefill(g, { form: LAND_TRANSFER }, await g.consent(AN, ['core']))).body.fields);
      expect(narrow.parcels).toMatchObject({ status: 'withheld', reason: 'not_granted' });
    } finally {
      await g.close();
    }
  });

  it('draws on the tax authority and the secured-transactions registry by the citizen\'s personal id', async () => {
    const form = {
      id: 'mortgage-check', title: 'Kiểm tra nghĩa vụ và biện pháp bảo đảm',
      fields: [
        { name: 'obligations', service: 'tax.obligations', fieldGroup: 'obligations', path: 'obligations' },
        { name: 'outstanding', service: 'tax.obligations', fieldGroup: 'obligations', path: 'summary.outstandingAmount' },
        { name: 'mortgages', service: 'justice.secured-transactions', fieldGroup: 'registrations', path: 'registrations' },
      ],
    };
    const g = await startGateway(await testConfig((raw) => { raw.forms.push(form); }));
    try {
      const cuong = world().citizens.find((c) => c.fullName === 'Lê Văn Cường')!.personalId;
      const { res, body } = await prefill(g, { form: 'mortgage-check' }, await g.consent(cuong, ['obligations', 'registrations']));
      expect(res.status).toBe(200);
      const f = byName(body.fields);
      expect(f.obligations).toMatchObject({ status: 'available', label: 'obligations', source: { agency: 'tax', service: 'tax.obligations', reference: expect.any(String) } });
      expect(f.obligations!.value.every((o: { taxCode: string }) => o.taxCode === cuong)).toBe(true);
      // Everything paid: zero outstanding is data, not "no data".
      expect(f.outstanding).toMatchObject({ status: 'available', value: 0 });
      expect(f.mortgages).toMatchObject({ status: 'available', source: { agency: 'justice', service: 'justice.secured-transactions' } });
      expect(f.mortgages!.value).toEqual([expect.objectContaining({ status: 'registered', grantor: { personalId: cuong, name: 'Lê Văn Cường' } })]);
      const entry = await auditEntry(g, res.headers.get('x-request-id'));
      // The tax authority's token call is audited too: the first call of a fresh gateway fetches one.
      expect([...new Set(entry.upstreams.map((u: { agency: string }) => u.agency))].sort()).toEqual(['justice', 'tax']);
    } finally {
      await g.close();
    }
  });

  it('marks a failing source\'s fields unavailable with its error code, and fills the rest', async () => {
    const g = await startGateway(await testConfig((raw) => { raw.upstreams.population.url = 'http://127.0.0.1:9'; }));
    try {
      const consent = await g.consent(AN, ['core', 'address', 'parcel']);
      const { res, body } = await prefill(g, { form: LAND_TRANSFER }, consent);
      expect(res.status).toBe(200);
      const f = byName(body.fields);
      for (const name of ['fullName', 'dateOfBirth', 'permanentAddress']) {
        expect(f[name]).toMatchObject({ status: 'unavailable', reason: 'UPSTREAM_UNAVAILABLE', source: { agency: 'population', service: 'population.identity' } });
        expect(f[name]!.source).not.toHaveProperty('reference');
      }
      expect(f.parcels!.status).toBe('available');
      expect(f.certificates).toMatchObject({ status: 'withheld', reason: 'not_consented' });
      const entry = await auditEntry(g, res.headers.get('x-request-id'));
      expect(entry).toMatchObject({ outcome: 'released', fields: ['land.parcel:parcel'] });
      expect(entry.upstreams).toEqual(expect.arrayContaining([
        expect.objectContaining({ agency: 'population', outcome: 'error', errorCode: 'UPSTREAM_UNAVAILABLE' }),
        expect.objectContaining({ agency: 'land', outcome: 'ok' }),
      ]));
    } finally {
      await g.close();
    }
  });
});

describe('portal.prefill v1: consent', () => {
  const codeOf = async (consent: string | undefined, body: unknown = { form: LAND_TRANSFER }) => {
    const { res, body: problem } = await prefill(gw, body, consent);
    return { status: res.status, code: problem.code };
  };

  it('requires a consent: CONSENT_REQUIRED', async () => {
    expect(await codeOf(undefined)).toEqual({ status: 401, code: 'CONSENT_REQUIRED' });
  });

  it('refuses a consent given to another client (azp): CONSENT_INVALID', async () => {
    expect(await codeOf(await gw.consent(AN, ['core'], { azp: 'land-office' }))).toEqual({ status: 403, code: 'CONSENT_INVALID' });
  });

  it('refuses an expired consent: CONSENT_INVALID', async () => {
    const iat = Math.floor(Date.now() / 1000) - 600;
    expect(await codeOf(await gw.consent(AN, ['core'], { iat, lifetimeSeconds: 300 }))).toEqual({ status: 403, code: 'CONSENT_INVALID' });
  });

  it('refuses a request about someone other than the consent\'s sub: CONSENT_INVALID', async () => {
    const consent = await gw.consent(AN, ['core']);
    expect(await codeOf(consent, { form: LAND_TRANSFER, personalId: BINH })).toEqual({ status: 403, code: 'CONSENT_INVALID' });
    const same = await prefill(gw, { form: LAND_TRANSFER, personalId: AN }, await gw.consent(AN, ['core']));
    expect(same.res.status).toBe(200);
  });

  it('refuses a consent whose signature does not verify: CONSENT_INVALID', async () => {
    const [header, , signature] = (await gw.consent(AN, ['core'])).split('.');
    const forged = Buffer.from(JSON.stringify({ iss: IDP_ISSUER, aud: gw.config.gatewayId, sub: BINH, azp: 'portal', scope: 'core', iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 300 })).toString('base64url');
    expect(await codeOf(`${header}.${forged}.${signature}`)).toEqual({ status: 403, code: 'CONSENT_INVALID' });
    const wrongKey = await mintConsent({ privateJwk: { ...gw.keys.narrow!, kid: gw.keys.idp!.kid }, iss: IDP_ISSUER, aud: gw.config.gatewayId, sub: AN, azp: 'portal', scope: ['core'] });
    expect(await codeOf(wrongKey)).toEqual({ status: 403, code: 'CONSENT_INVALID' });
  });

  it('refuses an unknown form: REQUEST_INVALID', async () => {
    expect(await codeOf(await gw.consent(AN, ['core']), { form: 'no-such-form' })).toEqual({ status: 400, code: 'REQUEST_INVALID' });
  });

  it('audits a prefill under the consenting citizen only', async () => {
    const consent = await gw.consent(AN, ['core', 'family']);
    const { res } = await prefill(gw, { form: 'permanent-residence-registration' }, consent);
    const entry = await auditEntry(gw, res.headers.get('x-request-id'));
    expect(entry.subjects).toEqual([gw.gateway.audit.pseudonymize(AN)]);
    expect(entry.fields).toEqual(['population.identity:core', 'population.identity:family']);
    expect(entry.upstreams).toHaveLength(1);
  });
});
