import { randomUUID } from 'node:crypto';
import { importJWK, SignJWT, type JWK } from 'jose';
import { sha256B64u } from './audit/entry.ts';

export interface AssertionOptions {
  privateJwk: JWK;
  /** Client id (`iss`). */
  iss: string;
  /** The gateway id (`aud`). */
  aud: string;
  purpose?: string;
  caseId?: string;
  userId?: string;
  /** The exact request body; omit for a request without one. */
  body?: string | Uint8Array;
  lifetimeSeconds?: number;
  jti?: string;
  /** Issue time in seconds (default now). */
  iat?: number;
}

/** Mints a per-request client assertion as the README's wire interface describes (what a client agency's code does). */
export async function mintAssertion(o: AssertionOptions): Promise<string> {
  const alg = o.privateJwk.alg ?? (o.privateJwk.kty === 'OKP' ? 'EdDSA' : 'ES256');
  const key = await importJWK(o.privateJwk, alg);
  const iat = o.iat ?? Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = { body_sha256: sha256B64u(o.body ?? '') };
  if (o.purpose) claims.purpose = o.purpose;
  if (o.caseId) claims.case_id = o.caseId;
  if (o.userId) claims.user_id = o.userId;
  return new SignJWT(claims)
    .setProtectedHeader({ alg, kid: o.privateJwk.kid, typ: 'JWT' })
    .setIssuer(o.iss)
    .setAudience(o.aud)
    .setIssuedAt(iat)
    .setExpirationTime(iat + (o.lifetimeSeconds ?? 60))
    .setJti(o.jti ?? randomUUID())
    .sign(key);
}

export interface ConsentOptions {
  privateJwk: JWK;
  /** The identity provider's issuer id. */
  iss: string;
  aud: string;
  /** The citizen's personal id. */
  sub: string;
  /** The portal's client id. */
  azp: string;
  /** Consented field groups. */
  scope: string[];
  lifetimeSeconds?: number;
  iat?: number;
}

/** Mints a citizen consent token, as the national identity provider would. */
export async function mintConsent(o: ConsentOptions): Promise<string> {
  const alg = o.privateJwk.alg ?? 'ES256';
  const key = await importJWK(o.privateJwk, alg);
  const iat = o.iat ?? Math.floor(Date.now() / 1000);
  return new SignJWT({ azp: o.azp, scope: o.scope.join(' ') })
    .setProtectedHeader({ alg, kid: o.privateJwk.kid, typ: 'JWT' })
    .setIssuer(o.iss)
    .setAudience(o.aud)
    .setSubject(o.sub)
    .setIssuedAt(iat)
    .setExpirationTime(iat + (o.lifetimeSeconds ?? 600))
    .setJti(randomUUID())
    .sign(key);
}
