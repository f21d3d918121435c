import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compactVerify, createLocalJWKSet, decodeProtectedHeader, flattenedVerify } from 'jose';
import { createHash } from 'node:crypto';
import { startGateway, type TestGateway } from './support/fixtures.ts';

let gw: TestGateway;
beforeAll(async () => { gw = await startGateway(); });
afterAll(async () => { await gw.close(); });

describe('signed responses (detached JWS, RFC 7515 appendix F)', () => {
  it('verifies against /.well-known/jwks.json, bound to the request, and fails for a changed byte', async () => {
    const requestBody = JSON.stringify({ personalId: '001085123456' });
    const res = await gw.call('population.identity', JSON.parse(requestBody), { raw: requestBody });
    expect(res.status).toBe(200);
    const requestId = res.headers.get('x-request-id')!;
    const signature = res.headers.get('x-gateway-signature')!;
    const body = new Uint8Array(await res.arrayBuffer());
    const jwks = await (await fetch(`${gw.url}/.well-known/jwks.json`)).json();

    const [header, empty, sig] = signature.split('.');
    expect(empty).toBe('');
    const attached = `${header}.${Buffer.from(body).toString('base64url')}.${sig}`;
    const { payload, protectedHeader } = await compactVerify(attached, createLocalJWKSet(jwks));
    expect(Buffer.from(payload).equals(Buffer.from(body))).toBe(true);
    expect(protectedHeader).toMatchObject({ alg: 'ES256', kid: jwks.keys[0].kid, request_id: requestId, request_sha256: createHash('sha256').update(requestBody).digest('base64url') });
    expect(typeof protectedHeader.iat).toBe('number');

    const changed = Buffer.from(body);
    changed[changed.length - 2] ^= 0x01;
    await expect(flattenedVerify({ protected: header!, payload: changed.toString('base64url'), signature: sig! }, createLocalJWKSet(jwks))).rejects.toThrow();
    expect(decodeProtectedHeader(signature).request_id).toBe(requestId);
  });

  it('uses the request id of the audit entry', async () => {
    const res = await gw.call('population.identity', { personalId: '001085123456' });
    const entry = await gw.gateway.audit.store.get(res.headers.get('x-request-id')!);
    expect(entry).toMatchObject({ outcome: 'released', responseSha256: createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex') });
  });
});
