import { KeyObject, randomUUID, sign as cryptoSign, type webcrypto } from 'node:crypto';
import { createLocalJWKSet, createRemoteJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import type { AxiosResponse } from 'axios';
import { GatewayError } from '../../gateway/errors.ts';
import { sha256B64u } from '../../gateway/audit/entry.ts';
import type { UpstreamCall } from '../../gateway/audit/entry.ts';
import type { ResilienceConfig } from '../../gateway/config/types.ts';
import type { Contract } from '../../gateway/contracts.ts';
import type { KeyPair } from '../../gateway/keys.ts';
import type { RemoteGatewayConfig } from '../../gateway/federation/types.ts';
import type { ActorClaim } from '../../gateway/federation/acting.ts';
import { callerOf } from '../../gateway/federation/context.ts';
import type { Authenticated } from '../../gateway/pipeline/authenticate.ts';
import { verifyRemoteAnswer, type VerifiedAnswer } from '../../gateway/federation/verify-answer.ts';
import { createUpstreamClient, type BreakerState, type UpstreamObserver } from './upstream-client.ts';

/** Another gateway, as an upstream: its contract endpoints called as one of its clients, every answer verified. */
export interface RemoteGateway {
  readonly gatewayId: string;
  /** The remote's verified answer to `service` v`version` (a pinned contract), made for the request being answered here. */
  call(service: string, version: number, body: unknown, trace?: UpstreamCall[]): Promise<Record<string, unknown>>;
  /** The pinned contract of one of its services. */
  contract(service: string, version: number): Contract | undefined;
  health(): Promise<{ up: boolean; breaker: BreakerState }>;
  breakerState(): BreakerState;
}

export interface RemoteGatewayOptions {
  /** The agency the remote stands in for (its name in metrics and the audit record's upstream calls). */
  agency: string;
  remote: RemoteGatewayConfig;
  /** This gateway's client key at the remote. */
  key: KeyPair;
  /** The remote's contracts, pinned and checked at start (federation/contracts.ts). */
  contracts: ReadonlyMap<string, Contract>;
  resilience: ResilienceConfig;
  observer?: UpstreamObserver;
  /** Lifetime of each assertion (seconds); short, as each is used once. */
  assertionLifetimeSeconds?: number;
}

/** The remote's response-signing keys: inline, or its published JWKS (fetched with a timeout, refetched at most every 30 s). */
function answerKeys(remote: RemoteGatewayConfig): JWTVerifyGetKey {
  if (remote.jwks) return createLocalJWKSet(structuredClone(remote.jwks) as JSONWebKeySet);
  const url = remote.jwksUrl ?? `${remote.url.replace(/\/+$/, '')}/.well-known/jwks.json`;
  return createRemoteJWKSet(new URL(url), { timeoutDuration: 2000, cooldownDuration: 30_000, cacheMaxAge: 600_000 });
}

/**
 * The per-request client assertion (README, wire interface), unchanged but for the delegation:
 * `iss` this gateway's client id at the remote, `aud` the remote's gateway id, `body_sha256` of the
 * exact bytes sent; purpose, case id and officer passed through from the request being answered;
 * and RFC 8693 §4.1's delegation: `sub` the agency that asked (or the party the caller itself acted
 * for), `act.sub` this gateway, the caller's own `act` nested inside when it was a gateway too.
 */
export function assertionSigner(key: KeyPair, clientId: string, audience: string, lifetime = 60) {
  const privateKey = KeyObject.from(key.privateKey as unknown as webcrypto.CryptoKey);
  const header = Buffer.from(JSON.stringify({ alg: key.alg, kid: key.kid, typ: 'JWT' })).toString('base64url');
  return (body: Uint8Array, caller: Authenticated | undefined): string => {
    const iat = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = { iss: clientId, aud: audience, iat, exp: iat + lifetime, jti: randomUUID(), body_sha256: sha256B64u(body) };
    if (caller) {
      const { purpose, case_id, user_id, act } = caller.claims;
      if (purpose !== undefined) claims.purpose = purpose;
      if (case_id !== undefined) claims.case_id = case_id;
      if (user_id !== undefined) claims.user_id = user_id;
      claims.sub = caller.actingFor ?? caller.client.id;
      claims.act = { sub: clientId, ...(act ? { act } : {}) } satisfies ActorClaim;
    }
    const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    const signature = key.alg === 'EdDSA'
      ? cryptoSign(null, Buffer.from(input), privateKey)
      : cryptoSign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
    return `${input}.${signature.toString('base64url')}`;
  };
}

/** A refusal or failure the remote answered with (a problem document), as this gateway's catalogue code. */
function remoteProblem(remote: string, res: AxiosResponse): GatewayError {
  let code: unknown;
  try {
    code = (JSON.parse(Buffer.from(res.data as Buffer).toString('utf8')) as { code?: unknown }).code;
  } catch {
    code = undefined;
  }
  const named = typeof code === 'string' ? code.slice(0, 64) : `HTTP ${res.status}`;
  if (res.status === 404 && code === 'SUBJECT_NOT_FOUND') return new GatewayError('SUBJECT_NOT_FOUND', `${remote}: subject not found at the source`);
  if (res.status >= 300 && res.status < 400) return new GatewayError('UPSTREAM_BAD_RESPONSE', `${remote}: redirect refused (HTTP ${res.status})`);
  if (code === 'UPSTREAM_TIMEOUT') return new GatewayError('UPSTREAM_TIMEOUT', `${remote}: its source timed out`);
  // Its source down, or this gateway refused there (a grant or key missing): for this gateway's
  // client, the source is unavailable either way; the code the remote gave goes to the log.
  return new GatewayError('UPSTREAM_UNAVAILABLE', `${remote}: answered ${named}`);
}

/**
 * Another gateway behind the resilient upstream client (adapters/shared/upstream-client.ts): the
 * same timeout, retries (a fresh assertion each attempt: a `jti` is single use), breaker and
 * bulkhead as any agency system, so a remote that is down or slow gives UPSTREAM_UNAVAILABLE or
 * UPSTREAM_TIMEOUT, and one that answers unsigned, signed by another key, for another request or
 * outside the pinned contract gives UPSTREAM_BAD_RESPONSE. The audit record's upstream call names
 * the remote gateway, its request id and the hash of its signed answer (the chain of custody).
 */
export function createRemoteGateway(o: RemoteGatewayOptions): RemoteGateway {
  const { remote } = o;
  const client = createUpstreamClient({ agency: o.agency, baseUrl: remote.url.replace(/\/+$/, ''), resilience: o.resilience, observer: o.observer });
  const keys = answerKeys(remote);
  const assertion = assertionSigner(o.key, remote.clientId, remote.gatewayId, o.assertionLifetimeSeconds);
  const contract = (service: string, version: number) => o.contracts.get(`${service}/v${version}`);
  return {
    gatewayId: remote.gatewayId,
    contract,
    async call(service, version, body, trace) {
      const pinned = contract(service, version);
      if (!pinned) throw new GatewayError('INTERNAL', `${service} v${version} is not pinned for ${remote.gatewayId}`);
      const bytes = Buffer.from(JSON.stringify(body));
      const sent = sha256B64u(bytes);
      const answer = await client.call<VerifiedAnswer>({
        operation: `${service}/v${version}`,
        idempotent: !pinned.meta.write,
        trace,
        request: {
          method: 'POST', url: `/services/${encodeURIComponent(service)}/v${version}`, data: bytes,
          responseType: 'arraybuffer', transformResponse: [], headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        },
        prepare: async (request) => ({ ...request, headers: { ...(request.headers as Record<string, string>), Authorization: `Bearer ${assertion(bytes, callerOf(trace))}` } }),
        acceptStatus: () => true,
        interpret: (res) => {
          if (res.status !== 200) throw remoteProblem(remote.gatewayId, res);
          return verifyRemoteAnswer({ remote: remote.gatewayId, signature: res.headers['x-gateway-signature'], body: Buffer.from(res.data as Buffer), sentSha256B64u: sent, keys, contract: pinned });
        },
        referenceOf: (a) => {
          const reference = (a.body.source as { reference?: unknown } | undefined)?.reference;
          return typeof reference === 'string' ? reference : null;
        },
        custodyOf: (a) => ({ gateway: remote.gatewayId, ...(a ? { remoteRequestId: a.remoteRequestId, answerSha256: a.answerSha256 } : {}) }),
      });
      return answer.body;
    },
    async health() {
      return { up: await client.probe('/healthz'), breaker: client.breakerState() };
    },
    breakerState: client.breakerState,
  };
}
