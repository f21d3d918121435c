import { compactVerify, decodeProtectedHeader, errors as joseErrors, type JWTVerifyGetKey } from 'jose';
import { GatewayError } from '../errors.ts';
import { sha256Hex } from '../audit/entry.ts';
import type { Contract } from '../contracts.ts';
import { describeSchemaError } from '../contracts.ts';

export const ANSWER_ALGORITHMS = ['ES256', 'EdDSA'];

/** What a verified remote answer proves, for the audit record's chain of custody. */
export interface VerifiedAnswer {
  /** The parsed answer, inside the pinned contract. */
  body: Record<string, unknown>;
  /** The remote's id for the request (its audit entry), from the signed header. */
  remoteRequestId: string;
  /** SHA-256 (hex) of the exact bytes it signed: its entry's responseSha256. */
  answerSha256: string;
}

const bad = (remote: string, why: string, cause?: unknown) => new GatewayError('UPSTREAM_BAD_RESPONSE', `${remote}: ${why}`, { cause });

/**
 * Takes nothing on trust from another gateway's 200 (README, wire interface): its
 * `X-Gateway-Signature` is a detached JWS (RFC 7515 appendix F) over the exact body bytes, ES256
 * or EdDSA, by a key the remote publishes; its protected header names the request (`request_id`)
 * and binds it to the exact bytes sent (`request_sha256`, base64url SHA-256, as `body_sha256`);
 * and the body is JSON inside the pinned contract's response schema. Any failure is
 * UPSTREAM_BAD_RESPONSE, so nothing of the answer is released. A key set that cannot be fetched
 * is the remote being unavailable, not lying.
 */
export async function verifyRemoteAnswer(o: {
  remote: string;
  signature: unknown;
  body: Buffer;
  sentSha256B64u: string;
  keys: JWTVerifyGetKey;
  contract: Contract;
}): Promise<VerifiedAnswer> {
  const { remote } = o;
  if (typeof o.signature !== 'string' || !/^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]+$/.test(o.signature)) throw bad(remote, 'X-Gateway-Signature missing or not a detached compact JWS');
  const [encodedHeader, , encodedSignature] = o.signature.split('.') as [string, string, string];
  let header: Record<string, unknown>;
  try {
    header = decodeProtectedHeader(o.signature) as Record<string, unknown>;
  } catch (e) {
    throw bad(remote, 'signature header unreadable', e);
  }
  if (header.crit !== undefined || header.b64 !== undefined) throw bad(remote, 'unsupported JWS header extension');
  if (!ANSWER_ALGORITHMS.includes(header.alg as string)) throw bad(remote, `signature alg must be one of ${ANSWER_ALGORITHMS.join(', ')}`);
  try {
    await compactVerify(`${encodedHeader}.${o.body.toString('base64url')}.${encodedSignature}`, o.keys, { algorithms: ANSWER_ALGORITHMS });
  } catch (e) {
    if (e instanceof joseErrors.JWKSTimeout) throw new GatewayError('UPSTREAM_TIMEOUT', `${remote}: key set timed out`, { cause: e });
    // jose's own failure to fetch the key set (a non-200, a network error) is generic, not a verdict on the answer.
    if (!(e instanceof joseErrors.JOSEError) || e.code === 'ERR_JOSE_GENERIC') throw new GatewayError('UPSTREAM_UNAVAILABLE', `${remote}: key set unavailable`, { cause: e });
    throw bad(remote, `signature invalid (${e.code})`, e);
  }
  if (typeof header.request_id !== 'string' || !header.request_id) throw bad(remote, 'signature names no request_id');
  if (header.request_sha256 !== o.sentSha256B64u) throw bad(remote, 'signature bound to another request (request_sha256)');
  let body: unknown;
  try {
    body = JSON.parse(o.body.toString('utf8'));
  } catch (e) {
    throw bad(remote, 'answer is not JSON', e);
  }
  if (!o.contract.validateResponse(body)) {
    throw bad(remote, `answer outside ${o.contract.meta.service} v${o.contract.meta.version}: ${describeSchemaError(o.contract.validateResponse.errors)}`);
  }
  return { body: body as Record<string, unknown>, remoteRequestId: header.request_id, answerSha256: sha256Hex(o.body) };
}
