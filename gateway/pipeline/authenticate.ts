import { KeyObject, verify as cryptoVerify, type webcrypto } from 'node:crypto';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, errors as joseErrors, type CompactJWSHeaderParameters, type JWTPayload, type JWTVerifyGetKey, type ProtectedHeaderParameters } from 'jose';
import { GatewayError } from '../errors.ts';
import type { ClientConfig, GatewayConfig } from '../config/types.ts';
import type { ReplayGuard } from '../shared-state.ts';
import { sha256B64u } from '../audit/entry.ts';
import type { Step } from './types.ts';
import { isPrintable } from '../domain/index.ts';
import { createRemoteKeySet } from '../remote-key-set.ts';
import { actingPartyOf, type ActorClaim } from '../federation/acting.ts';

export const ASSERTION_ALGORITHMS = ['ES256', 'EdDSA'] as const;


/** The claims of a verified client assertion. */
export interface ClientClaims extends JWTPayload {
  iss: string;
  jti: string;
  iat: number;
  exp: number;
  purpose?: string;
  case_id?: string;
  user_id?: string;
  body_sha256: string;
  /** RFC 8693 delegation: the calling gateway (`act.sub` = `iss`) acts for `sub` (federation/acting.ts). */
  act?: ActorClaim;
}

/** `actingFor`: the party a federated gateway called for (`sub` with `act`); absent on a direct call. */
export interface Authenticated { client: ClientConfig; claims: ClientClaims; actingFor?: string }

/** How the resolvers of one config generation reach what outlives it: remote key sets already fetched, the fetch metric. */
export interface ClientKeyOptions {
  /**
   * Remote key sets by client, URL and options, kept across config reloads: an unchanged client
   * keeps its cached keys; a removed or changed one is dropped here, so nothing keeps it alive.
   */
  remote?: Map<string, JWTVerifyGetKey>;
  onJwksFetch?: (clientId: string, outcome: 'ok' | 'error') => void;
}

