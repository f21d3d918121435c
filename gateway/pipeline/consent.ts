import { createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { GatewayError } from '../errors.ts';
import type { GatewayConfig } from '../config/types.ts';
import { isPersonalId } from '../domain/index.ts';
import { ASSERTION_ALGORITHMS, isOnlyAudience } from './authenticate.ts';
import type { Step } from './types.ts';

/** A verified citizen consent. */
export interface Consent {
  /** The citizen's personal id. */
  sub: string;
  /** The portal the consent was given to. */
  azp: string;
  /** Consented field groups. */
  scope: ReadonlySet<string>;
  jti?: string;
  exp: number;
}

/**
 * Verifies `X-Citizen-Consent`, issued by the trusted identity provider: `aud` the gateway, `azp`
 * the calling client, a personal id as `sub`, a short lifetime. Missing → CONSENT_REQUIRED; any
 * other flaw → CONSENT_INVALID.
 */
export function createConsentVerifier(cfg: GatewayConfig, now = () => Date.now()) {
  const idp = cfg.identityProvider;
  const keys: JWTVerifyGetKey | null = idp
    ? idp.jwks ? createLocalJWKSet(structuredClone(idp.jwks) as never) : createRemoteJWKSet(new URL(idp.jwksUrl!), { timeoutDuration: 2000 })
    : null;

  return async function verifyConsent(header: string | undefined, clientId: string): Promise<Consent> {
    if (!header) throw new GatewayError('CONSENT_REQUIRED', 'send X-Citizen-Consent: <consent token>');
    if (!idp || !keys) throw new GatewayError('CONSENT_INVALID', 'no identity provider is configured');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(header.trim(), keys, {
        algorithms: [...ASSERTION_ALGORITHMS], issuer: idp.issuer, audience: cfg.gatewayId,
        clockTolerance: cfg.limits.clockSkewSeconds, requiredClaims: ['sub', 'exp', 'iat'], currentDate: new Date(now()),
      }));
    } catch (e) {
      if (e instanceof joseErrors.JOSEError) throw new GatewayError('CONSENT_INVALID', e instanceof joseErrors.JWTExpired ? 'consent expired' : 'consent token invalid');
      throw e;
    }
    if (!isOnlyAudience(payload.aud, cfg.gatewayId)) throw new GatewayError('CONSENT_INVALID', 'consent aud must be exactly the gateway id');
    const { sub, azp, scope, exp, iat, jti } = payload as JWTPayload & { azp?: unknown; scope?: unknown };
    if (typeof sub !== 'string' || !isPersonalId(sub)) throw new GatewayError('CONSENT_INVALID', 'sub must be a personal id');
    if (azp !== clientId) throw new GatewayError('CONSENT_INVALID', 'consent was given to another client (azp)');
    if (typeof scope !== 'string') throw new GatewayError('CONSENT_INVALID', 'scope required');
    if (exp! - iat! > idp.maxConsentLifetimeSeconds) throw new GatewayError('CONSENT_INVALID', 'consent lifetime too long');
    return { sub, azp, scope: new Set(scope.split(' ').filter(Boolean)), exp: exp!, ...(typeof jti === 'string' ? { jti } : {}) };
  };
}

export type ConsentVerifier = ReturnType<typeof createConsentVerifier>;

/** The citizen's consent where the operation needs it, then the request checks that depend on it. */
export const checkConsent: Step = async (x) => {
  const op = x.op!;
  if (op.consent) x.consent = await x.deps.verifyConsent(x.inbound.consent, x.auth!.client.id);
  op.checkRequest?.(x.body, x.consent);
};
