import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base64url, importJWK, SignJWT, type JWK } from 'jose';
import { createHash, createPrivateKey, createSign, randomUUID, sign as sign$ } from 'node:crypto';
import { generatePrivateJwk } from '../gateway/keys.ts';
import { createServer, type Server } from 'node:http';
import { GATEWAY_ID, startGateway, testConfig, testKeys, type TestGateway } from './support/fixtures.ts';
import { mintAssertion } from '../gateway/client-assertion.ts';
import { publicPart } from '../gateway/keys.ts';
import { world } from '../adapters/world/index.ts';

let gw: TestGateway;
beforeAll(async () => { gw = await startGateway(); });
afterAll(async () => { await gw.close(); });

const BODY = JSON.stringify({ personalId: '001085123456' });
const bodyHash = (b: string) => createHash('sha256').update(b).digest('base64url');
const now = () => Math.floor(Date.now() / 1000);

/** Signs arbitrary claims/header with a key, the way a (possibly wrong) client would. */
async function sign(jwk: JWK, claims: Record<string, unknown>, header: Record<string, unknown> = {}) {
  const key = await importJWK(jwk, 'ES256');
  return new SignJWT({ iss: 'portal', aud: GATEWAY_ID, iat: now(), exp: now() + 60, jti: randomUUID(), purpose: 'PUBLIC_SERVICE_PREFILL', body_sha256: bodyHash(BODY), ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: jwk.kid, ...header })
    .sign(key);
}

async function codeOf(token: string | null, body = BODY) {
  const res = await fetch(`${gw.url}/services/population.identity/v1`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token === null ? {} : { Authorization: `Bearer ${token}` }) },
    body,
  });
  const problem = res.status === 200 ? null : await res.json();
  return { status: res.status, code: problem?.code as string | undefined };
}

