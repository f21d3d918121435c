import type { Step } from './types.ts';

/**
 * Fixes the answer's bytes and signs them (detached JWS bound to the request's hash). A streamed
 * answer is not signed: a detached signature needs the whole body first.
 */
export const sign: Step = async (x) => {
  const result = x.result!;
  if (result.stream) return;
  x.responseBody = Buffer.from(result.contentType ? String(result.body) : JSON.stringify(result.body));
  x.signature = await x.deps.signer.signResponse(x.responseBody, { requestId: x.requestId, requestSha256: Buffer.from(x.requestSha256, 'hex').toString('base64url') });
};
