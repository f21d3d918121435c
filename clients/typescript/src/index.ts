/**
 * A typed client of the interagency data-sharing gateway: it mints each request's client
 * assertion bound to the exact body, sends it, and releases an answer only after verifying
 * `X-Gateway-Signature` (the detached JWS over the exact answer bytes, its `request_sha256`
 * against the body sent, its `request_id` against `X-Request-Id`) with the gateway's JWKS.
 * Types come from the gateway's /openapi.json (src/generated/openapi.ts).
 */
import { createHash, randomUUID } from 'node:crypto';
import { compactDecrypt, createRemoteJWKSet, flattenedVerify, importJWK, SignJWT, type JWK } from 'jose';
import type { components, paths } from './generated/openapi.ts';

export type { components, paths };

/** Every data service as `<service id>/v<major>`, e.g. `population.identity/v1`. */
type ServiceOperations = {
  [P in keyof paths as P extends `/services/${infer Id}/v${infer Major extends number}`
    ? (paths[P] extends { post: object } ? `${Id}/v${Major}` : never) : never]: paths[P] extends { post: infer O } ? O : never;
};
export type ServiceId = keyof ServiceOperations;
type JsonBody<T> = T extends { content: { 'application/json': infer B } } ? B : never;
/** The request body of a service, as its contract describes it. */
export type RequestOf<S extends ServiceId> = ServiceOperations[S] extends { requestBody: infer R } ? JsonBody<R> : never;
/** The answer of a service, as its contract describes it. */
export type AnswerOf<S extends ServiceId> = ServiceOperations[S] extends { responses: { 200: infer R } } ? JsonBody<R> : never;

/** The authenticated, signed GET endpoints (discovery, audit, the citizen's access log). */
export type SignedGetPath = '/services' | '/audit/entries' | '/audit/verify' | '/audit/checkpoints' | '/audit/archives' | '/citizen/access-log';
type GetOperation<P extends SignedGetPath> = paths[P] extends { get: infer O } ? O : never;
export type GetAnswerOf<P extends SignedGetPath> = GetOperation<P> extends { responses: { 200: infer R } } ? JsonBody<R> : never;
export type QueryOf<P extends SignedGetPath> = GetOperation<P> extends { parameters: { query?: infer Q } } ? Q : never;

/** RFC 9457 problem document of the gateway; `code` is stable, clients branch on it. */
export type Problem = components['schemas']['Problem'];
export type ErrorCode = Problem['code'];

export type Result<T> =
  | { ok: true; status: 200; data: T; requestId: string; signature: { kid: string; alg: string } }
  | { ok: false; status: number; problem: Problem };

/**
 * Why an answer was not released to the caller: it could not be proven to come from the gateway,
 * for this request (or, encrypted to this agency, it could not be decrypted).
 */
export type SignatureFailure = 'SIGNATURE_MISSING' | 'SIGNATURE_INVALID' | 'REQUEST_HASH_MISMATCH' | 'REQUEST_ID_MISMATCH' | 'DECRYPTION_FAILED';
export class GatewaySignatureError extends Error {
  constructor(readonly reason: SignatureFailure, message: string) {
    super(message);
    this.name = 'GatewaySignatureError';
  }
}

export interface GatewayClientOptions {
  /** The gateway's base URL. */
  url: string;
  /** This agency's client id (`iss`). */
  clientId: string;
  /** This agency's private signing key (ES256 or EdDSA, with its registered `kid`). */
  privateJwk: JWK;
  /** The gateway id (`aud`); read from /.well-known/gateway-configuration when absent. */
  gatewayId?: string;
  /**
   * This agency's private encryption key (`use: "enc"`), when the gateway encrypts its answers to
   * it (`encryptResponses`): they are decrypted here, then verified, transparently.
   */
  decryptionKey?: JWK;
  /** Seconds an assertion is valid (default 60; the gateway allows at most 300). */
  assertionLifetimeSeconds?: number;
  fetch?: typeof fetch;
}

export interface CallOptions {
  /** A registered purpose code, required on data services. */
  purpose?: string;
  /** The dossier number, when the purpose requires one. */
  caseId?: string;
  /** The officer who initiated the request. */
  userId?: string;
  /** The citizen's consent (`X-Citizen-Consent`), for services that need it. */
  consent?: string;
  /** Required on writes: a retry with the same key and body gets the first answer. */
  idempotencyKey?: string;
  acceptLanguage?: 'vi' | 'en';
}

export interface GatewayClient {
  /** Calls a data service; resolves with its verified answer or the gateway's problem. */
  call<S extends ServiceId>(service: S, body: RequestOf<S>, options?: CallOptions): Promise<Result<AnswerOf<S>>>;
  /** An authenticated GET (discovery, audit, access log), verified like a service's answer. */
  get<P extends SignedGetPath>(path: P, query?: QueryOf<P>, options?: CallOptions): Promise<Result<GetAnswerOf<P>>>;
}

const sha256B64u = (data: string | Uint8Array) => createHash('sha256').update(data).digest('base64url');

