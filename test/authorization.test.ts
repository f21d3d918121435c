import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, testConfig, type TestGateway } from './support/fixtures.ts';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway(await testConfig((raw) => {
    // The auditor may not call data services; the narrow client may not use land-office purposes.
    raw.grants = raw.grants.filter((g: { client: string; service: string }) => !(g.client === 'narrow' && g.service !== 'population.identity'));
  }));
});
afterAll(async () => { await gw.close(); });

const body = { personalId: '001085123456' };
const code = async (res: Response) => ({ status: res.status, code: res.status === 200 ? undefined : (await res.json()).code });

describe('authorization: client × service × purpose', () => {
  it('refuses a service not granted: FORBIDDEN_SERVICE', async () => {
    expect(await code(await gw.call('population.identity', body, { client: 'auditor', purpose: 'AUDIT_REVIEW' }))).toEqual({ status: 403, code: 'FORBIDDEN_SERVICE' });
  });

  it('refuses a purpose not granted for the service: FORBIDDEN_PURPOSE', async () => {
    expect(await code(await gw.call('population.identity', body, { client: 'narrow', purpose: 'LAND_TRANSFER_REGISTRATION', caseId: 'HS-1' }))).toEqual({ status: 403, code: 'FORBIDDEN_PURPOSE' });
  });

  it('refuses an unregistered purpose and a missing purpose: FORBIDDEN_PURPOSE', async () => {
    expect(await code(await gw.call('population.identity', body, { client: 'portal', purpose: 'CURIOSITY' }))).toEqual({ status: 403, code: 'FORBIDDEN_PURPOSE' });
    expect(await code(await gw.call('population.identity', body, { client: 'portal', purpose: null }))).toEqual({ status: 403, code: 'FORBIDDEN_PURPOSE' });
  });

  it('requires a case id where the purpose says so: CASE_ID_REQUIRED', async () => {
    const token = await gw.assertion(JSON.stringify(body), { client: 'land-office', purpose: 'LAND_TRANSFER_REGISTRATION', caseId: '' });
    expect(await code(await gw.call('population.identity', body, { token }))).toEqual({ status: 400, code: 'CASE_ID_REQUIRED' });
    expect((await gw.call('population.identity', body, { client: 'land-office', caseId: 'HS-2026-1' })).status).toBe(200);
  });

  it('answers SERVICE_UNKNOWN for a service or version that does not exist', async () => {
    const token = await gw.assertion(JSON.stringify(body));
    const res = await fetch(`${gw.url}/services/population.identity/v9`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
    expect(await code(res)).toEqual({ status: 404, code: 'SERVICE_UNKNOWN' });
  });

  it('audits every refusal of an authenticated client as denied, with its code', async () => {
    await gw.call('population.identity', body, { client: 'auditor', purpose: 'AUDIT_REVIEW' });
    const { entries } = await gw.gateway.audit.store.query({ client: 'auditor' }, 10);
    expect(entries[0]).toMatchObject({ outcome: 'denied', status: 403, errorCode: 'FORBIDDEN_SERVICE', service: 'population.identity' });
  });
});
