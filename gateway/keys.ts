import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK, type CryptoKey } from 'jose';

export interface KeyPair {
  kid: string;
  alg: 'ES256' | 'EdDSA';
  privateKey: CryptoKey;
  /** The public half as a JWK with kid, alg and use, ready for a JWKS. */
  publicJwk: JWK;
}

/** Generates a private JWK (with kid = RFC 7638 thumbprint) for ES256 or EdDSA. */
export async function generatePrivateJwk(alg: 'ES256' | 'EdDSA'): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  const jwk = await exportJWK(privateKey);
  jwk.kid = await calculateJwkThumbprint(jwk);
  jwk.alg = alg;
  jwk.use = 'sig';
  return jwk;
}

/** The public members of a private JWK. */
export function publicPart(jwk: JWK): JWK {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = jwk;
  return pub;
}

/** Imports a private JWK into a usable key pair. */
export async function keyPairFromJwk(jwk: JWK): Promise<KeyPair> {
  const alg = (jwk.alg ?? (jwk.kty === 'OKP' ? 'EdDSA' : 'ES256')) as 'ES256' | 'EdDSA';
  const kid = jwk.kid ?? (await calculateJwkThumbprint(jwk));
  const privateKey = (await importJWK({ ...jwk, alg }, alg)) as CryptoKey;
  return { kid, alg, privateKey, publicJwk: { ...publicPart(jwk), kid, alg, use: 'sig' } };
}

/** Reads a private JWK file, generating it (mode 0600) at first use. */
export async function loadOrCreatePrivateJwk(file: string, alg: 'ES256' | 'EdDSA'): Promise<JWK> {
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as JWK;
  const jwk = await generatePrivateJwk(alg);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, JSON.stringify(jwk, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  return jwk;
}
