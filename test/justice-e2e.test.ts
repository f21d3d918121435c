import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './support/fixtures.ts';

let gw: TestGateway;
beforeAll(async () => { gw = await startGateway(); });
afterAll(async () => { await gw.close(); });

const SERVICE = 'justice.secured-transactions';
const CUONG = '079072112233';
const PARCEL = { communeCode: '26734', mapSheet: 8, parcelNumber: 112 };

async function lookup(request: unknown, client = 'land-office') {
  const res = await gw.call(SERVICE, request, { client });
  expect(res.status).toBe(200);
  return res.json();
}

describe('justice.secured-transactions v1 end to end', () => {
  it('finds the active mortgage on CS 100002 by certificate, by parcel and by grantor', async () => {
    for (const request of [{ certificateSerial: 'CS 100002' }, { parcel: PARCEL }, { grantorPersonalId: CUONG }]) {
      const body = await lookup(request);
      expect(body.registrations).toHaveLength(1);
      expect(body.registrations[0]).toMatchObject({
        kind: 'mortgage', status: 'registered',
        grantor: { personalId: CUONG, name: 'Lê Văn Cường' },
        property: { parcel: PARCEL, certificateSerial: 'CS 100002' },
        securedParty: { name: expect.stringMatching(/^Ngân hàng/), taxCode: expect.stringMatching(/^\d{10}$/) },
      });
      expect(body.registrations[0]).not.toHaveProperty('releasedAt');
      expect(body.fieldGroups).toEqual({ registrations: 'released' });
      expect(body.source).toMatchObject({ agency: 'justice', reference: expect.stringMatching(/^DKBD-TC-/) });
    }
  });

  it('tells a released mortgage (CS 100001) and an amended one (CS 100005) apart', async () => {
    const released = await lookup({ certificateSerial: 'CS 100001' });
    expect(released.registrations).toMatchObject([{ status: 'released', releasedAt: expect.any(String) }]);
    const amended = await lookup({ certificateSerial: 'CS 100005' });
    expect(amended.registrations).toMatchObject([{ status: 'amended', grantor: { name: 'Đặng Thị Hương' } }]);
  });

  it('answers 200 with an empty, released list when the registry holds no registration', async () => {
    for (const request of [{ certificateSerial: 'CS 100003' }, { parcel: { communeCode: '00004', mapSheet: 99, parcelNumber: 1 } }, { grantorPersonalId: '001099000001' }]) {
      const body = await lookup(request);
      expect(body.registrations).toEqual([]);
      expect(body.fieldGroups).toEqual({ registrations: 'released' });
    }
  });

  it('withholds the registrations from a client granted only core', async () => {
    const res = await gw.call(SERVICE, { certificateSerial: 'CS 100002' }, { client: 'narrow' });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).not.toHaveProperty('registrations');
    expect(body.fieldGroups).toEqual({ registrations: 'withheld' });
    expect(body.source.agency).toBe('justice');
  });

  it('audits a lookup under the grantor it released, with the registry\'s reference', async () => {
    const res = await gw.call(SERVICE, { certificateSerial: 'CS 100002' }, { client: 'land-office' });
    const requestId = res.headers.get('x-request-id');
    const audit = await gw.get(`/audit/entries?subject=${CUONG}&service=${SERVICE}`, { client: 'auditor' });
    expect(audit.status).toBe(200);
    const entry = (await audit.json()).entries.find((e: { id: string }) => e.id === requestId);
    expect(entry).toMatchObject({ outcome: 'released', fields: [`${SERVICE}:registrations`] });
    expect(entry.upstreams).toMatchObject([{ agency: 'justice', operation: 'TraCuuTheoGiayChungNhan', outcome: 'ok', reference: expect.stringMatching(/^DKBD-TC-/) }]);
  });

  it('refuses a request with no key, two keys or a malformed key with REQUEST_INVALID', async () => {
    for (const request of [
      {},
      { certificateSerial: 'CS 100002', grantorPersonalId: CUONG },
      { certificateSerial: 'CS100002' },
      { parcel: { communeCode: '26734', mapSheet: 8 } },
      { grantorPersonalId: '999072112233' },
      { ownerPersonalId: CUONG },
    ]) {
      const res = await gw.call(SERVICE, request, { client: 'land-office' });
      expect(res.status).toBe(400);
      expect((await res.json()).code).toBe('REQUEST_INVALID');
    }
  });
});