/** A key resolver per client: inline JWKS, or a JWKS URL fetched defensively (timeout, cooldown, maximum age; remote-key-set.ts). */
export function clientKeyResolvers(cfg: GatewayConfig, o: ClientKeyOptions = {}): Map<string, { client: ClientConfig; keys: JWTVerifyGetKey }> {
  const remote = o.remote ?? new Map<string, JWTVerifyGetKey>();
  const used = new Set<string>();
  const remoteKeys = (client: ClientConfig): JWTVerifyGetKey => {
    const options = {
      timeoutMs: cfg.clientKeys.fetchTimeoutMs,
      cooldownMs: (client.keys.refetchCooldownSeconds ?? cfg.clientKeys.refetchCooldownSeconds) * 1000,
      maxAgeMs: (client.keys.maxAgeSeconds ?? cfg.clientKeys.maxAgeSeconds) * 1000,
    };
    const key = JSON.stringify([client.id, client.keys.jwksUrl, options]);
    used.add(key);
    let keys = remote.get(key);
    if (!keys) remote.set(key, (keys = createRemoteKeySet(client.keys.jwksUrl!, { ...options, onFetch: (outcome) => o.onJwksFetch?.(client.id, outcome) })));
    return keys;
  };
  const resolvers = new Map(cfg.clients.map((client) => [client.id, {
    client,
    keys: client.keys.jwks ? createLocalJWKSet(structuredClone(client.keys.jwks) as never) : remoteKeys(client),
  }]));
  for (const key of remote.keys()) if (!used.has(key)) remote.delete(key);
  return resolvers;
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
export function createAuthenticator(cfg: GatewayConfig, replay: ReplayGuard, now = () => Date.now(), keyOptions: ClientKeyOptions = {}) {
  const resolvers = clientKeyResolvers(cfg, keyOptions);
  const { clockSkewSeconds: skew, maxAssertionLifetimeSeconds: maxLifetime } = cfg.limits;

  return async function authenticate(authorization: string | undefined, rawBody: Uint8Array): Promise<Authenticated> {
    const token = bearerToken(authorization);
    let header: ProtectedHeaderParameters;
    let payload: JWTPayload;
    try {
      header = decodeProtectedHeader(token);
      if (!ASSERTION_ALGORITHMS.includes(header.alg as never)) throw new GatewayError('AUTH_INVALID', `alg must be one of ${ASSERTION_ALGORITHMS.join(', ')}`);
      if (typeof header.kid !== 'string') throw new GatewayError('AUTH_INVALID', 'kid header required');
      payload = decodeJwt(token);
    } catch (e) {
      if (e instanceof GatewayError) throw e;
      throw new GatewayError('AUTH_INVALID', 'malformed assertion');
    }
    const resolver = typeof payload.iss === 'string' ? resolvers.get(payload.iss) : undefined;
    if (!resolver) throw new GatewayError('AUTH_INVALID', 'unknown client (iss)');

    try {
      await verifySignature(token, header, resolver.keys);
    } catch (e) {
      if (e instanceof joseErrors.JWKSNoMatchingKey) throw new GatewayError('AUTH_INVALID', 'unknown kid for this client');
      if (e instanceof joseErrors.JOSEError) throw new GatewayError('AUTH_INVALID', 'signature or structure invalid');
      throw e;
    }
    const nowSeconds = now() / 1000;
    checkRegisteredClaims(payload, { audience: cfg.gatewayId, issuer: resolver.client.id, skew, now: nowSeconds });
    const claims = payload as ClientClaims;
    if (claims.exp - claims.iat > maxLifetime) throw new GatewayError('AUTH_INVALID', `assertion lifetime over ${maxLifetime} s`);
    if (typeof claims.jti !== 'string' || claims.jti.length < 8 || claims.jti.length > 128) throw new GatewayError('AUTH_INVALID', 'jti must be a string of 8 to 128 characters');
    for (const c of ['purpose', 'case_id', 'user_id'] as const) {
      const v = claims[c];
      // Refused, not escaped: the client signed these claims, and the audit record must say what it signed.
      if (v !== undefined && (typeof v !== 'string' || v.length > 128 || !isPrintable(v))) throw new GatewayError('AUTH_INVALID', `${c} must be printable text of at most 128 characters`);
    }
    const actingFor = actingPartyOf(claims);
    if (typeof claims.body_sha256 !== 'string') throw new GatewayError('AUTH_INVALID', 'body_sha256 claim required');
    if (claims.body_sha256 !== sha256B64u(rawBody)) throw new GatewayError('BODY_HASH_MISMATCH', 'body_sha256 does not match the request body');
    // Consumed last, so a refused assertion does not burn its jti; kept until it could no longer be accepted.
    const ttl = Math.max(1, Math.ceil(claims.exp + skew - nowSeconds));
    if (!(await replay.consume(`jti:${resolver.client.id}:${claims.jti}`, ttl))) throw new GatewayError('AUTH_REPLAYED', 'jti already used');
    return actingFor === undefined ? { client: resolver.client, claims } : { client: resolver.client, claims, actingFor };
  };
}

/** Imported verification keys, per CryptoKey that jose's key set handed out (it caches them). */
const keyObjects = new WeakMap<object, KeyObject>();

/**
 * Verifies a compact JWS's signature. jose picks the key (kid, alg and key type must
 * match the client's key set, local or remote); the signature itself is checked with node:crypto
 * on that key, synchronously: WebCrypto's verify costs twice as much per request, most of it in
 * scheduling a thread-pool job for a 60 µs computation.
 */
async function verifySignature(token: string, header: ProtectedHeaderParameters, keys: JWTVerifyGetKey): Promise<void> {
  const [encodedHeader, encodedPayload, encodedSignature] = token.split('.') as [string, string, string];
  // Extensions this verifier does not implement are refused, as RFC 7515 §4.1.11 requires.
  if (header.crit !== undefined || header.b64 !== undefined) throw new GatewayError('AUTH_INVALID', 'unsupported JWS header extension');
  const cryptoKey = await keys(header as CompactJWSHeaderParameters, { protected: encodedHeader, payload: encodedPayload, signature: encodedSignature });
  if ((cryptoKey as { type?: string }).type !== 'public') throw new GatewayError('AUTH_INVALID', 'client key is not a public key');
  let key = keyObjects.get(cryptoKey);
  if (!key) keyObjects.set(cryptoKey, (key = KeyObject.from(cryptoKey as webcrypto.CryptoKey)));
  const signature = Buffer.from(encodedSignature, 'base64url');
  if (signature.length !== 64 || signature.toString('base64url') !== encodedSignature) throw new GatewayError('AUTH_INVALID', 'malformed signature');
  const input = Buffer.from(`${encodedHeader}.${encodedPayload}`, 'ascii');
  const valid = header.alg === 'EdDSA'
    ? key.asymmetricKeyType === 'ed25519' && cryptoVerify(null, input, key, signature)
    : key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1' && cryptoVerify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, signature);
  if (!valid) throw new GatewayError('AUTH_INVALID', 'signature invalid');
}

/**
 * `aud` names this gateway and nothing else: the id as a string, or an array of just that id. A
 * token also addressed to another service could be replayed here by that service (or there by
 * this one), so RFC 7519's "one of the audiences" is not enough for a per-request assertion.
 */
export const isOnlyAudience = (aud: unknown, gatewayId: string): boolean =>
  aud === gatewayId || (Array.isArray(aud) && aud.length === 1 && aud[0] === gatewayId);

/** RFC 7519 §4.1 checks, with the tolerated clock skew: `aud`, `iss`, `exp`, `nbf`, numeric `iat` not in the future. */
function checkRegisteredClaims(claims: JWTPayload, o: { audience: string; issuer: string; skew: number; now: number }): void {
  if (!isOnlyAudience(claims.aud, o.audience)) throw new GatewayError('AUTH_INVALID', 'claim aud must be exactly the gateway id');
  if (claims.iss !== o.issuer) throw new GatewayError('AUTH_INVALID', 'claim iss invalid');
  for (const c of ['iat', 'exp'] as const) {
    if (typeof claims[c] !== 'number' || !Number.isFinite(claims[c])) throw new GatewayError('AUTH_INVALID', `claim ${c} invalid`);
  }
  if (claims.iat! > o.now + o.skew) throw new GatewayError('AUTH_INVALID', 'assertion issued in the future');
  if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || claims.nbf > o.now + o.skew)) throw new GatewayError('AUTH_INVALID', 'claim nbf invalid');
  if (claims.exp! <= o.now - o.skew) throw new GatewayError('AUTH_EXPIRED', 'assertion expired');
}

export type Authenticator = ReturnType<typeof createAuthenticator>;

/** Who is calling: a failure here is logged and counted, never chained, so no anonymous caller can flood the audit store. */
export const authenticate: Step = async (x) => {
  x.auth = await x.deps.authenticate(x.inbound);
};
