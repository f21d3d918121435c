import { KeyObject, sign as cryptoSign, type webcrypto } from 'node:crypto';
import { CompactSign, compactVerify, createLocalJWKSet, type JSONWebKeySet } from 'jose';
import type { KeyPair } from './keys.ts';
import { activeKey, type SetKey } from './key-set.ts';

const encoder = new TextEncoder();

/**
 * The gateway's signer: detached response signatures and audit checkpoints, each by the key of the
 * set active at that moment (key-set.ts); every key of the set is published.
 */
export interface Signer {
  /** Every published key: the active one, those waiting to activate and the retired ones (old signatures and checkpoints verify). */
  readonly jwks: JSONWebKeySet;
  /** The kid signing now. */
  readonly kid: string;
  /** RFC 7515 appendix F detached compact JWS over the exact body bytes (`header..signature`). */
  signResponse(body: Uint8Array, binding: { requestId: string; requestSha256: string }): Promise<string>;
  /** Compact JWS over `{seq, hash, time}`. */
  signCheckpoint(head: { seq: number; hash: string; time: string }): Promise<string>;
}

/** Where the signer's keys come from: one key pair, or a key set kept current (SigningKeys). */
export type SignerKeys = KeyPair | { keys(): readonly SetKey[] };

/** node:crypto's handle on each key pair, made once. */
const keyObjects = new WeakMap<KeyPair, KeyObject>();
const keyObjectOf = (key: KeyPair) => {
  let k = keyObjects.get(key);
  if (!k) keyObjects.set(key, (k = KeyObject.from(key.privateKey as unknown as webcrypto.CryptoKey)));
  return k;
};

export function createSigner(source: SignerKeys): Signer {
  const one: readonly SetKey[] = 'keys' in source ? [] : [{ ...source, createdAt: '', activatesAt: 0 }];
  const keys = 'keys' in source ? () => source.keys() : () => one;
  // The published set follows the key list; built again only when the list was replaced.
  let published: { from: readonly SetKey[]; jwks: JSONWebKeySet } | null = null;
  const jwks = () => {
    const list = keys();
    if (published?.from !== list) published = { from: list, jwks: { keys: list.map((k) => k.publicJwk) } };
    return published.jwks;
  };
  const active = () => activeKey(keys(), Date.now());
  // Every response is signed: node:crypto signs in a third of WebCrypto's time (JWS signatures
  // are raw r||s for ES256, hence ieee-p1363). Checkpoints, rare, keep jose.
  const signCompact = (key: KeyPair, input: Buffer) => key.alg === 'EdDSA'
    ? cryptoSign(null, input, keyObjectOf(key))
    : cryptoSign('sha256', input, { key: keyObjectOf(key), dsaEncoding: 'ieee-p1363' });
  return {
    get jwks() { return jwks(); },
    get kid() { return active().kid; },
    async signResponse(body, binding) {
      const key = active();
      const header = Buffer.from(JSON.stringify({
        alg: key.alg, kid: key.kid, iat: Math.floor(Date.now() / 1000),
        request_id: binding.requestId, request_sha256: binding.requestSha256,
      })).toString('base64url');
      const signingInput = Buffer.from(`${header}.${Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64url')}`);
      return `${header}..${signCompact(key, signingInput).toString('base64url')}`;
    },
    async signCheckpoint(head) {
      const key = active();
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
