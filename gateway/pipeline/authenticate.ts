import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { GatewayError } from '../errors.ts';
import type { ClientConfig, GatewayConfig } from '../config/types.ts';
import type { ReplayGuard } from '../shared-state.ts';
import { sha256B64u } from '../audit/entry.ts';

export const ASSERTION_ALGORITHMS = ['ES256', 'EdDSA'] as const;

/** Claims that reach the audit record: well-formed Unicode without control characters. */
const PRINTABLE = /^(?:[^\p{Cc}\p{Cs}]|[\uD800-\uDBFF][\uDC00-\uDFFF])*$/u;

/** The claims of a verified client assertion (DESIGN.md §3). */
export interface ClientClaims extends JWTPayload {
  iss: string;
  jti: string;
  iat: number;
  exp: number;
  purpose?: string;
  case_id?: string;
  user_id?: string;
  body_sha256: string;
}

export interface Authenticated { client: ClientConfig; claims: ClientClaims }

/** A key resolver per client: inline JWKS, or a remote JWKS fetched defensively (timeout, cached). */
export function clientKeyResolvers(cfg: GatewayConfig): Map<string, { client: ClientConfig; keys: JWTVerifyGetKey }> {
  return new Map(cfg.clients.map((client) => [client.id, {
    client,
    keys: client.keys.jwks
      ? createLocalJWKSet(structuredClone(client.keys.jwks) as never)
      : createRemoteJWKSet(new URL(client.keys.jwksUrl!), { timeoutDuration: 2000, cooldownDuration: 30_000 }),
  }]));
}

/** Reads `Authorization: Bearer <JWT>`; a missing or non-bearer header is AUTH_MISSING. */
export function bearerToken(header: string | undefined): string {
  const m = header ? /^Bearer ([A-Za-z0-9_.~+/=-]+)$/i.exec(header.trim()) : null;
  if (!m) throw new GatewayError('AUTH_MISSING', 'send Authorization: Bearer <client assertion>');
  return m[1]!;
}

/**
 * Verifies a per-request client assertion: ES256/EdDSA only, the client's own keys, `aud` = the
 * gateway, a lifetime of at most 300 s, issued not in the future, bound to the body by
 * `body_sha256`, and single use (`jti`). Every refusal is one catalogue code.
 */
export function createAuthenticator(cfg: GatewayConfig, replay: ReplayGuard, now = () => Date.now()) {
  const resolvers = clientKeyResolvers(cfg);
  const { clockSkewSeconds: skew, maxAssertionLifetimeSeconds: maxLifetime } = cfg.limits;

  return async function authenticate(authorization: string | undefined, rawBody: Uint8Array): Promise<Authenticated> {
    const token = bearerToken(authorization);
    let iss: unknown;
    try {
      const header = decodeProtectedHeader(token);
      if (!ASSERTION_ALGORITHMS.includes(header.alg as never)) throw new GatewayError('AUTH_INVALID', `alg must be one of ${ASSERTION_ALGORITHMS.join(', ')}`);
      if (typeof header.kid !== 'string') throw new GatewayError('AUTH_INVALID', 'kid header required');
      iss = decodeJwt(token).iss;
    } catch (e) {
      if (e instanceof GatewayError) throw e;
      throw new GatewayError('AUTH_INVALID', 'malformed assertion');
    }
    const resolver = typeof iss === 'string' ? resolvers.get(iss) : undefined;
    if (!resolver) throw new GatewayError('AUTH_INVALID', 'unknown client (iss)');

    let claims: ClientClaims;
    try {
      const { payload } = await jwtVerify(token, resolver.keys, {
        algorithms: [...ASSERTION_ALGORITHMS],
        audience: cfg.gatewayId,
        issuer: resolver.client.id,
        clockTolerance: skew,
        requiredClaims: ['iat', 'exp', 'jti'],
        currentDate: new Date(now()),
      });
      claims = payload as ClientClaims;
    } catch (e) {
      if (e instanceof joseErrors.JWTExpired) throw new GatewayError('AUTH_EXPIRED', 'assertion expired');
      if (e instanceof joseErrors.JWKSNoMatchingKey) throw new GatewayError('AUTH_INVALID', 'unknown kid for this client');
      if (e instanceof joseErrors.JWTClaimValidationFailed) throw new GatewayError('AUTH_INVALID', `claim ${e.claim} invalid`);
      if (e instanceof joseErrors.JOSEError) throw new GatewayError('AUTH_INVALID', 'signature or structure invalid');
      throw e;
    }
    const nowSeconds = now() / 1000;
    if (claims.iat > nowSeconds + skew) throw new GatewayError('AUTH_INVALID', 'assertion issued in the future');
    if (claims.exp - claims.iat > maxLifetime) throw new GatewayError('AUTH_INVALID', `assertion lifetime over ${maxLifetime} s`);
    if (typeof claims.jti !== 'string' || claims.jti.length < 8 || claims.jti.length > 128) throw new GatewayError('AUTH_INVALID', 'jti must be a string of 8 to 128 characters');
    for (const c of ['purpose', 'case_id', 'user_id'] as const) {
      const v = claims[c];
      if (v !== undefined && (typeof v !== 'string' || v.length > 128 || !PRINTABLE.test(v))) throw new GatewayError('AUTH_INVALID', `${c} must be printable text of at most 128 characters`);
    }
    if (typeof claims.body_sha256 !== 'string') throw new GatewayError('AUTH_INVALID', 'body_sha256 claim required');
    if (claims.body_sha256 !== sha256B64u(rawBody)) throw new GatewayError('BODY_HASH_MISMATCH', 'body_sha256 does not match the request body');
    // Consumed last, so a refused assertion does not burn its jti; kept until it could no longer be accepted.
    const ttl = Math.max(1, Math.ceil(claims.exp + skew - nowSeconds));
    if (!(await replay.consume(`jti:${resolver.client.id}:${claims.jti}`, ttl))) throw new GatewayError('AUTH_REPLAYED', 'jti already used');
    return { client: resolver.client, claims };
  };
}

export type Authenticator = ReturnType<typeof createAuthenticator>;
