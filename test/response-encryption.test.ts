/**
 * Answers encrypted to the client (`clients[].encryptResponses`): a compact JWE to the client's
 * `use: "enc"` key, the signature and the audit hash over the plaintext, problems plain.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { compactDecrypt, decodeProtectedHeader, exportJWK, flattenedVerify, createLocalJWKSet, generateKeyPair, type JWK } from 'jose';
import { world } from '../adapters/world/index.ts';
import { createGatewayClient, GatewaySignatureError } from '../clients/typescript/src/index.ts';
import { ConfigError } from '../gateway/config/index.ts';
import { answerEncrypter } from '../gateway/pipeline/encrypt.ts';
import { startGateway, testConfig, type TestGateway } from './support/fixtures.ts';

const citizen = world().citizens.find((c) => c.lifeStatus === 'alive')!;

async function encryptionKey(): Promise<{ publicJwk: JWK; privateJwk: JWK }> {
  const { publicKey, privateKey } = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256', extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), use: 'enc', alg: 'ECDH-ES+A256KW', kid: 'portal-enc-1' };
  return { publicJwk, privateJwk: { ...(await exportJWK(privateKey)), use: 'enc', alg: 'ECDH-ES+A256KW', kid: 'portal-enc-1' } };
}

let gw: TestGateway;
let enc: { publicJwk: JWK; privateJwk: JWK };
const body = JSON.stringify({ personalId: citizen.personalId });

beforeAll(async () => {
  enc = await encryptionKey();
  gw = await startGateway(await testConfig((raw) => {
    const portal = raw.clients.find((c: { id: string }) => c.id === 'portal');
    portal.keys.jwks.keys.push(enc.publicJwk);
    portal.encryptResponses = true;
  }));
});
afterAll(async () => { await gw.close(); });

describe('answers encrypted to the client', () => {
  it('are a compact JWE the client decrypts with jose, then verifies: the signature and the audit hash cover the plaintext', async () => {
    const res = await gw.call('population.identity', null, { raw: body });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/jose');
    const jwe = await res.text();
    expect(jwe).not.toContain(citizen.personalId);
    expect(decodeProtectedHeader(jwe)).toMatchObject({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: 'portal-enc-1' });
    const { plaintext } = await compactDecrypt(jwe, await importPrivate(enc.privateJwk));
    expect(JSON.parse(Buffer.from(plaintext).toString()).personalId).toBe(citizen.personalId);
    const [protectedHeader, signature] = res.headers.get('x-gateway-signature')!.split('..');
    const verified = await flattenedVerify({ protected: protectedHeader!, payload: Buffer.from(plaintext).toString('base64url'), signature: signature! }, createLocalJWKSet(gw.gateway.signer.jwks));
    expect(verified.protectedHeader).toMatchObject({ request_id: res.headers.get('x-request-id') });
    const entry = await gw.gateway.audit.store.get(res.headers.get('x-request-id')!);
    expect(entry!.responseSha256).toBe(createHash('sha256').update(plaintext).digest('hex'));
  });

  it('cannot be decrypted with another key', async () => {
    const res = await gw.call('population.identity', null, { raw: body });
    const other = await encryptionKey();
    await expect(compactDecrypt(await res.text(), await importPrivate(other.privateJwk))).rejects.toThrow();
  });

  it('are not applied to problems, nor to a client that did not ask', async () => {
    const refused = await gw.call('population.identity', null, { raw: body, purpose: 'AUDIT_REVIEW' });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect((await refused.json()).code).toBe('FORBIDDEN_PURPOSE');
    const plain = await gw.call('population.identity', null, { raw: body, client: 'edclient' });
    expect(plain.status).toBe(200);
    expect(plain.headers.get('content-type')).toMatch(/^application\/json/);
  });

  it('are decrypted by the typed client transparently, and refused without the key', async () => {
    const withKey = createGatewayClient({ url: gw.url, clientId: 'portal', privateJwk: gw.keys.portal!, decryptionKey: enc.privateJwk });
    const result = await withKey.call('population.identity/v1', { personalId: citizen.personalId }, { purpose: 'PUBLIC_SERVICE_PREFILL' });
    expect(result.ok && result.data.personalId).toBe(citizen.personalId);
    const withoutKey = createGatewayClient({ url: gw.url, clientId: 'portal', privateJwk: gw.keys.portal! });
    const error = await withoutKey.call('population.identity/v1', { personalId: citizen.personalId }, { purpose: 'PUBLIC_SERVICE_PREFILL' }).catch((e: unknown) => e);
    expect((error as GatewaySignatureError).reason).toBe('DECRYPTION_FAILED');
  });

  it.each([['P-256'], ['P-384'], ['P-521'], ['X25519']])('are written for a %s key as jose reads them (its own algorithms only)', async (crv) => {
    const { publicKey, privateKey } = await generateKeyPair('ECDH-ES+A256KW', { crv, extractable: true });
    const publicJwk = { ...(await exportJWK(publicKey)), use: 'enc', kid: `k-${crv}` };
    const plaintext = Buffer.from(JSON.stringify({ personalId: citizen.personalId, fullName: 'Nguyễn Văn An' }));
    const jwe = answerEncrypter(publicJwk)(plaintext);
    const { plaintext: decrypted, protectedHeader } = await compactDecrypt(jwe, privateKey, { keyManagementAlgorithms: ['ECDH-ES+A256KW'], contentEncryptionAlgorithms: ['A256GCM'] });
    expect(Buffer.from(decrypted).equals(plaintext)).toBe(true);
    expect(protectedHeader).toMatchObject({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: `k-${crv}`, epk: { crv } });
    // A fresh ephemeral key and IV each time: the same answer never encrypts the same way twice.
    expect(answerEncrypter(publicJwk)(plaintext)).not.toBe(jwe);
    const [header, key, iv, ciphertext, tag] = jwe.split('.');
    const flipped = Buffer.from(ciphertext!, 'base64url');
    flipped[0] ^= 1;
    await expect(compactDecrypt([header, key, iv, flipped.toString('base64url'), tag].join('.'), privateKey)).rejects.toThrow();
  });

  it('need an encryption key in the client\'s inline JWKS: a config without one is refused with its key path', async () => {
    const refusal = (patch: (portal: any) => void) => testConfig((raw) => {
      const portal = raw.clients.find((c: { id: string }) => c.id === 'portal');
      portal.encryptResponses = true;
      patch(portal);
    }).then(() => null, (e: unknown) => e);
    const noKey = await refusal(() => {});
    expect(noKey).toBeInstanceOf(ConfigError);
    expect((noKey as Error).message).toMatch(/^\/clients\/\d+\/keys\/jwks\/keys: /);
    const signingKeyOnly = await refusal((portal) => { portal.keys.jwks.keys.push({ ...portal.keys.jwks.keys[0], use: 'enc', kty: 'RSA' }); });
    expect((signingKeyOnly as Error).message).toMatch(/^\/clients\/\d+\/keys\/jwks\/keys\/1: /);
    const byUrl = await refusal((portal) => { portal.keys = { jwksUrl: 'https://agency.example/jwks.json' }; });
    expect((byUrl as Error).message).toMatch(/^\/clients\/\d+\/keys: /);
  });
});

async function importPrivate(jwk: JWK) {
  const { importJWK } = await import('jose');
  return importJWK(jwk, 'ECDH-ES+A256KW');
}
