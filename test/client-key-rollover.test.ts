/**
 * A client agency rolls its key behind its JWKS URL with no restart of the gateway: an assertion
 * under a kid the cached set lacks makes the gateway fetch the set again, at most once per
 * cooldown for that client whatever the kids (and whether the fetch works), and keys are used no
 * longer than their maximum age. The JWKS is served by a local HTTP server that counts requests.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JWK } from 'jose';
import { generatePrivateJwk, publicPart } from '../gateway/keys.ts';
import { mintAssertion } from '../gateway/client-assertion.ts';
import { GATEWAY_ID, startGateway, testConfig, type TestGateway } from './support/fixtures.ts';
import { until } from './support/launch.ts';

/** An agency's key publication: what it serves, and how often it was asked. */
interface Publication { keys: JWK[]; status: number; requests: number }
const publications: Record<string, Publication> = {};
let jwksServer: Server;
let jwksBase: string;
let gw: TestGateway;
const BODY = JSON.stringify({ personalId: '001085123456' });

beforeAll(async () => {
  jwksServer = createServer((req, res) => {
    const p = publications[(req.url ?? '').slice(1)];
    if (!p) return void res.writeHead(404).end();
    p.requests++;
    res.writeHead(p.status, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keys: p.keys.map(publicPart) }));
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', () => r()));
  jwksBase = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}`;
  const first = await generatePrivateJwk('ES256');
  publications.roller = { keys: [first], status: 200, requests: 0 };
  publications.flooded = { keys: [await generatePrivateJwk('ES256')], status: 200, requests: 0 };
  publications.down = { keys: [], status: 503, requests: 0 };
  const remote = (id: string, keys: Record<string, number> = {}) => ({ id, name: id, keys: { jwksUrl: `${jwksBase}/${id}`, ...keys } });
  gw = await startGateway(await testConfig((raw) => {
    raw.clients.push(
      remote('roller', { refetchCooldownSeconds: 1, maxAgeSeconds: 2 }),
      remote('flooded', { refetchCooldownSeconds: 3600 }),
      remote('down'),
    );
    for (const id of ['roller', 'flooded', 'down']) raw.grants.push({ client: id, service: 'population.identity', purposes: ['PUBLIC_SERVICE_PREFILL'], fieldGroups: ['core'] });
  }));
});
afterAll(async () => {
  await gw?.close();
  await new Promise((r) => jwksServer.close(r));
});

async function call(client: string, key: JWK): Promise<{ status: number; code?: string }> {
  const token = await mintAssertion({ privateJwk: key, iss: client, aud: GATEWAY_ID, purpose: 'PUBLIC_SERVICE_PREFILL', body: BODY });
  const res = await fetch(`${gw.url}/services/population.identity/v1`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, body: BODY });
  return { status: res.status, code: res.status === 200 ? undefined : (await res.json()).code };
}

const metric = async (client: string, outcome: string) => {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`gateway_client_jwks_fetches_total{client="${client}",outcome="${outcome}"}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
};

describe('a client rolls its key behind its JWKS URL', () => {
  it('the new key is accepted without a restart once the set is fetched again; the withdrawn one stops at the maximum age', async () => {
    const roller = publications.roller!;
    const [oldKey] = roller.keys as [JWK];
    expect(await call('roller', oldKey)).toEqual({ status: 200 });
    const newKey = await generatePrivateJwk('ES256');
    roller.keys = [oldKey, newKey];
    // Refused (the existing code for an unknown kid) until the cooldown since the last fetch has passed, then accepted.
    const codes = new Set<string | undefined>();
    await until('the new key to be accepted', async () => {
      const r = await call('roller', newKey);
      codes.add(r.code);
      return r.status === 200 || undefined;
    });
    expect([...codes].filter(Boolean).every((c) => c === 'AUTH_INVALID')).toBe(true);
    // The agency withdraws the old key: it is refused once the cached set is older than its maximum age.
    roller.keys = [newKey];
    await until('the withdrawn key to be refused', async () => ((await call('roller', oldKey)).code === 'AUTH_INVALID') || undefined);
    expect(await call('roller', newKey)).toEqual({ status: 200 });
    expect(await metric('roller', 'ok')).toBe(roller.requests);
  });

  it('a flood of assertions under unknown kids fetches the set at most once per cooldown: AUTH_INVALID for each', async () => {
    const flooded = publications.flooded!;
    expect(await call('flooded', flooded.keys[0]!)).toEqual({ status: 200 });
    expect(flooded.requests).toBe(1);
    const strangers = await Promise.all(Array.from({ length: 5 }, () => generatePrivateJwk('ES256')));
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => call('flooded', strangers[i % strangers.length]!)));
    expect(new Set(results.map((r) => r.code))).toEqual(new Set(['AUTH_INVALID']));
    // The cooldown (an hour here) started with the first fetch: none since.
    expect(flooded.requests).toBe(1);
    expect(await call('flooded', flooded.keys[0]!)).toEqual({ status: 200 });
  });

  it('a JWKS server that fails is asked once per cooldown too, not once per request', async () => {
    const down = publications.down!;
    const someone = await generatePrivateJwk('ES256');
    const results = await Promise.all(Array.from({ length: 20 }, () => call('down', someone)));
    expect(new Set(results.map((r) => r.code))).toEqual(new Set(['AUTH_INVALID']));
    expect(down.requests).toBe(1);
    expect(await metric('down', 'error')).toBe(1);
  });
});
