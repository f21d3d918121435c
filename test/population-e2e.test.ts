import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { world } from '../adapters/world/index.ts';
import { startGateway, type TestGateway } from './support/fixtures.ts';

let gw: TestGateway;
beforeAll(async () => { gw = await startGateway(); });
afterAll(async () => { await gw.close(); });

describe('population.identity v1 end to end', () => {
  const citizen = world().citizens[0]!;

  it('returns the citizen with per-group status and a request id', async () => {
    const res = await gw.call('population.identity', { personalId: citizen.personalId }, { client: 'land-office' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const body = await res.json();
    expect(body.fullName).toBe(citizen.fullName);
    expect(body.dateOfBirth).toBe(citizen.dateOfBirth);
    expect(body.fieldGroups).toEqual({ core: 'released', address: 'released', family: 'released', vital: 'released' });
    expect(body.source).toMatchObject({ agency: 'population', reference: expect.stringMatching(/^TC/) });
  });

  it('releases only granted groups and marks the rest withheld', async () => {
    const res = await gw.call('population.identity', { personalId: citizen.personalId }, { client: 'narrow' });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.fullName).toBe(citizen.fullName);
    expect(body).not.toHaveProperty('permanentAddress');
    expect(body).not.toHaveProperty('spouse');
    expect(body).not.toHaveProperty('lifeStatus');
    expect(body.fieldGroups).toEqual({ core: 'released', address: 'withheld', family: 'withheld', vital: 'withheld' });
  });

  it('says unavailable for a granted group the source has nothing for', async () => {
    const loner = world().citizens.find((c) => !c.fatherId && !c.motherId && !c.spouseId)!;
    const res = await gw.call('population.identity', { personalId: loner.personalId }, { client: 'land-office' });
    expect((await res.json()).fieldGroups.family).toBe('unavailable');
  });

  it('gives SUBJECT_NOT_FOUND for a valid id the database does not know', async () => {
    const res = await gw.call('population.identity', { personalId: '001099000001' }, { client: 'land-office' });
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect((await res.json()).code).toBe('SUBJECT_NOT_FOUND');
  });

  it('refuses structurally invalid personal ids with REQUEST_INVALID', async () => {
    for (const personalId of ['12345', '999085123456', '00108512345a', 1234]) {
      const res = await gw.call('population.identity', { personalId }, { client: 'land-office' });
      expect(res.status).toBe(400);
      expect((await res.json()).code).toBe('REQUEST_INVALID');
    }
  });

  it('accepts an EdDSA client assertion', async () => {
    const res = await gw.call('population.identity', { personalId: citizen.personalId }, { client: 'edclient' });
    expect(res.status).toBe(200);
  });
});
