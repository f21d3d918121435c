import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { world } from '../adapters/world/index.ts';
import { startGateway, type TestGateway } from './support/fixtures.ts';

let gw: TestGateway;
beforeAll(async () => { gw = await startGateway(); });
afterAll(async () => { await gw.close(); });

const AN = '001085123456';
const BINH = '001188654321';
const ALL_RELEASED = { parcel: 'released', certificate: 'released', owners: 'released' };

async function parcelsOf(body: unknown, client = 'land-office') {
  const res = await gw.call('land.parcel', body, { client });
  expect(res.status).toBe(200);
  return res.json();
}

describe('land.parcel v1 end to end', () => {
  const cs100001 = world().parcels.find((p) => p.certificate.serial === 'CS 100001')!;

  it('finds a parcel by certificate serial with its certificate and owners', async () => {
    const body = await parcelsOf({ certificateSerial: 'CS 100001' });
    expect(body.parcels).toHaveLength(1);
    const [parcel] = body.parcels;
    expect(parcel).toMatchObject({ communeCode: '00004', mapSheet: 12, parcelNumber: 345, area: cs100001.area, landUse: cs100001.landUse, term: cs100001.term });
    expect(parcel.certificate).toEqual(cs100001.certificate);
    expect(parcel.owners).toEqual([
      { personalId: AN, name: 'Nguyễn Văn An', share: 0.5 },
      { personalId: BINH, name: 'Trần Thị Bình', share: 0.5 },
    ]);
    expect(body.fieldGroups).toEqual(ALL_RELEASED);
    expect(body.source).toMatchObject({ agency: 'land', reference: expect.stringMatching(/^DD/) });
  });

  it('finds the same parcel by commune, map sheet and parcel number', async () => {
    const body = await parcelsOf({ parcel: { communeCode: '00004', mapSheet: 12, parcelNumber: 345 } });
    expect(body.parcels.map((p: { certificate: { serial: string } }) => p.certificate.serial)).toEqual(['CS 100001']);
  });

  it('finds every parcel of an owner by personal id', async () => {
    const owned = world().parcels.filter((p) => p.owners.some((o) => o.personalId === BINH)).map((p) => p.certificate.serial);
    const body = await parcelsOf({ ownerPersonalId: BINH });
    expect(body.parcels.map((p: { certificate: { serial: string } }) => p.certificate.serial).sort()).toEqual(owned.sort());
    expect(body.parcels[0].owners.map((o: { personalId: string }) => o.personalId)).toContain(BINH);
  });

  it('returns the registry\'s name as written, without diacritics, for CS 100005', async () => {
    const body = await parcelsOf({ certificateSerial: 'CS 100005' });
    expect(body.parcels[0].owners[0].name).toBe('Dang Thi Huong');
  });

  it('answers "no data" with an empty list and 200, for each request form', async () => {
    for (const request of [{ certificateSerial: 'CS 999999' }, { parcel: { communeCode: '00004', mapSheet: 99999, parcelNumber: 999999 } }, { ownerPersonalId: '001099000001' }]) {
      const body = await parcelsOf(request);
      expect(body.parcels).toEqual([]);
      expect(body.fieldGroups).toEqual({ parcel: 'unavailable', certificate: 'unavailable', owners: 'unavailable' });
      expect(body.source.agency).toBe('land');
    }
  });

  it('withholds parcel, certificate and owners from a client granted only core, keeping the parcel\'s identity', async () => {
    const body = await parcelsOf({ certificateSerial: 'CS 100001' }, 'narrow');
    expect(body.parcels).toEqual([{ communeCode: '00004', mapSheet: 12, parcelNumber: 345 }]);
    expect(body.fieldGroups).toEqual({ parcel: 'withheld', certificate: 'withheld', owners: 'withheld' });
  });

  it('audits a certificate lookup under every owner it released, with the registry\'s reference', async () => {
    const res = await gw.call('land.parcel', { certificateSerial: 'CS 100001' }, { client: 'land-office' });
    const requestId = res.headers.get('x-request-id');
    const audit = await gw.get(`/audit/entries?subject=${BINH}&service=land.parcel`, { client: 'auditor' });
    expect(audit.status).toBe(200);
    const entry = (await audit.json()).entries.find((e: { id: string }) => e.id === requestId);
    expect(entry).toMatchObject({ outcome: 'released', fields: expect.arrayContaining(['land.parcel:owners', 'land.parcel:certificate']) });
    expect(entry.upstreams).toMatchObject([{ agency: 'land', outcome: 'ok', reference: expect.stringMatching(/^DD/) }]);
  });

  it('refuses a request with no key, two keys or a malformed key with REQUEST_INVALID', async () => {
    for (const request of [
      {},
      { certificateSerial: 'CS 100001', ownerPersonalId: AN },
      { certificateSerial: 'CS100001' },
      { parcel: { communeCode: '4', mapSheet: 12, parcelNumber: 345 } },
      { parcel: { communeCode: '00004', mapSheet: '12', parcelNumber: 345 } },
      { ownerPersonalId: '999085123456' },
    ]) {
      const res = await gw.call('land.parcel', request, { client: 'land-office' });
      expect(res.status).toBe(400);
      expect((await res.json()).code).toBe('REQUEST_INVALID');
    }
  });
});