export function createGatewayClient(options: GatewayClientOptions): GatewayClient {
  const base = options.url.replace(/\/+$/, '');
  const http = options.fetch ?? fetch;
  const alg = options.privateJwk.alg ?? (options.privateJwk.kty === 'OKP' ? 'EdDSA' : 'ES256');
  const signingKey = importJWK(options.privateJwk, alg);
  const gatewayKeys = createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`));
  const decryptionKey = options.decryptionKey ? importJWK(options.decryptionKey, 'ECDH-ES+A256KW') : null;

  /** The answer's bytes as signed: an encrypted answer (application/jose) decrypted first. */
  async function plaintextOf(res: Response, bytes: Uint8Array): Promise<Uint8Array> {
    if (!/^application\/jose\b/.test(res.headers.get('content-type') ?? '')) return bytes;
    if (!decryptionKey) throw new GatewaySignatureError('DECRYPTION_FAILED', 'the answer is encrypted and no decryptionKey was given');
    try {
      return (await compactDecrypt(Buffer.from(bytes).toString('ascii'), await decryptionKey, { keyManagementAlgorithms: ['ECDH-ES+A256KW'], contentEncryptionAlgorithms: ['A256GCM'] })).plaintext;
    } catch (e) {
      throw new GatewaySignatureError('DECRYPTION_FAILED', `the answer does not decrypt with this key: ${(e as Error).message}`);
    }
  }
  let gatewayId: Promise<string> | null = options.gatewayId ? Promise.resolve(options.gatewayId) : null;
  const audience = () => (gatewayId ??= http(`${base}/.well-known/gateway-configuration`)
    .then((r) => r.json() as Promise<{ gateway_id: string }>).then((c) => c.gateway_id)
    .catch((e: unknown) => { gatewayId = null; throw e; }));

  async function assertion(body: string, o: CallOptions): Promise<string> {
    const claims: Record<string, string> = { body_sha256: sha256B64u(body) };
    if (o.purpose) claims.purpose = o.purpose;
    if (o.caseId) claims.case_id = o.caseId;
    if (o.userId) claims.user_id = o.userId;
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT(claims)
      .setProtectedHeader({ alg, kid: options.privateJwk.kid, typ: 'JWT' })
      .setIssuer(options.clientId).setAudience(await audience())
      .setIssuedAt(now).setExpirationTime(now + (options.assertionLifetimeSeconds ?? 60)).setJti(randomUUID())
      .sign(await signingKey);
  }

  /** The answer's bytes proven to be the gateway's, for the request whose body was `sent`. */
  async function verified(res: Response, bytes: Uint8Array, sent: string) {
    const signature = res.headers.get('x-gateway-signature');
    const requestId = res.headers.get('x-request-id') ?? '';
    const [protectedHeader, detached] = signature?.split('..') ?? [];
    if (!protectedHeader || !detached) throw new GatewaySignatureError('SIGNATURE_MISSING', 'the answer carries no detached X-Gateway-Signature');
    let header: Record<string, unknown>;
    try {
      // RFC 7515 appendix F: the payload is the exact body, put back between the dots.
      const result = await flattenedVerify({ protected: protectedHeader, payload: Buffer.from(bytes).toString('base64url'), signature: detached }, (h) => gatewayKeys(h as never));
      header = (result.protectedHeader ?? {}) as Record<string, unknown>;
    } catch (e) {
      throw new GatewaySignatureError('SIGNATURE_INVALID', `X-Gateway-Signature does not verify: ${(e as Error).message}`);
    }
    if (header.request_sha256 !== sha256B64u(sent)) throw new GatewaySignatureError('REQUEST_HASH_MISMATCH', 'the signed answer is for another request body');
    if (header.request_id !== requestId) throw new GatewaySignatureError('REQUEST_ID_MISMATCH', 'the signed answer is for another request id');
    return { requestId, signature: { kid: String(header.kid), alg: String(header.alg) } };
  }

  async function send<T>(method: 'GET' | 'POST', path: string, body: string, o: CallOptions): Promise<Result<T>> {
    const headers: Record<string, string> = { authorization: `Bearer ${await assertion(body, o)}` };
    if (method === 'POST') headers['content-type'] = 'application/json';
    if (o.consent) headers['x-citizen-consent'] = o.consent;
    if (o.idempotencyKey) headers['idempotency-key'] = o.idempotencyKey;
    if (o.acceptLanguage) headers['accept-language'] = o.acceptLanguage;
    const res = await http(`${base}${path}`, { method, headers, body: method === 'POST' ? body : undefined });
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (res.status !== 200) return { ok: false, status: res.status, problem: JSON.parse(Buffer.from(bytes).toString('utf8')) as Problem };
    const plaintext = await plaintextOf(res, bytes);
    const proof = await verified(res, plaintext, body);
    return { ok: true, status: 200, data: JSON.parse(Buffer.from(plaintext).toString('utf8')) as T, ...proof };
  }

  return {
    call(service, body, o = {}) {
      const [id, major] = service.split('/v');
      return send('POST', `/services/${encodeURIComponent(id!)}/v${major}`, JSON.stringify(body), o);
    },
    get(path, query, o = {}) {
      const params = new URLSearchParams(Object.entries((query ?? {}) as Record<string, unknown>).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)]));
      return send('GET', `${path}${params.size ? `?${params}` : ''}`, '', o);
    },
  };
}