describe('client authentication (README, wire interface)', () => {
  it('accepts a well-formed assertion', async () => {
    expect(await codeOf(await sign(gw.keys.portal!, {}))).toEqual({ status: 200, code: undefined });
  });

  it('refuses a request without a token: AUTH_MISSING', async () => {
    expect(await codeOf(null)).toEqual({ status: 401, code: 'AUTH_MISSING' });
    const res = await fetch(`${gw.url}/services/population.identity/v1`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'Basic abc' }, body: BODY });
    expect((await res.json()).code).toBe('AUTH_MISSING');
  });

  it('refuses a bad signature: AUTH_INVALID', async () => {
    const token = await sign(gw.keys.portal!, {});
    const [h, p, s] = token.split('.');
    const sig = Buffer.from(s!, 'base64url');
    sig[10] ^= 0xff;
    expect(await codeOf(`${h}.${p}.${sig.toString('base64url')}`)).toEqual({ status: 401, code: 'AUTH_INVALID' });
  });

  it('refuses alg none: AUTH_INVALID', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', kid: gw.keys.portal!.kid }));
    const payload = base64url.encode(JSON.stringify({ iss: 'portal', aud: GATEWAY_ID, iat: now(), exp: now() + 60, jti: randomUUID(), purpose: 'PUBLIC_SERVICE_PREFILL', body_sha256: bodyHash(BODY) }));
    expect(await codeOf(`${header}.${payload}.`)).toEqual({ status: 401, code: 'AUTH_INVALID' });
  });

  it('refuses HS256 signed with the client public key as the secret: AUTH_INVALID', async () => {
    const { d: _d, ...pub } = gw.keys.portal!;
    const secret = new TextEncoder().encode(JSON.stringify(pub));
    const token = await new SignJWT({ iss: 'portal', aud: GATEWAY_ID, jti: randomUUID(), purpose: 'PUBLIC_SERVICE_PREFILL', body_sha256: bodyHash(BODY) })
      .setProtectedHeader({ alg: 'HS256', kid: pub.kid }).setIssuedAt().setExpirationTime('60s').sign(secret);
    expect(await codeOf(token)).toEqual({ status: 401, code: 'AUTH_INVALID' });
  });

  it('refuses an unknown kid: AUTH_INVALID', async () => {
    const other = await generatePrivateJwk('ES256');
    expect(await codeOf(await sign(other, {}))).toEqual({ status: 401, code: 'AUTH_INVALID' });
  });

  it('refuses a key of another client under a known kid: AUTH_INVALID', async () => {
    expect(await codeOf(await sign(gw.keys['land-office']!, {}, { kid: gw.keys.portal!.kid }))).toEqual({ status: 401, code: 'AUTH_INVALID' });
  });

  it('refuses an unknown client: AUTH_INVALID', async () => {
    expect(await codeOf(await sign(gw.keys.portal!, { iss: 'stranger' }))).toEqual({ status: 401, code: 'AUTH_INVALID' });
  });

  it('refuses an expired assertion, beyond the 30 s skew: AUTH_EXPIRED', async () => {
    expect(await codeOf(await sign(gw.keys.portal!, { iat: now() - 200, exp: now() - 31 }))).toEqual({ status: 401, code: 'AUTH_EXPIRED' });
  });

  it('tolerates an assertion expired within the 30 s skew', async () => {
    expect((await codeOf(await sign(gw.keys.portal!, { iat: now() - 100, exp: now() - 10 }))).status).toBe(200);
  });

  it('refuses an assertion issued in the future: AUTH_INVALID', async () => {
    expect(await codeOf(await sign(gw.keys.portal!, { iat: now() + 120, exp: now() + 180 }))).toEqual({ status: 401, code: 'AUTH_INVALID' });
  });

  it('refuses a lifetime over 300 s: AUTH_INVALID', async () => {
    expect(await codeOf(await sign(gw.keys.portal!, { iat: now(), exp: now() + 301 }))).toEqual({ status: 401, code: 'AUTH_INVALID' });
  });

  it('refuses the wrong audience: AUTH_INVALID', async () => {
    expect(await codeOf(await sign(gw.keys.portal!, { aud: 'urn:other:gateway' }))).toEqual({ status: 401, code: 'AUTH_INVALID' });
  });

  it('refuses a replayed jti: AUTH_REPLAYED', async () => {
    const token = await sign(gw.keys.portal!, {});
    expect((await codeOf(token)).status).toBe(200);
    expect(await codeOf(token)).toEqual({ status: 401, code: 'AUTH_REPLAYED' });
  });

  it('refuses a body that does not match body_sha256: BODY_HASH_MISMATCH', async () => {
    const token = await sign(gw.keys.portal!, {});
    expect(await codeOf(token, JSON.stringify({ personalId: '001188654321' }))).toEqual({ status: 401, code: 'BODY_HASH_MISMATCH' });
  });

  it('refuses a missing body_sha256 or jti: AUTH_INVALID', async () => {
    expect(await codeOf(await sign(gw.keys.portal!, { body_sha256: undefined }))).toEqual({ status: 401, code: 'AUTH_INVALID' });
    expect(await codeOf(await sign(gw.keys.portal!, { jti: undefined }))).toEqual({ status: 401, code: 'AUTH_INVALID' });
  });

  it('refuses claims that are not printable, well-formed text: AUTH_INVALID', async () => {
    for (const claims of [{ case_id: 'HS-\u0000-1' }, { user_id: 'officer-\ud800' }, { purpose: 42 }, { case_id: 'x'.repeat(129) }]) {
      expect(await codeOf(await sign(gw.keys.portal!, claims))).toEqual({ status: 401, code: 'AUTH_INVALID' });
    }
  });

  it('refuses JWS extensions it does not implement (crit, b64): AUTH_INVALID', async () => {
    // Signed by hand: a JOSE library would refuse to produce these.
    const key = createPrivateKey({ key: gw.keys.portal! as never, format: 'jwk' });
    const claims = { iss: 'portal', aud: GATEWAY_ID, iat: now(), exp: now() + 60, purpose: 'PUBLIC_SERVICE_PREFILL', body_sha256: bodyHash(BODY) };
    const cases: [Record<string, unknown>, number, string | undefined][] = [
      [{}, 200, undefined], // the same token without the extension is accepted
      [{ crit: ['urn:example:ext'], 'urn:example:ext': 1 }, 401, 'AUTH_INVALID'],
      [{ b64: true, crit: ['b64'] }, 401, 'AUTH_INVALID'],
    ];
    for (const [extra, status, code] of cases) {
      const h = base64url.encode(JSON.stringify({ alg: 'ES256', kid: gw.keys.portal!.kid, ...extra }));
      const p = base64url.encode(JSON.stringify({ ...claims, jti: randomUUID() }));
      const sig = sign$('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
      expect(await codeOf(`${h}.${p}.${sig}`)).toEqual({ status, code });
    }
  });

  it('refuses an ES256 signature in DER form instead of raw r||s: AUTH_INVALID', async () => {
    const token = await sign(gw.keys.portal!, {});
    const [h, p] = token.split('.');
    const der = createSign('sha256').update(`${h}.${p}`).sign(createPrivateKey({ key: gw.keys.portal! as never, format: 'jwk' }));
    expect(await codeOf(`${h}.${p}.${der.toString('base64url')}`)).toEqual({ status: 401, code: 'AUTH_INVALID' });
  });

  it('refuses a not-before in the future beyond the skew and an audience list without the gateway: AUTH_INVALID', async () => {
    expect(await codeOf(await sign(gw.keys.portal!, { nbf: now() + 120 }))).toEqual({ status: 401, code: 'AUTH_INVALID' });
    expect(await codeOf(await sign(gw.keys.portal!, { aud: ['urn:other', 'urn:another'] }))).toEqual({ status: 401, code: 'AUTH_INVALID' });
    // aud must be exactly the gateway: a token also addressed to another service is no good here.
    expect(await codeOf(await sign(gw.keys.portal!, { aud: ['urn:other', GATEWAY_ID] }))).toEqual({ status: 401, code: 'AUTH_INVALID' });
    expect(await codeOf(await sign(gw.keys.portal!, { aud: [GATEWAY_ID] }))).toEqual({ status: 200, code: undefined });
  });

  it('does not chain failed authentications into the audit log', async () => {
    const before = (await gw.gateway.audit.store.head()).seq;
    await codeOf(null);
    await codeOf(await sign(gw.keys.portal!, { aud: 'nope' }));
    expect((await gw.gateway.audit.store.head()).seq).toBe(before);
  });
});

