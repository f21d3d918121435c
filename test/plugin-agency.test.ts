/**
 * An agency and a service added as plug-ins, from their own folder (test/plugins/business/) and
 * this file alone: registered, configured, granted, called end to end through the gateway,
 * minimised, audited, listed by discovery and OpenAPI. No file of the product names them.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agencyNames, registerAgency } from '../adapters/index.ts';
import { registerService } from '../gateway/services/index.ts';
import { ConfigError } from '../gateway/config/index.ts';
import { startGateway, testConfig, type TestGateway } from './support/fixtures.ts';
import { businessAgency, ENTERPRISES } from './plugins/business/agency.ts';
import { businessEnterprise, CONTRACTS_DIR } from './plugins/business/service.ts';

registerAgency(businessAgency);
registerService(businessEnterprise, { contractsDir: CONTRACTS_DIR });

const grant = { client: 'land-office', service: 'business.enterprise', purposes: ['LAND_TRANSFER_REGISTRATION'], fieldGroups: ['core', 'representative'] };
let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway(await testConfig((raw) => { raw.grants.push(grant); }));
});
afterAll(async () => { await gw?.close(); });

const enterprise = ENTERPRISES[0]!;

describe('an agency and a service as plug-ins', () => {
  it('is called end to end: the embedded simulator, the adapter, minimisation and the signed answer', async () => {
    const res = await gw.call('business.enterprise', { taxCode: enterprise.mst }, { client: 'land-office' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-gateway-signature')).toMatch(/^[\w-]+\.\.[\w-]+$/);
    const body = await res.json();
    expect(body).toMatchObject({
      taxCode: enterprise.mst, name: enterprise.ten, status: 'active',
      legalRepresentative: { personalId: enterprise.nguoi_dai_dien.so_dinh_danh },
      source: { agency: 'business' },
      fieldGroups: { core: 'released', representative: 'released', address: 'withheld' },
    });
    expect(body.address).toBeUndefined();

    const entry = await gw.gateway.audit.store.get(res.headers.get('x-request-id')!);
    expect(entry).toMatchObject({ service: 'business.enterprise', version: 1, outcome: 'released', fields: ['business.enterprise:core', 'business.enterprise:representative'] });
    expect(entry!.subjects).toEqual([gw.gateway.audit.pseudonymize(enterprise.nguoi_dai_dien.so_dinh_danh)]);
    expect(entry!.upstreams).toMatchObject([{ agency: 'business', operation: 'doanh-nghiep', outcome: 'ok' }]);
  });

  it('answers SUBJECT_NOT_FOUND for an enterprise the registry does not hold, and refuses a malformed tax code by the contract', async () => {
    const missing = await gw.call('business.enterprise', { taxCode: '0100233488-001' }, { client: 'land-office' });
    expect(missing.status).toBe(404);
    expect((await missing.json()).code).toBe('SUBJECT_NOT_FOUND');
    const bad = await gw.call('business.enterprise', { taxCode: '12' }, { client: 'land-office' });
    expect((await bad.json()).code).toBe('REQUEST_INVALID');
  });

  it('is refused to a client without the grant', async () => {
    const res = await gw.call('business.enterprise', { taxCode: enterprise.mst }, { client: 'auditor', purpose: 'LAND_TRANSFER_REGISTRATION' });
    expect((await res.json()).code).toBe('FORBIDDEN_SERVICE');
  });

  it('is listed by discovery and OpenAPI, and its agency by /readyz and the contracts\' agency enum', async () => {
    const services = await (await gw.get('/services', { client: 'land-office', purpose: null })).json();
    expect(services.services.map((s: { service: string }) => s.service)).toContain('business.enterprise');
    const openapi = await (await fetch(`${gw.url}/openapi.json`)).json();
    expect(Object.keys(openapi.paths)).toContain('/services/business.enterprise/v1');
    expect(JSON.stringify(openapi.components.schemas)).toContain('"business"');
    const ready = await (await fetch(`${gw.url}/readyz`)).json();
    expect(ready.breakers).toHaveProperty('business', 'closed');
    expect(agencyNames()).toContain('business');
  });

  it('gets upstreams.<name> and simulators.<name> in the one config schema, unknown keys refused', async () => {
    const cfg = await testConfig((raw) => { raw.grants.push(grant); raw.upstreams.business = { url: 'http://127.0.0.1:9199' }; raw.simulators = { business: { latencyMs: 5 } }; });
    expect(cfg.upstreams.business!.url).toBe('http://127.0.0.1:9199');
    expect(cfg.upstreams.business!.resilience.timeoutMs).toBeGreaterThan(0);
    await expect(testConfig((raw) => { raw.upstreams.business = { clientSecret: 'x' }; })).rejects.toThrow(ConfigError);
    const env = await testConfig(() => {}, { UPSTREAM_BUSINESS_URL: 'http://127.0.0.1:9198' });
    expect(env.upstreams.business!.url).toBe('http://127.0.0.1:9198');
  });

  it('needed no change to the product: no file of gateway/, adapters/, contracts/ or docker/ names it', () => {
    const files = (dir: string): string[] => readdirSync(dir).flatMap((f) => {
      const p = join(dir, f);
      return statSync(p).isDirectory() ? files(p) : [p];
    });
    const product = ['gateway', 'adapters', 'contracts', 'docker'].flatMap(files);
    expect(product.length).toBeGreaterThan(50);
    const naming = product.filter((f) => /business/i.test(readFileSync(f, 'latin1')));
    expect(naming).toEqual([]);
  });
});
