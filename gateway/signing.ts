import { KeyObject, sign as cryptoSign, type webcrypto } from 'node:crypto';
import { CompactSign, compactVerify, createLocalJWKSet, type JSONWebKeySet } from 'jose';
import type { KeyPair } from './keys.ts';

const encoder = new TextEncoder();

/** The gateway's signer: detached response signatures and audit checkpoints, one key. */
export interface Signer {
  readonly jwks: JSONWebKeySet;
  /** RFC 7515 appendix F detached compact JWS over the exact body bytes (`header..signature`). */
  signResponse(body: Uint8Array, binding: { requestId: string; requestSha256: string }): Promise<string>;
  /** Compact JWS over `{seq, hash, time}`. */
  signCheckpoint(head: { seq: number; hash: string; time: string }): Promise<string>;
}

export function createSigner(key: KeyPair): Signer {
  const jwks: JSONWebKeySet = { keys: [key.publicJwk] };
  // Every response is signed: node:crypto signs in a third of WebCrypto's time (JWS signatures
  // are raw r||s for ES256, hence ieee-p1363). Checkpoints, rare, keep jose.
  const privateKey = KeyObject.from(key.privateKey as unknown as webcrypto.CryptoKey);
  const signCompact = (input: Buffer) => key.alg === 'EdDSA'
    ? cryptoSign(null, input, privateKey)
    : cryptoSign('sha256', input, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return {
    jwks,
    async signResponse(body, binding) {
      const header = Buffer.from(JSON.stringify({
        alg: key.alg, kid: key.kid, iat: Math.floor(Date.now() / 1000),
        request_id: binding.requestId, request_sha256: binding.requestSha256,
      })).toString('base64url');
      const signingInput = Buffer.from(`${header}.${Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64url')}`);
      return `${header}..${signCompact(signingInput).toString('base64url')}`;
    },
    async signCheckpoint(head) {
      return new CompactSign(encoder.encode(JSON.stringify({ seq: head.seq, hash: head.hash, time: head.time })))
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'audit-checkpoint+jws' })
        .sign(key.privateKey);
    },
  };
}

/** Verifies a checkpoint JWS against a JWKS; returns its payload. */
export async function verifyCheckpointJws(jws: string, jwks: JSONWebKeySet): Promise<{ seq: number; hash: string; time: string }> {
  const { payload } = await compactVerify(jws, createLocalJWKSet(jwks));
  return JSON.parse(new TextDecoder().decode(payload));
}