describe('a client whose keys are published at a JWKS URL', () => {
  let remote: TestGateway;
  let jwksServer: Server;
  let fetched = 0;
  beforeAll(async () => {
    const keys = await testKeys();
    const [ec, ed] = [keys.portal!, keys.edclient!];
    jwksServer = createServer((_req, res) => {
      fetched++;
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keys: [publicPart(ec), publicPart(ed)] }));
    });
    await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
    const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as { port: number }).port}/jwks.json`;
    remote = await startGateway(await testConfig((raw) => {
      raw.clients.push({ id: 'remote-agency', name: 'Agency with a published key set', keys: { jwksUrl } });
      raw.grants.push({ client: 'remote-agency', service: 'population.identity', purposes: ['PUBLIC_SERVICE_PREFILL'], fieldGroups: ['core'] });
    }));
  });
  afterAll(async () => {
    await remote.close();
    await new Promise((r) => jwksServer.close(r));
  });

  const callAs = async (jwk: JWK, kid = jwk.kid) => {
    const body = JSON.stringify({ personalId: world().citizens[0]!.personalId });
    const token = await mintAssertion({ privateJwk: { ...jwk, kid }, iss: 'remote-agency', aud: GATEWAY_ID, purpose: 'PUBLIC_SERVICE_PREFILL', body });
    const res = await fetch(`${remote.url}/services/population.identity/v1`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, body });
    return { status: res.status, code: res.status === 200 ? undefined : ((await res.json()) as { code: string }).code };
  };

  it('accepts assertions signed with any of its published keys, ES256 and EdDSA, fetching the set once', async () => {
    const keys = await testKeys();
    expect(await callAs(keys.portal!)).toEqual({ status: 200, code: undefined });
    expect(await callAs(keys.edclient!)).toEqual({ status: 200, code: undefined });
    expect(await callAs(keys.portal!)).toEqual({ status: 200, code: undefined });
    expect(fetched).toBe(1);
  });

  it('refuses a kid the set does not publish, and a key it does not hold under a published kid: AUTH_INVALID', async () => {
    const keys = await testKeys();
    expect(await callAs(keys.portal!, 'not-published')).toEqual({ status: 401, code: 'AUTH_INVALID' });
    expect(await callAs(keys['land-office']!, keys.portal!.kid)).toEqual({ status: 401, code: 'AUTH_INVALID' });
  });
});
