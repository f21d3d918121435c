/**
 * The reload swap in process (gateway.reload, what SIGHUP calls): keys other than clients and
 * grants take effect for new requests too (limits, console accounts), and a change to a key fixed
 * at start is refused naming its path, the running config kept.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, type GatewayConfig } from '../gateway/config/index.ts';
import { grantableFieldGroups, grantableServices } from '../gateway/services/index.ts';
import { CONSOLE_PASSWORD, startGateway, type TestGateway } from './support/fixtures.ts';

let gw: TestGateway;
beforeAll(async () => { gw = await startGateway(); });
afterAll(async () => { await gw?.close(); });

/** The running config, edited and validated as a reload reads it. */
const edited = (edit: (raw: any) => void): GatewayConfig => {
  const raw = JSON.parse(JSON.stringify(gw.gateway.config));
  edit(raw);
  return parseConfig(raw, { env: {}, knownServices: grantableServices(), fieldGroups: grantableFieldGroups() });
};

const signIn = async () => {
  const res = await fetch(`${gw.url}/console/api/login`, { method: 'POST', headers: { 'Content-Type': 'application/json', Origin: gw.url }, body: JSON.stringify({ username: 'auditor', password: CONSOLE_PASSWORD }) });
  expect(res.status).toBe(200);
  return res.headers.get('set-cookie')!.split(';')[0]!;
};

describe('gateway.reload', () => {
  it('limits apply to the next request', async () => {
    const body = { personalId: '001085123456', padding: 'x'.repeat(400) };
    expect((await gw.call('population.identity', body)).status).not.toBe(413);
    const applied = gw.gateway.reload(edited((raw) => { raw.limits.maxBodyBytes = 256; }));
    expect(applied).toMatchObject({ generation: 2, changed: ['limits'] });
    expect((await (await gw.call('population.identity', body)).json()).code).toBe('PAYLOAD_TOO_LARGE');
    expect(gw.gateway.config.limits.maxBodyBytes).toBe(256);
  });

  it('a console account removed ends its sessions at once', async () => {
    const cookie = await signIn();
    const entries = () => fetch(`${gw.url}/console/api/entries?limit=1`, { headers: { Cookie: cookie } });
    expect((await entries()).status).toBe(200);
    gw.gateway.reload(edited((raw) => { raw.console.accounts = []; }));
    const refused = await entries();
    expect(refused.status).toBe(401);
    expect((await refused.json()).code).toBe('AUTH_MISSING');
  });

  it('a key fixed at start is refused naming it, and the running generation keeps serving', async () => {
    const before = gw.gateway.generation;
    const next = edited((raw) => { raw.upstreams.population.url = 'http://127.0.0.1:1'; });
    expect(() => gw.gateway.reload(next)).toThrow(ConfigError);
    expect(() => gw.gateway.reload(next)).toThrow(/^\/upstreams\/population\/url: cannot change while the gateway runs/);
    expect(gw.gateway.generation).toEqual(before);
    expect((await gw.call('population.identity', { personalId: '001085123456' })).status).toBe(200);
  });
});
