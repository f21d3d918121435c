import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, GATEWAY_ID, type TestGateway } from './support/fixtures.ts';

let gw: TestGateway;
beforeAll(async () => { gw = await startGateway(); });
afterAll(async () => { await gw.close(); });

describe('discovery and operations endpoints', () => {
  it('GET /services lists what this client may call, with purposes and field groups', async () => {
    const res = await gw.get('/services', { client: 'narrow' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-gateway-signature')).toBeTruthy();
    const body = await res.json();
    const identity = body.services.find((s: { service: string }) => s.service === 'population.identity');
    expect(identity).toMatchObject({ version: 1, path: '/services/population.identity/v1', fieldGroups: ['core'], purposes: [expect.objectContaining({ code: 'PUBLIC_SERVICE_PREFILL', caseIdRequired: false })] });
    const auditor = await (await gw.get('/services', { client: 'auditor' })).json();
    expect(auditor.services).toEqual([]);
    expect(auditor.auditRole).toBe(true);
  });

  it('GET /services needs an authenticated client', async () => {
    const res = await fetch(`${gw.url}/services`);
    expect((await res.json()).code).toBe('AUTH_MISSING');
  });

  it('GET /services/{id}/v{major} gives the contract schemas', async () => {
    const c = await (await fetch(`${gw.url}/services/population.identity/v1`)).json();
    expect(c.requestSchema.required).toEqual(['personalId']);
    expect(c.fieldGroups.core).toContain('fullName');
    expect((await (await fetch(`${gw.url}/services/population.identity/v7`)).json()).code).toBe('SERVICE_UNKNOWN');
  });

  it('publishes the gateway configuration (RFC 8414 style) and JWKS', async () => {
    const conf = await (await fetch(`${gw.url}/.well-known/gateway-configuration`)).json();
    expect(conf).toMatchObject({ gateway_id: GATEWAY_ID, jwks_uri: `${gw.url}/.well-known/jwks.json`, openapi_uri: `${gw.url}/openapi.json`, max_assertion_lifetime_seconds: 300, assertion_signing_alg_values_supported: ['ES256', 'EdDSA'] });
    const jwks = await (await fetch(conf.jwks_uri)).json();
    expect(jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(jwks.keys[0]).not.toHaveProperty('d');
  });

  it('healthz says the process is up; readyz checks the store and breakers', async () => {
    expect((await (await fetch(`${gw.url}/healthz`)).json()).status).toBe('ok');
    const ready = await fetch(`${gw.url}/readyz`);
    expect(ready.status).toBe(200);
    expect((await ready.json()).checks.audit).toBe('ok');
  });
});

describe('readiness', () => {
  it('is not ready once every adapter breaker is open', async () => {
    const { testConfig } = await import('./support/fixtures.ts');
    const dead = await startGateway(await testConfig((raw) => {
      for (const agency of ['population', 'land', 'tax', 'justice']) raw.upstreams[agency] = { url: 'http://127.0.0.1:9', resilience: { timeoutMs: 200, retries: 0, breakerThreshold: 1, breakerHalfOpenAfterMs: 60_000 } };
    }));
    try {
      expect((await fetch(`${dead.url}/readyz`)).status).toBe(200);
      await dead.call('land.title-verification', { certificateSerial: 'CS 100001' }, { client: 'land-office' });
      await dead.call('population.identity', { personalId: '001085123456' }, { client: 'land-office' });
      await dead.call('tax.obligations', { taxCode: '001085123456' }, { client: 'land-office', purpose: 'LAND_FINANCIAL_OBLIGATIONS' });
      await dead.call('justice.secured-transactions', { certificateSerial: 'CS 100001' }, { client: 'land-office' });
      const res = await fetch(`${dead.url}/readyz`);
      expect(res.status).toBe(503);
      expect((await res.json()).breakers).toEqual({ population: 'open', land: 'open', tax: 'open', justice: 'open' });
      expect((await fetch(`${dead.url}/healthz`)).status).toBe(200);
    } finally {
      await dead.close();
    }
  });
});
